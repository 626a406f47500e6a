"""Delayed labels of the traffic driver: the compressed horizon, the queue, and the batches a
sender posts (to a throwaway HTTP server on loopback standing in for a bento's /feedback)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devenv.feedback_sender import (
    FeedbackPlan,
    FeedbackSender,
    PendingLabels,
    feedback_body,
    label_delay,
    label_delay_scale,
)
from devenv.traffic import TrafficPlan, _generator_config
from upsell.generator import LABEL_HORIZON, SoomStream


def test_the_90_day_horizon_maps_to_the_chosen_seconds() -> None:
    scale = label_delay_scale(8.0)
    assert LABEL_HORIZON.total_seconds() * scale == pytest.approx(8.0)


def test_a_label_is_due_when_known_and_never_before_the_prediction() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    assert label_delay(at, at + timedelta(seconds=3.5)) == 3.5
    assert label_delay(at, at - timedelta(seconds=1)) == 0.0


def test_generated_labels_come_back_within_the_compressed_horizon_upgrades_first() -> None:
    """The driver's stream, with the feedback plan's scale: non-upgrades at the horizon,
    upgrades before it (the skew of real late labels)."""
    config = _generator_config(TrafficPlan(url="http://x", feedback=FeedbackPlan(8.0)))
    stream = SoomStream("baseline", 3, config=config)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    events = [stream.sample(now) for _ in range(400)]
    by_label: dict[str, list[float]] = {}
    for event in events:
        by_label.setdefault(event.label, []).append(label_delay(now, event.label_known_at))
    assert set(by_label) == {"stay", "upgrade"}
    assert all(d == pytest.approx(8.0) for d in by_label["stay"])
    upgrades = by_label["upgrade"]
    assert all(0.0 < d <= 8.0 + 1e-6 for d in upgrades)
    # An upgrade within ~20 days on average: about 2 s of the 8.
    assert sum(upgrades) / len(upgrades) < 4.0


def test_no_feedback_plan_leaves_the_generator_untouched() -> None:
    assert _generator_config(TrafficPlan(url="http://x")).label_delay_scale == 1.0


def test_body_is_the_bentos_batch_form() -> None:
    assert feedback_body([("a.b.c.d.e", "upgrade")]) == {
        "feedback": [{"predictionId": "a.b.c.d.e", "label": "upgrade"}]
    }


def test_pending_labels_leave_in_due_order_in_bounded_batches() -> None:
    pending = PendingLabels(capacity=3)
    assert pending.add(5.0, "late", "stay")
    assert pending.add(1.0, "early", "upgrade")
    assert pending.add(2.0, "middle", "stay")
    assert not pending.add(0.5, "over capacity", "stay")
    assert pending.take_due(0.9, limit=10) == []
    assert pending.take_due(3.0, limit=1) == [("early", "upgrade")]
    assert pending.take_due(3.0, limit=10) == [("middle", "stay")]
    assert len(pending) == 1


class _Bento(BaseHTTPRequestHandler):
    """Accepts every id but those starting with "bad"; remembers each request."""

    received: list[tuple[str, str | None, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, self.headers.get("X-Pin"), body))
        items = body["feedback"]
        accepted = sum(not i["predictionId"].startswith("bad") for i in items)
        answer = json.dumps({"accepted": accepted, "rejected": []}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bento() -> Iterator[tuple[str, list[tuple[str, str | None, Any]]]]:
    received: list[tuple[str, str | None, Any]] = []
    handler = type("Bento", (_Bento,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_sender_posts_due_labels_counts_answers_and_keeps_the_rest_unsent(
    bento: tuple[str, list[tuple[str, str | None, Any]]],
) -> None:
    url, received = bento
    plan = FeedbackPlan(tick_seconds=0.05, batch=2, max_pending=4, pin=("X-Pin", "champion"))
    sender = FeedbackSender(url, plan, "X-User-Id").start()
    now = time.monotonic()
    for name in ("one", "two", "bad"):
        sender.submit(now, name, "stay")
    sender.submit(now + 3600, "next-hour", "upgrade")
    sender.submit(now, "over capacity", "stay")
    deadline = time.monotonic() + 10
    while sender.stats.sent < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    sender.stop()
    stats = sender.stats
    assert (stats.queued, stats.dropped) == (4, 1)
    assert (stats.sent, stats.accepted, stats.rejected, stats.failed) == (3, 2, 1, 0)
    assert stats.unsent == 1
    assert [len(body["feedback"]) for _, _, body in received] == [2, 1]
    assert {(path, pin) for path, pin, _ in received} == {("/feedback", "champion")}


def test_labels_that_find_no_bento_are_counted_as_failed() -> None:
    plan = FeedbackPlan(tick_seconds=0.05, request_timeout=2.0)
    # Port 9 on loopback (discard): nothing listens, the connection is refused.
    sender = FeedbackSender("http://127.0.0.1:9", plan, "X-User-Id").start()
    sender.submit(time.monotonic(), "one", "stay")
    deadline = time.monotonic() + 10
    while sender.stats.sent < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    sender.stop()
    assert (sender.stats.sent, sender.stats.failed, sender.stats.accepted) == (1, 1, 0)
