"""Simulated A/B experiments, judged after every interval by the operator's real `judge`.

Shared by the unit test (a fast A/A run) and `make bench-experiment` (A/A rate and power at
the documented traffic). Counts are drawn per interval from binomials with a fixed seed, so
every figure is reproducible.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from rollforward.experiment import ArmCounts, ExperimentCriteria, ExperimentVerdict, judge


@dataclass(frozen=True)
class Traffic:
    """Labelled predictions per interval reaching each variant, and how many intervals."""

    champion_per_interval: int
    challenger_per_interval: int
    intervals: int
    """Intervals until maxDuration."""


@dataclass(frozen=True)
class RunResult:
    verdict: ExperimentVerdict
    looks: int
    """Looks until the verdict (intervals); `intervals` when it ran out of time."""


def run_experiment(
    rng: np.random.Generator,
    champion_rate: float,
    challenger_rate: float,
    traffic: Traffic,
    criteria: ExperimentCriteria,
) -> RunResult:
    """One experiment, looked at after every interval until a final verdict or maxDuration."""
    n = traffic.intervals
    champion_hits = np.cumsum(rng.binomial(traffic.champion_per_interval, champion_rate, n))
    challenger_hits = np.cumsum(rng.binomial(traffic.challenger_per_interval, challenger_rate, n))
    for look in range(n):
        champion = ArmCounts(traffic.champion_per_interval * (look + 1), int(champion_hits[look]))
        challenger = ArmCounts(
            traffic.challenger_per_interval * (look + 1), int(challenger_hits[look])
        )
        result = judge(champion, challenger, criteria, expired=look == n - 1)
        if result.final:
            return RunResult(result.verdict, look + 1)
    return RunResult(ExperimentVerdict.INCONCLUSIVE, n)


def simulate(
    seed: int,
    runs: int,
    champion_rate: float,
    challenger_rate: float,
    traffic: Traffic,
    criteria: ExperimentCriteria,
) -> tuple[Counter[ExperimentVerdict], list[int]]:
    """Verdict counts over `runs` experiments, and the looks each final verdict took."""
    rng = np.random.default_rng(seed)
    verdicts: Counter[ExperimentVerdict] = Counter()
    looks: list[int] = []
    for _ in range(runs):
        result = run_experiment(rng, champion_rate, challenger_rate, traffic, criteria)
        verdicts[result.verdict] += 1
        if result.verdict is not ExperimentVerdict.INCONCLUSIVE:
            looks.append(result.looks)
    return verdicts, looks


def false_winners(verdicts: Counter[ExperimentVerdict]) -> int:
    """Runs that named a winner (either way): every one is false when the rates are equal."""
    return (
        verdicts[ExperimentVerdict.CHALLENGER_BETTER] + verdicts[ExperimentVerdict.CHAMPION_BETTER]
    )
