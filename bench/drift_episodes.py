"""Bench: drift episodes per 30 days, detection delay and per-check false alarms.

Every check goes through the operator's own code: the criteria come from
`rollforward.drift.check.criteria` on a ModelDeployment whose `spec.drift` is left to the
CRD defaults (chiSquare, significance 0.01, minEffect 0.03, window 5m, interval 5m,
consecutiveBreaches 2, training baseline), each window through `evaluate_drift`, and the
verdicts through the hysteresis `next_state`, at that cadence. Only the traffic is
simulated (seeded numpy binomial/multinomial draws), so a run is reproducible; every figure
is a count over checks or simulated time, never a timing.

Sections:
1. Episodes per 30 days: stationary traffic and a diurnal wobble of the positive rate
   (30% +/- 1, 1.5, 3 points, period one day) at 5, 50 and 200 predictions/s.
2. Calibration: the expected time between false episodes (`drift.calibration`) against
   episodes counted in stationary simulations, with minEffect 0 so that false alarms are
   frequent enough to count.
3. Delay to detect a +5 and +10 point step of the positive rate, over every phase of the
   check grid and at the worst one.
4. False alarms per check for chiSquare, PSI and JS: 2 and 10 (skewed) classes, n from the
   CRD's smallest minSamples up, training and window baselines; with the test alone
   (minEffect 0) and with the default minEffect.

Run it with `make bench-drift`; it writes bench-results/drift-episodes.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rollforward.api import (
    DriftStatistic,
    DriftTracking,
    DriftVerdict,
    ModelDeployment,
    duration_seconds,
)
from rollforward.api.resource import parse_model_deployment
from rollforward.drift.calibration import mean_days_between_false_episodes
from rollforward.drift.check import criteria as deployment_criteria
from rollforward.drift.hysteresis import HysteresisPolicy, next_state
from rollforward.drift.statistics import (
    Baseline,
    BaselineCounts,
    BaselineProportions,
    DriftCriteria,
    evaluate_drift,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "modeldeployment.yaml"
DAY = 86_400
POSITIVE = 0.30
BINARY = {"positive": POSITIVE, "negative": 1.0 - POSITIVE}
SKEWED = (0.25, 0.18, 0.14, 0.11, 0.09, 0.07, 0.06, 0.04, 0.03, 0.03)
TEN_CLASS = {f"class-{i}": p for i, p in enumerate(SKEWED)}
MODELS: Mapping[str, Mapping[str, float]] = {"2 classes": BINARY, "10 classes (skewed)": TEN_CLASS}
RATES = (5, 50, 200)
WOBBLES = (0.0, 0.01, 0.015, 0.03)
STEPS = (0.05, 0.10)
SAMPLE_SIZES = (10, 30, 100, 200, 1_000, 10_000)
CRD_MIN_SAMPLES = 10
"""The smallest minSamples the CRD accepts."""
CALIBRATIONS = ((0.05, 2, "10m"), (0.05, 3, "10m"), (0.01, 2, "10m"), (0.05, 2, "5m"))
"""(significance, consecutiveBreaches, window) of the formula-against-simulation runs."""


# --- the configuration under test ----------------------------------------------------------------


@dataclass(frozen=True)
class Cadence:
    """What the operator derives from a ModelDeployment's spec.drift."""

    window: int
    interval: int
    breaches: int
    criteria: DriftCriteria
    policy: HysteresisPolicy


def default_deployment(**drift: Any) -> ModelDeployment:
    """The README example with spec.drift left to the CRD defaults (plus any overrides)."""
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["spec"]["drift"] = dict(drift)
    return parse_model_deployment(manifest)


def cadence(**drift: Any) -> Cadence:
    deployment = default_deployment(**drift)
    spec = deployment.spec.drift
    breaches = spec.consecutive_breaches
    # The same policy rollforward.drift.check.run_check builds.
    policy = HysteresisPolicy(breaches_to_drift=breaches, clean_checks_to_recover=breaches)
    return Cadence(
        window=int(duration_seconds(spec.window)),
        interval=int(duration_seconds(spec.interval)),
        breaches=breaches,
        criteria=deployment_criteria(deployment),
        policy=policy,
    )


# --- streams of binary predictions -------------------------------------------------------------


@dataclass
class Checker:
    """Runs checks over a stream and tracks the hysteresis, as the operator does."""

    setup: Cadence
    baseline: Baseline
    tracking: DriftTracking
    episodes: int = 0
    breaches: int = 0
    checks: int = 0

    def check(self, positives: int, total: int) -> bool:
        counts = {"positive": float(positives), "negative": float(total - positives)}
        verdict = evaluate_drift(counts, self.baseline, self.setup.criteria).verdict
        was = self.tracking.drifted
        self.tracking = next_state(self.tracking, verdict, self.setup.policy)
        self.checks += 1
        self.breaches += verdict is DriftVerdict.DRIFT
        self.episodes += self.tracking.drifted and not was
        return self.tracking.drifted


def new_checker(setup: Cadence) -> Checker:
    return Checker(setup, BaselineProportions(proportions=BINARY), DriftTracking())


def binary_stream(
    rng: np.random.Generator, rate: int, seconds: int, step: int, share: Callable[[Any], Any]
) -> Any:
    """Cumulative positive predictions at every multiple of `step` seconds."""
    mids = np.arange(0, seconds, step) + step / 2.0
    positives = rng.binomial(rate * step, share(mids))
    return np.concatenate([[0], np.cumsum(positives)])


@dataclass(frozen=True)
class EpisodeRun:
    rate: int
    wobble: float
    min_effect: float
    days: int
    episodes: int
    checks: int
    breaches: int


def run_episodes(rate: int, wobble: float, min_effect: float, days: int, seed: int) -> EpisodeRun:
    """A diurnal wobble of the positive rate (0 = stationary), checked at the default cadence."""
    setup = cadence(minEffect=min_effect)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * math.pi)
    step = 60
    cumulative = binary_stream(
        rng,
        rate,
        days * DAY,
        step,
        lambda t: POSITIVE + wobble * np.sin(2 * math.pi * t / DAY + phase),
    )
    checker = new_checker(setup)
    per_window = setup.window // step
    for end in range(setup.window, days * DAY + 1, setup.interval):
        index = end // step
        checker.check(int(cumulative[index] - cumulative[index - per_window]), rate * setup.window)
    return EpisodeRun(
        rate, wobble, min_effect, days, checker.episodes, checker.checks, checker.breaches
    )


@dataclass(frozen=True)
class CalibrationRun:
    significance: float
    breaches: int
    window: int
    interval: int
    days: int
    episodes: int
    predicted_days: float


def run_calibration(
    significance: float, breaches: int, window: str, days: int, seed: int
) -> CalibrationRun:
    """Stationary traffic at 5/s with the test alone (minEffect 0): false episodes only."""
    setup = cadence(
        minEffect=0.0, significance=significance, consecutiveBreaches=breaches, window=window
    )
    rng = np.random.default_rng(seed)
    rate, step = 5, 60
    cumulative = binary_stream(rng, rate, days * DAY, step, lambda t: np.full_like(t, POSITIVE))
    checker = new_checker(setup)
    per_window = setup.window // step
    for end in range(setup.window, days * DAY + 1, setup.interval):
        index = end // step
        checker.check(int(cumulative[index] - cumulative[index - per_window]), rate * setup.window)
    predicted = mean_days_between_false_episodes(
        significance, setup.window, setup.interval, breaches
    )
    return CalibrationRun(
        significance, breaches, setup.window, setup.interval, days, checker.episodes, predicted
    )


@dataclass(frozen=True)
class StepRun:
    rate: int
    jump: float
    worst_phase: bool
    """True: every run steps just before a check (it sees 10 s of the step); False: the
    runs cycle through every 10-s phase of the check grid."""
    false_before: int
    delays: tuple[float, ...]
    """Seconds from the step to Drifted=True (inf when not detected in the horizon)."""
    after_first_check: tuple[float, ...]
    """Seconds from the first check after the step to Drifted=True."""


def _step_at(at: int, jump: float) -> Callable[[Any], Any]:
    return lambda t: np.where(t < at, POSITIVE, POSITIVE + jump)


def run_steps(rate: int, jump: float, runs: int, worst_phase: bool, seed: int) -> StepRun:
    """The positive rate steps up by `jump`, at every phase of the check grid in turn."""
    setup = cadence()
    rng = np.random.default_rng(seed)
    step, warmup, horizon = 10, 3600, 3 * 3600
    slots = setup.interval // step
    delays, after_first, false_before = [], [], 0
    for run in range(runs):
        # warmup is a multiple of the interval: slot k puts the step (slots - k) x 10 s
        # before the next check, so the last slot is the worst phase.
        at = warmup + step * (slots - 1 if worst_phase else run % slots)
        cumulative = binary_stream(rng, rate, warmup + horizon, step, _step_at(at, jump))
        checker = new_checker(setup)
        per_window = setup.window // step
        detected = first_check = math.inf
        for end in range(setup.window, warmup + horizon + 1, setup.interval):
            index = end // step
            drifted = checker.check(
                int(cumulative[index] - cumulative[index - per_window]), rate * setup.window
            )
            if end > at:
                first_check = min(first_check, end)
            if drifted and end <= at:
                false_before += 1
                break
            if drifted:
                detected = end
                break
        delays.append(detected - at)
        after_first.append(detected - first_check)
    return StepRun(rate, jump, worst_phase, false_before, tuple(delays), tuple(after_first))


# --- false alarms per check --------------------------------------------------------------------


@dataclass(frozen=True)
class FalseAlarmCell:
    statistic: DriftStatistic
    model: str
    n: int
    baseline: str
    checks: int
    inconclusive: int
    alarms_test_alone: int
    alarms_default: int


def _draw(rng: np.random.Generator, proportions: Mapping[str, float], n: int) -> dict[str, float]:
    counts = rng.multinomial(n, list(proportions.values()))
    return dict(zip(proportions, map(float, counts), strict=True))


def run_false_alarms(
    statistic: DriftStatistic, model: str, n: int, baseline_kind: str, checks: int, seed: int
) -> FalseAlarmCell:
    """Windows drawn from the baseline distribution itself: every Drift is a false alarm."""
    proportions = MODELS[model]
    gated = cadence(statistic=statistic.value, minSamples=CRD_MIN_SAMPLES).criteria
    alone = cadence(statistic=statistic.value, minSamples=CRD_MIN_SAMPLES, minEffect=0.0).criteria
    rng = np.random.default_rng(seed)
    inconclusive = alarms_alone = alarms_gated = 0
    for _ in range(checks):
        current = _draw(rng, proportions, n)
        baseline: Baseline = (
            BaselineProportions(proportions=dict(proportions))
            if baseline_kind == "training"
            else BaselineCounts(counts=_draw(rng, proportions, n))
        )
        verdict = evaluate_drift(current, baseline, alone).verdict
        inconclusive += verdict is DriftVerdict.INCONCLUSIVE
        if verdict is DriftVerdict.DRIFT:
            alarms_alone += 1
            # The effect gate only ever turns Drift into NoDrift, so only alarms need re-checking.
            alarms_gated += evaluate_drift(current, baseline, gated).verdict is DriftVerdict.DRIFT
    return FalseAlarmCell(
        statistic, model, n, baseline_kind, checks, inconclusive, alarms_alone, alarms_gated
    )


# --- report ------------------------------------------------------------------------------------


def per_30_days(episodes: int, days: int) -> float:
    return 30.0 * episodes / days


def _intervals(seconds: float, interval: int) -> str:
    return "never" if math.isinf(seconds) else f"{seconds / interval:.2f}"


def _minutes(seconds: float) -> str:
    return "never" if math.isinf(seconds) else f"{seconds / 60:.1f}"


@dataclass
class Claims:
    lines: list[str]
    failed: int = 0

    def record(self, ok: bool, text: str) -> None:
        self.failed += not ok
        self.lines.append(f"- **{'PASS' if ok else 'FAIL'}** {text}")


def episode_section(runs: Sequence[EpisodeRun], claims: Claims) -> list[str]:
    days = runs[0].days
    lines = [
        f"## 1. Drift episodes per 30 days ({days} simulated days per cell)",
        "",
        "Positive rate 30% + wobble x sin(2 pi t / 1 day), training baseline 30%, CRD defaults."
        " An episode is Drifted turning True. Breaches = checks with a Drift verdict.",
        "",
        "| wobble | minEffect | rate | checks | breaching checks | episodes | per 30 days |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        wobble = "stationary" if run.wobble == 0 else f"±{100 * run.wobble:g} pt"
        lines.append(
            f"| {wobble} | {run.min_effect:g} | {run.rate}/s | {run.checks} | {run.breaches}"
            f" | {run.episodes} | {per_30_days(run.episodes, run.days):.1f} |"
        )
    for rate in RATES:
        wobbling = [r for r in runs if r.rate == rate and r.wobble == 0.015 and r.min_effect > 0]
        for r in wobbling:
            per_month = per_30_days(r.episodes, r.days)
            claims.record(
                per_month <= 1.0,
                f"±1.5 pt wobble at {rate}/s: {per_month:.1f} episodes per 30 days (at most 1)",
            )
    return [*lines, ""]


def calibration_section(runs: Sequence[CalibrationRun]) -> list[str]:
    lines = [
        "## 2. Expected time between false episodes: formula against simulation",
        "",
        "Stationary traffic at 5/s, checked every 5m, minEffect 0 (the test alone, so"
        " false episodes are frequent enough to count); 10m windows overlap by half, 5m"
        " windows (the default) do not. Predicted: "
        "`rollforward.drift.calibration.mean_days_between_false_episodes` with the per-check"
        " rate = significance. Measured: simulated days / episodes (exact p-values are a"
        " little conservative, so measured times run slightly longer).",
        "",
        "| significance | window | consecutiveBreaches | simulated days | episodes | measured days"
        " between | predicted days between | independent checks would say |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        measured = f"{run.days / run.episodes:.2f}" if run.episodes else f"> {run.days}"
        independent = mean_days_between_false_episodes(
            run.significance, run.interval, run.interval, run.breaches
        )
        lines.append(
            f"| {run.significance:g} | {run.window // 60}m | {run.breaches} | {run.days}"
            f" | {run.episodes} | {measured}"
            f" | {run.predicted_days:.2f} | {independent:.1f} |"
        )
    defaults = mean_days_between_false_episodes(0.01, 300, 300, 2)
    lines += [
        "",
        f"At the CRD defaults (0.01, 5m every 5m, 2 in a row) the formula gives {defaults:.0f}"
        " days between false episodes for the test alone; the minimum effect makes them far"
        " rarer (section 1: no stationary episode at any rate).",
        "",
    ]
    return lines


def step_section(runs: Sequence[StepRun], interval: int, claims: Claims) -> list[str]:
    lines = [
        "## 3. Delay to detect a step of the positive rate",
        "",
        "30% -> 35% or 40% after an hour of stationary traffic. 'Every phase': the runs cycle"
        " through every 10-s phase of the 5-minute check grid. 'Worst phase': the step comes"
        " 10 s before a check, so that first check sees almost none of it. Delay from the step"
        " to Drifted=True, in minutes and in check intervals. With consecutiveBreaches K,"
        " Drifted needs K breaching checks, so it comes at the earliest at the K-th check after"
        " the step (K - 1 intervals plus the phase), and at the (K + 1)-th when the first"
        " check sees too little of the step: within 3 intervals of the step in every phase"
        " needs K <= 2. 'From first check' counts intervals from the first check after the"
        " step.",
        "",
        "| step | rate | phases | runs | false Drifted before the step | median delay (min) |"
        " max delay (min) | median intervals | max intervals | within 3 intervals of the step"
        " | max intervals from first check |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        delays = list(run.delays)
        within = sum(d <= 3 * interval for d in delays) / len(delays)
        lines.append(
            f"| +{100 * run.jump:g} pt | {run.rate}/s | {'worst' if run.worst_phase else 'every'}"
            f" | {len(delays)} | {run.false_before}"
            f" | {_minutes(statistics.median(delays))} | {_minutes(max(delays))}"
            f" | {_intervals(statistics.median(delays), interval)}"
            f" | {_intervals(max(delays), interval)} | {100 * within:.1f}%"
            f" | {_intervals(max(run.after_first_check), interval)} |"
        )
        if run.jump == 0.10:
            claims.record(*_step_claim(run, interval))
    return [*lines, ""]


def _step_claim(run: StepRun, interval: int) -> tuple[bool, str]:
    """+10 pt: Drifted within 3 intervals of the step itself, in every run.

    At the worst phase the claim rests on the 2nd and 3rd checks alone; with all of its
    runs within 3 intervals the one-sided 95% lower bound on that probability is
    1 - 3 / runs (the rule of three).
    """
    limit = 3 * interval
    within = sum(d <= limit for d in run.delays)
    ok = within == len(run.delays) and run.false_before == 0
    where = (
        f"at the worst phase (95% lower bound {100 * (1 - 3 / len(run.delays)):.1f}% if none"
        " misses)"
        if run.worst_phase
        else "over every 10-s phase of the check grid"
    )
    return ok, (
        f"+10 pt step at {run.rate}/s, {where}: Drifted within 3 intervals ({limit / 60:g} min)"
        f" of the step in {within} of {len(run.delays)} runs (median"
        f" {statistics.median(run.delays) / 60:.1f} min, worst {max(run.delays) / 60:.1f} min;"
        f" worst {max(run.after_first_check) / interval:g} intervals from the first check after"
        f" the step); {run.false_before} false Drifted before the step"
    )


def binomial_tail(alarms: int, trials: int, rate: float) -> float:
    """P(X >= alarms) for X ~ Binomial(trials, rate): how surprising a count is at `rate`."""
    if alarms <= 0:
        return 1.0
    log_rate, log_rest = math.log(rate), math.log1p(-rate)
    terms = (
        math.lgamma(trials + 1)
        - math.lgamma(k + 1)
        - math.lgamma(trials - k + 1)
        + k * log_rate
        + (trials - k) * log_rest
        for k in range(alarms, trials + 1)
    )
    return min(1.0, math.fsum(math.exp(t) for t in terms))


def false_alarm_section(cells: Sequence[FalseAlarmCell], alpha: float, claims: Claims) -> list[str]:
    tested_cells = [c for c in cells if c.checks > c.inconclusive]
    # Family-wise 5% over every tested cell (Bonferroni): a calibrated test breaks this in
    # fewer than 1 run in 20, a test firing above alpha breaks it as the checks grow.
    level = 0.05 / max(1, len(tested_cells))
    lines = [
        f"## 4. False alarms per check under no drift (significance {alpha:g})",
        "",
        "Windows drawn from the baseline distribution; every Drift verdict is a false alarm."
        " Rate = alarms / tested checks (Inconclusive checks decide nothing). 'Tail' is"
        " P(at least this many alarms) if each tested check fired with probability alpha"
        " (binomial); a cell is over alpha beyond binomial noise when its tail is below"
        f" 0.05 / {len(tested_cells)} tested cells = {level:.2g} (family-wise 5%). PSI/JS use"
        f" their default thresholds and noise floor. minSamples {CRD_MIN_SAMPLES} (the smallest"
        " the CRD accepts); the window baseline is a reference window of the same size.",
        "",
        "| statistic | model | n | baseline | checks | inconclusive | rate, test alone |"
        " tail | rate, minEffect 0.03 |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    breaking: list[str] = []
    for cell in cells:
        tested = cell.checks - cell.inconclusive
        if tested:
            tail = binomial_tail(cell.alarms_test_alone, tested, alpha)
            rates = (
                f"{cell.alarms_test_alone / tested:.4f} | {tail:.3g}"
                f" | {cell.alarms_default / tested:.4f}"
            )
            if tail < level:
                breaking.append(f"{cell.statistic.value} {cell.model} n={cell.n} {cell.baseline}")
        else:
            rates = "- | - | -"
        lines.append(
            f"| {cell.statistic.value} | {cell.model} | {cell.n} | {cell.baseline} | {cell.checks}"
            f" | {cell.inconclusive} | {rates} |"
        )
    claims.record(
        not breaking,
        "per-check false alarms within alpha plus binomial noise (family-wise 5%) for every"
        " statistic, class count, n and baseline kind, with the test alone (the minimum effect"
        " only removes alarms)" + (f"; over in: {', '.join(breaking)}" if breaking else ""),
    )
    return [*lines, ""]


def jobs(args: argparse.Namespace) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    work: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    seed = 1
    for wobble in WOBBLES:
        for rate in RATES:
            work.append((run_episodes, (rate, wobble, 0.03, args.days, seed)))
            seed += 1
    for rate in RATES:
        work.append((run_episodes, (rate, 0.015, 0.0, args.days, seed)))
        seed += 1
    for significance, breaches, window in CALIBRATIONS:
        work.append(
            (run_calibration, (significance, breaches, window, args.calibration_days, seed))
        )
        seed += 1
    for jump in STEPS:
        for rate in RATES:
            work.append((run_steps, (rate, jump, args.phases, False, seed)))
            seed += 1
    work.append((run_steps, (5, 0.10, args.worst_phase_runs, True, seed)))
    seed += 1
    for statistic in DriftStatistic:
        for model in MODELS:
            for n in SAMPLE_SIZES:
                for kind in ("training", "window"):
                    work.append((run_false_alarms, (statistic, model, n, kind, args.checks, seed)))
                    seed += 1
    return work


def _call(job: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    function, arguments = job
    return function(*arguments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("bench-results/drift-episodes.md"))
    parser.add_argument("--days", type=int, default=30, help="simulated days per wobble cell")
    parser.add_argument("--calibration-days", type=int, default=120)
    parser.add_argument(
        "--phases", type=int, default=120, help="step runs per cell (4 per 10-s phase of 5m)"
    )
    parser.add_argument(
        "--worst-phase-runs", type=int, default=400, help="+10 pt runs at 5/s, worst phase"
    )
    parser.add_argument("--checks", type=int, default=1_000, help="checks per false-alarm cell")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = jobs(args)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(_call, work, chunksize=1))
    setup = cadence()
    claims = Claims(lines=[])
    body = [
        *episode_section([r for r in results if isinstance(r, EpisodeRun)], claims),
        *calibration_section([r for r in results if isinstance(r, CalibrationRun)]),
        *step_section([r for r in results if isinstance(r, StepRun)], setup.interval, claims),
        *false_alarm_section(
            [r for r in results if isinstance(r, FalseAlarmCell)], setup.criteria.alpha, claims
        ),
    ]
    spec = default_deployment().spec.drift
    header = [
        "# Drift episodes, detection delay and false alarms at the CRD defaults",
        "",
        f"statistic {spec.statistic.value}, significance {spec.significance:g}, minEffect"
        f" {spec.min_effect:g}, window {spec.window}, interval {spec.interval},"
        f" consecutiveBreaches {spec.consecutive_breaches}, baseline {spec.baseline.kind.value},"
        f" minSamples {spec.min_samples}. Generated by `make bench-drift`"
        " (bench/drift_episodes.py).",
        "",
        "## Claims",
        "",
        *claims.lines,
        "",
    ]
    text = "\n".join([*header, *body])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
