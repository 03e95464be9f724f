"""AWS Signature Version 4 for one request without a body (an S3 GET).

Written from AWS's published description of the algorithm: a canonical
request (method, URI path, sorted query, the signed headers, the payload
hash), a string to sign naming the date, region and service, and a signing
key derived by chained HMAC-SHA256 from the secret key. The tests check it
against AWS's own worked example for S3.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never the secret or the token
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, ...)"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def signed_headers(
    method: str, url: str, headers: Mapping[str, str], credentials: AwsCredentials,
    region: str, service: str, amz_date: str,
    payload_sha256: str = EMPTY_PAYLOAD_SHA256,
) -> dict[str, str]:
    """``headers`` plus ``x-amz-date``, ``x-amz-content-sha256``, the session token and
    ``Authorization``. ``amz_date`` is the request time as ``YYYYMMDDTHHMMSSZ``.

    Every given header is signed, and ``host`` (from the URL, with its port).
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    out = dict(headers)
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_sha256
    if credentials.session_token:
        out["x-amz-security-token"] = credentials.session_token
    to_sign = {name.lower(): " ".join(str(value).split()) for name, value in out.items()}
    to_sign["host"] = host
    names = sorted(to_sign)
    # S3 paths are encoded once ('/' kept); the URL we were given is already encoded.
    path = quote(unquote(parts.path or "/"), safe="/-_.~")
    canonical = "\n".join([
        method.upper(), path, _canonical_query(parts.query),
        "".join(f"{name}:{to_sign[name]}\n" for name in names),
        ";".join(names), payload_sha256,
    ])
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope,
                                hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + credentials.secret_access_key).encode(), day),
                            region), service), "aws4_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out
