"""The demo's report: a short markdown story plus five PNG plots (matplotlib, Agg backend).

- `drift.png`: the drift score of every check, against its threshold (log scale), and the
  p-value against the significance level, and the effect size (TVD, with its interval)
  against minEffect, with the drift onset and milestones marked;
- `split.png`: the share of requests each variant served, per 5-second bucket of the traffic
  log (what users actually saw, not what the status claims);
- `versions.png`: which bento version served, per 5-second bucket, as a timeline;
- `quality.png`: each variant's accuracy over time, realized from the /feedback labels (as
  status.quality accumulates them) beside the estimate made before the labels arrive (status.
  estimatedQuality, with its 95% interval), and the labelled predictions so far;
- `experiment.png`: the A/B experiment's effect (challenger minus champion outcome rate) with
  its always-valid interval against +-minEffect, and where each verdict was reached.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from devenv.demo_timeline import (
    KeyFigures,
    PodTable,
    Snapshot,
    VariantQualityPoint,
    experiment_text,
    timeline_line,
    verdicts,
)
from devenv.feedback_sender import FeedbackStats
from devenv.traffic import TrafficRecord

BUCKET_SECONDS = 5.0
REPORT_PLOTS = ("drift.png", "split.png", "versions.png", "quality.png", "experiment.png")

# No display here: render to files only.
matplotlib.use("Agg")


@dataclass(frozen=True)
class StoryReport:
    """Everything one story produced, as the report needs it."""

    title: str
    outcome: str
    figures: KeyFigures
    snapshots: Sequence[Snapshot]
    records: Sequence[TrafficRecord]
    # Seconds from the story's start to the traffic driver's start (traffic log times are
    # relative to the driver).
    traffic_offset: float
    total_seconds: float
    notes: Sequence[str] = ()
    # The drift check's false-alarm level, drawn on the p-value plot.
    significance: float | None = None
    # `kubectl get pods -o wide` at each milestone (real containers on the real node).
    pod_tables: Sequence[PodTable] = ()
    # What became of the /feedback labels the traffic sent (None: no labels were sent).
    feedback: FeedbackStats | None = None
    # The experiment's minEffect, drawn on its plot.
    min_effect: float | None = None


@dataclass(frozen=True)
class Series:
    """One line over story time; NaN where there is no value (a gap in the line)."""

    times: list[float]
    values: list[float]
    lower: list[float]
    upper: list[float]


def _nan(value: float | None, scale: float = 1.0) -> float:
    return math.nan if value is None else scale * value


def quality_series(
    snapshots: Sequence[Snapshot], estimated: bool, scale: float = 100.0
) -> dict[str, Series]:
    """Per "variant version": accuracy (in points) over time, realized or estimated. Pure."""
    series: dict[str, Series] = {}
    for s in snapshots:
        points: Sequence[VariantQualityPoint] = s.estimated if estimated else s.realized
        for point in points:
            line = series.setdefault(f"{point.variant} {point.version}", Series([], [], [], []))
            line.times.append(s.at)
            line.values.append(_nan(point.accuracy, scale))
            line.lower.append(_nan(point.lower, scale))
            line.upper.append(_nan(point.upper, scale))
    return series


def labelled_series(snapshots: Sequence[Snapshot]) -> dict[str, tuple[list[float], list[int]]]:
    """Per "variant version": labelled predictions so far, over time. Pure."""
    series: dict[str, tuple[list[float], list[int]]] = {}
    for s in snapshots:
        for point in s.realized:
            times, counts = series.setdefault(f"{point.variant} {point.version}", ([], []))
            times.append(s.at)
            counts.append(point.labelled)
    return series


def experiment_series(snapshots: Sequence[Snapshot], scale: float = 100.0) -> Series:
    """The experiment's effect and interval (in points) over time, NaN before any. Pure."""
    shown = [s for s in snapshots if s.experiment is not None]
    return Series(
        [s.at for s in shown],
        [_nan(s.experiment.effect if s.experiment else None, scale) for s in shown],
        [_nan(s.experiment.lower if s.experiment else None, scale) for s in shown],
        [_nan(s.experiment.upper if s.experiment else None, scale) for s in shown],
    )


def bucketed_shares(
    records: Sequence[TrafficRecord], key: str, offset: float, bucket: float = BUCKET_SECONDS
) -> tuple[list[float], dict[str, list[float]]]:
    """Per bucket of `bucket` seconds (story time): the share of answered requests per value of
    `key` ("variant" or "version"). Pure."""
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for record in records:
        value = getattr(record, key)
        if value:
            counts[int((record.elapsed + offset) // bucket)][str(value)] += 1
    if not counts:
        return [], {}
    indexes = list(range(min(counts), max(counts) + 1))
    values = sorted({v for c in counts.values() for v in c})
    shares: dict[str, list[float]] = {v: [] for v in values}
    for index in indexes:
        total = sum(counts[index].values())
        for value in values:
            shares[value].append(counts[index][value] / total if total else 0.0)
    return [i * bucket for i in indexes], shares


@dataclass(frozen=True)
class BlastRadius:
    """What the canary's candidate cost users, from the traffic log (what users saw)."""

    served: int
    """Requests the candidate answered (or failed)."""
    failed: int
    """Of those, failed ones (5xx)."""
    first_failure: float | None
    """Story seconds of the candidate's first failed request."""
    last_failure: float | None
    """Story seconds of its last failed request: when users stopped being hurt."""
    ended: float | None
    """Story seconds at which the rollback (or promotion) was first seen in status."""

    def seconds_to_end(self) -> float | None:
        if self.first_failure is None or self.ended is None:
            return None
        return round(self.ended - self.first_failure, 1)

    def seconds_failing(self) -> float | None:
        if self.first_failure is None or self.last_failure is None:
            return None
        return round(self.last_failure - self.first_failure, 1)


def blast_radius(
    records: Sequence[TrafficRecord], offset: float, ended: float | None
) -> BlastRadius:
    """The candidate variant's requests and failures over the whole story. Pure."""
    served = [r for r in records if r.variant == "candidate"]
    failed = sorted(r.elapsed + offset for r in served if r.status >= 500)
    return BlastRadius(
        served=len(served),
        failed=len(failed),
        first_failure=failed[0] if failed else None,
        last_failure=failed[-1] if failed else None,
        ended=ended,
    )


def blast_radius_lines(radius: BlastRadius, ending: str) -> list[str]:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    return [
        "## Blast radius of the canary",
        "",
        "| candidate requests | failed | first failure to the last | first failure to "
        f"{ending} (seen in status) |",
        "|---|---|---|---|",
        f"| {radius.served} | {radius.failed} | {seconds(radius.seconds_failing())} | "
        f"{seconds(radius.seconds_to_end())} |",
        "",
    ]


def _milestones(ax: Axes, figures: KeyFigures) -> None:
    marks = [
        ("drift onset", figures.drift_onset, "tab:red"),
        ("detected", figures.detected, "tab:orange"),
        ("job", figures.job_started, "tab:purple"),
        ("canary", figures.canary_started, "tab:blue"),
        ("promoted", figures.promoted, "tab:green"),
        ("rolled back", figures.rolled_back, "black"),
    ]
    for label, at, color in marks:
        if at is not None:
            ax.axvline(at, color=color, linestyle="--", linewidth=1, label=label)


def plot_drift(report: StoryReport, path: Path) -> None:
    checks = {
        s.drift_checked_at: s
        for s in report.snapshots
        if s.drift_score is not None and s.drift_outcome in ("Drift", "NoDrift")
    }
    points = sorted(checks.values(), key=lambda s: s.at)
    fig, (top, bottom, effect) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    times = [s.at for s in points]
    top.plot(times, [s.drift_score for s in points], marker=".", label="drift score")
    top.plot(times, [s.drift_threshold for s in points], color="grey", label="threshold")
    top.set_yscale("symlog")
    top.set_ylabel(points[0].drift_statistic if points else "score")
    top.set_title(f"{report.title}: predicted-label drift of the serving champion")
    _milestones(top, report.figures)
    top.legend(fontsize=7, loc="upper left")
    bottom.plot(times, [max(s.p_value or 0.0, 1e-300) for s in points], marker=".", label="p")
    if report.significance is not None:
        bottom.axhline(report.significance, color="grey", label="significance")
    bottom.set_yscale("log")
    bottom.set_ylabel("p-value")
    _milestones(bottom, report.figures)
    _plot_effect(effect, points)
    _milestones(effect, report.figures)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_effect(ax: Axes, points: Sequence[Snapshot]) -> None:
    """The effect size (TVD, in points) with its confidence band, against minEffect."""
    shown = [s for s in points if s.effect is not None]
    times = [s.at for s in shown]
    ax.plot(times, [100 * (s.effect or 0.0) for s in shown], marker=".", label="TVD")
    ax.fill_between(
        times,
        [100 * (s.effect_lower or 0.0) for s in shown],
        [100 * (s.effect_upper or 0.0) for s in shown],
        alpha=0.25,
        label="confidence interval",
    )
    minimum = next((s.min_effect for s in shown if s.min_effect is not None), None)
    if minimum is not None:
        ax.axhline(100 * minimum, color="grey", label="minEffect")
    ax.set_ylabel("effect (points)")
    ax.set_xlabel("seconds since start")
    ax.legend(fontsize=7, loc="upper left")


def _effect_at_detection(report: StoryReport) -> str:
    """The effect of the check that set Drifted, in words."""
    detected = report.figures.detected
    at = next(
        (s for s in report.snapshots if detected is not None and s.at >= detected and s.drifted),
        None,
    )
    if at is None or at.effect is None:
        return "Effect at detection: not measured."
    return (
        f"Effect at detection: total variation distance {100 * at.effect:.1f} points of"
        f" predicted-label share (interval {100 * (at.effect_lower or 0.0):.1f}-"
        f"{100 * (at.effect_upper or 0.0):.1f}), minEffect {100 * (at.min_effect or 0.0):.1f}."
    )


def plot_quality(report: StoryReport, path: Path) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for name, line in quality_series(report.snapshots, estimated=False).items():
        top.plot(line.times, line.values, label=f"realized {name}")
    for name, line in quality_series(report.snapshots, estimated=True).items():
        drawn = top.plot(line.times, line.values, linestyle="--", label=f"estimated {name}")
        top.fill_between(line.times, line.lower, line.upper, color=drawn[0].get_color(), alpha=0.15)
    top.set_ylabel("accuracy (%)")
    top.set_title(
        f"{report.title}: accuracy realized from /feedback labels vs estimated before them"
    )
    _milestones(top, report.figures)
    top.legend(fontsize=7, loc="lower left")
    for name, (times, counts) in labelled_series(report.snapshots).items():
        bottom.plot(times, counts, label=name)
    bottom.set_yscale("symlog")
    bottom.set_ylabel("labelled predictions")
    bottom.set_xlabel("seconds since start")
    _milestones(bottom, report.figures)
    bottom.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_experiment(report: StoryReport, path: Path) -> None:
    line = experiment_series(report.snapshots)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(
        line.times, line.values, marker=".", markersize=2, label="effect (challenger - champion)"
    )
    ax.fill_between(line.times, line.lower, line.upper, alpha=0.25, label="always-valid interval")
    ax.axhline(0.0, color="black", linewidth=0.8)
    if report.min_effect is not None:
        for bound in (report.min_effect, -report.min_effect):
            ax.axhline(100 * bound, color="grey", linestyle=":", label="+-minEffect")
    for at, point in verdicts(report.snapshots):
        ax.axvline(at, color="tab:green", linewidth=1.5, label=f"{point.verdict} at {at:.0f} s")
    _milestones(ax, report.figures)
    ax.set_ylabel("outcome-rate effect (points)")
    ax.set_xlabel("seconds since start")
    ax.set_title(f"{report.title}: A/B experiment (mSPRT), challenger vs champion")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def experiment_lines(report: StoryReport) -> list[str]:
    """The experiment's verdicts and the labels behind them, for the markdown."""
    lines = ["## A/B experiment and quality", ""]
    concluded = verdicts(report.snapshots)
    for at, look in concluded:
        lines.append(f"- Verdict at {at:.1f} s: **{look.verdict}**: {experiment_text(look)}.")
    if not concluded:
        last = next((s.experiment for s in reversed(report.snapshots) if s.experiment), None)
        shown = experiment_text(last) if last is not None else "no look at all"
        lines.append(f"- No verdict; the last look: {shown}.")
    if report.feedback is not None:
        f = report.feedback
        lines.append(
            f"- Feedback labels: {f.queued} queued, {f.sent} sent, {f.accepted} accepted, "
            f"{f.rejected} rejected, {f.failed} in failed requests, {f.dropped} dropped, "
            f"{f.unsent} not yet due at the end."
        )
    final = next((s for s in reversed(report.snapshots) if s.realized or s.estimated), None)
    for point in final.realized if final else ():
        lines.append(
            f"- Realized {point.variant} {point.version}: accuracy {_percent(point.accuracy)}, "
            f"outcome rate {_percent(point.outcome_rate)}, {point.labelled} labels."
        )
    for point in final.estimated if final else ():
        lines.append(
            f"- Estimated {point.variant} {point.version}: accuracy {_percent(point.accuracy)} "
            f"[{_percent(point.lower)}, {_percent(point.upper)}] over {point.labelled} predictions."
        )
    return [*lines, ""]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _stacked(report: StoryReport, key: str, path: Path, title: str) -> None:
    times, shares = bucketed_shares(report.records, key, report.traffic_offset)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    if times:
        ax.stackplot(times, *shares.values(), labels=list(shares), step="post", alpha=0.8)
    _milestones(ax, report.figures)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"share per {BUCKET_SECONDS:.0f}s")
    ax.set_xlabel("seconds since start")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _training_data_lines(report: StoryReport) -> list[str]:
    """What the retraining Job's candidate was trained on (status.retraining.trainingData)."""
    data = next((s.job_data for s in reversed(report.snapshots) if s.job_data), "")
    return [f"The retraining Job's candidate was trained on {data}.", ""] if data else []


def markdown(report: StoryReport, plots: Sequence[str]) -> str:
    f = report.figures
    answered = [r for r in report.records if r.status]
    errors = Counter(
        f"{r.status} from {r.variant or 'no variant'}" for r in answered if r.status >= 500
    )
    lines = [
        f"# {report.title}",
        "",
        f"Outcome: **{report.outcome}**. Champion {f.champion_before} -> {f.champion_after}"
        + (f" (candidate {f.candidate})" if f.candidate else "")
        + f". Total {report.total_seconds:.0f} s.",
        "",
        "| milestone | seconds after drift onset |",
        "|---|---|",
        f"| drift detected (Drifted=True) | {_seconds(f.since_onset(f.detected))} |",
        f"| retraining Job created | {_seconds(f.since_onset(f.job_started))} |",
        f"| canary started | {_seconds(f.since_onset(f.canary_started))} |",
        f"| promoted | {_seconds(f.since_onset(f.promoted))} |",
        f"| rolled back | {_seconds(f.since_onset(f.rolled_back))} |",
        f"| no drift that matters (new baseline) | {_seconds(f.since_onset(f.drift_cleared))} |",
        "",
        f"Traffic: {len(report.records)} requests from {len({r.user_id for r in report.records})} "
        f"users, {len(answered)} answered; 5xx: {dict(errors) or 'none'}.",
        "",
        _effect_at_detection(report),
        "",
        *_training_data_lines(report),
        *[f"- {note}" for note in report.notes],
        "",
        *blast_radius_lines(
            blast_radius(report.records, report.traffic_offset, f.rolled_back or f.promoted),
            "the rollback" if f.rolled_back is not None else "the promotion",
        ),
        *experiment_lines(report),
        *[f"![{name}]({name})" for name in plots],
        "",
        "## Timeline",
        "",
        "```",
        *_changed_lines(report.snapshots),
        "```",
        "",
        *_pod_table_lines(report.pod_tables),
    ]
    return "\n".join(lines)


def _pod_table_lines(tables: Sequence[PodTable]) -> list[str]:
    if not tables:
        return []
    lines = ["## Pods at each milestone", ""]
    for table in tables:
        lines += [f"{table.milestone}, at {table.at:.1f} s:", "", "```",
                  "$ kubectl get pods -o wide", table.text, "```", ""]  # fmt: skip
    return lines


def _changed_lines(snapshots: Sequence[Snapshot]) -> list[str]:
    lines, last = [], None
    for snapshot in snapshots:
        if snapshot.change_key() != last:
            lines.append(timeline_line(snapshot))
            last = snapshot.change_key()
    return lines


def write_report(report: StoryReport, directory: Path, stem: str = "") -> Path:
    """Write `<stem>report.md` and its plots into `directory`; return the markdown's path."""
    directory.mkdir(parents=True, exist_ok=True)
    plots = [f"{stem}{name}" for name in REPORT_PLOTS]
    plot_drift(report, directory / plots[0])
    _stacked(report, "variant", directory / plots[1], "traffic split (served, by variant)")
    _stacked(report, "version", directory / plots[2], "serving version timeline (by answer)")
    plot_quality(report, directory / plots[3])
    plot_experiment(report, directory / plots[4])
    path = directory / f"{stem}report.md"
    path.write_text(markdown(report, plots))
    return path
