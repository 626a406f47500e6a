"""The operator's access to bento stores: credentials from Secrets, and HEAD/LIST answers
cached for a while, so a resync of many ModelDeployments does not probe the store each time.

One instance per operator; the cache is only a cache (a restart loses nothing but time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rollforward.api.spec import BentoStoreSpec
from rollforward.prometheus_access import SecretReader
from rollforward.serving.objectstore.client import Answer, ObjectStore, Presence, StoreError
from rollforward.serving.objectstore.layout import (
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    bento_key,
    key_prefix,
    tag_of_key,
)
from rollforward.serving.objectstore.s3 import S3Store
from rollforward.serving.objectstore.sigv4 import Credentials

log = logging.getLogger(__name__)

StoreFactory = Callable[[BentoStoreSpec, Credentials | None], ObjectStore]


def s3_factory(spec: BentoStoreSpec, credentials: Credentials | None) -> ObjectStore:
    return S3Store(spec.endpoint, spec.bucket, spec.region, credentials, timeout=5.0)


class MissingCredentialsError(Exception):
    """The credentials Secret, or one of its keys, does not exist."""


@dataclass
class _Cached:
    at: float
    answer: Answer


class StoreGateway:
    def __init__(
        self,
        read_secret: SecretReader,
        ttl_seconds: float,
        factory: StoreFactory = s3_factory,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_secret = read_secret
        self._ttl = ttl_seconds
        self._factory = factory
        self._clock = clock
        self._heads: dict[tuple[str, str, BentoStoreSpec, str], _Cached] = {}
        self._listings: dict[tuple[str, BentoStoreSpec, tuple[str, ...]], tuple[float, set[str]]]
        self._listings = {}
        self._lock = threading.Lock()

    def _store(self, spec: BentoStoreSpec, namespace: str) -> ObjectStore:
        if not spec.credentials_secret:
            return self._factory(spec, None)
        data = self._read_secret(namespace, spec.credentials_secret)
        if data is None or not data.get(ACCESS_KEY_ID) or not data.get(SECRET_ACCESS_KEY):
            raise MissingCredentialsError(
                f"Secret {namespace}/{spec.credentials_secret} with {ACCESS_KEY_ID} and "
                f"{SECRET_ACCESS_KEY} not found"
            )
        return self._factory(spec, Credentials(data[ACCESS_KEY_ID], data[SECRET_ACCESS_KEY]))

    def probe(self, spec: BentoStoreSpec, namespace: str, tags: Iterable[str]) -> dict[str, Answer]:
        """Whether each bento is stored, from the cache when the last answer is recent."""
        now = self._clock()
        answers: dict[str, Answer] = {}
        for tag in sorted(set(tags)):
            # Keyed by the Secret's namespace too: the same spec means other keys elsewhere.
            cache_key = (namespace, spec.credentials_secret or "", spec, tag)
            with self._lock:
                cached = self._heads.get(cache_key)
            if cached is not None and now - cached.at < self._ttl:
                answers[tag] = cached.answer
                continue
            answers[tag] = self._head(spec, namespace, tag)
            with self._lock:
                self._heads[cache_key] = _Cached(now, answers[tag])
        return answers

    def _head(self, spec: BentoStoreSpec, namespace: str, tag: str) -> Answer:
        try:
            store = self._store(spec, namespace)
        except MissingCredentialsError as error:
            return Answer(Presence.FORBIDDEN, str(error))
        return store.head(bento_key(spec.prefix, tag))

    def stored_tags(self, spec: BentoStoreSpec, namespace: str, names: Iterable[str]) -> set[str]:
        """The tags stored under each bento name, listed at most once per interval;
        raises StoreError or MissingCredentialsError."""
        wanted = tuple(sorted(set(names)))
        now = self._clock()
        with self._lock:
            cached = self._listings.get((namespace, spec, wanted))
        if cached is not None and now - cached[0] < self._ttl:
            return set(cached[1])
        tags = self._list(spec, namespace, wanted)
        with self._lock:
            self._listings[(namespace, spec, wanted)] = (now, tags)
        return set(tags)

    def _list(self, spec: BentoStoreSpec, namespace: str, names: tuple[str, ...]) -> set[str]:
        store = self._store(spec, namespace)
        tags: set[str] = set()
        for name in names:
            for key in store.list(f"{key_prefix(spec.prefix)}{name}/"):
                tag = tag_of_key(spec.prefix, key)
                if tag is not None:
                    tags.add(tag)
        return tags

    def delete(self, spec: BentoStoreSpec, namespace: str, tag: str) -> None:
        """Delete one bento; failures are logged (the next reconcile tries again)."""
        try:
            self._store(spec, namespace).delete(bento_key(spec.prefix, tag))
        except (StoreError, MissingCredentialsError) as error:
            log.warning("could not delete bento %s from the store: %s", tag, error)
            return
        with self._lock:
            for key in [k for k in self._heads if k[2] == spec and k[3] == tag]:
                del self._heads[key]
            for listing in self._listings.values():
                listing[1].discard(tag)
