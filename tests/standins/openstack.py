"""A stand-in for the OpenStack (Nova) metadata service: /openstack/<version>/user_data
(404 when the instance has none), meta_data.json and the version list."""

from __future__ import annotations

import json

from tests.standins.metadata import Answer, MetadataStandIn, Request

VERSIONS = ("2012-08-10", "2013-04-04", "2018-08-27", "latest")


class OpenStackMetadata(MetadataStandIn):
    server_header = "nova-metadata"

    def __init__(self, user_data: bytes | None = None) -> None:
        super().__init__()
        self.user_data = user_data
        self.meta_data: dict[str, object] = {"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "hostname": "vm1"}
        self.network_data: dict[str, object] | None = None  # network_data.json, when the cloud has one

    def answer(self, request: Request) -> Answer:
        if request.method != "GET":
            return Answer(405)
        parts = request.path.strip("/").split("/")
        if parts == ["openstack"]:
            return Answer(200, "\n".join(VERSIONS).encode())
        if len(parts) == 3 and parts[0] == "openstack" and parts[1] in VERSIONS:
            if parts[2] == "user_data" and self.user_data is not None:
                return Answer(200, self.user_data, {"Content-Type": "application/octet-stream"})
            if parts[2] == "network_data.json" and self.network_data is not None:
                return Answer(200, json.dumps(self.network_data).encode(), {"Content-Type": "application/json"})
            if parts[2] == "meta_data.json":
                return Answer(200, json.dumps(self.meta_data).encode(), {"Content-Type": "application/json"})
        return Answer(404, b"Not Found")
