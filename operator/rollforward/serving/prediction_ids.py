"""Prediction ids that carry what feedback needs: predicted label, origin and issue time.

Feedback can reach any worker or replica of a bento, of any variant, or arrive after a
restart, so an in-memory table of past predictions would forget most of them. Instead the id
holds the predicted label, the variant and version that made the prediction, the second it
was issued and a short HMAC, so any process with the same key (one per ModelDeployment) can
read it back, count the outcome against the right variant and version, measure the label's
delay, and reject ids it did not issue.

Duplicates. A bounded per-process memory (`RecentIds`) refuses a second label for an id it
has seen, so a retried or replayed /feedback counts once on that process without a request.
It alone is weak across replicas (with N replicas behind a Service, a resent label lands
elsewhere with chance (N-1)/N) and forgets everything on a restart. So a label that is new to
the process is then claimed in the bento store (rollforward.serving.feedback_claims): a
conditional PUT of a marker keyed by the id, which the store creates for the first caller
only; every later copy, on any replica or after a restart, is a duplicate. When the store
cannot settle the claim the label is counted on this memory alone, and that is counted too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

_MAC_HEX = 12
_PARTS = 5


@dataclass(frozen=True)
class IssuedPrediction:
    """What a valid prediction id says about the prediction it names."""

    label: str
    variant: str
    version: str
    issued_at: int
    """Unix seconds when the prediction was served."""


def _encode_origin(variant: str, version: str) -> str:
    # base64url has no ".", so the id stays five dot-separated parts whatever the version.
    raw = f"{variant}\n{version}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_origin(text: str) -> tuple[str, str] | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    variant, newline, version = raw.partition("\n")
    return (variant, version) if newline else None


class PredictionIdCodec:
    """Issue and read `<nonce>.<label>.<origin>.<issued>.<mac>` ids for one model."""

    def __init__(self, key: str, labels: Sequence[str]) -> None:
        self._key = key.encode()
        self._labels = frozenset(labels)

    def issue(self, label: str, variant: str, version: str, now: float) -> str:
        origin = _encode_origin(variant, version)
        body = f"{secrets.token_hex(8)}.{label}.{origin}.{int(now)}"
        return f"{body}.{self._mac(body)}"

    def read(self, prediction_id: object) -> IssuedPrediction | None:
        """What a valid id says; None for anything this codec did not issue."""
        if not isinstance(prediction_id, str) or prediction_id.count(".") != _PARTS - 1:
            return None
        body, _, mac = prediction_id.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        _, label, origin, issued = body.split(".")
        decoded = _decode_origin(origin)
        if label not in self._labels or decoded is None or not issued.isdigit():
            return None
        return IssuedPrediction(label, decoded[0], decoded[1], int(issued))

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:_MAC_HEX]


class RecentIds:
    """A bounded memory of ids, oldest forgotten first (to spot duplicate feedback)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, item: str) -> bool:
        """Remember `item`; False when it was already remembered."""
        if item in self._ids:
            self._ids.move_to_end(item)
            return False
        self._ids[item] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True
