"""ObjectStore over S3's REST API with path-style addressing and SigV4, standard library only.

Path-style (`<endpoint>/<bucket>/<key>`) works with AWS, MinIO, versitygw and Ceph alike and
needs no DNS per bucket. Objects are sent in one PUT: a bento is megabytes, far below S3's
5 GB single-request limit.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPResponse
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from rollforward.serving.objectstore.client import Answer, Presence, StoreError
from rollforward.serving.objectstore.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    canonical_query,
    sign,
    uri_encode,
)

_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_CHUNK = 1 << 20
# A conditional create refused because the key exists, or because another create of it is in
# flight (AWS S3's ConditionalRequestConflict); either way another caller owns the key.
_ALREADY_EXISTS = frozenset({409, 412})


def _now() -> datetime:
    return datetime.now(UTC)


# Error codes that mean "these credentials will not do", whatever the HTTP status: versitygw,
# for one, answers an unknown access key with 404 XAdminUserNotFound.
_CREDENTIAL_ERRORS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "XAdminUserNotFound"}
)


def presence_of_status(status: int, code: str | None = None) -> Presence:
    if status in (401, 403) or code in _CREDENTIAL_ERRORS:
        return Presence.FORBIDDEN
    if status == 404:
        return Presence.MISSING
    return Presence.UNREACHABLE


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class S3Store:
    """One bucket; credentials None sends unsigned (anonymous) requests."""

    endpoint: str
    bucket: str
    region: str = "us-east-1"
    credentials: Credentials | None = None
    timeout: float = 10.0
    clock: Callable[[], datetime] = field(default=_now)

    def _request(
        self,
        method: str,
        key: str,
        query: dict[str, str] | None = None,
        body: BinaryIO | None = None,
        payload_sha256: str = EMPTY_SHA256,
        length: int = 0,
        conditions: dict[str, str] | None = None,
    ) -> HTTPResponse:
        base = urlsplit(self.endpoint)
        path = uri_encode(f"{base.path.rstrip('/')}/{self.bucket}/{key}".rstrip("/"), True)
        query = query or {}
        headers = {"host": base.netloc, "x-amz-content-sha256": payload_sha256}
        if self.credentials is not None:
            headers = sign(
                method,
                path,
                query,
                headers,
                payload_sha256,
                self.credentials,
                self.region,
                self.clock(),
            ).headers
        if body is not None:
            headers["Content-Length"] = str(length)
        headers.update(conditions or {})
        url = f"{base.scheme}://{base.netloc}{path}"
        if query:
            url += "?" + canonical_query(query)
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            response: HTTPResponse = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            code = _error_code(error)
            detail = f"HTTP {error.code} {code or error.reason}"
            raise StoreError(presence_of_status(error.code, code), detail, error.code) from error
        except (urllib.error.URLError, OSError) as error:
            raise StoreError(Presence.UNREACHABLE, str(error)) from error
        return response

    def head(self, key: str) -> Answer:
        try:
            with self._request("HEAD", key):
                return Answer(Presence.PRESENT)
        except StoreError as error:
            if error.presence is not Presence.MISSING:
                return Answer(error.presence, error.detail)
        # A HEAD answer has no body, so a 404 cannot say whether the key, the bucket or the
        # credentials are missing; a one-key listing (which has a body) tells them apart.
        try:
            with self._request("GET", "", {"list-type": "2", "prefix": key, "max-keys": "1"}):
                return Answer(Presence.MISSING, f"no object {key} in bucket {self.bucket}")
        except StoreError as error:
            return Answer(error.presence, error.detail)

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token = ""
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            with self._request("GET", "", query) as response:
                root = ElementTree.fromstring(response.read())
            keys += [e.text or "" for e in root.iter(f"{_S3_NS}Key")]
            token = root.findtext(f"{_S3_NS}NextContinuationToken") or ""
            if root.findtext(f"{_S3_NS}IsTruncated") != "true" or not token:
                return keys

    def delete(self, key: str) -> None:
        try:
            with self._request("DELETE", key):
                return
        except StoreError as error:
            if error.presence is not Presence.MISSING:
                raise

    def put(self, key: str, source: Path) -> None:
        with (
            source.open("rb") as handle,
            self._request(
                "PUT",
                key,
                body=handle,
                payload_sha256=_file_sha256(source),
                length=source.stat().st_size,
            ),
        ):
            return

    def create(self, key: str, data: bytes) -> bool:
        """Write `data` only if `key` does not exist (a conditional PUT, `If-None-Match: *`):
        True when this call created it, False when it existed (412, or 409 when another
        create of the key was in flight); raises StoreError."""
        try:
            with self._request(
                "PUT",
                key,
                body=io.BytesIO(data),
                payload_sha256=hashlib.sha256(data).hexdigest(),
                length=len(data),
                conditions={"If-None-Match": "*"},
            ):
                return True
        except StoreError as error:
            if error.status in _ALREADY_EXISTS:
                return False
            raise

    def get(self, key: str, target: Path) -> None:
        with self._request("GET", key) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)


def _error_code(error: urllib.error.HTTPError) -> str | None:
    """S3's error code (e.g. SignatureDoesNotMatch) when the body has one."""
    try:
        body = error.read()
        return ElementTree.fromstring(body).findtext("Code") if body else None
    except (ElementTree.ParseError, OSError):
        return None
