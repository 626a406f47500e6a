"""What the demo shows while the loop runs, and the key figures it reports afterwards.

Pure functions over a ModelDeployment's status (as the API server returns it, camelCase):
`snapshot_of` reduces one status to what a human follows (phase, split, drift score against
its threshold, the Job, the canary step and its analysis); `timeline_line` renders one
snapshot as a line; `key_figures` reads the milestones off a list of snapshots. Quality
(realized from /feedback, and estimated before the labels arrive) and the A/B experiment's
look ride along in each snapshot for the report's plots; only the experiment's verdict prints
a new line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from pydantic import ValidationError

from rollforward.api import TrainingData
from rollforward.kubectl.render import training_data_text

Analysis = tuple[tuple[str, str, float | None], ...]


@dataclass(frozen=True)
class VariantQualityPoint:
    """One variant's (and version's) quality in one status: realized or estimated."""

    variant: str
    version: str
    accuracy: float | None
    lower: float | None = None
    """The estimate's interval (None for realized quality)."""
    upper: float | None = None
    labelled: int = 0
    """Labelled predictions so far (realized) or predictions in the window (estimated)."""
    outcome_rate: float | None = None


@dataclass(frozen=True)
class ExperimentPoint:
    """The A/B experiment's last look in one status."""

    verdict: str
    champion: str
    challenger: str
    champion_version: str
    challenger_version: str
    effect: float | None
    lower: float | None
    upper: float | None
    champion_samples: int
    challenger_samples: int
    concluded: bool

    @property
    def final(self) -> bool:
        return self.concluded and self.verdict != "Inconclusive"


# Snapshot fields that change every quality interval: kept for plots, never a new line.
_QUIET = frozenset({"at", "realized", "estimated", "experiment"})


@dataclass(frozen=True)
class Snapshot:
    """One observation of a ModelDeployment, `at` seconds after the story started."""

    at: float
    scenario: str
    phase: str
    split: str
    champion: str
    ready: bool
    drifted: bool
    drift_outcome: str
    drift_statistic: str
    drift_score: float | None
    drift_threshold: float | None
    p_value: float | None
    effect: float | None
    """Total variation distance from the baseline (0.25 = 25 points of label share)."""
    effect_lower: float | None
    effect_upper: float | None
    min_effect: float | None
    drift_version: str
    drift_samples: int
    breach_streak: int
    drift_checked_at: str
    job: str
    job_phase: str
    candidate: str
    step: int | None
    steps: int
    analysis: Analysis
    rollback: str
    realized: tuple[VariantQualityPoint, ...] = field(default=())
    estimated: tuple[VariantQualityPoint, ...] = field(default=())
    experiment: ExperimentPoint | None = None
    job_data: str = ""
    """The data window the Job reported its candidate was trained on, as one line."""

    def change_key(self) -> tuple[Any, ...]:
        """Everything but the time and the quality figures (the experiment's verdict is in):
        a new line is printed when this changes."""
        verdict = self.experiment.verdict if self.experiment else ""
        return (*(getattr(self, f.name) for f in fields(self) if f.name not in _QUIET), verdict)


def _condition(status: Mapping[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or []
    )


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def realized_of(status: Mapping[str, Any]) -> tuple[VariantQualityPoint, ...]:
    """status.quality's variants (realized from /feedback labels). Pure."""
    return tuple(
        VariantQualityPoint(
            variant=str(v.get("variant", "")),
            version=str(v.get("version", "")),
            accuracy=_float(v.get("accuracy")),
            labelled=_int(v.get("labelled")),
            outcome_rate=_float(v.get("outcomeRate")),
        )
        for v in (status.get("quality") or {}).get("variants") or []
    )


def estimated_of(status: Mapping[str, Any]) -> tuple[VariantQualityPoint, ...]:
    """status.estimatedQuality's variants with an accuracy estimate. Pure."""
    points = []
    for v in (status.get("estimatedQuality") or {}).get("variants") or []:
        accuracy = v.get("accuracy") or {}
        if _float(accuracy.get("value")) is None:
            continue
        points.append(
            VariantQualityPoint(
                variant=str(v.get("variant", "")),
                version=str(v.get("version", "")),
                accuracy=_float(accuracy.get("value")),
                lower=_float(accuracy.get("lower")),
                upper=_float(accuracy.get("upper")),
                labelled=_int(v.get("samples")),
            )
        )
    return tuple(points)


def experiment_of(status: Mapping[str, Any]) -> ExperimentPoint | None:
    """status.experiment's last look, or None without one. Pure."""
    e = status.get("experiment") or None
    if e is None:
        return None
    return ExperimentPoint(
        verdict=str(e.get("verdict", "")),
        champion=str(e.get("champion", "")),
        challenger=str(e.get("challenger", "")),
        champion_version=str(e.get("championVersion", "")),
        challenger_version=str(e.get("challengerVersion", "")),
        effect=_float(e.get("effect")),
        lower=_float(e.get("lower")),
        upper=_float(e.get("upper")),
        champion_samples=_int(e.get("championSamples")),
        challenger_samples=_int(e.get("challengerSamples")),
        # A Running look never concluded, whatever concludedAt says (an operator that wrote
        # status with top-level merge patches left a restarted experiment's old concludedAt).
        concluded=bool(e.get("concludedAt")) and str(e.get("verdict", "")) not in ("", "Running"),
    )


def job_data_of(retraining: Mapping[str, Any]) -> str:
    """status.retraining.trainingData as `kubectl rollforward get` shows it; empty without.
    Pure."""
    data = retraining.get("trainingData")
    if not isinstance(data, Mapping):
        return ""
    try:
        return training_data_text(TrainingData.model_validate(data))
    except ValidationError:
        return ""


def snapshot_of(
    status: Mapping[str, Any], at: float, scenario: str = "", steps: int = 0
) -> Snapshot:
    """What matters of one status, at `at` seconds. Pure."""
    drift = status.get("drift") or {}
    effect = drift.get("effect") or {}
    tracking = status.get("driftTracking") or {}
    retraining = status.get("retraining") or {}
    rollout = status.get("rollout") or None
    analysis: Analysis = ()
    if rollout is not None:
        analysis = tuple(
            (str(a.get("name", "")), str(a.get("outcome", "")), _float(a.get("value")))
            for a in rollout.get("analysis") or []
        )
    return Snapshot(
        at=round(at, 1),
        scenario=scenario,
        phase=str(status.get("phase", "")),
        split=str(status.get("split", "")),
        champion=str(status.get("champion", "")),
        ready=_condition(status, "Ready"),
        drifted=_condition(status, "Drifted"),
        drift_outcome=str(drift.get("outcome", "")),
        drift_statistic=str(drift.get("statistic", "")),
        drift_score=_float(drift.get("score")),
        drift_threshold=_float(drift.get("threshold")),
        p_value=_float(drift.get("pValue")),
        effect=_float(effect.get("estimate")),
        effect_lower=_float(effect.get("lower")),
        effect_upper=_float(effect.get("upper")),
        min_effect=_float(effect.get("minimum")),
        drift_version=str(drift.get("version", "")),
        drift_samples=int(drift.get("currentSamples", 0) or 0),
        breach_streak=int(tracking.get("breachStreak", 0) or 0),
        drift_checked_at=str(drift.get("checkedAt", "")),
        job=str(retraining.get("jobName", "")),
        job_phase=str(retraining.get("phase", "")),
        candidate=str(
            (rollout or {}).get("candidateVersion") or retraining.get("candidateVersion") or ""
        ),
        step=int(rollout["step"]) if rollout is not None and "step" in rollout else None,
        steps=steps,
        analysis=analysis,
        rollback=str(status.get("lastRollback", "")),
        realized=realized_of(status),
        estimated=estimated_of(status),
        job_data=job_data_of(retraining),
        experiment=experiment_of(status),
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if abs(value) < 0.01 else f"{value:.2f}"


def drift_text(s: Snapshot) -> str:
    if not s.drift_outcome:
        return "drift: not checked yet"
    if s.drift_outcome == "Inconclusive":
        # The operator keeps the last conclusive score; it says nothing about this window.
        return f"drift Inconclusive (n={s.drift_samples}, streak {s.breach_streak})" + (
            " DRIFTED" if s.drifted else ""
        )
    # The sign compares the score with the threshold; the verdict also weighs the corrected
    # p-value and the effect, so a score above the threshold can still be NoDrift.
    score = s.drift_statistic
    if s.drift_score is not None and s.drift_threshold is not None:
        comparison = ">" if s.drift_score > s.drift_threshold else "<="
        score += f" {_number(s.drift_score)} {comparison} {_number(s.drift_threshold)}"
    elif s.drift_score is not None:
        score += f" {_number(s.drift_score)}"
    flag = " DRIFTED" if s.drifted else ""
    return (
        f"drift {s.drift_outcome} ({score}, p={_number(s.p_value)}{effect_text(s)},"
        f" n={s.drift_samples}, streak {s.breach_streak}){flag}"
    )


def _points(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}"


def effect_text(s: Snapshot) -> str:
    """', TVD 25.0 pt [21.1-28.9] >= 3.0': the effect, its interval and minEffect (or '')."""
    if s.effect is None:
        return ""
    sign = "vs"
    if s.effect_lower is not None and s.min_effect is not None:
        sign = ">=" if s.effect_lower >= s.min_effect else "<"
    return (
        f", TVD {_points(s.effect)} pt [{_points(s.effect_lower)}-{_points(s.effect_upper)}]"
        f" {sign} {_points(s.min_effect)}"
    )


def timeline_line(s: Snapshot) -> str:
    """One readable line: time, scenario, phase, split, drift, Job, canary. Pure."""
    parts = [f"{s.at:7.1f}s", f"[{s.scenario or '-':<13}]", f"{s.phase:<10}", f"{s.split:<27}"]
    parts.append(drift_text(s))
    if s.job:
        parts.append(f"| job {s.job} {s.job_phase}" + (f" -> {s.candidate}" if s.candidate else ""))
        if s.job_data:
            parts.append(f"(trained on {s.job_data})")
    if s.step is not None:
        parts.append(f"| canary step {s.step + 1}/{s.steps or '?'}")
        if s.analysis:
            parts.append(
                "analysis "
                + ", ".join(f"{name}={outcome}({_number(v)})" for name, outcome, v in s.analysis)
            )
    if s.phase == "RolledBack" and s.rollback:
        parts.append(f"| rolled back: {s.rollback}")
    if s.experiment is not None:
        parts.append(f"| experiment {experiment_text(s.experiment)}")
    return "  ".join(parts)


def experiment_text(e: ExperimentPoint) -> str:
    """'NoDifference upsell:v1-gbm vs upsell:v1, effect +0.4 pt [-6.1, +6.9] (n 412/3790)'."""
    versions = f"{e.challenger_version or e.challenger} vs {e.champion_version or e.champion}"
    if e.effect is None:
        return f"{e.verdict} {versions} (n {e.challenger_samples}/{e.champion_samples})"
    return (
        f"{e.verdict} {versions}, effect {100 * e.effect:+.1f} pt "
        f"[{100 * (e.lower or 0.0):+.1f}, {100 * (e.upper or 0.0):+.1f}] "
        f"(n {e.challenger_samples}/{e.champion_samples})"
    )


def verdicts(snapshots: Sequence[Snapshot]) -> list[tuple[float, ExperimentPoint]]:
    """Each experiment's conclusion (first seen), in order: one per pair of versions. Pure."""
    seen: dict[tuple[str, str], tuple[float, ExperimentPoint]] = {}
    for s in snapshots:
        e = s.experiment
        if e is not None and e.concluded:
            seen.setdefault((e.champion_version, e.challenger_version), (s.at, e))
    return sorted(seen.values(), key=lambda pair: pair[0])


@dataclass(frozen=True)
class KeyFigures:
    """Seconds after the story's start at which each milestone was first seen (None: never)."""

    drift_onset: float | None
    detected: float | None
    job_started: float | None
    canary_started: float | None
    promoted: float | None
    rolled_back: float | None
    drift_cleared: float | None
    champion_before: str
    champion_after: str
    candidate: str

    def since_onset(self, milestone: float | None) -> float | None:
        if milestone is None or self.drift_onset is None:
            return None
        return round(milestone - self.drift_onset, 1)


def _first(snapshots: Sequence[Snapshot], after: float | None, test: Any) -> Snapshot | None:
    if after is None:
        return None
    return next((s for s in snapshots if s.at >= after and test(s)), None)


def same_version(s: Snapshot, bento_tag: str) -> bool:
    """Whether the drift report was computed for `bento_tag` (it may name the version only)."""
    return bool(s.drift_version) and s.drift_version in (bento_tag, bento_tag.partition(":")[2])


def key_figures(snapshots: Sequence[Snapshot], drift_onset: float | None) -> KeyFigures:
    """The milestones of one story, read off its snapshots. Pure."""
    before = next((s.champion for s in snapshots if s.champion), "")
    detected = _first(snapshots, drift_onset, lambda s: s.drifted)
    job = _first(snapshots, drift_onset, lambda s: bool(s.job))
    # The phase may say Degraded while the candidate starts: the rollout itself marks the canary.
    canary = _first(snapshots, drift_onset, lambda s: s.step is not None)
    candidate = next((s.candidate for s in reversed(snapshots) if s.candidate), "")
    promoted = _first(
        snapshots, drift_onset, lambda s: s.champion not in ("", before) and s.phase == "Stable"
    )
    rolled_back = _first(snapshots, drift_onset, lambda s: s.phase == "RolledBack")
    after = promoted.champion if promoted else before
    cleared = _first(
        snapshots,
        promoted.at if promoted else None,
        lambda s: not s.drifted and s.drift_outcome == "NoDrift" and same_version(s, after),
    )

    def at(snapshot: Snapshot | None) -> float | None:
        return snapshot.at if snapshot else None

    return KeyFigures(
        drift_onset=drift_onset,
        detected=at(detected),
        job_started=at(job),
        canary_started=at(canary),
        promoted=at(promoted),
        rolled_back=at(rolled_back),
        drift_cleared=at(cleared),
        champion_before=before,
        champion_after=snapshots[-1].champion if snapshots else "",
        candidate=candidate,
    )


@dataclass(frozen=True)
class PodTable:
    """`kubectl get pods -o wide` at one milestone of the story."""

    milestone: str
    at: float
    text: str


def milestone_of(s: Snapshot, champion_before: str) -> str | None:
    """The milestone a snapshot shows, the latest one first; None before the champion serves.
    Pure."""
    if s.phase == "RolledBack":
        return "rolled back"
    if s.phase == "Stable" and s.champion not in ("", champion_before):
        return "promoted"
    if s.step is not None:
        return "canary"
    if s.job:
        return "retraining Job"
    if s.drifted:
        return "drift detected"
    if s.ready and s.scenario == "baseline":
        return "baseline"
    return None
