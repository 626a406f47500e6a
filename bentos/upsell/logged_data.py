"""Training data from the prediction log: what production saw, joined with the labels that came
back (rollforward.serving.prediction_log writes both to the bento store's bucket).

A row is a logged prediction inside the window whose id later received a feedback label
(until the end of the window or now: a label may arrive after the window closed). Unlabelled
predictions are not training data; they are counted so the result can say how many labels
were still missing. The features are the record the client sent, exactly as logged, so the
training pipeline repairs odd input the way serving did.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from rollforward.serving.contract import DataWindow
from rollforward.serving.objectstore.client import ObjectStore
from rollforward.serving.prediction_log import FEEDBACK, PREDICTIONS, day_prefix
from upsell.schema import POSITIVE_LABEL
from upsell.training import LABEL_COLUMN, TIME_COLUMN


@dataclass(frozen=True)
class LoggedData:
    """Labelled rows of one window, and what the window held."""

    frame: pd.DataFrame
    start: datetime
    end: datetime
    predictions: int
    """Predictions logged in the window, labelled or not."""
    labelled: int
    """Of those, how many have a feedback label (the rows of `frame`)."""

    def window(self, drift_began_at: datetime | None = None) -> DataWindow:
        """The data window, as the candidate's result and metadata name it."""
        return DataWindow(
            source="prediction-log",
            start=self.start,
            end=self.end,
            predictions=self.predictions,
            labelled=self.labelled,
            drift_began_at=drift_began_at,
        )


def load(
    store: ObjectStore,
    prefix: str,
    model: str,
    end: datetime,
    days: float,
    since: datetime | None = None,
) -> LoggedData:
    """The labelled predictions logged for `model` in the `days` before `end`, or from `since`
    when that is later (the drift onset: what production sees now)."""
    start = window_start(end, days, since)
    predictions = {
        r["id"]: r
        for r in _records(store, prefix, model, PREDICTIONS, start, end)
        if start <= _at(r) <= end
    }
    labels: dict[str, str] = {}
    for record in _records(store, prefix, model, FEEDBACK, start, datetime.now(UTC)):
        labels.setdefault(record["id"], record["label"])
    rows = [_row(predictions[i], label) for i, label in labels.items() if i in predictions]
    frame = pd.DataFrame(rows)
    if rows:
        frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN], utc=True)
    return LoggedData(frame, start, end, len(predictions), len(rows))


def window_start(end: datetime, days: float, since: datetime | None) -> datetime:
    """The first moment of the window: `days` before `end`, or `since` when later. Pure."""
    start = end - timedelta(days=days)
    if since is None:
        return start
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    return max(start, min(since, end))


def _records(
    store: ObjectStore, prefix: str, model: str, kind: str, start: datetime, end: datetime
) -> Iterator[dict[str, Any]]:
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory(prefix="soom-logs-") as scratch:
        part = Path(scratch) / "part.jsonl"
        while day <= end:
            for key in sorted(store.list(day_prefix(prefix, model, kind, day))):
                store.get(key, part)
                yield from _lines(part)
            day += timedelta(days=1)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn line is skipped, never fatal: the rest of the object is good
        if isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"]:
            yield record


def _at(record: dict[str, Any]) -> datetime:
    try:
        moment = datetime.fromisoformat(str(record.get("at", "")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _row(prediction: dict[str, Any], label: str) -> dict[str, Any]:
    features = prediction.get("features")
    row = dict(features) if isinstance(features, dict) else {}
    # The sign-up time orders the recent slice; a record without one counts from when served.
    signup = pd.to_datetime(row.get(TIME_COLUMN), utc=True, errors="coerce")
    row[TIME_COLUMN] = _at(prediction) if pd.isna(signup) else signup
    row[LABEL_COLUMN] = label == POSITIVE_LABEL
    return row
