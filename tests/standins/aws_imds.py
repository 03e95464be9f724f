"""A stand-in for the EC2 instance metadata service (IMDS), faithful to what we rely on.

- ``PUT /latest/api/token`` needs ``X-aws-ec2-metadata-token-ttl-seconds``
  (1..21600; missing or bad: 400) and is refused with 403 when the request
  carries X-Forwarded-For; on a dated path (``/2021-01-03/api/token``) it is 403.
- GETs carry ``X-aws-ec2-metadata-token``; unknown or expired: 401. Without a
  token: 401 when ``http_tokens == "required"``, served under "optional" (IMDSv1).
- ``v1_only``: the token endpoint answers 404 (an old IMDS), GETs need no token.
- ``enabled = False``: 403 for everything.
- ``/latest/user-data`` (and dated variants): the user data, or 404 when none.
- ``throttle(n, retry_after)``: the next n GETs answer 503 with Retry-After.
- Every response carries ``Server: EC2ws``.
"""

from __future__ import annotations

import secrets
import time

from tests.standins.metadata import Answer, MetadataStandIn, Request

TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"


class AwsImds(MetadataStandIn):
    server_header = "EC2ws"

    def __init__(self, user_data: bytes | None = None, *, http_tokens: str = "required",
                 v1_only: bool = False, enabled: bool = True) -> None:
        super().__init__()
        self.user_data = user_data
        self.http_tokens = http_tokens
        self.v1_only = v1_only
        self.enabled = enabled
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.issued = 0
        self.expire_next_tokens = 0  # that many tokens are issued already expired
        self._throttled = 0
        self._retry_after = "0"
        self.meta_data = {"instance-id": b"i-0123456789abcdef0", "local-hostname": b"ip-10-0-0-1"}

    def throttle(self, count: int, retry_after: str = "0") -> None:
        self._throttled, self._retry_after = count, retry_after

    def expire_all_tokens(self) -> None:
        self.tokens = {t: 0.0 for t in self.tokens}

    def answer(self, request: Request) -> Answer:
        if not self.enabled:
            return Answer(403, b"Forbidden")
        if request.path.endswith("/api/token"):
            return self._token(request)
        if request.method != "GET":
            return Answer(405)
        if self._throttled:
            self._throttled -= 1
            return Answer(503, b"Service Unavailable", {"Retry-After": self._retry_after})
        problem = self._check_token(request)
        if problem:
            return problem
        parts = request.path.strip("/").split("/", 1)
        if len(parts) != 2:
            return Answer(200, b"latest\n2021-01-03\n")
        rest = parts[1]
        if rest == "user-data":
            return Answer(404, b"Not Found") if self.user_data is None else Answer(200, self.user_data)
        if rest.startswith("meta-data/"):
            value = self.meta_data.get(rest.removeprefix("meta-data/"))
            return Answer(200, value) if value is not None else Answer(404, b"Not Found")
        return Answer(404, b"Not Found")

    def _token(self, request: Request) -> Answer:
        if self.v1_only:
            return Answer(404, b"Not Found")
        if request.method != "PUT":
            return Answer(405)
        if not request.path.startswith("/latest/"):
            return Answer(403, b"Forbidden")
        if request.headers.get("X-Forwarded-For"):
            return Answer(403, b"Forbidden")
        ttl = request.headers.get(TTL_HEADER)
        if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return Answer(400, b"Bad Request")
        token = secrets.token_urlsafe(32)
        expired = self.expire_next_tokens > 0
        self.expire_next_tokens -= 1 if expired else 0
        self.tokens[token] = 0.0 if expired else time.monotonic() + int(ttl)
        self.issued += 1
        return Answer(200, token.encode(), {"X-aws-ec2-metadata-token-ttl-seconds": ttl})

    def _check_token(self, request: Request) -> Answer | None:
        token = request.headers.get(TOKEN_HEADER)
        if token is None:
            if self.v1_only or self.http_tokens == "optional":
                return None
            return Answer(401, b"Unauthorized")
        expiry = self.tokens.get(token)
        if expiry is None or expiry <= time.monotonic():
            return Answer(401, b"Unauthorized")
        return None
