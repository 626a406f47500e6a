"""How fast a bad canary is aborted, and how often a healthy one is: a simulation through the
operator's own decision code (`interim_analysis` and `verdict`, the code a reconcile runs at
every analysis interval), at the demo's settings.

The canary is the demo's (`devenv.demo.demo_manifest` applied to the README example): 25
requests/s, steps of 25% for 40 s then 50% for 20 s, looked at every 1 s, and a Prometheus
that scrapes every second. Requests arrive as Poisson processes in 0.1 s slots; each fails
with its variant's error rate. A look sees the counts of the last scrape before it (what
Prometheus knows), cumulative since the step started, as `increase()` would report them; a
Failed verdict aborts at the look's time. Failed requests are counted up to that moment;
the time the router then takes to stop sending traffic to the candidate is not simulated (the
end-to-end test measures the whole thing).

    PYTHONPATH=operator:hack:bentos python bench/bench_canary_abort.py
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devenv.api_cases import example_manifest
from devenv.demo import COMPRESSED_ANALYSIS_INTERVAL, StoryPlan, demo_manifest
from rollforward.analysis import ERROR_RATE_ALPHA, AnalysisInputs, interim_analysis, verdict
from rollforward.api import ModelDeployment, duration_seconds, parse_model_deployment
from rollforward.naming import CANDIDATE_VARIANT
from rollforward.prometheus import QueryResult, Sample

OUTPUT = Path("bench-results/canary-abort.md")
SLOT = 0.1
"""Seconds per simulated arrival slot."""
OFTEN = 0.5
"""Seconds between looks in the rows that look four times as often as the demo."""
SCRAPE_SECONDS = 1.0
"""The demo Prometheus's scrape interval (devenv.prometheus.LocalPrometheus)."""
CHAMPION = "champion"


@dataclass(frozen=True)
class Scenario:
    candidate_error: float
    champion_error: float
    interval: float
    rate: float = StoryPlan.rate


@dataclass(frozen=True)
class CanaryRun:
    aborted: bool
    failed_before_abort: int
    seconds_to_abort: float | None
    """From the candidate's first failed request to the abort."""


def demo_deployment(interval: str = COMPRESSED_ANALYSIS_INTERVAL) -> ModelDeployment:
    manifest, _ = demo_manifest(example_manifest(), namespace="bench")
    manifest["spec"]["rollout"]["analysis"]["interval"] = interval
    return parse_model_deployment(manifest)


def _per_variant(deployment: ModelDeployment, values: dict[str, float]) -> QueryResult:
    labels = {"namespace": deployment.metadata.namespace, "model": deployment.spec.model}
    return QueryResult(
        samples=tuple(
            Sample(labels={**labels, "variant": variant}, value=value)
            for variant, value in values.items()
        )
    )


def _inputs(deployment: ModelDeployment, seen: np.ndarray, canary: np.ndarray) -> AnalysisInputs:
    """seen/canary: [candidate requests, candidate errors, champion requests, champion errors]
    since the step / since the canary started."""
    requests = _per_variant(deployment, {CANDIDATE_VARIANT: seen[0], CHAMPION: seen[2]})
    errors = _per_variant(deployment, {CANDIDATE_VARIANT: seen[1], CHAMPION: seen[3]})
    p99 = _per_variant(deployment, {CANDIDATE_VARIANT: 0.05, CHAMPION: 0.05})
    return AnalysisInputs(
        requests=requests,
        errors=errors,
        latency_p99=p99,
        predictions=QueryResult(),
        baseline=QueryResult(),
        canary_requests=_per_variant(deployment, {CANDIDATE_VARIANT: canary[0], CHAMPION: 0}),
        canary_errors=_per_variant(deployment, {CANDIDATE_VARIANT: canary[1], CHAMPION: 0}),
    )


def _arrivals(
    scenario: Scenario, weight: float, slots: int, rng: np.random.Generator
) -> np.ndarray:
    """Cumulative [candidate requests, errors, champion requests, errors] after each slot."""
    per_slot = scenario.rate * SLOT
    candidate = rng.poisson(per_slot * weight, slots)
    champion = rng.poisson(per_slot * (1 - weight), slots)
    counts = np.stack(
        [
            candidate,
            rng.binomial(candidate, scenario.candidate_error),
            champion,
            rng.binomial(champion, scenario.champion_error),
        ],
        axis=1,
    )
    return np.cumsum(counts, axis=0)


def simulate_canary(
    deployment: ModelDeployment, scenario: Scenario, rng: np.random.Generator
) -> CanaryRun:
    """Every step of the canary, looked at every interval; stops at the first Failed look."""
    before = np.zeros(4)
    first_failure: float | None = None
    elapsed = 0.0
    for step in deployment.spec.rollout.steps:
        pause = duration_seconds(step.pause)
        looks = int(np.ceil(pause / scenario.interval))
        slots = round(looks * scenario.interval / SLOT)
        counts = _arrivals(scenario, step.weight / 100, slots, rng)
        scrape_phase = rng.uniform(0, SCRAPE_SECONDS)
        if first_failure is None and counts[-1, 1] > 0:
            first_failure = elapsed + SLOT * (int(np.argmax(counts[:, 1] > 0)) + 1)
        for look in range(1, looks + 1):
            at = look * scenario.interval
            scraped = np.floor((at - scrape_phase) / SCRAPE_SECONDS) * SCRAPE_SECONDS
            index = round((scraped + scrape_phase) / SLOT) - 1
            seen = counts[index] if index >= 0 else np.zeros(4)
            inputs = _inputs(deployment, seen, before + seen)
            if verdict(interim_analysis(deployment, inputs, CHAMPION)) == "Failed":
                failed = int(before[1] + counts[round(at / SLOT) - 1, 1])
                to_abort = elapsed + at - first_failure if first_failure is not None else None
                return CanaryRun(True, failed, to_abort)
        before = before + counts[-1]
        elapsed += looks * scenario.interval
    return CanaryRun(False, int(before[1]), None)


def run_many(
    deployment: ModelDeployment, scenario: Scenario, runs: int, seed: int
) -> list[CanaryRun]:
    rng = np.random.default_rng(seed)
    return [simulate_canary(deployment, scenario, rng) for _ in range(runs)]


def _binomial_limit(runs: int) -> float:
    """alpha plus three binomial standard deviations: the noise band of a rate of alpha."""
    return ERROR_RATE_ALPHA + 3 * math.sqrt(ERROR_RATE_ALPHA * (1 - ERROR_RATE_ALPHA) / runs)


def healthy_table(runs: int) -> list[str]:
    lines = [
        "## Healthy candidates: false aborts",
        "",
        f"{runs} canaries per row, through both steps. alpha = {ERROR_RATE_ALPHA}; a rate "
        f"above {_binomial_limit(runs):.3f} (alpha plus three binomial standard deviations) "
        "would be a defect. The last two rows sit exactly at the tolerance (the candidate "
        "is `maxErrorRateIncrease` = 1 pt worse than the champion), the hardest healthy case.",
        "",
        "| candidate 5xx | champion 5xx | look every | false aborts | rate |",
        "|---|---|---|---|---|",
    ]
    deployment = demo_deployment()
    delta = deployment.spec.rollout.analysis.max_error_rate_increase
    interval = duration_seconds(deployment.spec.rollout.analysis.interval)
    cases = [
        Scenario(0.0, 0.0, interval),
        Scenario(0.01, 0.01, interval),
        Scenario(0.01, 0.01, OFTEN),
        Scenario(0.01 + delta, 0.01, interval),
        Scenario(0.01 + delta, 0.01, OFTEN),
    ]
    for seed, scenario in enumerate(cases):
        results = run_many(deployment, scenario, runs, seed)
        aborted = sum(r.aborted for r in results)
        lines.append(
            f"| {scenario.candidate_error:.1%} | {scenario.champion_error:.1%} | "
            f"{scenario.interval:g} s | {aborted} / {runs} | {aborted / runs:.3f} |"
        )
    return [*lines, ""]


def bad_table(runs: int) -> list[str]:
    deployment = demo_deployment()
    interval = duration_seconds(deployment.spec.rollout.analysis.interval)
    limit = deployment.spec.rollout.analysis.max_failed_requests
    lines = [
        "## Bad candidates: failed requests before the abort",
        "",
        f"{runs} canaries per row; champion 5xx 0%; maxFailedRequests {limit}. Failed "
        "requests are the candidate's, from its first request to the abort decision; "
        "seconds are from its first failed request to the abort decision.",
        "",
        "| candidate 5xx | look every | aborted | median failed | 90th pct failed | "
        "median seconds |",
        "|---|---|---|---|---|---|",
    ]
    for seed, (error, every) in enumerate(
        [(e, i) for e in (0.05, 0.2, 0.5) for i in (interval, 5.0, OFTEN)], start=100
    ):
        scenario = Scenario(error, 0.0, every)
        results = run_many(deployment, scenario, runs, seed)
        aborted = [r for r in results if r.aborted]
        failed = sorted(r.failed_before_abort for r in aborted)
        seconds = [r.seconds_to_abort for r in aborted if r.seconds_to_abort is not None]
        lines.append(
            f"| {error:.0%} | {every:g} s | {len(aborted)} / {runs} | "
            f"{statistics.median(failed):g} | "
            f"{failed[int(0.9 * (len(failed) - 1))]} | "
            f"{statistics.median(seconds):.1f} |"
            if seconds
            else f"| {error:.0%} | {every:g} s | 0 / {runs} | - | - | - |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000, help="canaries per row")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    deployment = demo_deployment()
    steps = ", ".join(f"{s.weight}% for {s.pause}" for s in deployment.spec.rollout.steps)
    lines = [
        "# Canary: false aborts and failed requests before an abort",
        "",
        f"Simulated through `interim_analysis` at the demo's settings: {StoryPlan.rate:g} "
        f"requests/s, steps {steps}, a look every "
        f"{deployment.spec.rollout.analysis.interval}, 1 s scrapes, minRequests "
        f"{deployment.spec.rollout.analysis.min_requests}, maxErrorRateIncrease "
        f"{deployment.spec.rollout.analysis.max_error_rate_increase}. Rows with a look every "
        f"{OFTEN:g} s show that looking far more often does not raise false aborts.",
        "",
    ]
    lines += healthy_table(args.runs)
    lines += bad_table(args.runs)
    text = "\n".join(lines)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
