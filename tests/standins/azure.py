"""A stand-in for Azure IMDS: /metadata/instance/compute/userData.

Requests need ``Metadata: true`` (400 otherwise), an ``api-version`` query
(400 without) and no X-Forwarded-For (400). userData comes back base64 with
``format=text``; no user data is an empty 200. ``warm_up`` statuses (404,
410, 429, 500 ...) are served first, as IMDS does while it starts.
"""

from __future__ import annotations

import base64
import json

from tests.standins.metadata import Answer, MetadataStandIn, Request

USER_DATA_PATH = "/metadata/instance/compute/userData"


class AzureImds(MetadataStandIn):
    server_header = "Microsoft-IIS/10.0"

    def __init__(self, user_data: bytes | None = None, warm_up: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.user_data = user_data
        self.warm_up = list(warm_up)
        # GET /metadata/instance (the whole instance document, JSON); None: 404.
        self.instance: dict[str, object] | None = None

    def answer(self, request: Request) -> Answer:
        if request.headers.get("Metadata") != "true" or request.headers.get("X-Forwarded-For"):
            return Answer(400, b'{"error": "Bad request. Required metadata header not specified"}')
        if "api-version" not in request.query:
            return Answer(400, b'{"error": "Bad request. api-version was not specified"}')
        if self.warm_up:
            return Answer(self.warm_up.pop(0), b"")
        if request.path == USER_DATA_PATH:
            data = base64.b64encode(self.user_data) if self.user_data else b""
            return Answer(200, data, {"Content-Type": "text/plain; charset=utf-8"})
        if request.path == "/metadata/instance" and self.instance is not None:
            return Answer(200, json.dumps(self.instance).encode(), {"Content-Type": "application/json"})
        return Answer(404, b"Not Found")
