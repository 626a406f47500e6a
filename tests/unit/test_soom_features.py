"""Feature code survives new categories, missing fields and odd values by construction."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from rollforward.serving.inputs import sanitize
from upsell.features import build_pipeline, derive_features
from upsell.generator import generate, records
from upsell.schema import RECORD_SCHEMA


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    frame = generate("baseline", 3000, seed=1)
    return build_pipeline().fit(frame, frame["upgraded"].astype(int))


def test_derived_columns_do_not_depend_on_the_input_columns() -> None:
    full = derive_features(generate("baseline", 5, seed=1))
    empty = derive_features(pd.DataFrame(index=range(3)))

    assert list(full.columns) == list(empty.columns)
    assert empty["meetings"].isna().all()
    assert (empty["hosted_meeting"] == 0.0).all()


def test_festival_counts_as_an_other_event_type_instead_of_a_new_column() -> None:
    frame = generate("new-category", 300, seed=1)
    derived = derive_features(frame)

    has_festival = frame["event_types"].map(lambda e: "festival" in e)
    assert list(derived.columns) == list(derive_features(generate("baseline", 3, 1)).columns)
    assert (derived.loc[has_festival, "other_event_types"] == 1.0).all()


def test_pipeline_scores_new_category_data_like_any_other(fitted: Pipeline) -> None:
    scores = fitted.predict_proba(generate("new-category", 500, seed=2))[:, 1]

    assert np.isfinite(scores).all()
    assert 0.2 < (scores >= 0.5).mean() < 0.5


def test_pipeline_scores_sanitized_garbage(fitted: Pipeline) -> None:
    odd: list[dict[str, Any]] = [
        {},
        {"country": "Atlantis", "company_size": "10000+", "event_types": ["festival", "rave"]},
        {"meetings": "lots", "minutes": float("inf"), "limit_hits": None, "region": 7},
        {"had_paid_plan": "maybe", "signup_channel": ["ads"], "days_active": -4},
    ]
    values = [sanitize(r, RECORD_SCHEMA).values for r in odd]

    scores = fitted.predict_proba(pd.DataFrame.from_records(values))[:, 1]

    assert len(scores) == 4 and all(0.0 < s < 1.0 and not math.isnan(s) for s in scores)


def test_a_clean_record_round_trips_through_sanitize(fitted: Pipeline) -> None:
    payloads = list(records("baseline", 50, seed=3))
    frame = generate("baseline", 50, seed=3)

    cleaned = pd.DataFrame.from_records([sanitize(p, RECORD_SCHEMA).values for p in payloads])

    assert all(not sanitize(p, RECORD_SCHEMA).anomalies for p in payloads)
    np.testing.assert_allclose(
        fitted.predict_proba(cleaned)[:, 1], fitted.predict_proba(frame)[:, 1], atol=1e-6
    )
