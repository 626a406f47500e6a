"""Training rows from the prediction log: the window, late labels, duplicates, torn lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from fixtures.fakes import MemoryStore
from rollforward.serving.prediction_log import FEEDBACK, PREDICTIONS, object_key
from upsell import logged_data

pytestmark = pytest.mark.unit

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _write(store: MemoryStore, kind: str, at: datetime, records: list[object]) -> None:
    key = object_key("logs", "upsell", kind, at, "w", len(store.objects))
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    store.objects[key] = ("\n".join(lines) + "\n").encode()


def _prediction(pid: str, at: datetime, **features: object) -> dict[str, object]:
    return {"at": at.isoformat(), "id": pid, "label": "stay", "score": 0.2, "features": features}


def _feedback(pid: str, label: str, at: datetime) -> dict[str, object]:
    return {"at": at.isoformat(), "id": pid, "label": label}


def test_rows_are_window_predictions_with_labels_that_came_back_even_later() -> None:
    store = MemoryStore()
    inside, before = END - timedelta(days=2), END - timedelta(days=9)
    _write(store, PREDICTIONS, before, [_prediction("old", before, country="US")])
    _write(
        store,
        PREDICTIONS,
        inside,
        [
            _prediction("a", inside, country="JP", signup_at="2026-11-28T10:00:00+00:00"),
            _prediction("b", inside, country="US"),
            "{torn line",
        ],
    )
    _write(
        store,
        FEEDBACK,
        inside,
        [_feedback("a", "upgrade", inside), _feedback("old", "stay", inside)],
    )
    # A label for "b" arrives after the window closed, and a second (duplicate) for "a".
    after = END + timedelta(hours=1)
    _write(store, FEEDBACK, after, [_feedback("b", "stay", after), _feedback("a", "stay", after)])

    data = logged_data.load(store, "logs", "upsell", END, days=7)

    assert data.predictions == 2 and data.labelled == 2
    rows = data.frame.set_index("country")
    assert bool(rows.loc["JP", "upgraded"]) is True  # the first label counts
    assert bool(rows.loc["US", "upgraded"]) is False
    assert rows.loc["JP", "signup_at"] == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert rows.loc["US", "signup_at"] == inside  # no sign-up time: when it was served
    window = data.window()
    assert window.source == "prediction-log" and window.labelled == 2 and window.predictions == 2
    assert window.start == END - timedelta(days=7) and window.end == END
    assert window.drift_began_at is None


def test_an_empty_log_is_an_empty_frame_not_an_error() -> None:
    data = logged_data.load(MemoryStore(), "logs", "upsell", END, days=7)

    assert data.predictions == 0 and data.labelled == 0 and data.frame.empty


def test_a_window_from_the_drift_onset_keeps_only_what_production_saw_since() -> None:
    store = MemoryStore()
    onset = END - timedelta(minutes=2)
    before, after = onset - timedelta(seconds=30), onset + timedelta(seconds=30)
    _write(store, PREDICTIONS, before, [_prediction("old", before, country="US")])
    _write(store, PREDICTIONS, after, [_prediction("new", after, country="JP")])
    _write(
        store,
        FEEDBACK,
        after,
        [_feedback("old", "stay", after), _feedback("new", "upgrade", after)],
    )

    data = logged_data.load(store, "logs", "upsell", END, days=7, since=onset)

    assert data.predictions == 1 and data.labelled == 1
    assert list(data.frame["country"]) == ["JP"]
    window = data.window(onset)
    assert window.start == onset and window.drift_began_at == onset
    named = window.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert named["from"] == onset.isoformat().replace("+00:00", "Z") and named["labelled"] == 1


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (None, END - timedelta(days=7)),
        (END - timedelta(days=30), END - timedelta(days=7)),  # older than the window: ignored
        (END - timedelta(hours=1), END - timedelta(hours=1)),
        (END + timedelta(hours=1), END),  # a clock ahead of the Job's: an empty window
        (datetime(2026, 12, 1, 11, 0), END - timedelta(hours=1)),  # naive: UTC
    ],
)
def test_the_window_starts_days_before_its_end_or_at_a_later_since(
    since: datetime | None, expected: datetime
) -> None:
    assert logged_data.window_start(END, 7, since) == expected
