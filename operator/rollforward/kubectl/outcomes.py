"""`kubectl rollforward get`: realized quality per variant and version, and the experiment."""

from __future__ import annotations

from datetime import datetime

from rollforward.api import ExperimentStatus, ModelDeployment, QualityStatus
from rollforward.kubectl.render import age, table
from rollforward.kubectl.style import Style


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _delay(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def render_quality(quality: QualityStatus | None, now: datetime, style: Style) -> str:
    if quality is None:
        return ""
    head = f"{style.bold('Realized quality')}  from /feedback since {age(quality.since, now)} ago"
    if quality.missed_intervals:
        head += f" ({quality.missed_intervals} intervals not counted)"
    rows = [
        [
            q.variant,
            q.version,
            str(q.labelled),
            _share(q.outcome_rate),
            _share(q.accuracy),
            _share(q.precision),
            _share(q.recall),
            _share(q.label_coverage),
            _delay(q.mean_label_delay_seconds),
        ]
        for q in quality.variants
    ]
    headers = ["VARIANT", "VERSION", "LABELLED", "OUTCOME", "ACCURACY", "PRECISION", "RECALL"]
    lines = table([*headers, "COVERAGE", "DELAY"], rows) if rows else ["  no labels yet"]
    if quality.message:
        lines.append(f"  {style.clip(quality.message)}")
    return "\n".join([head, *lines])


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.2f}"


def render_experiment(experiment: ExperimentStatus | None, now: datetime, style: Style) -> str:
    if experiment is None:
        return ""
    e = experiment
    when = f"started {age(e.started_at, now)} ago"
    if e.concluded_at is not None:
        when += f", concluded {age(e.concluded_at, now)} ago"
    lines = [
        f"{style.bold('Experiment')}  {e.challenger} ({e.challenger_version}) vs {e.champion}"
        f" ({e.champion_version}) on {e.metric}: {style.outcome(e.verdict)} ({when}, "
        f"{e.looks} looks)",
        f"  effect {_points(e.effect)} pts, {e.confidence * 100:g}% always-valid interval "
        f"[{_points(e.lower)}, {_points(e.upper)}] pts; labelled {e.challenger_samples} vs "
        f"{e.champion_samples}",
    ]
    if e.message:
        lines.append(f"  {style.clip(e.message)}")
    if e.promotion_trigger_id:
        lines.append(f"  onChallengerBetter Promote: canary started ({e.promotion_trigger_id})")
    if e.promotion_message:
        lines.append(
            f"  onChallengerBetter Promote: not promoted, {style.clip(e.promotion_message)}"
        )
    return "\n".join(lines)


def render_outcomes(md: ModelDeployment, now: datetime, style: Style) -> str:
    parts = [
        render_quality(md.status.quality, now, style),
        render_experiment(md.status.experiment, now, style),
    ]
    return "\n\n".join(p for p in parts if p)
