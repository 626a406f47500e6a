"""Reading delayed ground truth sent to /feedback. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollforward.serving.contract import AnomalyKind
from rollforward.serving.inputs import InputAnomaly

PREDICTION_ID_KEYS = ("predictionId", "prediction_id")
FEEDBACK_LIST_KEY = "feedback"


@dataclass(frozen=True)
class FeedbackItem:
    """One piece of ground truth: the id of an earlier prediction and the true label."""

    prediction_id: str
    label: str


def feedback_items(payload: Any) -> list[Any] | None:
    """The items of a feedback payload: one object, a list, or {"feedback": [...]}."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        inner = payload.get(FEEDBACK_LIST_KEY)
        return inner if isinstance(inner, list) else [payload]
    return None


def parse_feedback(
    item: Any, labels: Sequence[str], positive_label: str
) -> FeedbackItem | InputAnomaly:
    """The FeedbackItem in `item`, or the anomaly that makes it unusable."""
    if not isinstance(item, Mapping):
        return InputAnomaly("feedback", AnomalyKind.WRONG_TYPE, type(item).__name__)
    prediction_id = next((item[k] for k in PREDICTION_ID_KEYS if k in item), None)
    if not isinstance(prediction_id, str) or not prediction_id:
        return InputAnomaly("predictionId", AnomalyKind.MISSING)
    label = _true_label(item.get("label"), labels, positive_label)
    if label is None:
        return InputAnomaly("label", AnomalyKind.UNKNOWN_CATEGORY, str(item.get("label"))[:64])
    return FeedbackItem(prediction_id, label)


def _true_label(raw: Any, labels: Sequence[str], positive_label: str) -> str | None:
    if isinstance(raw, str):
        folded = raw.strip().casefold()
        return next((label for label in labels if label.casefold() == folded), None)
    # A binary model also takes true/false or 1/0, the way most label stores keep them.
    negatives = [label for label in labels if label != positive_label]
    if len(labels) == 2 and isinstance(raw, bool | int) and raw in (0, 1):
        return positive_label if raw else negatives[0]
    return None
