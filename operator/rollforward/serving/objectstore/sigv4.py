"""AWS Signature Version 4 for S3 requests. Pure: the clock and the credentials come in.

Written against AWS's published algorithm (and checked with its test vectors) rather than
taken from botocore, which alone would more than double the operator image.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class SignedRequest:
    """What a caller needs to send: the headers to add (Authorization included)."""

    headers: dict[str, str]
    canonical_request: str
    string_to_sign: str
    signature: str


def uri_encode(text: str, keep_slash: bool) -> str:
    """RFC 3986 encoding as SigV4 wants it: only unreserved characters stay literal."""
    return quote(text, safe="/~" if keep_slash else "~")


def canonical_query(query: dict[str, str]) -> str:
    pairs = sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in query.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def _canonical_headers(headers: dict[str, str]) -> tuple[str, str]:
    normal = {k.lower().strip(): " ".join(v.strip().split()) for k, v in headers.items()}
    names = sorted(normal)
    return "".join(f"{n}:{normal[n]}\n" for n in names), ";".join(names)


def _key(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    payload_sha256: str,
    credentials: Credentials,
    region: str,
    now: datetime,
    service: str = "s3",
) -> SignedRequest:
    """Sign a request. `path` is already URI-encoded (S3 encodes it once); `headers` must
    include Host and whatever else is to be signed; x-amz-date is added here."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    signed = {**headers, "x-amz-date": stamp}
    canonical_headers, signed_names = _canonical_headers(signed)
    canonical_request = "\n".join(
        [method, path, canonical_query(query), canonical_headers, signed_names, payload_sha256]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _key(credentials.secret_key, day, region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return SignedRequest(
        headers={**signed, "Authorization": authorization},
        canonical_request=canonical_request,
        string_to_sign=string_to_sign,
        signature=signature,
    )
