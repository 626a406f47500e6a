"""Train and evaluate the Soom upsell model. Pure computation; saving lives in `packaging`.

The lessons of the story, in code: a plain logistic regression (good enough, fast); a random
stratified split (never a slice of time-ordered rows); an optional window that drops data
from before a pivot; and metrics on the random holdout *and* on the most recent rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from rollforward.serving.calibration import ScoreCalibration, reliability_table
from rollforward.serving.contract import EvaluationMetrics, RetrainingMetrics
from upsell.features import Algorithm, build_pipeline
from upsell.schema import LABELS, NEGATIVE_LABEL, POSITIVE_LABEL

LABEL_COLUMN = "upgraded"
TIME_COLUMN = "signup_at"
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class TrainingOptions:
    seed: int = 0
    holdout_fraction: float = 0.25
    # "Recent" = holdout rows whose sign-up falls in the last this-fraction of the time range.
    recent_fraction: float = 0.2
    # Rows that signed up before this are dropped (stale data from before a pivot).
    since: datetime | None = None
    threshold: float = DEFAULT_THRESHOLD
    algorithm: Algorithm = "logistic"


@dataclass(frozen=True)
class TrainedModel:
    """A fitted pipeline with everything the bento and the operator need to know about it."""

    pipeline: Pipeline
    threshold: float
    metrics: RetrainingMetrics
    # Predicted-label distribution on the holdout: the drift baseline.
    baseline_distribution: dict[str, float]
    training_rows: int
    holdout: pd.DataFrame
    recent: pd.DataFrame
    # Reliability table of the holdout scores: lets the operator estimate quality unlabelled.
    calibration: ScoreCalibration
    # Labelled rows used, training and holdout together (after the `since` cut).
    labelled_rows: int = 0

    def metadata(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Model-store metadata (plain JSON types) that the service reads back."""
        return {
            "labels": list(LABELS),
            "positive_label": POSITIVE_LABEL,
            "threshold": self.threshold,
            "baseline_distribution": self.baseline_distribution,
            "metrics": self.metrics.model_dump(mode="json", by_alias=True, exclude_none=True),
            "training_rows": self.training_rows,
            "calibration": self.calibration.model_dump(mode="json", by_alias=True),
            **(extra or {}),
        }


class TrainingError(ValueError):
    """The data cannot produce a model (too few rows, a single class, ...)."""


def train(data: pd.DataFrame, options: TrainingOptions | None = None) -> TrainedModel:
    """Fit and evaluate on `data` (generator columns; unlabelled rows are skipped)."""
    opts = options or TrainingOptions()
    usable = _usable_rows(data, opts.since)
    labels = usable[LABEL_COLUMN].astype(bool)
    train_rows, holdout = train_test_split(
        usable, test_size=opts.holdout_fraction, stratify=labels, random_state=opts.seed
    )
    pipeline = build_pipeline(opts.seed, opts.algorithm)
    pipeline.fit(train_rows, train_rows[LABEL_COLUMN].astype(int))
    recent = recent_slice(holdout, usable, opts.recent_fraction)
    holdout_metrics = evaluate(pipeline, holdout, opts.threshold)
    holdout_scores = scores(pipeline, holdout)
    predicted = predicted_labels(holdout_scores, opts.threshold)
    return TrainedModel(
        pipeline=pipeline,
        threshold=opts.threshold,
        metrics=RetrainingMetrics(
            holdout=holdout_metrics, recent=evaluate(pipeline, recent, opts.threshold)
        ),
        baseline_distribution=label_distribution(predicted),
        training_rows=len(train_rows),
        holdout=holdout,
        recent=recent,
        calibration=reliability_table(
            holdout_scores.tolist(), holdout[LABEL_COLUMN].astype(bool).tolist(), opts.threshold
        ),
        labelled_rows=len(usable),
    )


def recent_slice(holdout: pd.DataFrame, data: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """Holdout rows from the most recent `fraction` of the data's time range."""
    first, last = data[TIME_COLUMN].min(), data[TIME_COLUMN].max()
    cutoff = last - (last - first) * fraction
    return holdout[holdout[TIME_COLUMN] >= cutoff]


def scores(pipeline: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """Positive-class probabilities."""
    classes = list(pipeline.classes_)
    result: np.ndarray = pipeline.predict_proba(frame)[:, classes.index(1)]
    return result


def predicted_labels(values: np.ndarray, threshold: float) -> np.ndarray:
    return np.where(values >= threshold, POSITIVE_LABEL, NEGATIVE_LABEL)


def label_distribution(labels: np.ndarray) -> dict[str, float]:
    total = max(len(labels), 1)
    return {label: round(float((labels == label).sum()) / total, 6) for label in LABELS}


def evaluate(pipeline: Pipeline, frame: pd.DataFrame, threshold: float) -> EvaluationMetrics:
    truth = frame[LABEL_COLUMN].astype(int).to_numpy()
    if len(frame) == 0:
        return EvaluationMetrics(auc=None, accuracy=0.0, recall=0.0, samples=0)
    values = scores(pipeline, frame)
    predicted = (values >= threshold).astype(int)
    auc = float(roc_auc_score(truth, values)) if len(set(truth)) == 2 else None
    return EvaluationMetrics(
        auc=None if auc is None else round(auc, 4),
        accuracy=round(float(accuracy_score(truth, predicted)), 4),
        recall=round(float(recall_score(truth, predicted, zero_division=0.0)), 4),
        samples=len(frame),
    )


def _usable_rows(data: pd.DataFrame, since: datetime | None) -> pd.DataFrame:
    usable = data[data[LABEL_COLUMN].notna()]
    if since is not None:
        usable = usable[usable[TIME_COLUMN] >= _as_utc(since)]
    if len(usable) < 50:
        raise TrainingError(f"only {len(usable)} labelled rows to train on (need at least 50)")
    counts = usable[LABEL_COLUMN].astype(bool).value_counts()
    if len(counts) < 2 or counts.min() < 10:
        raise TrainingError(f"need at least 10 rows of each class, got {counts.to_dict()}")
    return usable


def _as_utc(moment: datetime) -> pd.Timestamp:
    """Naive times are taken as UTC, the zone of every generated timestamp."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
