"""Feedback that counts once per prediction across replicas and restarts: a claim per id.

`RecentIds` (prediction_ids) only remembers what one process has seen, so a label resent to
another replica, or to a pod that restarted, would count again. Before an outcome is counted
the receiving process therefore *claims* the prediction id in the bento store's bucket: one
conditional PUT (`If-None-Match: *`) of a small marker object. The store creates the marker
for exactly one caller; every later caller gets 412 Precondition Failed (409 for a create
racing another create on AWS S3) and counts the label as a `duplicate_feedback` anomaly.

Decisions a naive version gets wrong:
- **Any replica must find the same key.** The key is derived from the id alone:
  `<prefix>/<model>/feedback-claims/date=<day the prediction was issued>/<sha256(id)[:32]>`
  (prefix is ROLLFORWARD_PREDICTION_LOG_PREFIX, which the operator sets to the ModelDeployment's
  own `logs/<namespace>/<name>`, so two ModelDeployments serving one model never share markers;
  `logs` for a bento served by hand). The day comes from the signed id, so a label that arrives
  weeks later still lands in the prediction's partition, and a whole day of markers can be
  expired at once.
- **Lifetime.** Rollforward never deletes markers. Expire `<prefix>/<model>/feedback-claims/`
  with a bucket lifecycle rule, or delete whole `date=` partitions, only once they are older
  than the longest label delay you accept (90 days for Soom): a copy of a label that arrives
  after its marker is gone counts again. A marker is a few hundred bytes of JSON (id, label,
  writer, time), which also tells who counted the label.
- **Be liberal, never fail the request.** When no answer settles the claim (no store
  configured, claims turned off, a store error or timeout, a store that ignores conditional
  writes) the label is still counted, with only the per-process check, and counted again in
  `rollforward_feedback_unverified_total{reason}`, so the overcount such labels could cause is
  bounded by, and visible in, that metric. A label counted that way leaves no marker: a copy
  that reaches another replica after the store recovers counts again.
- **Bounded time.** The claim is on /feedback's path. Every socket wait of the claim is at
  most `feedback_claim_timeout_seconds` (1 s); after a store error the process skips the store
  for `feedback_claim_backoff_seconds` (30 s, reason `backing_off`), so a dead store costs one
  wait per back-off period, not one per label.
- **A store that ignores the header would count every duplicate.** Before its first claim a
  process probes the store: it creates a probe key twice and expects the second create to be
  refused. A store that accepts both, or answers 501 Not Implemented, never gets claims from
  this process (reason `unsupported`).
- **Concurrency is the store's business.** Two copies of one label can reach two replicas
  at the same instant; the store must then let exactly one create win. AWS S3 documents that
  it does. versitygw 1.8.0 (pinned in hack/versions.env) re-checks the condition under a
  per-object publish lock before it links the object (backend/posix/objlock.go); versions up
  to 1.7.0 checked it only before writing, so simultaneous copies could both win there. The
  integration test races 200 pairs of creates against the pinned server and wants one winner
  each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, Protocol

from rollforward.serving.objectstore.client import StoreError

CLAIMS: Final = "feedback-claims"
_KEY_HEX = 32
_NOT_IMPLEMENTED = 501
_IGNORED = "the store accepted a second create of one key: it ignores If-None-Match"


class ClaimResult(StrEnum):
    """What the store said about one claim."""

    CLAIMED = "claimed"
    """This call created the marker: the label is the first for its prediction."""
    TAKEN = "taken"
    """The marker existed: the label was counted before, here or elsewhere."""
    UNVERIFIED = "unverified"
    """Nothing settled the claim (see UnverifiedReason): only the per-process check holds."""


class UnverifiedReason(StrEnum):
    """The `reason` label of rollforward_feedback_unverified_total."""

    # No bento store is configured, or claims are turned off.
    NO_STORE = "no_store"
    # The store answered with an error, or did not answer within the timeout.
    STORE_ERROR = "store_error"
    # A recent store error: the store is skipped until the back-off ends.
    BACKING_OFF = "backing_off"
    # The store accepted a second create of one key: it ignores If-None-Match.
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    reason: UnverifiedReason | None = None
    detail: str = ""


class FeedbackDecision(StrEnum):
    """What /feedback does with one valid label."""

    COUNT = "count"
    """Count the outcome: the store confirmed it is the first label."""
    COUNT_UNVERIFIED = "count_unverified"
    """Count the outcome, and count that only this process checked it for duplicates."""
    DUPLICATE = "duplicate"
    """Do not count: a duplicate_feedback anomaly."""


def decide(first_here: bool, claim: Claim | None) -> FeedbackDecision:
    """Pure. `first_here`: this process had not seen the id (RecentIds, the fast path);
    `claim`: the store's answer, None when it was not asked (the id was seen here)."""
    if not first_here or claim is None or claim.result is ClaimResult.TAKEN:
        return FeedbackDecision.DUPLICATE
    if claim.result is ClaimResult.CLAIMED:
        return FeedbackDecision.COUNT
    return FeedbackDecision.COUNT_UNVERIFIED


def claim_key(prefix: str, model: str, prediction_id: str, issued_at: int) -> str:
    """Pure. Where the marker of one prediction id lives; the same for every replica."""
    day = datetime.fromtimestamp(issued_at, UTC).strftime("%Y-%m-%d")
    digest = hashlib.sha256(prediction_id.encode()).hexdigest()[:_KEY_HEX]
    return f"{claims_prefix(prefix, model)}date={day}/{digest}"


def claims_prefix(prefix: str, model: str) -> str:
    stripped = prefix.strip("/")
    head = f"{stripped}/" if stripped else ""
    return f"{head}{model}/{CLAIMS}/"


class ClaimStore(Protocol):
    """The one call a claim needs (rollforward.serving.objectstore.s3.S3Store has it)."""

    def create(self, key: str, data: bytes) -> bool:
        """Write `key` only if it does not exist: True when this call created it, False when
        it existed; raises StoreError."""
        ...

    def delete(self, key: str) -> None: ...


class FeedbackClaims:
    """The claims of one serving process: probe once, claim per label, back off on errors."""

    def __init__(
        self,
        store: ClaimStore,
        prefix: str,
        model: str,
        *,
        backoff_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._prefix = prefix
        self._model = model
        self._backoff = backoff_seconds
        self._clock = clock
        self._writer = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._lock = threading.Lock()
        self._supported: bool | None = None
        self._skip_until = float("-inf")

    def claim(self, prediction_id: str, issued_at: int, label: str) -> Claim:
        """Claim one prediction id; never raises."""
        with self._lock:
            if self._supported is False:
                return Claim(ClaimResult.UNVERIFIED, UnverifiedReason.UNSUPPORTED)
            if self._clock() < self._skip_until:
                return Claim(ClaimResult.UNVERIFIED, UnverifiedReason.BACKING_OFF)
            probed = self._supported is True
        try:
            if not probed and not self._probe():
                return Claim(ClaimResult.UNVERIFIED, UnverifiedReason.UNSUPPORTED, _IGNORED)
            marker = {
                "id": prediction_id,
                "label": label,
                "writer": self._writer,
                "at": datetime.now(UTC).isoformat(),
            }
            key = claim_key(self._prefix, self._model, prediction_id, issued_at)
            created = self._store.create(key, json.dumps(marker).encode())
        except (StoreError, OSError) as error:
            with self._lock:
                if isinstance(error, StoreError) and error.status == _NOT_IMPLEMENTED:
                    self._supported = False  # a store that says it has no conditional writes
                    return Claim(ClaimResult.UNVERIFIED, UnverifiedReason.UNSUPPORTED, str(error))
                self._skip_until = self._clock() + self._backoff
            return Claim(ClaimResult.UNVERIFIED, UnverifiedReason.STORE_ERROR, str(error)[:200])
        return Claim(ClaimResult.CLAIMED if created else ClaimResult.TAKEN)

    def _probe(self) -> bool:
        """Whether the store refuses a second create of one key; raises StoreError."""
        # A key of its own per probe: two threads probing at once must not refuse each other.
        key = (
            f"{claims_prefix(self._prefix, self._model)}probe/{self._writer}-{secrets.token_hex(4)}"
        )
        first = self._store.create(key, b"{}")
        second = self._store.create(key, b"{}")
        supported = first and not second
        with self._lock:
            self._supported = supported
        with contextlib.suppress(StoreError, OSError):  # a leftover probe is harmless
            self._store.delete(key)
        return supported
