"""Chaos: the operator is SIGKILLed at random moments of several roll-forwards and restarted.

Given FLOWS ModelDeployments, one per namespace, each with a manual retraining request, when
the one operator that watches them all is killed once and started again, then every flow
ends promoted, with exactly one Job for its trigger, no orphaned children and a consistent
history. Progress lives in status and every child has a deterministic name, so a restart can
only continue, never repeat.

One kill hits every flow at a different moment: each flow's request is applied at its own
offset, drawn so that the kill lands a chosen time after it (its "kill moment"). So a test of
KILLS operator kills checks KILLS x FLOWS kill moments; the report says which is which.

Kill moments come from a fresh seed on every run (so every run tests new moments), printed
first and named in every failure; ROLLFORWARD_CHAOS_SEED=<seed> replays a run with the same
ROLLFORWARD_CHAOS_KILLS (operator kills) and ROLLFORWARD_CHAOS_FLOWS (flows each kill hits).
`make soak` sets them from SOAK_KILLS and SOAK_FLOWS and writes bench-results/soak.md through
ROLLFORWARD_CHAOS_REPORT.
"""

from __future__ import annotations

import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
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

KILLS = int(os.environ.get("ROLLFORWARD_CHAOS_KILLS", "20"))
"""Operator processes SIGKILLed (one per round): 20 in `make test`, as issue 18 asks; `make
soak`: SOAK_KILLS."""
FLOWS = int(os.environ.get("ROLLFORWARD_CHAOS_FLOWS", "1"))
"""Concurrent roll-forwards each kill hits, one per namespace: 1 in `make test` (20 restarts
fit its time; 8 kills of 5 flows each took 5 min alone); `make soak`: SOAK_FLOWS."""
MOMENTS = KILLS * FLOWS
REPORT_PATH = os.environ.get("ROLLFORWARD_CHAOS_REPORT", "")
"""Where to write the markdown report (`make soak`: bench-results/soak.md); none when empty."""
ROUND_TIMEOUT_SECONDS = 400 + 20 * FLOWS
"""More than one round's own waits add up to (330 s, plus per-flow applies and polls); the
test's pytest timeout is this times the kills, so the session's 900 s never cuts a soak short
(it stopped `make soak` after 14 of 200 kills)."""
FLOW_SECONDS = 18.0
"""About how long a request takes to become a promotion here; kill moments land inside it."""
MD_PATH = "/apis/rollforward.io/v1alpha1"


@dataclass
class Flow:
    """One namespace's ModelDeployment and its simulated bento pods."""

    namespace: str
    candidate: VariantExporter


@dataclass
class ChaosEnv:
    flows: list[Flow]
    prometheus: LocalPrometheus
    kubeconfig: Path

    @property
    def namespaces(self) -> list[str]:
        return [flow.namespace for flow in self.flows]


@dataclass
class Outcome:
    moment: int
    """The kill moment's number, also in the flow's version and trigger."""
    kill: int
    """Which operator kill (round) it belongs to."""
    flow: int
    killed_after: float
    """Seconds from the flow's request (its create returning) to the SIGKILL, as measured."""
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


@dataclass
class Tally:
    """What the rounds so far did, for the report."""

    seed: int
    outcomes: list[Outcome] = field(default_factory=list)
    kills: int = 0
    round_seconds: list[float] = field(default_factory=list)


def soak_report(tally: Tally) -> str:
    """The markdown summary `make soak` writes to bench-results/soak.md."""
    outcomes = tally.outcomes
    phases = Counter(o.phase_at_kill for o in outcomes)
    finals = Counter(o.final_phase for o in outcomes)
    wall = sum(tally.round_seconds)
    per_kill = wall / max(1, len(tally.round_seconds))
    lines = [
        "# Chaos soak: the operator SIGKILLed amid concurrent roll-forwards, then restarted",
        "",
        f"- seed: `{tally.seed}` (replay: `ROLLFORWARD_CHAOS_SEED={tally.seed} "
        f"ROLLFORWARD_CHAOS_KILLS={KILLS} ROLLFORWARD_CHAOS_FLOWS={FLOWS}`)",
        f"- operator processes SIGKILLed: {tally.kills} of {KILLS} planned; each kill hit "
        f"{FLOWS} concurrent roll-forwards (one ModelDeployment per namespace), each at its "
        "own moment",
        f"- kill moments (flow x kill pairs): {len(outcomes)} checked of {MOMENTS} planned",
        f"- wall time of the rounds: {wall:.0f} s ({per_kill:.1f} s per kill, "
        f"{wall / max(1, len(outcomes)):.1f} s per kill moment)",
        f"- double Jobs (more than one Job for a trigger): {sum(o.double_job for o in outcomes)}",
        f"- orphans (children or Jobs left that should not be): "
        f"{sum(len(o.orphans) for o in outcomes)}",
        f"- decisions on missing data (rollbacks or failed versions; never warranted here): "
        f"{sum(o.unwarranted_decisions for o in outcomes)}",
        f"- inconsistent history or handled requests: "
        f"{sum(not (o.history_ok and o.handled_ok) for o in outcomes)}",
        "",
        "| phase at kill | kill moments |",
        "|---|---|",
        *(f"| {phase} | {count} |" for phase, count in sorted(phases.items())),
        "",
        "| final phase | flows |",
        "|---|---|",
        *(f"| {phase} | {count} |" for phase, count in sorted(finals.items())),
        "",
        "| moment | kill | flow | killed after (s) | phase at kill | promoted after (s) | final |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {o.moment} | {o.kill} | {o.flow} | {o.killed_after:.1f} | {o.phase_at_kill} | "
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


def chaos_manifest(namespace: str, prometheus: str, version: str, moment: int) -> dict[str, Any]:
    body = manifest(namespace, prometheus, result_for(version))
    body["metadata"]["annotations"] = {"rollforward.io/retrain": f"chaos-{moment}"}
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
    """FLOWS namespaces, each with a champion and a candidate exporter scraped as its pods."""
    namespaces = [f"chaos-{i}" for i in range(FLOWS)]
    for namespace in namespaces:
        local_cluster.kubectl("create", "namespace", namespace)
    for namespace in namespaces:
        local_cluster.wait_for_service_account(namespace, "default")
    workdir = tmp_path_factory.mktemp("chaos")
    scraped: list[tuple[VariantExporter, str]] = []
    with LocalPrometheus(workdir / "prometheus") as prometheus:
        try:
            flows = [Flow(ns, start_exporters(prometheus, ns, scraped)) for ns in namespaces]
            # All targets added first, so they come up together rather than a scrape round each.
            for exporter, job in scraped:
                exporter.wait_scraped(prometheus, job)
            yield ChaosEnv(flows, prometheus, operator_kubeconfig)
        finally:
            for exporter, _ in scraped:
                exporter.stop()


def start_exporters(
    prometheus: LocalPrometheus, namespace: str, scraped: list[tuple[VariantExporter, str]]
) -> VariantExporter:
    """A champion and a candidate pod of `namespace`, added to Prometheus and (with their job
    names) to `scraped`, not yet waited for; the candidate."""
    for variant, version in (("champion", CHAMPION), ("candidate", "upsell:v2")):
        exporter = VariantExporter("upsell", version, variant).start()
        exporter.regime = Regime(label_shares=DRIFTED_SHARES)
        exporter.set_baseline(TRAINING_SHARES if variant == "champion" else DRIFTED_SHARES)
        pod = f"upsell-{variant}-0"
        scraped.append((exporter, exporter.scrape_as_pod(prometheus, namespace, pod, wait=False)))
    return scraped[-1][0]


def statuses(cluster: LocalCluster, namespaces: list[str]) -> dict[str, dict[str, Any]]:
    """Each namespace's `upsell` status ({} before the first write), from one list call."""
    response = cluster.api("GET", f"{MD_PATH}/modeldeployments")
    assert response.status == 200, response
    found = {
        item["metadata"]["namespace"]: item.get("status") or {}
        for item in response.body["items"]
        if item["metadata"]["name"] == "upsell"
    }
    return {ns: found[ns] for ns in namespaces if ns in found}


def names_by_namespace(cluster: LocalCluster, kinds: str) -> dict[str, list[str]]:
    """`kind/name` of the managed children of every namespace, sorted, from one list call."""
    listed = cluster.kubectl_json("get", kinds, "--all-namespaces", "-l", SELECTOR)
    found: dict[str, list[str]] = {}
    for item in listed["items"]:
        found.setdefault(item["metadata"]["namespace"], []).append(
            f"{item['kind']}/{item['metadata']['name']}"
        )
    return {ns: sorted(items) for ns, items in found.items()}


def kill_seed() -> int:
    """ROLLFORWARD_CHAOS_SEED to replay a run; otherwise fresh, so each run tests new moments."""
    given = os.environ.get("ROLLFORWARD_CHAOS_SEED")
    return int(given) if given else secrets.randbits(32)


def stratified_kill_moments(rng: random.Random, moments: int) -> list[float]:
    """A random moment in each of `moments` equal slices of the flow, in a random order: every
    run of the test spreads its kill moments over the whole roll-forward, however the seed
    falls. Consecutive groups of FLOWS are the moments of one kill."""
    width = (FLOW_SECONDS - 0.5) / moments
    times = [rng.uniform(0.5 + i * width, 0.5 + (i + 1) * width) for i in range(moments)]
    rng.shuffle(times)
    return times


def create(cluster: LocalCluster, body: dict[str, Any]) -> None:
    """POST a ModelDeployment: one request, no kubectl process, so offsets stay close to plan."""
    namespace = body["metadata"]["namespace"]
    response = cluster.api("POST", f"{MD_PATH}/namespaces/{namespace}/modeldeployments", body)
    assert response.status == 201, response


def request_at_offsets(
    cluster: LocalCluster, env: ChaosEnv, moments: list[float], first: int
) -> list[float]:
    """Create each flow's ModelDeployment so that a kill on return falls `moments[i]` seconds
    after flow i's request (the longest first); when each create returned."""
    start = time.monotonic()
    kill_at = start + max(moments)
    created = [0.0] * len(moments)
    for i in sorted(range(len(moments)), key=lambda i: -moments[i]):
        time.sleep(max(0.0, kill_at - moments[i] - time.monotonic()))
        flow, version = env.flows[i], f"upsell:v2-m{first + i}"
        create(cluster, chaos_manifest(flow.namespace, env.prometheus.url, version, first + i))
        created[i] = time.monotonic()
    time.sleep(max(0.0, kill_at - time.monotonic()))
    return created


def all_promoted(
    cluster: LocalCluster, env: ChaosEnv, first: int, promoted: dict[str, float]
) -> bool:
    """Record when each flow is first seen promoted to its version; whether all are."""
    now = statuses(cluster, env.namespaces)
    for i, ns in enumerate(env.namespaces):
        status = now.get(ns, {})
        if status.get("champion") == f"upsell:v2-m{first + i}" and status.get("phase") == "Stable":
            promoted.setdefault(ns, time.monotonic())
    return len(promoted) == len(env.namespaces)


def phases_now(cluster: LocalCluster, env: ChaosEnv, first: int) -> dict[str, str]:
    """Each flow's phase, "Stable (promoted)" once its champion is the new version: a moment
    after the promotion (only the candidate's removal left) is told apart from one before the
    request was taken up."""
    now = statuses(cluster, env.namespaces)
    phases = {}
    for i, ns in enumerate(env.namespaces):
        status = now.get(ns, {})
        phase = status.get("phase", "-")
        promoted = status.get("champion") == f"upsell:v2-m{first + i}"
        phases[ns] = f"{phase} (promoted)" if promoted and phase == "Stable" else phase
    return phases


def candidates_removed(cluster: LocalCluster, env: ChaosEnv) -> bool:
    deployments = names_by_namespace(cluster, "deployments")
    return all(
        "Deployment/upsell-candidate" not in deployments.get(ns, []) for ns in env.namespaces
    )


def run_round(
    cluster: LocalCluster, env: ChaosEnv, kill: int, moments: list[float], workdir: Path
) -> list[Outcome]:
    """One request per flow at its offset, one SIGKILL, one restart; what each flow ended as."""
    first = kill * FLOWS
    for i, flow in enumerate(env.flows):
        flow.candidate.serve_version(f"upsell:v2-m{first + i}", DRIFTED_SHARES)
    operator = OperatorProcess(env.kubeconfig, workdir / "a", namespaces=env.namespaces).start()
    created = request_at_offsets(cluster, env, moments, first)
    phases = phases_now(cluster, env, first)
    operator.kill()
    killed = time.monotonic()
    promoted: dict[str, float] = {}
    with OperatorProcess(env.kubeconfig, workdir / "b", namespaces=env.namespaces) as restarted:
        wait_until(
            lambda: all_promoted(cluster, env, first, promoted),
            timeout=180 + 5 * FLOWS,
            interval=0.5,
            what=f"kill {kill}'s flows (moments {moments}, phases {phases}) to promote",
        )
        wait_until(
            lambda: candidates_removed(cluster, env), timeout=60, what="the candidates' removal"
        )
        log = restarted.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    return outcomes_of(cluster, env, kill, [killed - c for c in created], phases, promoted, created)


def outcomes_of(
    cluster: LocalCluster,
    env: ChaosEnv,
    kill: int,
    killed_after: list[float],
    phases: dict[str, str],
    promoted: dict[str, float],
    created: list[float],
) -> list[Outcome]:
    finals = statuses(cluster, env.namespaces)
    jobs = names_by_namespace(cluster, "jobs")
    children = names_by_namespace(cluster, "deployments,services,configmaps")
    outcomes = []
    for i, ns in enumerate(env.namespaces):
        moment, final = kill * FLOWS + i, finals[ns]
        history = [(h["version"], h["outcome"]) for h in final["history"]]
        outcomes.append(
            Outcome(
                moment,
                kill,
                i,
                killed_after[i],
                phases.get(ns, "-"),
                promoted[ns] - created[i],
                final_phase=final.get("phase", "-"),
                jobs=jobs.get(ns, []),
                expected_job=f"Job/{final['retraining']['jobName']}",
                children=children.get(ns, []),
                history_ok=history
                == [(CHAMPION, "Superseded"), (f"upsell:v2-m{moment}", "Promoted")],
                handled_ok=final["handledRequests"] == [f"retrain=chaos-{moment}"],
                unwarranted_decisions=len(final.get("failedVersions", []))
                + sum(outcome == "RolledBack" for _, outcome in history),
            )
        )
    return outcomes


def clean_up(cluster: LocalCluster, env: ChaosEnv) -> None:
    """Delete every flow's ModelDeployment and wait for its children to be collected."""
    for ns in env.namespaces:
        response = cluster.api("DELETE", f"{MD_PATH}/namespaces/{ns}/modeldeployments/upsell")
        assert response.status in (200, 202), response
    wait_until(lambda: not statuses(cluster, env.namespaces), timeout=90, what="the deletions")
    kinds = "deployments,services,configmaps,jobs"
    wait_until(
        lambda: not any(names_by_namespace(cluster, kinds).get(ns) for ns in env.namespaces),
        timeout=90,
        what="garbage collection between kills",
    )


@pytest.mark.timeout(max(900, KILLS * ROUND_TIMEOUT_SECONDS))
def test_operator_killed_at_random_points_always_ends_promoted(
    local_cluster: LocalCluster, chaos: ChaosEnv, tmp_path: Path
) -> None:
    tally = Tally(kill_seed())
    where = (
        f"seed {tally.seed}: rerun with ROLLFORWARD_CHAOS_SEED={tally.seed} "
        f"ROLLFORWARD_CHAOS_KILLS={KILLS} ROLLFORWARD_CHAOS_FLOWS={FLOWS}"
    )
    # Printed first, so even a run that hangs can be replayed.
    print(f"\nchaos: {KILLS} operator kills x {FLOWS} flows = {MOMENTS} kill moments; {where}")
    moments = stratified_kill_moments(random.Random(tally.seed), MOMENTS)
    try:
        for kill in range(KILLS):
            began = time.monotonic()
            ours = moments[kill * FLOWS : (kill + 1) * FLOWS]
            tally.outcomes += run_round(local_cluster, chaos, kill, ours, tmp_path / f"{kill}")
            tally.kills += 1
            clean_up(local_cluster, chaos)
            tally.round_seconds.append(time.monotonic() - began)
    finally:
        report = soak_report(tally)
        print(report)
        if REPORT_PATH:
            Path(REPORT_PATH).parent.mkdir(parents=True, exist_ok=True)
            Path(REPORT_PATH).write_text(report)
    assert len(tally.outcomes) == MOMENTS, where
    for o in tally.outcomes:
        assert o.jobs == [o.expected_job], (where, o)
        assert o.children == EXPECTED_CHILDREN, (where, o)
        assert o.history_ok and o.handled_ok and o.unwarranted_decisions == 0, (where, o)
    phases = {o.phase_at_kill for o in tally.outcomes}
    if MOMENTS >= 20:
        # Which phase a moment falls in depends on the machine's speed; Promoting lasts about a
        # second, so a random run may miss it. Moments before and during the canary it may not.
        before = phases & {"-", "Pending", "Stable", "Retraining"}
        assert before and "Canary" in phases, f"moments should hit both, got {phases} ({where})"
