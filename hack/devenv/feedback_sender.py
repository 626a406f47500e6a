"""Delayed labels for the traffic driver: each prediction's true label, sent to /feedback later.

The Soom generator knows, for every sign-up it draws, whether that user upgrades and when the
label becomes known (`SoomEvent.label_known_at`: an upgrade within 1-89 days, a non-upgrade
only at the 90-day horizon). A real team receives those labels months later; the demo
compresses the 90-day horizon into `horizon_seconds` (`label_delay_scale`), so upgrades come
back within seconds and non-upgrades at the horizon, the way labels really skew: early
labels over-represent the positive class.

The label is sent back with the prediction id the bento answered. That id is signed by the
bento (HMAC) with the ModelDeployment's key, which the operator keeps in its feedback-key
Secret and every variant's pods read; the sender needs no key of its own, and any variant
verifies an id issued by any other. Labels are batched (one POST per tick, at most `batch`
items) through the router, so the demo adds about one request per second, not one per
prediction; `pin` sends them all to one variant (the demo pins the champion, so the labels do
not queue behind the single replica of the 10% challenger). Bounded: at most `max_pending`
labels wait at a time (more are dropped and counted), and whatever still waits when the
sender stops is counted as unsent, never sent.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rollforward.serving.contract import FEEDBACK_PATH
from upsell.generator import LABEL_HORIZON

FEEDBACK_SENDER_USER = "feedback-sender"
"""The sticky header value of feedback batches: the router sends them all to one variant."""


@dataclass(frozen=True)
class FeedbackPlan:
    """When and how the true labels of the traffic's predictions come back."""

    horizon_seconds: float = 8.0
    """The generator's 90-day label horizon, compressed: a non-upgrade's label comes back
    this long after its prediction, an upgrade's earlier."""
    tick_seconds: float = 1.0
    """How often due labels are sent (one POST per tick while labels are due)."""
    batch: int = 200
    """Labels per POST at most (the bento takes up to 1,000)."""
    max_pending: int = 20_000
    """Labels waiting at most; more are dropped (counted)."""
    path: str = FEEDBACK_PATH
    request_timeout: float = 10.0
    pin: tuple[str, str] | None = None
    """(the router's pin header, a variant name): where every batch goes; the sticky split
    decides when empty."""


@dataclass
class FeedbackStats:
    """What became of the labels, for the report."""

    queued: int = 0
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    """Labels in POSTs that got no 200 answer (connection error, 5xx)."""
    dropped: int = 0
    """Labels not queued: `max_pending` were already waiting."""
    unsent: int = 0
    """Labels still waiting when the sender stopped."""


def label_delay_scale(horizon_seconds: float) -> float:
    """The generator's `label_delay_scale` that maps its 90-day horizon to `horizon_seconds`.
    Pure."""
    return horizon_seconds / LABEL_HORIZON.total_seconds()


def label_delay(sampled_at: datetime, label_known_at: datetime) -> float:
    """Seconds from a prediction's sampling to its label being known (never negative). Pure."""
    return max(0.0, (label_known_at - sampled_at).total_seconds())


def feedback_body(items: Sequence[tuple[str, str]]) -> dict[str, list[dict[str, str]]]:
    """The /feedback body for (prediction id, label) pairs. Pure."""
    return {"feedback": [{"predictionId": pid, "label": label} for pid, label in items]}


class PendingLabels:
    """Labels waiting for their due time (monotonic seconds), at most `capacity` of them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._heap: list[tuple[float, int, str, str]] = []
        self._order = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, due: float, prediction_id: str, label: str) -> bool:
        """Queue one label; False (and nothing queued) when full."""
        if len(self._heap) >= self.capacity:
            return False
        heapq.heappush(self._heap, (due, self._order, prediction_id, label))
        self._order += 1
        return True

    def take_due(self, now: float, limit: int) -> list[tuple[str, str]]:
        """Up to `limit` labels due by `now`, earliest first, removed from the queue."""
        taken: list[tuple[str, str]] = []
        while self._heap and self._heap[0][0] <= now and len(taken) < limit:
            _, _, prediction_id, label = heapq.heappop(self._heap)
            taken.append((prediction_id, label))
        return taken


@dataclass
class FeedbackSender:
    """Sends queued labels to `url` + plan.path when due, on a thread of its own."""

    url: str
    plan: FeedbackPlan
    sticky_header: str
    enter_netns: Callable[[], None] = lambda: None
    stats: FeedbackStats = field(default_factory=FeedbackStats)

    def __post_init__(self) -> None:
        self._pending = PendingLabels(self.plan.max_pending)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, due: float, prediction_id: str, label: str) -> None:
        with self._lock:
            if self._pending.add(due, prediction_id, label):
                self.stats.queued += 1
            else:
                self.stats.dropped += 1

    def start(self) -> FeedbackSender:
        self._thread = threading.Thread(target=self._run, name="feedback-sender", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending; labels not yet due are counted as unsent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self.stats.unsent += len(self._pending)
            self._pending = PendingLabels(self.plan.max_pending)

    def _run(self) -> None:
        self.enter_netns()
        while not self._stop.wait(self.plan.tick_seconds):
            while not self._stop.is_set():
                with self._lock:
                    due = self._pending.take_due(time.monotonic(), self.plan.batch)
                if not due:
                    break
                self._post(due)

    def _post(self, items: Sequence[tuple[str, str]]) -> None:
        headers = {"Content-Type": "application/json", self.sticky_header: FEEDBACK_SENDER_USER}
        if self.plan.pin is not None:
            headers[self.plan.pin[0]] = self.plan.pin[1]
        request = urllib.request.Request(
            self.url.rstrip("/") + self.plan.path,
            data=json.dumps(feedback_body(items)).encode(),
            headers=headers,
            method="POST",
        )
        answer: object = None
        try:
            with urllib.request.urlopen(request, timeout=self.plan.request_timeout) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            answer = None
        with self._lock:
            self.stats.sent += len(items)
            accepted = answer.get("accepted") if isinstance(answer, dict) else None
            if isinstance(accepted, int):
                self.stats.accepted += accepted
                self.stats.rejected += len(items) - accepted
            else:
                self.stats.failed += len(items)
