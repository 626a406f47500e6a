"""Bench: A/A false winners and power of the A/B experiment's sequential test.

Every figure comes from the operator's real `judge`, looked at after every interval of
seeded simulated experiments (devenv.experiment_simulation), so a run is reproducible.
Writes bench-results/experiment.md.

The documented traffic (README, "A/B experiments"): 2 labelled predictions per second reach
the router, split 90/10 between champion and challenger, looked at every hour for at most
14 days; the outcome rate is 30% and minEffect is 2 points, alpha 0.05.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from scipy import stats

from devenv.experiment_simulation import Traffic, false_winners, simulate
from rollforward.experiment import ExperimentCriteria, ExperimentVerdict

OUTPUT = Path("bench-results/experiment.md")
BASE_RATE = 0.30
LIFT = 0.02
CRITERIA = ExperimentCriteria(min_effect=0.02, alpha=0.05)
INTERVAL_HOURS = 1
MAX_DAYS = 14
DOCUMENTED_PER_SECOND = 2.0


def traffic(per_second: float, challenger_share: float = 0.10) -> Traffic:
    per_interval = per_second * 3600 * INTERVAL_HOURS
    return Traffic(
        champion_per_interval=round(per_interval * (1 - challenger_share)),
        challenger_per_interval=round(per_interval * challenger_share),
        intervals=MAX_DAYS * 24 // INTERVAL_HOURS,
    )


def naive_false_winners(runs: int, flow: Traffic, seed: int) -> int:
    """The same A/A runs judged by a fixed-sample two-proportion z-test after every interval."""
    rng = np.random.default_rng(seed)
    critical = stats.norm.isf(CRITERIA.alpha / 2)
    hits = 0
    looks = np.arange(1, flow.intervals + 1)
    for _ in range(runs):
        a = np.cumsum(rng.binomial(flow.champion_per_interval, BASE_RATE, flow.intervals))
        b = np.cumsum(rng.binomial(flow.challenger_per_interval, BASE_RATE, flow.intervals))
        na, nb = flow.champion_per_interval * looks, flow.challenger_per_interval * looks
        pooled = (a + b) / (na + nb)
        se = np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
        hits += bool(np.any(np.abs(b / nb - a / na) > critical * se))
    return hits


def _hours(looks: list[int]) -> str:
    if not looks:
        return "-"
    ordered = sorted(looks)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{statistics.median(ordered) * INTERVAL_HOURS:g} / {p90 * INTERVAL_HOURS:g}"


def aa_section(runs: int) -> list[str]:
    flow = traffic(DOCUMENTED_PER_SECOND)
    verdicts, looks = simulate(1, runs, BASE_RATE, BASE_RATE, flow, CRITERIA)
    wrong = false_winners(verdicts)
    naive = naive_false_winners(runs, flow, seed=1)
    return [
        f"## A/A: two identical variants at {BASE_RATE:.0%}, looked at every hour for "
        f"{MAX_DAYS} days ({runs} experiments)",
        "",
        "| test | false ChallengerBetter | false ChampionBetter | false-winner share | alpha |",
        "|---|---:|---:|---:|---:|",
        f"| mSPRT (rollforward.experiment.judge) | {verdicts[ExperimentVerdict.CHALLENGER_BETTER]}"
        f" | {verdicts[ExperimentVerdict.CHAMPION_BETTER]} | {wrong / runs:.4f}"
        f" | {CRITERIA.alpha} |",
        f"| fixed-sample z-test, same looks (for contrast) | - | - | {naive / runs:.4f}"
        f" | {CRITERIA.alpha} |",
        "",
        f"Other A/A verdicts: NoDifference {verdicts[ExperimentVerdict.NO_DIFFERENCE]}, "
        f"Inconclusive at maxDuration {verdicts[ExperimentVerdict.INCONCLUSIVE]}; "
        f"hours to a verdict (median / 90th pct): {_hours(looks)}.",
        "",
    ]


def power_section(runs: int) -> list[str]:
    lines = [
        f"## Power: challenger {BASE_RATE + LIFT:.0%} vs champion {BASE_RATE:.0%} "
        f"(+{LIFT * 100:g} points), 90/10 split ({runs} experiments per row)",
        "",
        "| labelled predictions/s at the router | challenger per hour | ChallengerBetter "
        "(power) | NoDifference | ChampionBetter | Inconclusive | hours to ChallengerBetter "
        "(median / 90th pct) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for index, per_second in enumerate((0.5, 1.0, DOCUMENTED_PER_SECOND, 10.0)):
        flow = traffic(per_second)
        verdicts, looks = simulate(100 + index, runs, BASE_RATE, BASE_RATE + LIFT, flow, CRITERIA)
        note = " (documented)" if per_second == DOCUMENTED_PER_SECOND else ""
        lines.append(
            f"| {per_second:g}{note} | {flow.challenger_per_interval}"
            f" | {verdicts[ExperimentVerdict.CHALLENGER_BETTER] / runs:.3f}"
            f" | {verdicts[ExperimentVerdict.NO_DIFFERENCE] / runs:.3f}"
            f" | {verdicts[ExperimentVerdict.CHAMPION_BETTER] / runs:.3f}"
            f" | {verdicts[ExperimentVerdict.INCONCLUSIVE] / runs:.3f} | {_hours(looks)} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--aa-runs", type=int, default=2000)
    parser.add_argument("--power-runs", type=int, default=500)
    args = parser.parse_args()
    report = [
        "# A/B experiments: sequential test (mSPRT) on the outcome rate",
        "",
        f"minEffect {CRITERIA.min_effect}, alpha {CRITERIA.alpha}, minSamples "
        f"{CRITERIA.min_samples}, interval {INTERVAL_HOURS}h, maxDuration {MAX_DAYS}d. "
        "Every experiment is judged after every interval until a final verdict.",
        "",
        *aa_section(args.aa_runs),
        *power_section(args.power_runs),
    ]
    text = "\n".join(report)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)


if __name__ == "__main__":
    main()
