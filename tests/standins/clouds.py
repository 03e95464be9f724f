"""Stand-ins for the smaller clouds whose datasources are plain JSON entries.

``SimpleCloud`` serves one user-data path; it can require request headers
(Oracle's ``Authorization: Bearer Oracle``) and a token step (Akamai's
``PUT /v1/token`` with ``Metadata-Token-Expiry-Seconds``, token sent back
as ``Metadata-Token``), and answer "no data" with 404 or 204 (Hetzner).
"""

from __future__ import annotations

import secrets

from tests.standins.metadata import Answer, MetadataStandIn, Request


class SimpleCloud(MetadataStandIn):
    def __init__(
        self, path: str, user_data: bytes | None, *, required_headers: dict[str, str] | None = None,
        token_path: str | None = None, token_request_header: str | None = None,
        token_header: str | None = None, no_data_status: int = 404,
    ) -> None:
        super().__init__()
        self.path = path
        self.user_data = user_data
        self.required_headers = required_headers or {}
        self.token_path = token_path
        self.token_request_header = token_request_header
        self.token_header = token_header
        self.no_data_status = no_data_status
        self.tokens: set[str] = set()
        # Other paths served on GET (metadata documents such as /metadata/v1.json).
        self.files: dict[str, bytes] = {}

    def answer(self, request: Request) -> Answer:
        for name, value in self.required_headers.items():
            if request.headers.get(name) != value:
                return Answer(401, b"Unauthorized")
        if self.token_path and request.path == self.token_path:
            if request.method != "PUT":
                return Answer(405)
            if self.token_request_header and not request.headers.get(self.token_request_header):
                return Answer(400, b"Bad Request")
            token = secrets.token_hex(16)
            self.tokens.add(token)
            return Answer(200, token.encode())
        if self.token_header and request.headers.get(self.token_header) not in self.tokens:
            return Answer(401, b"Unauthorized")
        if request.path in self.files and request.method == "GET":
            return Answer(200, self.files[request.path])
        if request.path == self.path and request.method == "GET":
            if self.user_data is None:
                return Answer(self.no_data_status, b"" if self.no_data_status == 204 else b"Not Found")
            return Answer(200, self.user_data)
        return Answer(404, b"Not Found")
