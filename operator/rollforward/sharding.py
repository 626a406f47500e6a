"""Which replica owns which ModelDeployment, when one replica is not enough.

`--shard i/n` makes a replica act only on the ModelDeployments whose namespace/name hash
falls in shard i of n. The hash is SHA-256, not Python's `hash()`, which is salted per
process: every replica, and every restart of one, must agree on the owner. Shards are
disjoint and complete by construction (one remainder per key), so replicas never act on the
same resource and every resource has an owner.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`i/n` with 0 <= i < n."""
        match = _SHARD.match(text.strip())
        if match is None:
            raise ValueError(f"a shard is i/n (e.g. 0/2), not {text!r}")
        index, count = int(match.group(1)), int(match.group(2))
        if not 0 <= index < count:
            raise ValueError(f"shard {text!r}: need 0 <= i < n")
        return cls(index, count)

    def owns(self, namespace: str, name: str) -> bool:
        return self.count == 1 or shard_of(namespace, name, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(namespace: str, name: str, count: int) -> int:
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count
