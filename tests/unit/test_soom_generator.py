"""The Soom generator: reproducible, and each scenario drifts the way it is documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from upsell.generator import (
    DEFAULT_START,
    FESTIVAL,
    SCENARIOS,
    GeneratorConfig,
    SoomStream,
    generate,
    records,
    seasonal_business_share,
)
from upsell.schema import EVENT_TYPES, REGION_OF_COUNTRY


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_seed_same_data_other_seed_other_data(scenario: str) -> None:
    first = generate(scenario, 500, seed=3)

    pd.testing.assert_frame_equal(first, generate(scenario, 500, seed=3))
    assert not first["meetings"].equals(generate(scenario, 500, seed=4)["meetings"])
    assert first["user_id"].is_unique


def test_rows_are_time_ordered_and_labels_complete_outside_label_delay() -> None:
    frame = generate("baseline", 2000, seed=1)

    assert frame["signup_at"].is_monotonic_increasing
    assert frame["upgraded"].notna().all()
    assert 0.25 < frame["upgraded"].mean() < 0.45
    assert (frame["region"] == frame["country"].map(REGION_OF_COUNTRY)).all()


def test_festival_appears_only_in_new_category() -> None:
    def festival_share(scenario: str) -> float:
        events = generate(scenario, 3000, seed=2)["event_types"]
        return float(np.mean([FESTIVAL in e for e in events]))

    assert festival_share("baseline") == 0.0
    assert festival_share("new-category") > 0.25


def test_locality_moves_the_population_to_one_region() -> None:
    baseline = generate("baseline", 4000, seed=2)["region"].value_counts(normalize=True)
    local = generate("locality", 4000, seed=2)["region"].value_counts(normalize=True)

    assert baseline["APAC"] < 0.3
    assert local["APAC"] > 0.75


def test_concept_drift_changes_mix_and_conversion_after_the_pivot() -> None:
    frame = generate("concept-drift", 8000, seed=2)
    before, after = frame[~frame["post_pivot"]], frame[frame["post_pivot"]]

    assert after["signup_at"].min() > before["signup_at"].max()
    assert after["limit_hits"].mean() < 0.5 * before["limit_hits"].mean()
    assert after["upgraded"].mean() < 0.5 * before["upgraded"].mean()
    # Same features convert less: users with equal limit hits upgrade less after the pivot.
    assert _heavy_user_conversion(after) < _heavy_user_conversion(before) - 0.1


def _heavy_user_conversion(frame: pd.DataFrame) -> float:
    return float(frame[frame["limit_hits"] >= 3]["upgraded"].mean())


def test_seasonality_oscillates_with_the_configured_period() -> None:
    period = timedelta(minutes=10)
    config = GeneratorConfig(span=timedelta(minutes=40), period=period)
    frame = generate("seasonality", 8000, seed=2, start=DEFAULT_START, config=config)
    phase = ((frame["signup_at"] - pd.Timestamp(DEFAULT_START)) / period) % 1.0
    large = frame["company_size"].isin(["11-50", "51-200", "201+"])

    peak, trough = large[(phase > 0.15) & (phase < 0.35)], large[(phase > 0.65) & (phase < 0.85)]

    assert peak.mean() > trough.mean() + 0.25
    quarter = DEFAULT_START + period / 4
    assert seasonal_business_share(quarter, config) == pytest.approx(0.85)
    assert seasonal_business_share(quarter + period / 2, config) == pytest.approx(0.15)


def test_label_delay_hides_labels_not_yet_known() -> None:
    frame = generate("label-delay", 4000, seed=2)
    end = pd.Timestamp(DEFAULT_START + GeneratorConfig().span)

    assert frame["upgraded"].isna().any()
    assert frame.loc[frame["label_known_at"] > end, "upgraded"].isna().all()
    assert frame.loc[frame["label_known_at"] <= end, "upgraded"].notna().all()


def test_records_are_json_payloads_without_the_label() -> None:
    record = next(records("new-category", 5, seed=1))

    assert "upgraded" not in record and "label_known_at" not in record
    assert isinstance(record["signup_at"], str) and isinstance(record["event_types"], list)
    assert set(record["event_types"]) <= {*EVENT_TYPES, FESTIVAL}


def test_stream_is_reproducible_and_follows_a_pivot() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    times = [now + timedelta(seconds=i) for i in range(300)]

    first = [SoomStream("baseline", seed=9).sample(t).record for t in times[:3]]
    again = [SoomStream("baseline", seed=9).sample(t).record for t in times[:3]]
    stream = SoomStream("baseline", seed=9)
    pre = [stream.sample(t) for t in times]
    drifted = stream.with_scenario("concept-drift")
    post = [drifted.sample(t + timedelta(hours=1)) for t in times]

    assert first == again
    assert len({e.record["user_id"] for e in pre + post}) == 600
    assert np.mean([e.record["limit_hits"] for e in post]) < np.mean(
        [e.record["limit_hits"] for e in pre]
    )
    assert all(e.label in ("stay", "upgrade") and e.label_known_at >= now for e in post)


def test_unknown_scenario_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="concept-drift"):
        generate("pivot", 10, seed=1)
