"""Which resource to reconcile next: one entry per key, debounced, first come first served.

Modelled on client-go's workqueue, because the naive queue (a reconcile per event) ran 21
reconciles per resource at 1,000 resources:

- *Coalesce.* A key already waiting is not queued again, and its due time stays that of the
  first event: a burst of child events within `delay` seconds costs one reconcile, and a
  steady stream cannot postpone it forever.
- *One at a time per key.* A key being reconciled that gets an event is marked dirty and
  queued once more when its reconcile ends, so nothing that happened during it is missed and
  two workers never reconcile one resource at once.
- *Fair.* Keys are served in the order they became due. A resource with a flood of events
  holds one place in the line, so it never pushes the others back.

Pure: the caller passes the time; the async driver lives in the handlers.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class DebounceQueue(Generic[K]):
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._due: dict[K, float] = {}
        self._processing: set[K] = set()
        self._dirty: set[K] = set()

    def __len__(self) -> int:
        return len(self._due)

    def add(self, key: K, now: float, delay: float | None = None) -> None:
        """Queue `key` to be due `delay` seconds (the debounce by default) from `now`."""
        if key in self._processing:
            self._dirty.add(key)
            return
        due = now + (self.delay if delay is None else delay)
        if key not in self._due:
            self._due[key] = due
        elif due < self._due[key]:
            # An earlier need (a fresh event) wins over a later one (a look scheduled ahead).
            del self._due[key]
            self._due[key] = due

    def next_due(self) -> float | None:
        return min(self._due.values(), default=None)

    def take(self, now: float) -> K | None:
        """The key due longest ago, now being processed; None when none is due yet."""
        due = [(at, key) for key, at in self._due.items() if at <= now]
        if not due:
            return None
        _, key = min(due, key=lambda item: item[0])
        del self._due[key]
        self._processing.add(key)
        return key

    def done(self, key: K, now: float) -> None:
        """`key`'s reconcile ended; queue it again if an event came in meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key, now)

    def forget(self, key: K) -> None:
        self._due.pop(key, None)
        self._dirty.discard(key)
