"""Stand-ins for the clouds' credential endpoints and object stores, checking what they get.

``AwsRoleAndS3``: IMDSv2 (token PUT, the role list, the role's temporary keys,
the instance's region) and an S3 bucket that verifies each request's SigV4
signature with the secret key it handed out — the signature is recomputed
here from the request as received (a second, independent implementation of
AWS's description), and the session token must match. A bucket in another
region answers 400 with ``x-amz-bucket-region``, as S3 does.

``GceTokenAndGcs``: the metadata server's service-account token (only with
``Metadata-Flavor: Google``, which it echoes) and a GCS bucket that wants
``Authorization: Bearer <that token>``.

``AzureIdentityAndBlob``: IMDS's managed-identity token (``Metadata: true``,
``resource=https://storage.azure.com/``) and a blob container that wants the
bearer token and an ``x-ms-version`` new enough for bearer tokens.

Any of them can be made to have no credentials (no role / no service account
/ no identity) while serving a public object, to check the anonymous fallback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import quote

from tests.standins.metadata import Answer, MetadataStandIn, Request

ACCESS_KEY = "ASIAEXAMPLEKEYID0001"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSTANDINKEY"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_sigv4(request: Request, secret: str, region: str, service: str = "s3") -> str | None:
    """The signature the request should carry, computed from the request as received."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return None
    fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    names = fields["SignedHeaders"].split(";")
    amz_date = request.headers.get("x-amz-date", "")
    if "host" not in names or "x-amz-date" not in names or "x-amz-content-sha256" not in names:
        return None
    canonical_headers = "".join(
        f"{name}:{' '.join((request.headers.get(name) or '').split())}\n" for name in names)
    query = "&".join(sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                            for k, values in request.query.items() for v in values))
    canonical = "\n".join(["GET", quote(request.path, safe="/-_.~"), query, canonical_headers,
                           ";".join(names), request.headers.get("x-amz-content-sha256", "")])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    if fields["Credential"] != f"{ACCESS_KEY}/{scope}":
        return None
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), amz_date[:8]), region), service),
                "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class AwsRoleAndS3(MetadataStandIn):
    def __init__(self, objects: dict[str, bytes], *, role: str | None = "provision-role",
                 instance_region: str = "us-east-1", bucket_region: str = "us-east-1",
                 public: bool = False) -> None:
        super().__init__()
        self.objects = objects  # "bucket/key" -> bytes
        self.role = role
        self.instance_region = instance_region
        self.bucket_region = bucket_region
        self.public = public
        self.imds_tokens: set[str] = set()
        self.session_token = secrets.token_urlsafe(24)

    def endpoint(self) -> str:
        return f"{self.base_url}/s3/{{bucket}}/{{key}}"

    def answer(self, request: Request) -> Answer:
        if request.path == "/latest/api/token":
            if request.method != "PUT" or not request.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"):
                return Answer(400)
            token = secrets.token_hex(16)
            self.imds_tokens.add(token)
            return Answer(200, token.encode())
        if request.path.startswith("/latest/"):
            if request.headers.get("X-aws-ec2-metadata-token") not in self.imds_tokens:
                return Answer(401)
            return self._imds(request.path)
        if request.path.startswith("/s3/"):
            return self._s3(request)
        return Answer(404)

    def _imds(self, path: str) -> Answer:
        base = "/latest/meta-data/iam/security-credentials/"
        if path == base:
            return Answer(200, f"{self.role}\n".encode()) if self.role else Answer(404)
        if self.role and path == base + self.role:
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
            return Answer(200, json.dumps({
                "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": ACCESS_KEY,
                "SecretAccessKey": SECRET_KEY, "Token": self.session_token,
                "Expiration": expires}).encode())
        if path == "/latest/meta-data/placement/region":
            return Answer(200, self.instance_region.encode())
        return Answer(404)

    def _s3(self, request: Request) -> Answer:
        name = request.path[len("/s3/"):]
        auth = request.headers.get("Authorization")
        if auth is None:
            if not self.public:
                return Answer(403, b"<Error><Code>AccessDenied</Code></Error>")
        else:
            if f"/{self.bucket_region}/s3/" not in auth:
                return Answer(400, b"<Error><Code>AuthorizationHeaderMalformed</Code></Error>",
                              {"x-amz-bucket-region": self.bucket_region})
            if request.headers.get("x-amz-security-token") != self.session_token:
                return Answer(403, b"<Error><Code>InvalidToken</Code></Error>")
            signature = auth.rsplit("Signature=", 1)[-1]
            if expected_sigv4(request, SECRET_KEY, self.bucket_region) != signature:
                return Answer(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
        if name not in self.objects:
            return Answer(404, b"<Error><Code>NoSuchKey</Code></Error>")
        return Answer(200, self.objects[name])


class GceTokenAndGcs(MetadataStandIn):
    def __init__(self, objects: dict[str, bytes], *, service_account: bool = True,
                 public: bool = False) -> None:
        super().__init__()
        self.objects = objects
        self.service_account = service_account
        self.public = public
        self.token = "ya29." + secrets.token_urlsafe(32)

    def endpoint(self) -> str:
        return f"{self.base_url}/gs/{{bucket}}/{{key}}"

    def answer(self, request: Request) -> Answer:
        flavor = {"Metadata-Flavor": "Google"}
        if request.path.startswith("/computeMetadata/"):
            if request.headers.get("Metadata-Flavor") != "Google":
                return Answer(403, b"Missing Metadata-Flavor:Google header.", flavor)
            if request.path == "/computeMetadata/v1/instance/service-accounts/default/token":
                if not self.service_account:
                    return Answer(404, b"not found", flavor)
                return Answer(200, json.dumps({"access_token": self.token, "expires_in": 3599,
                                               "token_type": "Bearer"}).encode(),
                              {**flavor, "Content-Type": "application/json"})
            return Answer(404, b"not found", flavor)
        if request.path.startswith("/gs/"):
            auth = request.headers.get("Authorization")
            if auth != f"Bearer {self.token}" and not (auth is None and self.public):
                return Answer(401 if auth is None else 403)
            name = request.path[len("/gs/"):]
            return Answer(200, self.objects[name]) if name in self.objects else Answer(404)
        return Answer(404)


class AzureIdentityAndBlob(MetadataStandIn):
    def __init__(self, objects: dict[str, bytes], *, identity: bool = True,
                 public: bool = False, identity_has_access: bool = True) -> None:
        super().__init__()
        self.objects = objects  # "container/blob" -> bytes
        self.identity = identity
        self.public = public
        self.identity_has_access = identity_has_access  # no role assignment on the container
        self.token = "eyJ0eXAi." + secrets.token_urlsafe(32)

    def answer(self, request: Request) -> Answer:
        if request.path == "/metadata/identity/oauth2/token":
            if request.headers.get("Metadata") != "true":
                return Answer(400, b'{"error":"invalid_request"}')
            if request.query.get("resource") != ["https://storage.azure.com/"]:
                return Answer(400, b'{"error":"invalid_resource"}')
            if not self.identity:
                return Answer(400, b'{"error":"invalid_request","error_description":'
                                   b'"Identity not found"}')
            return Answer(200, json.dumps({"access_token": self.token, "expires_in": "86399",
                                           "resource": "https://storage.azure.com/",
                                           "token_type": "Bearer"}).encode())
        if request.path.startswith("/blob/"):
            auth = request.headers.get("Authorization")
            if auth is None and self.public:
                pass
            elif auth != f"Bearer {self.token}" or not self.identity_has_access:
                return Answer(401 if auth is None else 403,
                              b"<Error><Code>AuthorizationPermissionMismatch</Code></Error>")
            elif (request.headers.get("x-ms-version") or "") < "2017-11-09":
                return Answer(400, b"<Error><Code>InvalidHeaderValue</Code></Error>")
            name = request.path[len("/blob/"):]
            return Answer(200, self.objects[name]) if name in self.objects else Answer(404)
        return Answer(404)
