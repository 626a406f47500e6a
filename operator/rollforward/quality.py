"""Realized quality per variant and version, and the A/B experiment's look. Pure.

Labels come back through each bento's /feedback, minutes to months after the prediction;
the bento counts them in `rollforward_outcomes_total` under the variant and version that
made the prediction (read from its signed id). Decisions a naive version gets wrong:

- **One query per interval, for every resource.** The reading is `increase()` over exactly
  one interval, evaluated at the interval's aligned end, so every ModelDeployment on a
  Prometheus shares it (the adapter caches by query and tick), and consecutive readings
  tile time without overlap. Status accumulates them: a restart loses nothing it counted and
  counts nothing twice (`last_tick`).
- **Counter resets.** A bento restart resets its counters; `increase()` handles resets, a
  difference of raw counter values would not.
- **Missing data is never evidence.** A failed query adds nothing and is counted as a missed
  interval; the experiment's look at it is Inconclusive and never ends it (only maxDuration
  does). An interval with no labels is a reading of zero labels, not an error.
- **Versions.** Counts are kept per (variant, version), so a promotion or a new challenger
  version starts its own row instead of blending two models into one rate; the experiment
  compares the versions serving now and starts again when either changes.
- **Both arms over the same time.** A restart keeps the rows: the new champion's row starts
  empty while the challenger's holds labels from long before. So the experiment records both
  arms' counts when it starts counting (`baseline`) and judges only the increase since then.
- **Label delay.** Labels of one prediction arrive over a horizon, positives first, so a
  version that has just begun serving shows mostly positives until its predictions mature.
  Counting starts at the first look at least `labelHorizon` after the experiment (re)starts:
  every label counted after that comes from predictions at most that old, for both arms
  alike (a steady state), so neither arm is judged on an immature cohort.
- **Label coverage** is labels over predictions in the same intervals. With delayed labels
  this is exact only in a steady state (every interval's labels arrive for older
  predictions); it is shown as an indicator, never used in a decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from rollforward.api import (
    EventReason,
    ExperimentMetric,
    ExperimentSpec,
    ExperimentStatus,
    ModelDeployment,
    ModelDeploymentStatus,
    OutcomeCounts,
    QualityStatus,
    VariantQuality,
    VariantRole,
    duration_seconds,
)
from rollforward.events import Event
from rollforward.experiment import (
    ArmCounts,
    ExperimentCriteria,
    ExperimentLook,
    ExperimentVerdict,
    judge,
)
from rollforward.measurements import QueryResult, Sample
from rollforward.serving.contract import LABEL_DELAY_SECONDS, OUTCOMES_TOTAL, PREDICTIONS_TOTAL

_GROUPING = "namespace, model, version, variant"
SERIES_LABEL = "rollforward_series"
"""Names which part of the one batched query a sample comes from."""


@dataclass(frozen=True)
class QualityInputs:
    """One interval's reading: the batched query's result at the interval's end."""

    tick: datetime
    result: QueryResult


def quality_tick(deployment: ModelDeployment, now: datetime) -> datetime:
    """The end of the last whole interval, aligned so that resources share the query."""
    assert deployment.spec.quality is not None
    interval = duration_seconds(deployment.spec.quality.interval)
    return datetime.fromtimestamp(math.floor(now.timestamp() / interval) * interval, UTC)


def quality_is_due(deployment: ModelDeployment, now: datetime) -> bool:
    if deployment.spec.quality is None:
        return False
    last = deployment.status.quality.last_tick if deployment.status.quality else None
    return last is None or quality_tick(deployment, now) > last


def quality_query(deployment: ModelDeployment) -> str:
    """Outcomes, predictions and label delays of every model over one interval, one query."""
    assert deployment.spec.quality is not None
    window = f"{int(duration_seconds(deployment.spec.quality.interval))}s"

    def part(name: str, expression: str, extra: str = "") -> str:
        summed = f"sum by ({_GROUPING}{extra}) (increase({expression}[{window}]))"
        return f'label_replace({summed}, "{SERIES_LABEL}", "{name}", "", "")'

    return " or ".join(
        [
            part("outcomes", OUTCOMES_TOTAL, ", label, predicted"),
            part("predictions", PREDICTIONS_TOTAL),
            part("delay", f"{LABEL_DELAY_SECONDS}_sum"),
        ]
    )


def _mine(samples: Iterable[Sample], deployment: ModelDeployment) -> list[Sample]:
    wanted = {"namespace": deployment.metadata.namespace, "model": deployment.spec.model}
    return [s for s in samples if all(s.labels.get(k, "") == v for k, v in wanted.items())]


def _add(row: OutcomeCounts, sample: Sample, positive: str) -> OutcomeCounts:
    kind, labels = sample.labels.get(SERIES_LABEL, ""), sample.labels
    if kind == "predictions":
        return row.model_copy(update={"predictions": row.predictions + round(sample.value)})
    if kind == "delay":
        return row.model_copy(
            update={"label_delay_seconds": row.label_delay_seconds + sample.value}
        )
    if kind != "outcomes":
        return row
    truth, predicted = labels.get("label") == positive, labels.get("predicted") == positive
    cell = {
        (True, True): "true_positive",
        (False, True): "false_positive",
        (False, False): "true_negative",
        (True, False): "false_negative",
    }[(truth, predicted)]
    return row.model_copy(update={cell: getattr(row, cell) + round(sample.value)})


def accumulate(
    counts: list[OutcomeCounts], samples: Iterable[Sample], positive: str
) -> list[OutcomeCounts]:
    """`counts` with one interval's samples added, per (variant, version)."""
    rows = {(c.variant, c.version): c for c in counts}
    for sample in samples:
        if not math.isfinite(sample.value) or sample.value < 0:
            continue  # never a count
        key = (sample.labels.get("variant", ""), sample.labels.get("version", ""))
        row = rows.get(key) or OutcomeCounts(variant=key[0], version=key[1])
        rows[key] = _add(row, sample, positive)
    return sorted(rows.values(), key=lambda c: (c.variant, c.version))


def labelled(row: OutcomeCounts) -> int:
    return row.true_positive + row.false_positive + row.true_negative + row.false_negative


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def variant_quality(row: OutcomeCounts) -> VariantQuality:
    n = labelled(row)
    tp, fp, fn = row.true_positive, row.false_positive, row.false_negative
    return VariantQuality(
        variant=row.variant,
        version=row.version,
        labelled=n,
        outcome_rate=_ratio(tp + fn, n),
        accuracy=_ratio(tp + row.true_negative, n),
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        label_coverage=_ratio(n, row.predictions),
        mean_label_delay_seconds=_ratio(row.label_delay_seconds, n),
    )


def record_quality(deployment: ModelDeployment, inputs: QualityInputs) -> QualityStatus:
    """The quality status after one interval's reading (failed readings add nothing)."""
    assert deployment.spec.quality is not None
    previous = deployment.status.quality
    since = previous.since if previous else inputs.tick
    counts = list(previous.counts) if previous else []
    missed = previous.missed_intervals if previous else 0
    message = ""
    if inputs.result.ok:
        mine = _mine(inputs.result.samples, deployment)
        counts = accumulate(counts, mine, deployment.spec.quality.positive_label)
        if not any(s.labels.get(SERIES_LABEL) == "outcomes" and s.value > 0 for s in mine):
            message = "no labels in the last interval"
    else:
        missed += 1
        message = f"not counted: {inputs.result.error}"
    return QualityStatus(
        since=since,
        last_tick=inputs.tick,
        counts=counts,
        variants=[variant_quality(row) for row in counts],
        missed_intervals=missed,
        message=message,
    )


def _arm(
    counts: list[OutcomeCounts], variant: str, version: str, metric: ExperimentMetric
) -> ArmCounts:
    rows = [c for c in counts if c.variant == variant and c.version == version]
    trials = sum(labelled(r) for r in rows)
    if metric is ExperimentMetric.ACCURACY:
        successes = sum(r.true_positive + r.true_negative for r in rows)
    else:
        successes = sum(r.true_positive + r.false_negative for r in rows)
    return ArmCounts(trials, successes)


def challenger_name(deployment: ModelDeployment, spec: ExperimentSpec) -> str:
    if spec.challenger:
        return spec.challenger
    roles = [v for v in deployment.spec.variants if v.role is VariantRole.CHALLENGER]
    return roles[0].name if roles else ""


def _serving_version(deployment: ModelDeployment, variant: str) -> str:
    return next((v.version for v in deployment.status.variants if v.name == variant), "")


def _criteria(spec: ExperimentSpec) -> ExperimentCriteria:
    return ExperimentCriteria(
        min_effect=spec.min_effect,
        alpha=spec.alpha,
        min_samples=spec.min_samples,
        higher_is_better=spec.higher_is_better,
    )


def _started(deployment: ModelDeployment, spec: ExperimentSpec, now: datetime) -> ExperimentStatus:
    """The experiment under way for the versions serving now, or a fresh one."""
    champion = deployment.spec.champion().name
    challenger = challenger_name(deployment, spec)
    fresh = ExperimentStatus(
        verdict=ExperimentVerdict.RUNNING,
        metric=spec.metric,
        champion=champion,
        challenger=challenger,
        champion_version=_serving_version(deployment, champion),
        challenger_version=_serving_version(deployment, challenger),
        started_at=now,
        confidence=1 - spec.alpha,
    )
    current = deployment.status.experiment
    same = current is not None and (
        current.metric,
        current.champion,
        current.challenger,
        current.champion_version,
        current.challenger_version,
    ) == (fresh.metric, champion, challenger, fresh.champion_version, fresh.challenger_version)
    return current if current is not None and same else fresh


_WARMING_UP = (
    "counting starts at the first look {horizon} (labelHorizon) after the start, when the "
    "labels of the versions' first predictions have come in"
)


def _counting(
    current: ExperimentStatus, spec: ExperimentSpec, quality: QualityStatus, now: datetime
) -> ExperimentStatus:
    """`current` with its baseline taken, once the first look a labelHorizon after the start
    comes: both arms' counts as they stand now, whatever each one counted before."""
    if current.counting_since is not None:
        return current
    if (now - current.started_at).total_seconds() < duration_seconds(spec.label_horizon):
        return current
    arms = {(current.champion, current.champion_version)}
    arms.add((current.challenger, current.challenger_version))
    baseline = [c for c in quality.counts if (c.variant, c.version) in arms]
    return current.model_copy(update={"counting_since": now, "baseline": baseline})


def _since_baseline(
    quality: QualityStatus, current: ExperimentStatus, arm: tuple[str, str], spec: ExperimentSpec
) -> ArmCounts:
    """One arm's labels since the baseline: the same time for both arms."""
    now = _arm(quality.counts, *arm, spec.metric)
    then = _arm(current.baseline, *arm, spec.metric)
    return ArmCounts(now.trials - then.trials, now.successes - then.successes)


def _judged(
    current: ExperimentStatus, spec: ExperimentSpec, quality: QualityStatus, ok: bool
) -> tuple[ExperimentLook, ArmCounts, ArmCounts]:
    """This look, and the champion's and challenger's counts it judged."""
    if current.counting_since is None:
        none = ArmCounts(0, 0)
        message = _WARMING_UP.format(horizon=spec.label_horizon)
        return ExperimentLook(ExperimentVerdict.RUNNING, None, None, None, 0.0, message), none, none
    champion = _since_baseline(quality, current, (current.champion, current.champion_version), spec)
    challenger = _since_baseline(
        quality, current, (current.challenger, current.challenger_version), spec
    )
    result = judge(champion if ok else None, challenger if ok else None, _criteria(spec))
    return result, champion, challenger


def look(
    deployment: ModelDeployment, quality: QualityStatus, reading: QualityInputs, now: datetime
) -> tuple[ExperimentStatus | None, list[Event]]:
    """The experiment after one interval's reading, and its Event when it concludes."""
    spec = deployment.spec.experiment
    if spec is None:
        return None, []
    current = _started(deployment, spec, now)
    if current.concluded_at is not None:
        return current, []
    if not current.challenger_version:
        # Not serving yet, or retired once promoted (rollforward.variants.retired).
        idle = (
            f"the challenger {current.challenger} serves no version (not yet, or retired"
            " after it was promoted): nothing to compare"
        )
        return current.model_copy(update={"message": idle}), []
    expired = (now - current.started_at).total_seconds() >= duration_seconds(spec.max_duration)
    current = _counting(current, spec, quality, now)
    result, champion, challenger = _judged(current, spec, quality, reading.result.ok)
    verdict = result.verdict
    if expired and not result.final:
        verdict = ExperimentVerdict.INCONCLUSIVE
    concluded = result.final or expired
    updated = current.model_copy(
        update={
            "verdict": verdict,
            "concluded_at": now if concluded else None,
            "effect": result.effect,
            "lower": result.lower,
            "upper": result.upper,
            "champion_samples": champion.trials,
            "challenger_samples": challenger.trials,
            "looks": current.looks + 1,
            "message": result.message,
        }
    )
    if not concluded:
        return updated, []
    text = f"{verdict}: {current.challenger} vs {current.champion} on {spec.metric}; "
    return updated, [Event("Normal", EventReason.EXPERIMENT_CONCLUDED, text + result.message)]


def with_quality(
    deployment: ModelDeployment, reading: QualityInputs | None, now: datetime
) -> tuple[ModelDeploymentStatus, list[Event]]:
    """Status with this reconcile's quality reading and experiment look (if one was due),
    and without quality or experiment status whose spec is gone."""
    status, events = deployment.status, list[Event]()
    if deployment.spec.quality is None:
        return status.model_copy(update={"quality": None, "experiment": None}), []
    if reading is not None:
        quality = record_quality(deployment, reading)
        experiment, events = look(deployment, quality, reading, now)
        status = status.model_copy(update={"quality": quality, "experiment": experiment})
    if deployment.spec.experiment is None and status.experiment is not None:
        status = status.model_copy(update={"experiment": None})
    return status, events
