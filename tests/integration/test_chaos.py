"""Chaos: the operator is SIGKILLed at a random moment of the roll-forward and restarted.

Given a ModelDeployment and a manual retraining request, when the operator is killed at a
random point between the request and the end of the promotion and started again, then
every run ends promoted, with exactly one Job for the trigger, no orphaned children and a
consistent history. Progress lives in status and every child has a deterministic name,
so a restart can only continue, never repeat.

Kill times come from a fresh seed on every run (so every run tests new moments), printed
first and named in every failure; ROLLFORWARD_CHAOS_SEED=<seed> replays a run, and
ROLLFORWARD_CHAOS_KILLS sets how many kills (20 here; `make soak` runs 200 and writes
bench-results/soak.md through ROLLFORWARD_CHAOS_REPORT).
"""

from __future__ import annotations

import functools
import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devenv.cluster import LocalCluster
from devenv.loop_manifests import (
    CHAMPION,
    DRIFTED_SHARES,
    EXPECTED_CHILDREN,
    TRAINING_SHARES,
    manifest,
)
from devenv.loop_manifests import (
    CHILD_SELECTOR as SELECTOR,
)
from devenv.metrics_exporter import Regime, VariantExporter
from devenv.operator import OperatorProcess
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus
from rollforward.serving.contract import EvaluationMetrics, RetrainingMetrics, RetrainingResult

RUNS = int(os.environ.get("ROLLFORWARD_CHAOS_KILLS", "20"))
"""20 in `make test`; `make soak` sets 200 (SOAK_KILLS)."""
REPORT_PATH = os.environ.get("ROLLFORWARD_CHAOS_REPORT", "")
"""Where to write the markdown report (`make soak`: bench-results/soak.md); none when empty."""
RUN_TIMEOUT_SECONDS = 400
"""More than one run's own waits add up to (330 s); the test's pytest timeout is this times
the runs, so the session's 900 s never cuts a soak short (it stopped `make soak` after 14 of
200 kills)."""
FLOW_SECONDS = 18.0
"""About how long a request takes to become a promotion here; kills land inside it."""
ChaosEnv = tuple[str, LocalPrometheus, VariantExporter, VariantExporter, Path]


@dataclass
class Outcome:
    run: int
    killed_after: float
    phase_at_kill: str
    seconds_to_promoted: float
    final_phase: str
    jobs: list[str]
    expected_job: str
    children: list[str]
    history_ok: bool
    handled_ok: bool
    unwarranted_decisions: int
    """Rollbacks or failed versions: the metrics never justify one here, so each would be a
    decision taken on missing or stale data."""

    @property
    def double_job(self) -> bool:
        return len(self.jobs) > 1

    @property
    def orphans(self) -> list[str]:
        extra = set(self.children) - set(EXPECTED_CHILDREN)
        return sorted(extra | (set(self.jobs) - {self.expected_job}))


def soak_report(seed: int, runs: int, outcomes: list[Outcome]) -> str:
    """The markdown summary `make soak` writes to bench-results/soak.md."""
    phases = Counter(o.phase_at_kill for o in outcomes)
    finals = Counter(o.final_phase for o in outcomes)
    lines = [
        "# Chaos soak: operator SIGKILLed once per roll-forward, then restarted",
        "",
        f"- seed: `{seed}` (replay: `ROLLFORWARD_CHAOS_SEED={seed}`)",
        f"- kills planned: {runs}; runs completed: {len(outcomes)}",
        f"- double Jobs (more than one Job for a trigger): {sum(o.double_job for o in outcomes)}",
        f"- orphans (children or Jobs left that should not be): "
        f"{sum(len(o.orphans) for o in outcomes)}",
        f"- decisions on missing data (rollbacks or failed versions; never warranted here): "
        f"{sum(o.unwarranted_decisions for o in outcomes)}",
        f"- inconsistent history or handled requests: "
        f"{sum(not (o.history_ok and o.handled_ok) for o in outcomes)}",
        "",
        "| phase at kill | kills |",
        "|---|---|",
        *(f"| {phase} | {count} |" for phase, count in sorted(phases.items())),
        "",
        "| final phase | runs |",
        "|---|---|",
        *(f"| {phase} | {count} |" for phase, count in sorted(finals.items())),
        "",
        "| run | killed after (s) | phase at kill | promoted after (s) | final |",
        "|---|---|---|---|---|",
        *(
            f"| {o.run} | {o.killed_after:.1f} | {o.phase_at_kill} | "
            f"{o.seconds_to_promoted:.1f} | {o.final_phase} |"
            for o in outcomes
        ),
    ]
    return "\n".join(lines) + "\n"


def result_for(version: str) -> str:
    evaluation = EvaluationMetrics(auc=0.85, accuracy=0.8, recall=0.6, samples=2000)
    return RetrainingResult(
        version=version,
        accepted=True,
        metrics=RetrainingMetrics(holdout=evaluation, recent=evaluation),
        baseline_distribution=DRIFTED_SHARES,
        trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        training_rows=5000,
    ).to_termination_message()


def chaos_manifest(namespace: str, prometheus: str, version: str, run: int) -> dict[str, Any]:
    body = manifest(namespace, prometheus, result_for(version))
    body["metadata"]["annotations"] = {"rollforward.io/retrain": f"chaos-{run}"}
    spec = body["spec"]
    spec["retraining"]["trigger"] = "manual"
    spec["retraining"]["maxPerDay"] = 100
    spec["rollout"] = {
        "steps": [{"weight": 50, "pause": "3s"}],
        "analysis": {"minRequests": 10, "maxErrorRateIncrease": 0.05},
    }
    return body


@pytest.fixture(scope="module")
def chaos(
    local_cluster: LocalCluster, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosEnv]:
    namespace = "chaos"
    local_cluster.kubectl("create", "namespace", namespace)
    local_cluster.wait_for_service_account(namespace, "default")
    workdir = tmp_path_factory.mktemp("chaos")
    kubeconfig = operator_kubeconfig
    with LocalPrometheus(workdir / "prometheus") as prometheus:
        exporters = []
        for variant, version in (("champion", CHAMPION), ("candidate", "upsell:v2")):
            exporter = VariantExporter("upsell", version, variant).start()
            exporter.regime = Regime(label_shares=DRIFTED_SHARES)
            exporter.set_baseline(TRAINING_SHARES if variant == "champion" else DRIFTED_SHARES)
            exporter.scrape_as_pod(prometheus, namespace, f"upsell-{variant}-0")
            exporters.append(exporter)
        yield namespace, prometheus, exporters[0], exporters[1], kubeconfig
        for exporter in exporters:
            exporter.stop()


def status(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster.kubectl_json("-n", namespace, "get", "md", "upsell")
    body: dict[str, Any] = found.get("status") or {}
    return body


def promoted_to(cluster: LocalCluster, namespace: str, version: str) -> bool:
    now = status(cluster, namespace)
    return now.get("champion") == version and now.get("phase") == "Stable"


def names(cluster: LocalCluster, namespace: str, kinds: str, selector: str = SELECTOR) -> list[str]:
    listed = cluster.kubectl_json("-n", namespace, "get", kinds, "-l", selector)
    return sorted(f"{i['kind']}/{i['metadata']['name']}" for i in listed["items"])


def kill_seed() -> int:
    """ROLLFORWARD_CHAOS_SEED to replay a run; otherwise fresh, so each run tests new moments."""
    given = os.environ.get("ROLLFORWARD_CHAOS_SEED")
    return int(given) if given else secrets.randbits(32)


def run_once(
    cluster: LocalCluster, chaos: ChaosEnv, run: int, kill_after: float, workdir: Path
) -> Outcome:
    """One request, one SIGKILL after `kill_after` seconds, one restart; what it ended as."""
    namespace, prometheus, _, candidate, kubeconfig = chaos
    version = f"upsell:v2-run{run}"
    candidate.serve_version(version, DRIFTED_SHARES)
    operator = OperatorProcess(kubeconfig, workdir / "a", namespaces=[namespace]).start()
    started = time.monotonic()
    cluster.apply(chaos_manifest(namespace, prometheus.url, version, run))
    time.sleep(kill_after)
    phase_at_kill = status(cluster, namespace).get("phase", "-")
    operator.kill()
    with OperatorProcess(kubeconfig, workdir / "b", namespaces=[namespace]) as restarted:
        wait_until(
            functools.partial(promoted_to, cluster, namespace, version),
            timeout=180,
            interval=0.5,
            what=f"run {run} (killed after {kill_after:.1f}s in {phase_at_kill}) to promote",
        )
        promoted_after = time.monotonic() - started
        wait_until(
            lambda: "Deployment/upsell-candidate" not in names(cluster, namespace, "deployments"),
            timeout=60,
            what="the candidate's removal",
        )
        final = status(cluster, namespace)
        log = restarted.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    history = [(h["version"], h["outcome"]) for h in final["history"]]
    return Outcome(
        run,
        kill_after,
        phase_at_kill,
        promoted_after,
        final_phase=final.get("phase", "-"),
        jobs=names(cluster, namespace, "jobs"),
        expected_job=f"Job/{final['retraining']['jobName']}",
        children=names(cluster, namespace, "deployments,services,configmaps"),
        history_ok=history == [(CHAMPION, "Superseded"), (version, "Promoted")],
        handled_ok=final["handledRequests"] == [f"retrain=chaos-{run}"],
        unwarranted_decisions=len(final.get("failedVersions", []))
        + sum(outcome == "RolledBack" for _, outcome in history),
    )


def stratified_kill_times(rng: random.Random, runs: int) -> list[float]:
    """A random moment in each of `runs` equal slices of the flow, in a random order: every
    run of the test spreads its kills over the whole roll-forward, however the seed falls,
    and so does any prefix of it (a soak stopped early still covers every phase)."""
    width = (FLOW_SECONDS - 0.5) / runs
    times = [rng.uniform(0.5 + i * width, 0.5 + (i + 1) * width) for i in range(runs)]
    rng.shuffle(times)
    return times


@pytest.mark.timeout(max(900, RUNS * RUN_TIMEOUT_SECONDS))
def test_operator_killed_at_random_points_always_ends_promoted(
    local_cluster: LocalCluster, chaos: ChaosEnv, tmp_path: Path
) -> None:
    seed = kill_seed()
    # Printed first, so even a run that hangs can be replayed.
    print(f"\nchaos: {RUNS} kills, seed {seed} (ROLLFORWARD_CHAOS_SEED={seed} replays it)")
    rng = random.Random(seed)
    outcomes: list[Outcome] = []
    try:
        for run, kill_after in enumerate(stratified_kill_times(rng, RUNS)):
            outcomes.append(run_once(local_cluster, chaos, run, kill_after, tmp_path / f"{run}"))
            local_cluster.kubectl("-n", chaos[0], "delete", "md", "upsell", "--wait=true")
            wait_until(
                lambda: (
                    names(local_cluster, chaos[0], "deployments,services,configmaps,jobs") == []
                ),
                timeout=90,
                what="garbage collection between runs",
            )
    finally:
        report = soak_report(seed, RUNS, outcomes)
        print(report)
        if REPORT_PATH:
            Path(REPORT_PATH).parent.mkdir(parents=True, exist_ok=True)
            Path(REPORT_PATH).write_text(report)
    where = f"seed {seed}: rerun with ROLLFORWARD_CHAOS_SEED={seed}"
    assert len(outcomes) == RUNS, where
    for o in outcomes:
        assert o.jobs == [o.expected_job], (where, o)
        assert o.children == EXPECTED_CHILDREN, (where, o)
        assert o.history_ok and o.handled_ok and o.unwarranted_decisions == 0, (where, o)
    phases = {o.phase_at_kill for o in outcomes}
    if RUNS >= 20:
        # Which phase a moment falls in depends on the machine's speed; Promoting lasts about a
        # second, so a random run may miss it. Kills before and during the canary it may not.
        assert {"Stable", "Canary"} <= phases, f"kills should hit both, got {phases} ({where})"
