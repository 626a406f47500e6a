"""The bento store as the operator and the pods see it: a small Protocol over object storage,
so decisions and unit tests never need a server (tests use an in-memory fake)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol


class Presence(StrEnum):
    """What the store said about one key."""

    PRESENT = "Present"
    """The object exists."""
    MISSING = "BentoNotFound"
    """The store answered, and the object (or the bucket) does not exist."""
    FORBIDDEN = "BentoStoreForbidden"
    """The store refused the credentials (wrong key, no permission)."""
    UNREACHABLE = "BentoStoreUnreachable"
    """No answer: DNS, connection, TLS or a server error."""


@dataclass(frozen=True)
class Answer:
    presence: Presence
    detail: str = ""


class StoreError(Exception):
    """A request the store refused or did not answer; `presence` says which kind."""

    def __init__(self, presence: Presence, detail: str, status: int | None = None) -> None:
        super().__init__(f"{presence.value}: {detail}")
        self.presence = presence
        self.detail = detail
        self.status = status
        """The HTTP status of the answer; None when there was no answer."""


class ObjectStore(Protocol):
    """One bucket of an S3-compatible store."""

    def head(self, key: str) -> Answer:
        """Whether `key` exists; never raises."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Every key under `prefix`; raises StoreError."""
        ...

    def delete(self, key: str) -> None:
        """Delete `key` (absent is fine); raises StoreError."""
        ...

    def put(self, key: str, source: Path) -> None:
        """Upload a file; raises StoreError."""
        ...

    def get(self, key: str, target: Path) -> None:
        """Download to a file; raises StoreError."""
        ...
