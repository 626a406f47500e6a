"""Feature code that survives new categories, missing fields and odd values by construction.

`derive_features` accepts any frame of records, with any columns missing, and always returns
the same columns; `build_pipeline` imputes every gap and ignores categories it never saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from upsell.schema import (
    BOOLEAN_FIELDS,
    CATEGORICAL_FIELDS,
    EVENT_TYPES,
    EVENT_TYPES_FIELD,
    NUMERIC_FIELDS,
)

DERIVED_NUMERIC = ("minutes_per_meeting", "limit_hit_rate", "other_event_types")
EVENT_COLUMNS = tuple(f"hosted_{name}" for name in EVENT_TYPES)
NUMERIC_COLUMNS = (*NUMERIC_FIELDS, *DERIVED_NUMERIC)
FLAG_COLUMNS = (*BOOLEAN_FIELDS, *EVENT_COLUMNS)
MISSING_CATEGORY = "missing"

# The classifier at the end of the pipeline.
Algorithm = Literal["logistic", "gbm"]


def derive_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Model inputs from raw records: fixed columns, whatever the records held."""
    out = pd.DataFrame(index=frame.index)
    for name in NUMERIC_FIELDS:
        out[name] = _numeric(frame, name)
    for name in BOOLEAN_FIELDS:
        out[name] = _numeric(frame, name)
    for name in CATEGORICAL_FIELDS:
        column = frame[name] if name in frame else pd.Series(None, index=frame.index)
        out[name] = column.map(_category).astype(object)
    meetings = out["meetings"].where(out["meetings"] > 0)
    out["minutes_per_meeting"] = out["minutes"] / meetings
    out["limit_hit_rate"] = (out["limit_hits"] / meetings).clip(upper=1.0)
    events = frame.get(EVENT_TYPES_FIELD)
    event_sets = [_event_set(v) for v in events] if events is not None else [set()] * len(out)
    for name, column in zip(EVENT_TYPES, EVENT_COLUMNS, strict=True):
        out[column] = [float(name in s) for s in event_sets]
    # Event types the model has never seen still carry signal: how many a user tried.
    out["other_event_types"] = [float(len(s - set(EVENT_TYPES))) for s in event_sets]
    return out


def build_pipeline(seed: int = 0, algorithm: Algorithm = "logistic") -> Pipeline:
    """A classifier behind preprocessing that never fails on a record: logistic regression,
    or gradient-boosted trees (the README's `upsell:v1-gbm` challenger)."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = OneHotEncoder(
        handle_unknown="infrequent_if_exist", min_frequency=0.005, sparse_output=False
    )
    columns = ColumnTransformer(
        [
            ("numeric", numeric, list(NUMERIC_COLUMNS)),
            ("flags", SimpleImputer(strategy="constant", fill_value=0.0), list(FLAG_COLUMNS)),
            ("categories", categorical, list(CATEGORICAL_FIELDS)),
        ]
    )
    return Pipeline(
        [
            ("derive", FunctionTransformer(derive_features)),
            ("columns", columns),
            ("model", _classifier(algorithm, seed)),
        ]
    )


def _classifier(algorithm: Algorithm, seed: int) -> ClassifierMixin:
    if algorithm == "gbm":
        return HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    return LogisticRegression(max_iter=1000, random_state=seed)


def records_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A frame of sanitized records, ready for the pipeline."""
    return pd.DataFrame.from_records(list(records))


def _numeric(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    values = pd.to_numeric(frame[name].map(_number), errors="coerce").astype(float)
    return values.where(np.isfinite(values))


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, bool | np.bool_) else value


def _category(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return MISSING_CATEGORY
    return str(value)


def _event_set(value: Any) -> set[str]:
    if isinstance(value, list | tuple | np.ndarray):
        return {str(v) for v in value}
    return set()
