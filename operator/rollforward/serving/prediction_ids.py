"""Prediction ids that carry their own predicted label.

Feedback can reach any worker or replica of a bento, or arrive after a restart, so an
in-memory table of past predictions would forget most of them. Instead the id holds the
predicted label and a short HMAC, so any process with the same key can read it back and
reject ids it did not issue.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Sequence

_MAC_HEX = 12


class PredictionIdCodec:
    """Issue and read `<nonce>.<label>.<mac>` ids for one model."""

    def __init__(self, key: str, labels: Sequence[str]) -> None:
        self._key = key.encode()
        self._labels = frozenset(labels)

    def issue(self, label: str) -> str:
        body = f"{secrets.token_hex(8)}.{label}"
        return f"{body}.{self._mac(body)}"

    def read(self, prediction_id: object) -> str | None:
        """The predicted label inside a valid id; None for anything this codec did not issue."""
        if not isinstance(prediction_id, str) or prediction_id.count(".") < 2:
            return None
        body, _, mac = prediction_id.rpartition(".")
        label = body.partition(".")[2]
        if label not in self._labels or not hmac.compare_digest(mac, self._mac(body)):
            return None
        return label

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
