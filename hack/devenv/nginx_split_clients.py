"""A model of nginx's `split_clients`, to predict which variant nginx gives a key.

It follows `ngx_http_split_clients_module.c` and `ngx_murmur_hash2` (`src/core/ngx_murmurhash.c`)
line for line, so tests can reason about every key at once (stickiness across re-weightings) and
check a real nginx against the prediction key by key.
"""

from __future__ import annotations

from collections.abc import Sequence

from rollforward.routers.nginx_config import SplitBucket

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur_hash2(data: bytes) -> int:
    """nginx's MurmurHash2: 32 bits, seed 0, little-endian 4-byte blocks."""
    h = len(data) & _MASK
    full = len(data) - len(data) % 4
    for i in range(0, full, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = data[full:]
    if tail:
        for shift, byte in reversed(list(enumerate(tail))):
            h ^= byte << (8 * shift)
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def bucket_bounds(buckets: Sequence[SplitBucket]) -> list[int | None]:
    """Each bucket's exclusive upper hash bound as nginx computes it; None for `*`.

    nginx keeps percentages in hundredths and rounds each bucket's share of 2^32-1 down before
    adding it to a running 32-bit total.
    """
    bounds: list[int | None] = []
    last = 0
    for bucket in buckets:
        if bucket.percent is None:
            bounds.append(None)
        else:
            last = (last + bucket.percent * 100 * _MASK // 10000) & _MASK
            bounds.append(last)
    return bounds


def assigned_variant(key: str, buckets: Sequence[SplitBucket]) -> str:
    """The variant nginx's split_clients picks for `key` ("" if no bucket matches, as in nginx)."""
    hashed = murmur_hash2(key.encode("utf-8"))
    for bucket, bound in zip(buckets, bucket_bounds(buckets), strict=True):
        if bound is None or hashed < bound:
            return bucket.variant
    return ""
