"""Text views of ModelDeployments: pure functions from API models (and a clock value) to str.

Nothing here reads the cluster or the time; the caller passes `now`, so the same object
always renders the same text (which is what the snapshot tests rely on).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rollforward.api import (
    BlastRadius,
    DriftCheckReport,
    MetricEstimate,
    ModelDeployment,
    QualityEstimation,
    RetrainingStatus,
    RolloutStatus,
    TrainingData,
)
from rollforward.kubectl.style import Style, visible_width
from rollforward.lifecycle.challenger import TRIGGER as EXPERIMENT_TRIGGER

BAR_CELLS = 20
"""Width of one histogram bar; 20 cells make one cell 5 percentage points."""

Painter = Callable[[int, int, str, str], str]
"""(row, column, cell text, padded cell) -> what to print; lets colour ignore padding."""


# --- small formatting helpers -----------------------------------------------------------------


def age(then: datetime | None, now: datetime) -> str:
    """kubectl-style age: 45s, 12m, 3h, 2d (and "-" for never)."""
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def timestamp(then: datetime | None) -> str:
    return "-" if then is None else then.strftime("%Y-%m-%d %H:%M")


def took(start: datetime, end: datetime | None) -> str:
    if end is None:
        return "-"
    delta = end - start
    return age(start, start + max(delta, timedelta(0)))


def number(value: float | None) -> str:
    """Four significant digits: enough to compare a score with its threshold."""
    return "-" if value is None else f"{value:.4g}"


def percent(share: float) -> str:
    return f"{100 * share:5.1f}%"


def bar(share: float, cells: int = BAR_CELLS) -> str:
    filled = max(0, min(cells, round(share * cells)))
    return "█" * filled + "░" * (cells - filled)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    painter: Painter | None = None,
    indent: str = "  ",
) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        for column, cell in enumerate(row):
            widths[column] = max(widths[column], visible_width(cell))
    last = len(headers) - 1

    def line(row: int, cells: Sequence[str]) -> str:
        parts = []
        for column, cell in enumerate(cells):
            padded = cell if column == last else cell + " " * (widths[column] - visible_width(cell))
            parts.append(painter(row, column, cell, padded) if row >= 0 and painter else padded)
        return (indent + "  ".join(parts)).rstrip()

    return [line(-1, headers), *(line(index, cells) for index, cells in enumerate(rows))]


def _condition(md: ModelDeployment, type_: str) -> Any:
    return next((c for c in md.status.conditions if c.type == type_), None)


def _creation(md: ModelDeployment) -> datetime | None:
    raw = (md.metadata.model_extra or {}).get("creationTimestamp")
    if isinstance(raw, datetime):
        return raw
    return datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else None


# --- get --------------------------------------------------------------------------------------


def render_get(md: ModelDeployment, now: datetime, style: Style) -> str:
    """The whole state of one ModelDeployment, in the order a person asks about it."""
    # outcomes uses this module's table helpers, so it is imported here, not at the top.
    from rollforward.kubectl.outcomes import render_outcomes

    sections = [
        _summary(md, style),
        _variants(md, style),
        _conditions(md, now, style),
        _drift(md.status.drift, md, now, style),
        _estimated_quality(md.status.estimated_quality, now, style),
        render_outcomes(md, now, style),
        _rollout(md.status.rollout, md, now, style),
        _last_canary(md, now),
        _retraining(md.status.retraining, now, style),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _summary(md: ModelDeployment, style: Style) -> str:
    status = md.status
    generation = md.metadata.generation or 0
    observed = f"generation {status.observed_generation} of {generation}"
    if status.observed_generation < generation:
        observed = style.busy(f"{observed} (the operator has not caught up yet)")
    paused = md.metadata.annotations.get("rollforward.io/paused") == "true"
    rows: list[tuple[str, str]] = [
        ("Name", style.bold(md.metadata.name)),
        ("Namespace", md.metadata.namespace),
        ("Model", md.spec.model),
        ("Phase", style.phase(status.phase.value) + (style.busy("  (paused)") if paused else "")),
        ("Champion", status.champion or "-"),
        ("Challenger", status.challenger or "-"),
        ("Split", status.split or "-"),
        ("Drift", status.drift_score or "-"),
        ("Observed", observed),
    ]
    if status.last_rollback:
        rows.append(("Rollback", style.bad(style.clip(status.last_rollback))))
    return "\n".join(f"{key + ':':<12}{value}" for key, value in rows)


def _variants(md: ModelDeployment, style: Style) -> str:
    if not md.status.variants:
        return ""
    rows = [
        [v.name, v.role, v.version, f"{v.weight}%", f"{v.ready_replicas}/{v.replicas}"]
        for v in md.status.variants
    ]

    def paint(_row: int, column: int, cell: str, padded: str) -> str:
        if column == 4:
            ready, _, wanted = cell.partition("/")
            return style.good(padded) if ready == wanted else style.busy(padded)
        return padded

    lines = table(["NAME", "ROLE", "VERSION", "WEIGHT", "READY"], rows, paint)
    return "\n".join([style.bold("Variants"), *lines])


def _conditions(md: ModelDeployment, now: datetime, style: Style) -> str:
    if not md.status.conditions:
        return ""
    conditions = md.status.conditions
    rows = [
        [c.type, c.status, c.reason, age(c.last_transition_time, now), style.clip(c.message)]
        for c in conditions
    ]

    def paint(row: int, column: int, cell: str, padded: str) -> str:
        return style.condition(conditions[row].type, cell, padded) if column == 1 else padded

    lines = table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows, paint)
    return "\n".join([style.bold("Conditions"), *lines])


def _largest_shift(report: DriftCheckReport) -> str | None:
    """The label contributing most to the chi-square distance, i.e. the one to look at."""

    def contribution(label: Any) -> float:
        base = max(label.baseline, 1e-9)
        return float((label.current - label.baseline) ** 2 / base)

    if not report.labels:
        return None
    top = max(report.labels, key=contribution)
    return str(top.label) if contribution(top) > 0 else None


def _comparison(report: DriftCheckReport) -> str:
    """The score against what it was compared with, in the terms of its statistic."""
    if report.p_value is not None:
        text = f"{report.statistic} = {number(report.score)}   p = {number(report.p_value)}"
        if report.threshold is not None:
            sign = "<" if report.p_value < report.threshold else "≥"
            text += f" {sign} significance {number(report.threshold)}"
    elif report.score is None:
        text = f"{report.statistic}: no score ({report.outcome.value})"
    else:
        text = f"{report.statistic} = {number(report.score)}"
        if report.threshold is not None and report.score is not None:
            sign = ">" if report.score > report.threshold else "≤"
            text += f" {sign} threshold {number(report.threshold)}"
    if report.noise_floor is not None:
        text += f"   (noise floor {number(report.noise_floor)})"
    return text


def points(share: float | None) -> str:
    """A share difference in percentage points: 0.042 -> '4.2'."""
    return "-" if share is None else f"{100 * share:.1f}"


def effect_line(report: DriftCheckReport) -> str | None:
    """The effect size against minEffect, in points of label share."""
    effect = report.effect
    if effect is None:
        return None
    sign = "≥" if effect.lower >= effect.minimum else "<"
    return (
        f"TVD {points(effect.estimate)} pt ({100 * effect.confidence:g}% CI"
        f" {points(effect.lower)}-{points(effect.upper)} pt), lower bound {sign} minEffect"
        f" {points(effect.minimum)} pt"
    )


def _false_episodes(report: DriftCheckReport, md: ModelDeployment) -> str | None:
    days = report.false_episode_days
    if days is None:
        return None
    drift = md.spec.drift
    when = "never (< 1 per million years)" if days >= 365e6 else f"~1 per {_days(days)}"
    return (
        f"false episodes on noise alone {when} ({drift.window} window every"
        f" {drift.interval}, {drift.consecutive_breaches} in a row)"
    )


def _days(days: float) -> str:
    if days >= 3650:
        return f"{days / 365:.0f} years"
    if days >= 2:
        return f"{days:.0f} days"
    return f"{24 * days:.1f} hours"


def _samples(report: DriftCheckReport) -> str:
    current = f"current n = {report.current_samples}"
    if report.baseline_samples is None:
        return f"{current}   baseline: {report.baseline} distribution (no window)"
    return f"{current}   baseline m = {report.baseline_samples}"


def histogram(report: DriftCheckReport, style: Style) -> list[str]:
    """Baseline and current share of each predicted label, side by side."""
    if not report.labels:
        return []
    width = max(len("LABEL"), *(len(label.label) for label in report.labels))
    top = _largest_shift(report)
    lines = [
        f"  {'LABEL':<{width}}  {'BASELINE':<{BAR_CELLS + 7}}  {'CURRENT':<{BAR_CELLS + 7}}  CHANGE"
    ]
    for label in report.labels:
        change = f"{100 * (label.current - label.baseline):+.1f} pt"
        marker = "  ◀ largest shift" if label.label == top else ""
        lines.append(
            f"  {label.label:<{width}}  {style.dim(bar(label.baseline))} {percent(label.baseline)}"
            f"  {style.bold(bar(label.current))} {percent(label.current)}"
            f"  {change}{style.busy(marker)}"
        )
    return lines


def _segment_effect(effect: float | None, lower: float | None) -> str:
    if effect is None:
        return "-"
    return f"{points(effect)} ({points(lower)})"


def _segments(report: DriftCheckReport, style: Style) -> list[str]:
    if not report.segments:
        return []
    rows = [
        [
            s.segment,
            s.outcome.value,
            number(s.score),
            number(s.p_value),
            number(s.adjusted_p_value),
            _segment_effect(s.effect, s.effect_lower),
            str(s.current_samples),
        ]
        for s in report.segments
    ]

    def paint(_row: int, column: int, cell: str, padded: str) -> str:
        return style.outcome(cell, padded) if column == 1 else padded

    headers = ["SEGMENT", "OUTCOME", "SCORE", "P", "HOLM P", "TVD PT (LOW)", "N"]
    return [
        "  Segments (p-values Holm-adjusted across segments):",
        *table(headers, rows, paint, "    "),
    ]


def _drift(
    report: DriftCheckReport | None, md: ModelDeployment, now: datetime, style: Style
) -> str:
    if report is None:
        return f"{style.bold('Drift')}  no check yet"
    head = (
        f"{style.bold('Drift')}  {style.outcome(report.outcome.value)}"
        f" ({report.statistic} on {report.version or md.status.champion or '-'},"
        f" window {report.window}, baseline {report.baseline},"
        f" checked {age(report.checked_at, now)} ago)"
    )
    tracking = md.status.drift_tracking
    lines = [head, f"  score     {_comparison(report)}"]
    effect = effect_line(report)
    if effect is not None:
        lines.append(f"  effect    {effect}")
    lines.append(f"  samples   {_samples(report)}")
    episodes = _false_episodes(report, md)
    if episodes is not None:
        lines.append(f"  alarms    {episodes}")
    if report.reason:
        lines.append(f"  reason    {style.clip(report.reason)}")
    if tracking.drifted:
        since = f" {age(tracking.drifted_since, now)} ago" if tracking.drifted_since else ""
        lines.append(
            f"  {style.bad('Drifted')}{since}, after"
            f" {md.spec.drift.consecutive_breaches} breaching checks in a row (hysteresis)"
        )
    lines.extend(histogram(report, style))
    lines.extend(_segments(report, style))
    return "\n".join(lines)


def _estimate(value: MetricEstimate | None) -> str:
    if value is None:
        return "-"
    return f"{100 * value.value:.1f}% ({100 * value.lower:.1f}-{100 * value.upper:.1f})"


def _estimated_quality(estimation: QualityEstimation | None, now: datetime, style: Style) -> str:
    """Expected quality per variant; the caveat is printed because it is the whole point."""
    if estimation is None:
        return ""
    head = (
        f"{style.bold('Estimated quality')}  from calibrated scores, before labels arrive"
        f" (window {estimation.window}, {age(estimation.estimated_at, now)} ago;"
        " holds under covariate shift, not concept drift)"
    )
    if estimation.reason:
        return "\n".join([head, f"  {style.clip(estimation.reason)}"])
    rows = [
        [
            v.variant,
            v.version,
            str(v.samples),
            _estimate(v.accuracy),
            _estimate(v.precision),
            _estimate(v.recall) if v.accuracy is not None else style.clip(v.reason),
        ]
        for v in estimation.variants
    ]
    headers = ["VARIANT", "VERSION", "N", "ACCURACY (95%)", "PRECISION", "RECALL"]
    return "\n".join([head, *table(headers, rows)])


def _rollout(
    rollout: RolloutStatus | None, md: ModelDeployment, now: datetime, style: Style
) -> str:
    if rollout is None:
        return ""
    steps = md.spec.rollout.steps
    step_text = f"step {rollout.step + 1} of {len(steps)}"
    if rollout.step < len(steps):
        step = steps[rollout.step]
        step_text += f" ({step.weight}% of traffic, pause {step.pause})"
    from_experiment = any(
        (e.version, e.trigger_id, e.trigger)
        == (rollout.candidate_version, rollout.trigger_id, EXPERIMENT_TRIGGER)
        for e in md.status.history
    )
    origin = " (the experiment's challenger)" if from_experiment else ""
    head = (
        f"{style.bold('Canary')}  candidate {rollout.candidate_version}{origin}, {step_text},"
        f" started {age(rollout.step_started_at, now)} ago"
    )
    lines = [head]
    if rollout.awaiting_approval:
        lines.append(
            f"  {style.busy('awaiting approval')}: the canary passed; promote with"
            f" `kubectl rollforward approve {md.metadata.name}`"
        )
    if rollout.held_reason:
        lines.append(f"  {style.busy('held')}: {style.clip(rollout.held_reason)}")
    if rollout.promoting:
        lines.append(
            f"  {style.busy('promoting')}: the champion Deployment is rolling to the candidate"
        )
    if rollout.inconclusive_count:
        lines.append(
            f"  inconclusive {rollout.inconclusive_count} time(s) in a row"
            f" (limit {md.spec.rollout.inconclusive_limit},"
            f" then {md.spec.rollout.on_inconclusive.value})"
        )
    lines.append(f"  blast radius: {blast_radius(rollout.blast_radius)}")
    if rollout.analysis:
        rows = [
            [a.name, a.outcome, number(a.value), style.clip(a.message)] for a in rollout.analysis
        ]

        def paint(_row: int, column: int, cell: str, padded: str) -> str:
            return style.outcome(cell, padded) if column == 1 else padded

        lines.extend(table(["ANALYSIS", "OUTCOME", "VALUE", "MESSAGE"], rows, paint))
    else:
        lines.append("  no analysis at this step yet")
    return "\n".join(lines)


def training_data_text(data: TrainingData) -> str:
    """One line naming the data window a candidate was trained on. Pure."""
    text = data.source
    if data.start is not None and data.end is not None:
        text += f" {data.start:%Y-%m-%d %H:%M:%S} to {data.end:%Y-%m-%d %H:%M:%S} UTC"
    if data.source == "prediction-log":
        text += f": {data.labelled} labelled of {data.predictions} predictions"
    else:
        text += f": {data.labelled} rows"
    if data.drift_began_at is not None:
        text += " (from the drift onset)"
    return text


def _retraining(job: RetrainingStatus | None, now: datetime, style: Style) -> str:
    if job is None:
        return ""
    when = f"started {age(job.started_at, now)} ago"
    if job.finished_at is not None:
        when += f", finished {age(job.finished_at, now)} ago"
    lines = [
        f"{style.bold('Retraining')}  Job {job.job_name} {style.outcome(job.phase.value)}"
        f" (trigger {job.trigger}, attempt {job.attempt}, {when})"
    ]
    if job.candidate_version:
        lines.append(f"  candidate {job.candidate_version}")
    if job.training_data is not None:
        lines.append(f"  trained on {training_data_text(job.training_data)}")
    if job.next_attempt_at is not None:
        lines.append(f"  next attempt in {age(now, job.next_attempt_at)}")
    if job.message:
        lines.append(f"  {style.clip(job.message)}")
    return "\n".join(lines)


# --- list -------------------------------------------------------------------------------------


def render_list(
    deployments: Sequence[ModelDeployment], now: datetime, style: Style, all_namespaces: bool
) -> str:
    if not deployments:
        return "No ModelDeployments found.\n"
    rows = []
    for md in deployments:
        ready = _condition(md, "Ready")
        row = [
            md.metadata.name,
            md.status.phase.value,
            md.status.champion or "-",
            md.status.challenger or "-",
            md.status.split or "-",
            md.status.drift_score or "-",
            ready.status if ready else "-",
            age(_creation(md), now),
        ]
        rows.append([md.metadata.namespace, *row] if all_namespaces else row)
    headers = ["NAME", "PHASE", "CHAMPION", "CHALLENGER", "SPLIT", "DRIFT", "READY", "AGE"]
    if all_namespaces:
        headers = ["NAMESPACE", *headers]
    shift = 1 if all_namespaces else 0

    def paint(_row: int, column: int, cell: str, padded: str) -> str:
        if column == 1 + shift:
            return style.phase(cell, padded)
        if column == 6 + shift:
            return style.condition("Ready", cell, padded)
        return padded

    return "\n".join(table(headers, rows, paint, indent="")) + "\n"


def blast_radius(radius: BlastRadius, ending: str = "the end") -> str:
    """What a canary cost users: requests, failures, first failure to the end."""
    text = f"candidate served {radius.requests} requests, {radius.failed} failed"
    if radius.first_failure_at is not None and radius.ended_at is not None:
        seconds = max(0.0, (radius.ended_at - radius.first_failure_at).total_seconds())
        text += f"; {seconds:.0f}s from the first failure seen to {ending}"
    elif radius.first_failure_at is not None:
        text += f"; first failure seen at {radius.first_failure_at.strftime('%H:%M:%S')}"
    return text


def _last_canary(md: ModelDeployment, now: datetime) -> str:
    """The blast radius of the latest finished canary, while no canary runs."""
    if md.status.rollout is not None:
        return ""
    entry = next((e for e in reversed(md.status.history) if e.blast_radius is not None), None)
    if entry is None or entry.blast_radius is None:
        return ""
    ending = "the rollback" if entry.outcome == "RolledBack" else "the promotion"
    return (
        f"Last canary  {entry.version} {entry.outcome} {age(entry.finished_at, now)} ago\n"
        f"  blast radius: {blast_radius(entry.blast_radius, ending)}"
    )


# --- history ----------------------------------------------------------------------------------


def render_history(md: ModelDeployment, style: Style) -> str:
    entries = md.status.history
    if not entries:
        return f"No history yet for {md.metadata.name}.\n"
    rows = [
        [
            (
                "* "
                if e.version == md.status.champion and e.outcome in {"Serving", "Promoted"}
                else "  "
            )
            + e.version,
            e.trigger,
            e.outcome,
            timestamp(e.started_at),
            took(e.started_at, e.finished_at),
            " ".join(f"{k}={number(v)}" for k, v in sorted(e.metrics.items())) or "-",
            style.clip(e.message),
        ]
        for e in entries
    ]

    def paint(_row: int, column: int, cell: str, padded: str) -> str:
        return style.outcome(cell, padded) if column == 2 else padded

    headers = ["  VERSION", "TRIGGER", "OUTCOME", "STARTED (UTC)", "TOOK", "METRICS", "MESSAGE"]
    lines = table(headers, rows, paint, indent="")
    return "\n".join([*lines, "", "* serving as champion"]) + "\n"


# --- explain ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """One thing the operator decided or observed, with its reason."""

    at: datetime
    source: str
    reason: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True)
class EventRecord:
    """The parts of a core/v1 Event that explain uses."""

    at: datetime
    type: str
    reason: str
    message: str
    count: int = 1


def event_record(raw: dict[str, Any]) -> EventRecord | None:
    """A core/v1 Event as the API returns it (camelCase dict); None when it has no time."""
    stamp = raw.get("lastTimestamp") or raw.get("eventTime") or raw.get("firstTimestamp")
    if not stamp:
        stamp = (raw.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return None
    at = (
        stamp
        if isinstance(stamp, datetime)
        else datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    )
    return EventRecord(
        at=at,
        type=str(raw.get("type") or "Normal"),
        reason=str(raw.get("reason") or ""),
        message=str(raw.get("message") or ""),
        count=int(raw.get("count") or 1),
    )


def _retraining_decisions(job: RetrainingStatus) -> list[Decision]:
    started = Decision(
        job.started_at,
        "retraining",
        "JobStarted",
        f"Job {job.job_name} for trigger {job.trigger} (attempt {job.attempt})",
    )
    if job.finished_at is None:
        return [started]
    return [started, Decision(job.finished_at, "retraining", f"Job{job.phase.value}", job.message)]


def _rollout_decision(r: RolloutStatus) -> Decision:
    verdicts = ", ".join(f"{a.name} {a.outcome}" for a in r.analysis) or "no analysis yet"
    return Decision(
        r.step_started_at, "canary", f"Step{r.step + 1}", f"{r.candidate_version}: {verdicts}"
    )


def decisions(md: ModelDeployment, events: Sequence[EventRecord]) -> list[Decision]:
    """Everything with a time and a reason, newest first: conditions, retraining, rollout,
    history and Events. Status says where things stand; Events say how they got there."""
    status = md.status
    found = [
        Decision(c.last_transition_time, f"condition {c.type}={c.status}", c.reason, c.message)
        for c in status.conditions
    ]
    if status.drift is not None:
        d = status.drift
        found.append(
            Decision(d.checked_at, "drift check", d.outcome.value, d.reason or _comparison(d))
        )
    if status.retraining is not None:
        found += _retraining_decisions(status.retraining)
    if status.rollout is not None:
        found.append(_rollout_decision(status.rollout))
    for entry in status.history:
        if entry.finished_at is not None:
            found.append(
                Decision(
                    entry.finished_at,
                    "history",
                    entry.outcome,
                    f"{entry.version}: {entry.message}".rstrip(": "),
                )
            )
    for event in events:
        times = f" (x{event.count})" if event.count > 1 else ""
        found.append(Decision(event.at, f"event {event.type}", event.reason, event.message + times))
    return sorted(found, key=lambda d: d.at, reverse=True)


_PHASE_MEANING = {
    "Pending": "its children are being created",
    "Stable": "the champion serves, no drift, nothing under way",
    "Degraded": "a variant or the router has no available replica",
    "Drifted": "drift was detected and no retraining can start yet",
    "Retraining": "a retraining Job is running",
    "Canary": "a retrained candidate is going through the canary steps",
    "AwaitingApproval": "the canary passed and approval is Manual",
    "Paused": "the rollout is paused",
    "Promoting": "the champion is rolling to the candidate's version",
    "RolledBack": "the last candidate was rolled back; the champion serves",
}


def next_step(md: ModelDeployment) -> str:
    """What a person can do now, in terms of this CLI's commands."""
    name = md.metadata.name
    phase = md.status.phase.value
    if md.metadata.annotations.get("rollforward.io/paused") == "true":
        return f"resume with `kubectl rollforward resume {name}`"
    if phase == "AwaitingApproval":
        return f"promote with `kubectl rollforward approve {name}`, or `rollback {name}`"
    if phase in {"Canary", "Paused", "Promoting"}:
        return f"watch with `kubectl rollforward get {name} --watch`; abort with `rollback {name}`"
    if phase == "Drifted":
        return f"retrain now with `kubectl rollforward retrain {name}`"
    if phase == "Retraining":
        return f"follow the Job with `kubectl rollforward get {name} --watch`"
    return f"see the versions with `kubectl rollforward history {name}`"


_BAD_WHEN_FALSE = {"Ready", "MonitoringAvailable"}
_RETRAINING_SETBACKS = {"JobFailed", "CandidateRejected", "RetrainLimited"}


def _explains_phase(type_: str, status: str, reason: str) -> bool:
    """Whether a condition is news worth a "because": something is wrong or under way."""
    if status == "Unknown" or not reason:
        return False
    if type_ in _BAD_WHEN_FALSE:
        return status == "False"
    if type_ == "Retraining" and reason in _RETRAINING_SETBACKS:
        return True
    return status == "True"


def render_explain(
    md: ModelDeployment,
    events: Sequence[EventRecord],
    now: datetime,
    style: Style,
    limit: int = 10,
    events_note: str = "",
) -> str:
    phase = md.status.phase.value
    meaning = _PHASE_MEANING.get(phase, phase)
    lines = [f"{style.bold(md.metadata.name)} is {style.phase(phase)}: {meaning}."]
    for condition in md.status.conditions:
        if _explains_phase(condition.type, condition.status, condition.reason):
            lines.append(
                f"  because {condition.type}={style.condition(condition.type, condition.status)}"
                f" {condition.reason}: {style.clip(condition.message)}".rstrip(": ")
            )
    if md.status.last_rollback:
        lines.append(f"  last rollback: {style.clip(md.status.last_rollback)}")
    lines.append(f"  next: {next_step(md)}")
    found = decisions(md, events)[:limit]
    lines += ["", style.bold(f"Last {len(found)} decisions, newest first")]
    rows = [[age(d.at, now), d.source, d.reason, style.clip(d.message)] for d in found]
    lines.extend(table(["AGE", "FROM", "REASON", "MESSAGE"], rows))
    if events_note:
        lines += ["", style.busy(events_note)]
    return "\n".join(lines) + "\n"
