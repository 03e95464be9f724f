"""A stand-in for the GCE metadata server under /computeMetadata/v1/.

Requests need ``Metadata-Flavor: Google`` (403 otherwise) and must not carry
X-Forwarded-For (403); every answer carries ``Metadata-Flavor: Google``
unless ``impostor`` is set (a server that is not the metadata service).
Missing keys answer 404.
"""

from __future__ import annotations

from tests.standins.metadata import Answer, MetadataStandIn, Request

PREFIX = "/computeMetadata/v1/"


class GceMetadata(MetadataStandIn):
    server_header = "Metadata Server for VM"

    def __init__(self, attributes: dict[str, bytes] | None = None, *, impostor: bool = False) -> None:
        super().__init__()
        self.attributes = dict(attributes or {})
        self.impostor = impostor
        # Any other key below /computeMetadata/v1/ (instance/hostname, project/attributes/ssh-keys).
        self.values: dict[str, bytes] = {}

    def answer(self, request: Request) -> Answer:
        flavor = {} if self.impostor else {"Metadata-Flavor": "Google"}
        if request.headers.get("Metadata-Flavor") != "Google":
            return Answer(403, b"Missing Metadata-Flavor:Google header.", flavor)
        if request.headers.get("X-Forwarded-For"):
            return Answer(403, b"Request had X-Forwarded-For header.", flavor)
        if not request.path.startswith(PREFIX):
            return Answer(404, b"Not Found", flavor)
        key = request.path.removeprefix(PREFIX)
        if key.startswith("instance/attributes/"):
            value = self.attributes.get(key.removeprefix("instance/attributes/"))
            if value is not None:
                return Answer(200, value, {**flavor, "Content-Type": "application/text"})
        if key in self.values:
            return Answer(200, self.values[key], {**flavor, "Content-Type": "application/text"})
        if key == "instance/id":
            return Answer(200, b"1234567890123456789", flavor)
        return Answer(404, b"Not Found", flavor)
