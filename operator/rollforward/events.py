"""The Kubernetes Events a decision asks for, and which of them reach the API server.

A reconcile that writes seven children used to post seven Events, and every resync that
repeated a failing check posted the same Event again: at 1,000 resources that was 8,000
Event creations for one burst of applies. Two pure decisions keep one Event per meaningful
transition:

- `coalesce` folds the child writes of one reconcile into one Event per verb ("Created
  Deployment a, b; Service a, b; ConfigMap r"), since they are one transition of the
  resource, not seven;
- `EventAggregator` does what client-go's EventCorrelator does for repeats: the first
  occurrence of (object, type, reason, message) is created; a repeat within `quiet_seconds`
  of the last write is only counted in memory; a later repeat patches the existing Event's
  `count` and `lastTimestamp` instead of creating another. Entries not seen for
  `forget_seconds` are dropped (the API server's Events expire after an hour anyway), so
  the memory stays bounded by what recently happened.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from rollforward.api import child_event_reason

CHILD_VERBS = ("Created", "Updated", "Deleted")


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to emit on the ModelDeployment."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def _child_write(event: Event) -> tuple[str, str, str] | None:
    """(verb, kind, the rest of the message) when `event` reports one child write."""
    for verb in CHILD_VERBS:
        if event.reason.startswith(verb) and event.message.startswith(f"{verb} "):
            kind = event.reason.removeprefix(verb)
            rest = event.message.removeprefix(f"{verb} {kind} ")
            if kind and rest != event.message:
                return verb, kind, rest
    return None


def coalesce(events: list[Event]) -> list[Event]:
    """One Event per verb for the child writes of one reconcile; other Events unchanged.

    Pure. A single write keeps its own reason (CreatedDeployment); several of one verb become
    <Verb><Kind> when they share a kind, else <Verb>Children, with every name in the message.
    """
    writes: dict[str, dict[str, list[str]]] = {}
    others: list[Event] = []
    for event in events:
        parsed = _child_write(event)
        if parsed is None:
            others.append(event)
            continue
        verb, kind, rest = parsed
        writes.setdefault(verb, {}).setdefault(kind, []).append(rest)
    merged = [_merged(verb, by_kind) for verb, by_kind in writes.items()]
    return [*merged, *others]


def _merged(verb: str, by_kind: dict[str, list[str]]) -> Event:
    kind = next(iter(by_kind)) if len(by_kind) == 1 else "Children"
    parts = "; ".join(f"{k} {', '.join(names)}" for k, names in by_kind.items())
    return Event("Normal", child_event_reason(verb, kind), f"{verb} {parts}")


class Action(StrEnum):
    """What to do with one occurrence of an Event."""

    CREATE = "create"
    """First occurrence (or the last one was forgotten): create a new Event object."""
    PATCH = "patch"
    """A repeat after the quiet period: raise the existing Event's count and lastTimestamp."""
    SKIP = "skip"
    """A repeat within the quiet period: counted here, written with the next patch."""


EventKey = tuple[str, str, str, str, str]
"""(namespace, object name, type, reason, message): repeats of one Event on one object."""


@dataclass
class Seen:
    """What the API server holds (or will hold) for one EventKey."""

    name: str | None
    """The Event object's name, once created (None: not created yet, or the create failed)."""
    count: int
    first: datetime
    last: datetime
    written: datetime


@dataclass(frozen=True)
class Decision:
    action: Action
    name: str | None
    count: int
    first: datetime


class EventAggregator:
    """Decides, per occurrence, whether an Event is created, patched or only counted.

    Thread-safe (reconciles run in worker threads); the clock is the caller's `now`.
    """

    def __init__(
        self, quiet_seconds: float = 300.0, forget_seconds: float = 3600.0, limit: int = 16384
    ) -> None:
        self._quiet = timedelta(seconds=quiet_seconds)
        self._forget = timedelta(seconds=forget_seconds)
        self._limit = limit
        self._seen: OrderedDict[EventKey, Seen] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def decide(self, key: EventKey, now: datetime) -> Decision:
        with self._lock:
            self._prune(now)
            seen = self._seen.get(key)
            if seen is None or seen.name is None:
                self._seen[key] = Seen(None, 1, now, now, now)
                self._seen.move_to_end(key)
                return Decision(Action.CREATE, None, 1, now)
            seen.count += 1
            seen.last = now
            self._seen.move_to_end(key)
            if now - seen.written < self._quiet:
                return Decision(Action.SKIP, seen.name, seen.count, seen.first)
            seen.written = now
            return Decision(Action.PATCH, seen.name, seen.count, seen.first)

    def created(self, key: EventKey, name: str | None) -> None:
        """Record the created Event's name; None (a failed write) makes the next one a create."""
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None:
                seen.name = name

    def forget(self, key: EventKey) -> None:
        """The Event object is gone (expired): the next occurrence creates a new one."""
        with self._lock:
            self._seen.pop(key, None)

    def _prune(self, now: datetime) -> None:
        # Entries are ordered by last occurrence: the oldest are at the front.
        while self._seen:
            key, oldest = next(iter(self._seen.items()))
            if now - oldest.last < self._forget and len(self._seen) < self._limit:
                return
            del self._seen[key]
