"""An experiment that restarts mid-way compares both arms over the same time and on matured
labels only (issue 16: the demo's false ChampionBetter after a promotion, true effect 0).

The simulation feeds `with_quality` one interval's counts at a time, as Prometheus would:
each arm serves a fixed number of labelled predictions per interval at a true rate, and a
version that has just begun serving gets its positive labels at once but its negatives only
`delay` intervals later (upgrades are known first, non-upgrades at the label horizon).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from fixtures.decision_inputs import T0, deployment
from rollforward.api import ModelDeployment, ModelDeploymentStatus, VariantStatus
from rollforward.experiment import ExperimentVerdict
from rollforward.measurements import QueryResult, Sample
from rollforward.quality import SERIES_LABEL, QualityInputs, with_quality

pytestmark = pytest.mark.unit

INTERVAL = timedelta(minutes=5)
WINNERS = {ExperimentVerdict.CHAMPION_BETTER, ExperimentVerdict.CHALLENGER_BETTER}
TRAFFIC = {"champion": 900, "challenger": 100}
"""Labelled predictions per interval and arm: the champion serves 90%."""


@dataclass
class Arm:
    """One variant: its version now and the interval that version began serving."""

    name: str
    version: str
    since: int = 0

    def labels(self, interval: int, rate: float, delay: int) -> tuple[int, int]:
        """(positives, negatives) arriving in this interval: a steady state once the
        version's first predictions are `delay` intervals old, positives only before."""
        n = TRAFFIC[self.name]
        positives = round(rate * n)
        return positives, (n - positives) if interval - self.since >= delay else 0


def spec_with(label_horizon: str | None, min_effect: float) -> Any:
    def mutate(spec: dict[str, Any]) -> None:
        spec["quality"] = {"positiveLabel": "upgrade", "interval": "5m"}
        experiment = {"minEffect": min_effect, "alpha": 0.05, "maxDuration": "14d"}
        if label_horizon is not None:
            experiment["labelHorizon"] = label_horizon
        spec["experiment"] = experiment

    return mutate


def samples(arm: Arm, positives: int, negatives: int) -> list[Sample]:
    base = {"namespace": "default", "model": "upsell", "variant": arm.name}
    tagged = {**base, "version": arm.version, SERIES_LABEL: "outcomes"}
    return [
        Sample({**tagged, "label": "upgrade", "predicted": "upgrade"}, float(positives)),
        Sample({**tagged, "label": "stay", "predicted": "stay"}, float(negatives)),
    ]


def serving(arms: list[Arm], md: ModelDeployment) -> ModelDeployment:
    variants = [VariantStatus(name=a.name, role=a.name, version=a.version) for a in arms]
    status = md.status.model_copy(update={"variants": variants})
    return md.model_copy(update={"status": status})


def run(
    md: ModelDeployment,
    arms: list[Arm],
    intervals: range,
    rate: float,
    delay: int,
) -> tuple[ModelDeployment, list[str]]:
    """Feed these intervals' readings; the verdict of every look."""
    verdicts = []
    for k in intervals:
        md = serving(arms, md)
        result = QueryResult(
            samples=tuple(s for a in arms for s in samples(a, *a.labels(k, rate, delay)))
        )
        at = T0 + k * INTERVAL
        status, _ = with_quality(md, QualityInputs(at, result), at)
        md = md.model_copy(update={"status": status})
        assert md.status.experiment is not None
        verdicts.append(md.status.experiment.verdict)
    return md, verdicts


def test_a_restart_judges_both_arms_from_the_restart_when_the_rate_moves() -> None:
    # Labels without delay; the rate moves from 20% to 40% for everyone at the promotion.
    # Counted from the very beginning, the challenger keeps its 20% weeks and the new
    # champion looks 19 points better: a false ChampionBetter on the first look.
    arms = [Arm("champion", "upsell:v1"), Arm("challenger", "upsell:v1-gbm")]
    md = deployment(ModelDeploymentStatus(), mutate=spec_with(None, 0.02))
    md, _ = run(md, arms, range(40), rate=0.2, delay=0)
    arms[0] = Arm("champion", "upsell:v2", since=40)
    md, verdicts = run(md, arms, range(40, 60), rate=0.4, delay=0)
    assert not WINNERS & set(verdicts), verdicts
    experiment = md.status.experiment
    assert experiment is not None and experiment.champion_version == "upsell:v2"
    assert experiment.counting_since == T0 + 40 * INTERVAL
    assert (experiment.champion_samples, experiment.challenger_samples) == (19 * 900, 19 * 100)
    assert experiment.effect == pytest.approx(0.0)


@pytest.mark.parametrize("restarted", ["champion", "challenger"])
def test_a_restart_with_identical_arms_and_delayed_labels_finds_no_winner(restarted: str) -> None:
    # A/A: both arms at 30% all along; labels take 3 intervals (15 minutes), negatives last.
    # The restarted arm's first labels are all positives; counting from the restart alone
    # still sees them (a false winner), counting from a labelHorizon later does not.
    arms = [Arm("champion", "upsell:v1"), Arm("challenger", "upsell:v1-gbm")]
    md = deployment(ModelDeploymentStatus(), mutate=spec_with("15m", 0.1))
    md, before = run(md, arms, range(20), rate=0.3, delay=3)
    assert not WINNERS & set(before), before
    index = 0 if restarted == "champion" else 1
    arms[index] = Arm(restarted, arms[index].version + "-new", since=20)
    md, warming = run(md, arms, range(20, 23), rate=0.3, delay=3)
    experiment = md.status.experiment
    assert experiment is not None and experiment.counting_since is None
    assert warming == [ExperimentVerdict.RUNNING] * 3
    assert (experiment.champion_samples, experiment.challenger_samples) == (0, 0)
    md, verdicts = run(md, arms, range(23, 120), rate=0.3, delay=3)
    assert not WINNERS & set(verdicts), verdicts
    experiment = md.status.experiment
    assert experiment is not None and experiment.counting_since == T0 + 23 * INTERVAL
    assert experiment.verdict == ExperimentVerdict.NO_DIFFERENCE
    assert experiment.effect == pytest.approx(0.0)


def test_without_a_label_horizon_the_restarted_arm_immature_labels_win() -> None:
    # Why labelHorizon exists: the same A/A restart with 0s concludes a false winner.
    arms = [Arm("champion", "upsell:v1"), Arm("challenger", "upsell:v1-gbm")]
    md = deployment(ModelDeploymentStatus(), mutate=spec_with("0s", 0.1))
    md, _ = run(md, arms, range(20), rate=0.3, delay=3)
    arms[0] = Arm("champion", "upsell:v2", since=20)
    md, verdicts = run(md, arms, range(20, 30), rate=0.3, delay=3)
    assert ExperimentVerdict.CHAMPION_BETTER in verdicts
