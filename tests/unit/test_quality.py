"""Realized quality accumulated per interval, and the experiment's look at it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fixtures.decision_inputs import T0, deployment
from rollforward.api import EventReason, ModelDeployment, ModelDeploymentStatus, VariantStatus
from rollforward.experiment import ExperimentVerdict
from rollforward.fetch import plan_fetch
from rollforward.kubectl.render import render_get
from rollforward.kubectl.style import Style
from rollforward.measurements import QueryResult, Sample
from rollforward.quality import SERIES_LABEL, QualityInputs, quality_query, with_quality
from rollforward.settings import OperatorSettings

pytestmark = pytest.mark.unit

VERSIONS = {"champion": "upsell:v1", "challenger": "upsell:v1-gbm"}


def with_experiment(spec: dict[str, Any]) -> None:
    spec["quality"] = {"positiveLabel": "upgrade", "interval": "5m"}
    spec["experiment"] = {"minEffect": 0.02, "alpha": 0.05, "maxDuration": "1d"}


def serving() -> ModelDeployment:
    variants = [VariantStatus(name=n, role=n, version=v) for n, v in VERSIONS.items()]
    return deployment(ModelDeploymentStatus(variants=variants), mutate=with_experiment)


def outcomes(variant: str, upgrade: int, stay: int, **extra: str) -> list[Sample]:
    base = {"namespace": "default", "model": "upsell", "variant": variant, **extra}
    base.setdefault("version", VERSIONS.get(variant, "x"))
    tagged = {**base, SERIES_LABEL: "outcomes"}
    return [
        Sample({**tagged, "label": "upgrade", "predicted": "upgrade"}, upgrade * 0.8),
        Sample({**tagged, "label": "upgrade", "predicted": "stay"}, upgrade * 0.2),
        Sample({**tagged, "label": "stay", "predicted": "stay"}, stay),
        Sample({**base, SERIES_LABEL: "predictions"}, 2.0 * (upgrade + stay)),
        Sample({**base, SERIES_LABEL: "delay"}, 60.0 * (upgrade + stay)),
    ]


def step(md: ModelDeployment, result: QueryResult, at: timedelta) -> tuple[ModelDeployment, Any]:
    status, events = with_quality(md, QualityInputs(T0 + at, result), T0 + at)
    return md.model_copy(update={"status": status}), events


def test_one_query_for_every_resource_and_due_once_per_interval() -> None:
    def other_model(spec: dict[str, Any]) -> None:
        with_experiment(spec)
        spec["model"] = "other"

    a, b = serving(), deployment(mutate=other_model)
    assert quality_query(a) == quality_query(b)
    plan = plan_fetch(a, OperatorSettings(), T0 + timedelta(seconds=301))
    assert plan.quality is not None and plan.quality.tick == T0 + timedelta(minutes=5)
    done, _ = step(a, QueryResult(samples=()), timedelta(minutes=5))
    assert plan_fetch(done, OperatorSettings(), T0 + timedelta(seconds=599)).quality is None


def test_readings_accumulate_per_variant_and_version_and_ignore_other_models() -> None:
    md = serving()
    samples = (*outcomes("champion", 30, 70), *outcomes("champion", 99, 0, model="other"))
    md, _ = step(md, QueryResult(samples=samples), timedelta(minutes=5))
    md, _ = step(
        md, QueryResult(samples=tuple(outcomes("champion", 30, 70))), timedelta(minutes=10)
    )
    assert md.status.quality is not None
    [quality] = md.status.quality.variants
    assert (quality.variant, quality.version, quality.labelled) == ("champion", "upsell:v1", 200)
    assert quality.outcome_rate == pytest.approx(0.3)
    assert quality.recall == pytest.approx(0.8)
    assert quality.precision == pytest.approx(1.0)
    assert quality.accuracy == pytest.approx((48 + 140) / 200)
    assert quality.label_coverage == pytest.approx(0.5)
    assert quality.mean_label_delay_seconds == pytest.approx(60.0)


def test_a_failed_query_counts_nothing_and_is_an_inconclusive_look() -> None:
    md, _ = step(serving(), QueryResult(samples=tuple(outcomes("champion", 30, 70))), timedelta())
    md, events = step(md, QueryResult(error="Prometheus down"), timedelta(minutes=5))
    assert md.status.quality is not None and md.status.quality.missed_intervals == 1
    assert md.status.quality.variants[0].labelled == 100
    assert md.status.experiment is not None
    assert md.status.experiment.verdict == ExperimentVerdict.INCONCLUSIVE
    assert md.status.experiment.concluded_at is None and events == []


def started() -> ModelDeployment:
    """An experiment whose starting look (its baseline) has been taken, at T0."""
    md, _ = step(serving(), QueryResult(samples=()), timedelta())
    assert md.status.experiment is not None and md.status.experiment.counting_since == T0
    return md


def test_a_clear_winner_concludes_once_with_an_event_and_then_stays() -> None:
    samples = (*outcomes("champion", 3000, 7000), *outcomes("challenger", 4000, 6000))
    md, events = step(started(), QueryResult(samples=samples), timedelta(minutes=5))
    experiment = md.status.experiment
    assert experiment is not None
    assert experiment.verdict == ExperimentVerdict.CHALLENGER_BETTER
    assert experiment.effect == pytest.approx(0.1)
    assert experiment.lower is not None and 0 < experiment.lower < 0.1
    assert [e.reason for e in events] == [EventReason.EXPERIMENT_CONCLUDED]
    md, events = step(md, QueryResult(samples=samples), timedelta(minutes=10))
    assert md.status.experiment == experiment and events == []


def test_too_little_data_ends_inconclusive_at_max_duration_and_a_new_version_restarts() -> None:
    few = (*outcomes("champion", 3, 7), *outcomes("challenger", 4, 6))
    md, _ = step(serving(), QueryResult(samples=few), timedelta())
    md, events = step(md, QueryResult(samples=few), timedelta(days=1))
    assert md.status.experiment is not None
    assert md.status.experiment.verdict == ExperimentVerdict.INCONCLUSIVE
    assert md.status.experiment.concluded_at is not None and len(events) == 1
    variants = [VariantStatus(name="challenger", role="challenger", version="upsell:v2")]
    newer = md.model_copy(update={"status": md.status.model_copy(update={"variants": variants})})
    again, _ = step(newer, QueryResult(samples=few), timedelta(days=1, minutes=5))
    assert again.status.experiment is not None
    assert again.status.experiment.concluded_at is None
    assert again.status.experiment.challenger_version == "upsell:v2"


def test_get_shows_quality_per_variant_and_the_verdict_with_its_interval() -> None:
    samples = (*outcomes("champion", 3000, 7000), *outcomes("challenger", 4000, 6000))
    md, _ = step(started(), QueryResult(samples=samples), timedelta(minutes=5))

    text = render_get(md, T0 + timedelta(hours=1), Style(color=False))

    assert "Realized quality" in text and "Experiment" in text
    rows = text.splitlines()
    quality = rows[rows.index(next(r for r in rows if r.startswith("Realized quality"))) + 2]
    assert quality.split()[:4] == ["challenger", "upsell:v1-gbm", "10000", "40.0%"]
    assert "ChallengerBetter" in text and "effect +10.00 pts" in text
