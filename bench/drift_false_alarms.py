"""Bench: false alarms of the drift checks under no drift, and the delay to detect a shift.

Prints markdown tables and writes them to bench-results/drift-false-alarms.md. Every figure
comes from the real `evaluate_drift` and `next_state` on seeded simulations, so a run is
reproducible; rates are counts over checks, never timings.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path

from scipy import stats

from devenv.drift_simulation import (
    BINARY_MODEL,
    FIXED_PSI_CUTOFF,
    MethodTally,
    ShiftScenario,
    no_drift_scenarios,
    simulate_false_alarms,
    simulate_shift,
    simulation_criteria,
)
from rollforward.api import DriftStatistic, DriftVerdict
from rollforward.drift.statistics import BaselineProportions, evaluate_drift

ALPHA = 0.05
OUTPUT = Path("bench-results/drift-false-alarms.md")


def _rate(tally: MethodTally) -> str:
    return f"{tally.false_alarm_rate:.3f}"


def false_alarm_table(checks: int) -> list[str]:
    lines = [
        f"## False alarms under no drift ({checks} checks per row, alpha {ALPHA})",
        "",
        "Rate = alarms / tested checks. Floored PSI/JS: threshold (0.1 / 0.0125), 4 x the"
        " no-drift expectation, and p < alpha. Fixed PSI: the same PSI score > "
        f"{FIXED_PSI_CUTOFF}, nothing else.",
        "",
        "| model | n per window | baseline | chi-square | chi-square inconclusive"
        " | floored PSI | floored JS | fixed PSI > 0.1 |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for index, scenario in enumerate(no_drift_scenarios()):
        rates = simulate_false_alarms(scenario, checks, seed=index, alpha=ALPHA)
        baseline = "training (known)" if scenario.baseline == "training" else "reference (m = n)"
        lines.append(
            f"| {scenario.model} | {scenario.window} | {baseline}"
            f" | {_rate(rates.chi_square)}"
            f" | {rates.chi_square.inconclusive / checks:.3f}"
            f" | {_rate(rates.floored_psi)} | {_rate(rates.floored_js)}"
            f" | {_rate(rates.fixed_psi)} |"
        )
    limit = stats.binom.isf(1e-3, checks, ALPHA) / checks
    lines += [
        "",
        f"Sampling noise: at {checks} checks a true rate of {ALPHA} shows up as at most"
        f" {limit:.3f} with probability 0.999.",
        "",
    ]
    return lines


def exact_binary_table() -> list[str]:
    lines = [
        "## Exact false-alarm probability, binary model against its training baseline",
        "",
        "No sampling: the binomial probability of every window that would fire.",
        "",
        "| n per window | chi-square | floored PSI | floored JS |",
        "|---:|---:|---:|---:|",
    ]
    baseline = BaselineProportions(proportions=dict(BINARY_MODEL))
    positive = BINARY_MODEL["positive"]
    for window in (20, 100, 1000):
        cells = []
        for statistic in DriftStatistic:
            criteria = simulation_criteria(statistic, ALPHA)
            probability = sum(
                stats.binom.pmf(x, window, positive)
                for x in range(window + 1)
                if evaluate_drift(
                    {"positive": x, "negative": window - x}, baseline, criteria
                ).verdict
                is DriftVerdict.DRIFT
            )
            cells.append(f"{probability:.4f}")
        lines.append(f"| {window} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _shift_configurations() -> list[tuple[str, ShiftScenario]]:
    ours = ShiftScenario()
    return [
        ("ours: window = min samples", ours),
        ("window 60 s, min 200", replace(ours, window=60, min_samples=200)),
        ("window 60 s, min 600", replace(ours, window=60, min_samples=600)),
    ]


def detection_table(seeds: int) -> list[str]:
    lines = [
        f"## Detection delay: positive rate 30% -> 40% at 20 predictions/s ({seeds} seeds)",
        "",
        "Ready = the window holds min samples of post-shift predictions (shift + min / rate)."
        " Deadline = ready + 2 check intervals. Delays are seconds after the shift, over"
        " runs not already Drifted at the shift.",
        "",
        "| configuration | window | check | min samples | K | ready | deadline"
        " | detected by deadline | delay min | median | p95 | max | Drifted before shift |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scenario in _shift_configurations():
        delays: list[int] = []
        in_time = drifted_before = 0
        for seed in range(seeds):
            run = simulate_shift(scenario, seed)
            before = [c for c in run.checks if c.at <= scenario.shift_at]
            if before and before[-1].drifted:
                drifted_before += 1
                continue
            onset = next((c.at for c in run.checks if c.at > scenario.shift_at and c.drifted), None)
            if onset is None:
                continue
            delays.append(onset - scenario.shift_at)
            in_time += onset <= scenario.detection_deadline
        measured = seeds - drifted_before
        ordered = sorted(delays)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0
        lines.append(
            f"| {name} | {scenario.window} s | {scenario.check_every} s"
            f" | {scenario.min_samples} | {scenario.breaches_to_drift}"
            f" | +{scenario.samples_ready_at - scenario.shift_at:g} s"
            f" | +{scenario.detection_deadline - scenario.shift_at:g} s"
            f" | {in_time}/{measured}"
            f" | {min(ordered, default=0)} | {statistics.median(ordered) if ordered else 0:g}"
            f" | {p95} | {max(ordered, default=0)} | {drifted_before} |"
        )
    lines.append("")
    return lines


def false_episode_table(seeds: int, hours: float) -> list[str]:
    duration = int(hours * 3600)
    lines = [
        f"## False Drifted episodes with no shift ({seeds} runs x {hours:g} h each)",
        "",
        "Overlapping windows make consecutive checks share data, so K breaches in a row are"
        " far likelier than alpha^K.",
        "",
        "| window | check | K | alpha | checks per hour | Drifted episodes per hour"
        " | alpha^K x checks/h |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = replace(ShiftScenario(), positive_after=0.3, shift_at=duration, duration=duration)
    configurations = (
        (30, 10, 2, ALPHA),
        (30, 10, 3, ALPHA),
        (30, 10, 4, ALPHA),
        (60, 10, 2, ALPHA),
        (60, 10, 3, ALPHA),
        (30, 30, 2, ALPHA),
        (30, 30, 3, ALPHA),
        (30, 10, 2, 0.01),
        (30, 30, 2, 0.01),
    )
    for window, check, k, alpha in configurations:
        scenario = replace(base, window=window, check_every=check, breaches_to_drift=k, alpha=alpha)
        episodes = 0
        for seed in range(seeds):
            flags = [c.drifted for c in simulate_shift(scenario, seed).checks]
            episodes += sum(1 for a, b in zip([False, *flags], flags, strict=False) if b and not a)
        per_hour = 3600 / check
        lines.append(
            f"| {window} s | {check} s | {k} | {alpha:g} | {per_hour:g}"
            f" | {episodes / (seeds * hours):.2f} | {per_hour * alpha**k:.3f} |"
        )
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=2000, help="no-drift checks per row")
    parser.add_argument("--seeds", type=int, default=200, help="runs per shift configuration")
    parser.add_argument("--episode-runs", type=int, default=20, help="one-hour no-shift runs")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    lines = ["# Drift checks: false alarms and detection delay", ""]
    lines += false_alarm_table(args.checks)
    lines += exact_binary_table()
    lines += detection_table(args.seeds)
    lines += false_episode_table(seeds=args.episode_runs, hours=1.0)
    text = "\n".join(lines)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
