"""Chaos: the operator is SIGKILLed at random moments of several roll-forwards and restarted.

Given FLOWS ModelDeployments, one per namespace, each with a manual retraining request, when
the one operator that watches them all is killed and started again, KILLS_PER_ROUND times
over, then every flow ends promoted, with exactly one Job for its trigger, no orphaned
children and a consistent history. Progress lives in status and every child has a
deterministic name, so a restart can only continue, never repeat.

A round requests every flow and kills KILLS_PER_ROUND operator processes in turn, each
restarted at once. With one kill a round, the kill lands at a different moment of each flow:
each flow's request is applied at its own offset, drawn so that the kill lands a chosen time
after it. With several (`make test`: 4, `make soak`: 10), each operator lives a random time
after it answers, and the requests are spread over the lives of the round's first half of operators,
so every kill meets flows in different phases and every flow meets several kills. Every kill
is the death of a separate operator process and hits all the round's flows: KILLS operator
kills give KILLS x FLOWS kill moments (a kill and a flow; those before the flow's request are
counted apart) over ROUNDS x FLOWS roll-forwards; the report says which is which.

Kill moments come from a fresh seed on every run (so every run tests new moments), printed
first and named in every failure; ROLLFORWARD_CHAOS_SEED=<seed> replays a run with the same
ROLLFORWARD_CHAOS_KILLS (operator kills in all), ROLLFORWARD_CHAOS_KILLS_PER_ROUND and
ROLLFORWARD_CHAOS_FLOWS (flows each kill hits). `make soak` sets them from SOAK_KILLS,
SOAK_KILLS_PER_ROUND and SOAK_FLOWS and writes bench-results/soak.md through
ROLLFORWARD_CHAOS_REPORT.
"""

from __future__ import annotations

import math
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
"""Operator processes SIGKILLed in all: 20 in `make test`, as issue 18 asks; `make soak`:
SOAK_KILLS (200)."""
KILLS_PER_ROUND = int(os.environ.get("ROLLFORWARD_CHAOS_KILLS_PER_ROUND", "4"))
"""Operator kills amid one round's roll-forwards: 4 in `make test`; `make soak`:
SOAK_KILLS_PER_ROUND (10)."""
FLOWS = int(os.environ.get("ROLLFORWARD_CHAOS_FLOWS", "3"))
"""Concurrent roll-forwards each kill hits, one per namespace: 3 in `make test` (5 rounds: 20
kills, 60 kill moments, 15 roll-forwards in 158 s alone, where 20 rounds of one kill and one
flow took 403 s in `make test`); `make soak`: SOAK_FLOWS (10)."""
ROUNDS = math.ceil(KILLS / KILLS_PER_ROUND)
"""Rounds of roll-forwards; the last one has fewer kills when KILLS_PER_ROUND does not divide
KILLS."""
MOMENTS = KILLS * FLOWS
REPORT_PATH = os.environ.get("ROLLFORWARD_CHAOS_REPORT", "")
"""Where to write the markdown report (`make soak`: bench-results/soak.md); none when empty."""
ROUND_TIMEOUT_SECONDS = 400 + 20 * FLOWS + 70 * (KILLS_PER_ROUND - 1)
"""More than one round's own waits add up to (330 s, plus per-flow applies and polls, plus
each later kill's lifetime and restart); the test's pytest timeout is this times the rounds,
so the session's 900 s never cuts a soak short (it stopped `make soak` after 14 of 200
kills)."""
FLOW_SECONDS = 18.0
"""About how long a request takes to become a promotion here; first kills land inside it."""
LIFETIME_SECONDS = (0.5, 3.0)
"""Bounds of the random time an operator lives, from answering on /metrics to its SIGKILL,
when a round has several kills: short, so that each flow meets several kills on its way to
promotion (a 2-round soak of 10 flows: 1.6 s median, 4.2 s a kill with the restart)."""
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
class Moment:
    """One kill as one flow met it."""

    kill: int
    """Which operator kill, counted over the whole test."""
    round: int
    flow: int
    since_request: float | None
    """Seconds from the flow's request (its create returning) to the SIGKILL, as measured;
    None when the kill came before the request."""
    phase: str


@dataclass
class Kill:
    """One operator process SIGKILLed."""

    kill: int
    round: int
    lived: float
    """Seconds from the process answering on /metrics to its SIGKILL."""
    phases: list[str]
    """Each flow's phase just before the kill, in flow order."""
    since_request: list[float | None]
    """Seconds from each flow's request (its create returning) to the SIGKILL, as measured;
    None for a flow not yet requested."""

    def moments(self) -> list[Moment]:
        return [
            Moment(self.kill, self.round, i, since, phase)
            for i, (since, phase) in enumerate(zip(self.since_request, self.phases, strict=True))
        ]


@dataclass
class Outcome:
    """How one flow's roll-forward ended after all its round's kills."""

    round: int
    flow: int
    requested_in: int
    """Which of the round's operators (0 the first) was running when the flow was requested."""
    first_kill_after: float
    """Seconds from the flow's request to its round's first kill, as measured."""
    phases_at_kills: list[str]
    """The flow's phase at each of its round's kills after its request, in order."""
    seconds_to_promoted: float
    """From the flow's request to the first sight of it promoted."""
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
    kills: list[Kill] = field(default_factory=list)
    moments: list[Moment] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)


def replay(seed: int) -> str:
    return (
        f"ROLLFORWARD_CHAOS_SEED={seed} ROLLFORWARD_CHAOS_KILLS={KILLS} "
        f"ROLLFORWARD_CHAOS_KILLS_PER_ROUND={KILLS_PER_ROUND} ROLLFORWARD_CHAOS_FLOWS={FLOWS}"
    )


def in_flight(phase: str) -> bool:
    """Whether a flow in `phase` is still on its way to promotion (requested, not promoted)."""
    return phase not in ("Stable (promoted)", NOT_REQUESTED)


def in_runs(phases: list[str]) -> str:
    """Phases in order, a run of one phase as `phase xN`: "Retraining x3, Canary"."""
    runs: list[list[Any]] = []
    for phase in phases:
        if runs and runs[-1][0] == phase:
            runs[-1][1] += 1
        else:
            runs.append([phase, 1])
    return ", ".join(phase if n == 1 else f"{phase} x{n}" for phase, n in runs)


def lifetimes(lived: list[float]) -> str:
    """The range and median of sorted lifetimes."""
    if not lived:
        return "none"
    return f"{lived[0]:.1f} to {lived[-1]:.1f} s, median {lived[len(lived) // 2]:.1f} s"


def soak_report(tally: Tally) -> str:
    """The markdown summary `make soak` writes to bench-results/soak.md."""
    outcomes, moments, kills = tally.outcomes, tally.moments, tally.kills
    phases = Counter(m.phase for m in moments)
    finals = Counter(o.final_phase for o in outcomes)
    wall = sum(tally.round_seconds)
    lived = sorted(k.lived for k in kills)
    lines = [
        "# Chaos soak: the operator SIGKILLed amid concurrent roll-forwards, then restarted",
        "",
        f"- seed: `{tally.seed}` (replay: `{replay(tally.seed)}`)",
        f"- operator processes SIGKILLed: {len(kills)} of {KILLS} planned, each restarted at "
        f"once; up to {KILLS_PER_ROUND} per round, in {len(tally.round_seconds)} of {ROUNDS} "
        "rounds",
        f"- each kill hit the round's {FLOWS} concurrent roll-forwards (one ModelDeployment "
        "per namespace), each at its own moment",
        f"- kill moments (kill x flow pairs): {len(moments)} of {MOMENTS} planned; "
        f"{sum(m.phase != NOT_REQUESTED for m in moments)} after the flow's request, "
        f"{sum(in_flight(m.phase) for m in moments)} of them with the flow still on its way "
        "to promotion (requested, not yet promoted)",
        f"- roll-forwards checked: {len(outcomes)}",
        f"- operator lifetimes from answering to SIGKILL: {lifetimes(lived)}",
        f"- wall time of the rounds: {wall:.0f} s ({wall / max(1, len(kills)):.1f} s per kill, "
        f"{wall / max(1, len(moments)):.1f} s per kill moment)",
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
        "| final phase | roll-forwards |",
        "|---|---|",
        *(f"| {phase} | {count} |" for phase, count in sorted(finals.items())),
        "",
        "| round | flow | requested in operator | first kill after (s) | phases at its kills | "
        "promoted after (s) | final | Jobs |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {o.round} | {o.flow} | {o.requested_in} | {o.first_kill_after:.1f} | "
            f"{in_runs(o.phases_at_kills)} | "
            f"{o.seconds_to_promoted:.1f} | {o.final_phase} | {len(o.jobs)} |"
            for o in outcomes
        ),
        "",
        "| kill | round | lived (s) | flows' phases |",
        "|---|---|---|---|",
        *(
            f"| {k.kill} | {k.round} | {k.lived:.1f} | "
            + ", ".join(f"{p} x{n}" for p, n in sorted(Counter(k.phases).items()))
            + " |"
            for k in kills
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
    run of the test spreads its first kills' moments over the whole roll-forward, however the
    seed falls. Consecutive groups of FLOWS are the moments of one round's first kill."""
    width = (FLOW_SECONDS - 0.5) / moments
    times = [rng.uniform(0.5 + i * width, 0.5 + (i + 1) * width) for i in range(moments)]
    rng.shuffle(times)
    return times


NOT_REQUESTED = "(not yet requested)"
"""The phase of a kill moment that came before the flow's request."""


@dataclass
class RoundPlan:
    """What a round draws from the seed: each operator's lifetime, and when each flow's request
    is made. Operator n of the round answers, lives `lifetimes[n]` seconds and is SIGKILLed;
    operator n + 1 starts at once. Flow i is requested `request_after[i]` seconds after
    operator `request_in[i]` answered."""

    lifetimes: list[float]
    request_in: list[int]
    request_after: list[float]


def kill_plan(rng: random.Random) -> list[RoundPlan]:
    """Every round's kill times and requests.

    With one kill a round, the kill lands at a stratified moment of each flow (as
    `stratified_kill_moments` draws them): its requests come at the offsets that put it there.
    With several, each operator lives a random LIFETIME_SECONDS, and the flows' requests are
    spread in a random order over the lives of the round's first half of operators, at a random
    time within each: every kill then meets flows in different phases, and every flow meets
    several kills on its way."""
    if KILLS_PER_ROUND == 1:
        moments = stratified_kill_moments(rng, ROUNDS * FLOWS)
        plans = []
        for r in range(ROUNDS):
            ours = moments[r * FLOWS : (r + 1) * FLOWS]
            plans.append(RoundPlan([max(ours)], [0] * FLOWS, [max(ours) - m for m in ours]))
        return plans
    plans = []
    for r in range(ROUNDS):
        kills = min(KILLS_PER_ROUND, KILLS - r * KILLS_PER_ROUND)
        lifetimes = [rng.uniform(*LIFETIME_SECONDS) for _ in range(kills)]
        early = (kills + 1) // 2
        request_in = [0] * FLOWS
        for rank, i in enumerate(rng.sample(range(FLOWS), FLOWS)):
            request_in[i] = rank * early // FLOWS
        after = [rng.uniform(0.0, lifetimes[request_in[i]]) for i in range(FLOWS)]
        plans.append(RoundPlan(lifetimes, request_in, after))
    return plans


def create(cluster: LocalCluster, body: dict[str, Any]) -> None:
    """POST a ModelDeployment: one request, no kubectl process, so offsets stay close to plan."""
    namespace = body["metadata"]["namespace"]
    response = cluster.api("POST", f"{MD_PATH}/namespaces/{namespace}/modeldeployments", body)
    assert response.status == 201, response


def request(cluster: LocalCluster, env: ChaosEnv, i: int, first: int) -> float:
    """Create flow i's ModelDeployment with its retraining request; when the create returned."""
    flow, version = env.flows[i], f"upsell:v2-m{first + i}"
    create(cluster, chaos_manifest(flow.namespace, env.prometheus.url, version, first + i))
    return time.monotonic()


def all_promoted(
    cluster: LocalCluster, env: ChaosEnv, first: int, promoted: dict[str, float]
) -> bool:
    """Whether every flow is promoted to its version (recording when, as `phases_now`)."""
    phases_now(cluster, env, first, promoted)
    return len(promoted) == len(env.namespaces)


def phases_now(
    cluster: LocalCluster, env: ChaosEnv, first: int, promoted: dict[str, float]
) -> dict[str, str]:
    """Each flow's phase, "Stable (promoted)" once its champion is the new version: a moment
    after the promotion (only the candidate's removal left) is told apart from one before the
    request was taken up. Records in `promoted` when each flow is first seen promoted."""
    now = statuses(cluster, env.namespaces)
    phases = {}
    for i, ns in enumerate(env.namespaces):
        status = now.get(ns, {})
        phase = status.get("phase", "-")
        if status.get("champion") == f"upsell:v2-m{first + i}" and phase == "Stable":
            promoted.setdefault(ns, time.monotonic())
            phase = "Stable (promoted)"
        phases[ns] = phase
    return phases


def candidates_removed(cluster: LocalCluster, env: ChaosEnv) -> bool:
    deployments = names_by_namespace(cluster, "deployments")
    return all(
        "Deployment/upsell-candidate" not in deployments.get(ns, []) for ns in env.namespaces
    )


def run_round(
    cluster: LocalCluster, env: ChaosEnv, rnd: int, plan: RoundPlan, first_kill: int, workdir: Path
) -> tuple[list[Kill], list[Outcome]]:
    """The round's operators in turn, each SIGKILLed after its lifetime and followed at once by
    the next, the flows' requests made amid them as planned; then one more operator that sees
    every flow promoted. The kills, and what each flow ended as."""
    first = rnd * FLOWS
    for i, flow in enumerate(env.flows):
        flow.candidate.serve_version(f"upsell:v2-m{first + i}", DRIFTED_SHARES)
    created: dict[int, float] = {}
    promoted: dict[str, float] = {}
    kills: list[Kill] = []
    operators: list[OperatorProcess] = []
    try:
        for n, lifetime in enumerate([*plan.lifetimes, None]):
            operators.append(
                OperatorProcess(env.kubeconfig, workdir / f"{n}", namespaces=env.namespaces)
            )
            operators[-1].start()
            answered = time.monotonic()
            if lifetime is None:
                break
            ours = [i for i in range(FLOWS) if plan.request_in[i] == n]
            for i in sorted(ours, key=lambda i: plan.request_after[i]):
                time.sleep(max(0.0, answered + plan.request_after[i] - time.monotonic()))
                created[i] = request(cluster, env, i, first)
            time.sleep(max(0.0, answered + lifetime - time.monotonic()))
            phases = phases_now(cluster, env, first, promoted)
            operators[-1].kill()
            killed = time.monotonic()
            kills.append(
                Kill(
                    first_kill + n,
                    rnd,
                    killed - answered,
                    [
                        phases[ns] if i in created else NOT_REQUESTED
                        for i, ns in enumerate(env.namespaces)
                    ],
                    [killed - created[i] if i in created else None for i in range(FLOWS)],
                )
            )
        wait_until(
            lambda: all_promoted(cluster, env, first, promoted),
            timeout=180 + 5 * FLOWS,
            interval=0.5,
            what=f"round {rnd}'s flows (kills {kills}, plan {plan}) to promote",
        )
        wait_until(
            lambda: candidates_removed(cluster, env), timeout=60, what="the candidates' removal"
        )
    finally:
        if operators:
            operators[-1].stop()  # only the last can still run: every other one was killed
    # Every operator's log, the last one's SIGTERM stop included: a clean stop logs nothing.
    for operator in operators:
        log = operator.log_path.read_text()
        assert "Traceback" not in log, (operator.log_path, log[-3000:])
    return kills, outcomes_of(cluster, env, plan, kills, promoted, created)


def outcomes_of(
    cluster: LocalCluster,
    env: ChaosEnv,
    plan: RoundPlan,
    kills: list[Kill],
    promoted: dict[str, float],
    created: dict[int, float],
) -> list[Outcome]:
    finals = statuses(cluster, env.namespaces)
    jobs = names_by_namespace(cluster, "jobs")
    children = names_by_namespace(cluster, "deployments,services,configmaps")
    outcomes = []
    for i, ns in enumerate(env.namespaces):
        rnd = kills[0].round
        number, final = rnd * FLOWS + i, finals[ns]
        met = [k for k in kills if k.since_request[i] is not None]
        history = [(h["version"], h["outcome"]) for h in final["history"]]
        outcomes.append(
            Outcome(
                rnd,
                i,
                plan.request_in[i],
                met[0].since_request[i] or 0.0,
                [k.phases[i] for k in met],
                promoted[ns] - created[i],
                final_phase=final.get("phase", "-"),
                jobs=jobs.get(ns, []),
                expected_job=f"Job/{final['retraining']['jobName']}",
                children=children.get(ns, []),
                history_ok=history
                == [(CHAMPION, "Superseded"), (f"upsell:v2-m{number}", "Promoted")],
                handled_ok=final["handledRequests"] == [f"retrain=chaos-{number}"],
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


@pytest.mark.timeout(max(900, ROUNDS * ROUND_TIMEOUT_SECONDS))
def test_operator_killed_at_random_points_always_ends_promoted(
    local_cluster: LocalCluster, chaos: ChaosEnv, tmp_path: Path
) -> None:
    tally = Tally(kill_seed())
    where = f"seed {tally.seed}: rerun with {replay(tally.seed)}"
    # Printed first, so even a run that hangs can be replayed.
    print(
        f"\nchaos: {KILLS} operator kills, up to {KILLS_PER_ROUND} per round, x {FLOWS} flows "
        f"= {MOMENTS} kill moments; {where}"
    )
    plans = kill_plan(random.Random(tally.seed))
    try:
        for rnd, plan in enumerate(plans):
            began = time.monotonic()
            kills, outcomes = run_round(
                local_cluster, chaos, rnd, plan, len(tally.kills), tmp_path / f"{rnd}"
            )
            tally.kills += kills
            tally.moments += [moment for k in kills for moment in k.moments()]
            tally.outcomes += outcomes
            clean_up(local_cluster, chaos)
            tally.round_seconds.append(time.monotonic() - began)
    finally:
        report = soak_report(tally)
        print(report)
        if REPORT_PATH:
            Path(REPORT_PATH).parent.mkdir(parents=True, exist_ok=True)
            Path(REPORT_PATH).write_text(report)
    assert len(tally.kills) == KILLS and len(tally.moments) == MOMENTS, where
    assert len(tally.outcomes) == ROUNDS * FLOWS, where
    for o in tally.outcomes:
        assert o.jobs == [o.expected_job], (where, o)
        assert o.children == EXPECTED_CHILDREN, (where, o)
        assert o.history_ok and o.handled_ok and o.unwarranted_decisions == 0, (where, o)
    phases = {m.phase for m in tally.moments}
    if MOMENTS >= 20:
        # Which phase a moment falls in depends on the machine's speed; Promoting lasts about a
        # second, so a random run may miss it. Moments before and during the canary it may not.
        before = phases & {"-", "Pending", "Stable", "Retraining"}
        assert before and "Canary" in phases, f"moments should hit both, got {phases} ({where})"
