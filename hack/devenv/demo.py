"""The whole loop on one machine: `make demo` (`python -m devenv.demo`).

A local control plane whose pods really run (the pod runner), a real Prometheus, the real
operator (namespace-scoped, under the chart's RBAC), bento v1 trained and built into a local
store, and the README's example ModelDeployment with its intervals compressed to seconds. Then
Soom traffic flows through the router's Service with stable user ids, the data drifts
(`concept-drift`), and the operator detects it, retrains, canaries and promotes (or rolls back).
A line per change shows the story live; a markdown report with plots goes to `demo-report/`.
Everything is torn down at the end, whatever happens.

The end-to-end tests reuse the same pieces: `DemoEnvironment` (every process), `demo_manifest`
(the compressed example) and `run_story` (traffic, drift injection, following the loop).

    PYTHONPATH=operator:hack:bentos python -m devenv.demo [--bad-candidate] [--report DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from devenv.api_cases import example_manifest
from devenv.bento import REPO_ROOT, build_soom_bento
from devenv.cluster import LocalCluster
from devenv.demo_report import StoryReport, blast_radius, write_report
from devenv.demo_timeline import KeyFigures, Snapshot, key_figures, snapshot_of, timeline_line
from devenv.kube_api import KubeApi, KubeApiError
from devenv.operator import OperatorProcess, grant_operator_rbac
from devenv.pod_runner import PodRunner
from devenv.prometheus import LocalPrometheus
from devenv.traffic import TrafficDriver, TrafficPlan, TrafficRecord, read_log
from rollforward.naming import router_name

CRDS_DIR = REPO_ROOT / "crds"
GROUP_PATH = "/apis/rollforward.io/v1alpha1"
# Seconds-scale stand-ins for the example's minutes. After the pivot the model predicts
# `upgrade` for under 3% of users, and a chi-square test needs an expected count of 5 in that
# cell: about 200 predictions per window. Hence 25 req/s, a 20 s drift window (checked every
# 10 s, the spec's advice of interval >= window / 2) and canary steps of 25% for 40 s, then
# 50% for 20 s. The first pause must also outlast the candidate's start (`bentoml serve`
# takes ~15 s here under load): the step clock starts when the candidate is created, and a
# candidate not available when the step is judged fails it.
COMPRESSED_DRIFT = {
    "window": "20s",
    "interval": "10s",
    "minSamples": 100,
    "consecutiveBreaches": 2,
}
COMPRESSED_STEPS = [{"weight": 25, "pause": "40s"}, {"weight": 50, "pause": "20s"}]
COMPRESSED_MIN_REQUESTS = 20
# Error rate and latency are looked at every 2 s (the example's 5 s, compressed like the
# rest): with 1 s scrapes, a candidate failing half its requests at 25 req/s x 25% is seen and
# aborted within a few seconds of its first failure (bench-results/canary-abort.md).
COMPRESSED_ANALYSIS_INTERVAL = "2s"
FAULTY_RETRAIN = ["python", "-m", "devenv.faulty_retrain", "--scenario", "concept-drift"]


@dataclass(frozen=True)
class StoryPlan:
    """One run of the story: where, with which champion, and when the data drifts."""

    namespace: str
    champion_tag: str
    rate: float = 25.0
    users: int = 400
    baseline_seconds: float = 30.0
    # From the drift onset: give up after this long without a promotion or rollback.
    loop_timeout: float = 420.0
    # After a promotion, wait this long at most for drift to fall below threshold again.
    settle_timeout: float = 90.0
    bad_candidate: bool = False
    seed: int = 1


@dataclass
class StoryResult:
    plan: StoryPlan
    outcome: str
    snapshots: list[Snapshot]
    figures: KeyFigures
    records: list[TrafficRecord]
    traffic_log: Path
    traffic_offset: float
    total_seconds: float
    notes: list[str] = field(default_factory=list)
    significance: float | None = None

    def canary_window(self) -> Callable[[TrafficRecord], bool]:
        """Keeps the records sent while the canary certainly ran: from the first snapshot that
        showed it to the last one that still showed it (before promotion or rollback)."""
        start = self.figures.canary_started
        canary = [
            s.at
            for s in self.snapshots
            if start is not None
            and s.at >= start
            and s.step is not None
            and s.phase not in ("Promoting", "RolledBack")
        ]
        end = max(canary, default=None)
        offset = self.traffic_offset

        def inside(record: TrafficRecord) -> bool:
            at = record.elapsed + offset
            return start is not None and end is not None and start <= at <= end

        return inside

    def report(self, title: str) -> StoryReport:
        return StoryReport(
            title=title,
            outcome=self.outcome,
            figures=self.figures,
            snapshots=self.snapshots,
            records=self.records,
            traffic_offset=self.traffic_offset,
            total_seconds=self.total_seconds,
            notes=self.notes,
            significance=self.significance,
        )


def demo_manifest(
    example: dict[str, Any],
    *,
    namespace: str,
    champion_tag: str,
    prometheus_url: str,
    bad_candidate: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """The README's example, made runnable here; returns it with one note per change. Pure.

    The changes: the namespace; the champion serves the bento built for the demo, with one
    replica; the example's challenger is dropped (its bento is not built here), so the
    champion takes 100%; the Prometheus URL; drift, cooldown, canary pauses compressed from
    minutes to seconds. With `bad_candidate`, the retraining command builds a candidate that
    answers 503 to half its requests (`devenv.faulty_retrain`), and the cooldown is long so
    that the rolled-back champion stays put.
    """
    manifest = copy.deepcopy(example)
    spec = manifest["spec"]
    notes = [f"applied examples/modeldeployment.yaml into namespace {namespace}, with:"]
    manifest["metadata"]["namespace"] = namespace
    champion = next(v for v in spec["variants"] if v["role"] == "champion")
    dropped = [f"{v['name']} ({v['bento']})" for v in spec["variants"] if v is not champion]
    champion.update(bento=champion_tag, replicas=1, weight=100)
    spec["variants"] = [champion]
    notes.append(f"champion bento {champion_tag} (built from `baseline` data), 1 replica")
    if dropped:
        notes.append(f"challenger {', '.join(dropped)} dropped: no such bento is built here")
    spec["monitoring"]["prometheusUrl"] = prometheus_url
    notes.append(f"monitoring.prometheusUrl {prometheus_url} (the local Prometheus)")
    before = {k: spec["drift"].get(k) for k in COMPRESSED_DRIFT}
    spec["drift"].update(COMPRESSED_DRIFT)
    notes.append(f"drift {before} -> {COMPRESSED_DRIFT}")
    retraining = spec["retraining"]
    retraining["cooldown"] = "30m" if bad_candidate else "30s"
    retraining["maxPerDay"] = 3
    notes.append(f"retraining.cooldown 1h -> {retraining['cooldown']}")
    if bad_candidate:
        container = retraining["template"]["spec"]["containers"][0]
        container["command"] = FAULTY_RETRAIN
        pythonpath = ":".join(str(REPO_ROOT / p) for p in ("operator", "bentos", "hack"))
        container["env"] = [{"name": "PYTHONPATH", "value": pythonpath}]
        notes.append(
            "retraining command -> devenv.faulty_retrain: a real retrain whose bento answers "
            "503 to half of its requests (a deliberately bad candidate)"
        )
    rollout = spec["rollout"]
    notes.append(f"rollout.steps {rollout['steps']} -> {COMPRESSED_STEPS}")
    rollout["steps"] = copy.deepcopy(COMPRESSED_STEPS)
    rollout["analysis"]["minRequests"] = COMPRESSED_MIN_REQUESTS
    notes.append(
        f"rollout.analysis.minRequests {COMPRESSED_MIN_REQUESTS}; canary weights raised so "
        "that each step sees enough predictions of the rare label for a valid test"
    )
    before_interval = rollout["analysis"].get("interval")
    rollout["analysis"]["interval"] = COMPRESSED_ANALYSIS_INTERVAL
    notes.append(f"rollout.analysis.interval {before_interval} -> {COMPRESSED_ANALYSIS_INTERVAL}")
    return manifest, notes


class DemoEnvironment:
    """Every process of the demo, started in order and stopped in reverse (even on errors)."""

    def __init__(self, workdir: Path, namespaces: Sequence[str], say: Callable[[str], None]):
        self.workdir = workdir
        self.namespaces = list(namespaces)
        self.say = say
        self._stack = contextlib.ExitStack()
        self.cluster: LocalCluster
        self.prometheus: LocalPrometheus
        self.runner: PodRunner
        self.operator: OperatorProcess
        self.api: KubeApi
        self.store = workdir / "bentoml"

    def __enter__(self) -> DemoEnvironment:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.say("tearing down: operator, pod runner (and every pod process), Prometheus, cluster")
        self._stack.close()

    def _start(self) -> None:
        began = time.monotonic()
        self.say("starting the control plane (etcd, kube-apiserver, controller-manager, scheduler)")
        self.cluster = self._stack.enter_context(
            LocalCluster(self.workdir / "cluster", node_count=0)
        )
        self.cluster.install_crds(CRDS_DIR)
        kubeconfig = grant_operator_rbac(self.cluster, self.workdir / "operator")
        for namespace in self.namespaces:
            self.cluster.kubectl("create", "namespace", namespace)
            self.cluster.wait_for_service_account(namespace, "default")
        self.api = KubeApi(self.cluster.kubeconfig_path, self.workdir / "credentials")
        self.say("starting Prometheus (1 s scrapes) and the local pod runner")
        self.prometheus = self._stack.enter_context(LocalPrometheus(self.workdir / "prometheus"))
        self.runner = self._stack.enter_context(
            PodRunner(
                KubeApi(self.cluster.kubeconfig_path, self.workdir / "runner-credentials"),
                self.workdir / "runner",
                bentoml_home=self.store,
                scrape_targets=self.prometheus,
            )
        )
        self.say(f"starting the operator, watching {', '.join(self.namespaces)}")
        self.operator = self._stack.enter_context(
            OperatorProcess(kubeconfig, self.workdir / "operator", namespaces=self.namespaces)
        )
        self.say(f"environment up in {time.monotonic() - began:.0f} s")

    def build_champion(self) -> str:
        began = time.monotonic()
        self.say("training the Soom model on `baseline` data and building bento v1")
        tag = build_soom_bento(self.store)
        self.say(f"built {tag} in {time.monotonic() - began:.0f} s")
        return tag

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            body = self.api.get(f"{GROUP_PATH}/namespaces/{namespace}/modeldeployments/{name}")
        except KubeApiError:
            return {}
        status: dict[str, Any] = body.get("status") or {}
        return status

    def job_names(self, namespace: str) -> list[str]:
        items = self.api.items(f"/apis/batch/v1/namespaces/{namespace}/jobs")
        return sorted(str(j["metadata"]["name"]) for j in items)


class StoryTimeoutError(RuntimeError):
    """The loop did not reach the awaited state in time."""


class Follower:
    """Polls one ModelDeployment once a second, keeps every snapshot, prints each change."""

    def __init__(
        self,
        env: DemoEnvironment,
        namespace: str,
        name: str,
        steps: int,
        out: TextIO | None,
    ) -> None:
        self.env = env
        self.namespace = namespace
        self.name = name
        self.steps = steps
        self.out = out
        self.started = time.monotonic()
        self.snapshots: list[Snapshot] = []
        self.scenario = ""
        self._last: tuple[Any, ...] | None = None

    def now(self) -> float:
        return time.monotonic() - self.started

    def poll(self) -> Snapshot:
        status = self.env.status(self.namespace, self.name)
        snapshot = snapshot_of(status, self.now(), self.scenario, self.steps)
        self.snapshots.append(snapshot)
        if snapshot.change_key() != self._last:
            self._last = snapshot.change_key()
            self.show(timeline_line(snapshot))
        return snapshot

    def show(self, line: str) -> None:
        if self.out is not None:
            print(line, file=self.out, flush=True)

    def wait(self, condition: Callable[[Snapshot], bool], what: str, timeout: float) -> Snapshot:
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.poll()
            if condition(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                raise StoryTimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(1.0)

    def hold(self, seconds: float) -> None:
        """Keep following for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()
            time.sleep(1.0)


def run_story(
    env: DemoEnvironment,
    plan: StoryPlan,
    workdir: Path,
    out: TextIO | None = sys.stdout,
) -> StoryResult:
    """Apply the compressed example, drive traffic, inject drift, follow until promoted or
    rolled back (then, after a promotion, until drift is back below threshold)."""
    manifest, notes = demo_manifest(
        example_manifest(),
        namespace=plan.namespace,
        champion_tag=plan.champion_tag,
        prometheus_url=env.prometheus.url,
        bad_candidate=plan.bad_candidate,
    )
    name = str(manifest["metadata"]["name"])
    steps = len(manifest["spec"]["rollout"]["steps"])
    follower = Follower(env, plan.namespace, name, steps, out)
    for note in notes:
        follower.show(f"  - {note}")
    env.cluster.apply(manifest)
    follower.show(f"{follower.now():7.1f}s  applied ModelDeployment {plan.namespace}/{name}")
    follower.wait(lambda s: s.ready and s.phase == "Stable", "the champion to be Ready", 180)
    router = env.runner.service_address(plan.namespace, router_name(name))
    log = workdir / f"traffic-{plan.namespace}.jsonl"
    log.unlink(missing_ok=True)
    driver = TrafficDriver(
        TrafficPlan(
            url=f"http://{router}",
            rate=plan.rate,
            duration_seconds=3600,
            users=plan.users,
            seed=plan.seed,
            # Open-loop sending: enough in flight to keep the rate while a Job loads the CPU.
            concurrency=16,
        ),
        log,
    )
    traffic_offset = follower.now()
    follower.scenario = "baseline"
    follower.show(
        f"{follower.now():7.1f}s  traffic: {plan.rate:.0f} req/s from {plan.users} users "
        f"through the router's Service ({router}), scenario `baseline`"
    )
    driver.start()
    outcome = "Timeout"
    onset: float | None = None
    try:
        follower.hold(plan.baseline_seconds)
        driver.switch_scenario("concept-drift")
        follower.scenario = "concept-drift"
        onset = follower.now()
        follower.show(f"{onset:7.1f}s  >>> data drift injected: scenario `concept-drift`")
        try:
            final = follower.wait(
                lambda s: (
                    s.phase == "RolledBack"
                    or (s.phase == "Stable" and s.champion != plan.champion_tag)
                ),
                "a promotion or a rollback",
                plan.loop_timeout,
            )
            outcome = "Promoted" if final.phase == "Stable" else "RolledBack"
            follower.show(f"{follower.now():7.1f}s  >>> {outcome}: champion {final.champion}")
            if outcome == "Promoted":
                new = final.champion
                follower.wait(
                    lambda s: (
                        not s.drifted
                        and s.drift_outcome == "NoDrift"
                        and s.drift_version in (new, new.partition(":")[2])
                    ),
                    "drift against the new baseline to be back below threshold",
                    plan.settle_timeout,
                )
            else:
                follower.hold(15)
        except StoryTimeoutError as error:
            follower.show(f"{follower.now():7.1f}s  !!! {error}")
    finally:
        driver.stop()
    stats = driver.stats
    follower.show(
        f"{follower.now():7.1f}s  traffic stopped: {stats.completed} requests, "
        f"status {dict(stats.by_status)}, variants {dict(stats.by_variant)}"
    )
    return StoryResult(
        plan=plan,
        outcome=outcome,
        snapshots=follower.snapshots,
        figures=key_figures(follower.snapshots, onset),
        records=read_log(log),
        traffic_log=log,
        traffic_offset=traffic_offset,
        total_seconds=follower.now(),
        notes=notes,
        significance=manifest["spec"]["drift"].get("significance"),
    )


def print_figures(figures: KeyFigures, out: TextIO) -> None:
    def line(label: str, at: float | None) -> None:
        since = figures.since_onset(at)
        print(f"  {label:<44} {'never' if since is None else f'{since:6.1f} s'}", file=out)

    print("key figures (seconds after the drift onset):", file=out)
    line("drift detected (Drifted=True)", figures.detected)
    line("retraining Job created", figures.job_started)
    line("canary started", figures.canary_started)
    line("promoted", figures.promoted)
    line("rolled back", figures.rolled_back)
    line("drift back below threshold on the new baseline", figures.drift_cleared)


@contextlib.contextmanager
def _workdir(chosen: Path | None) -> Iterator[Path]:
    if chosen is not None:
        shutil.rmtree(chosen, ignore_errors=True)
        chosen.mkdir(parents=True)
        yield chosen
        return
    with tempfile.TemporaryDirectory(prefix="rollforward-demo-") as temporary:
        yield Path(temporary)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.demo", description=__doc__)
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "_out" / "demo")
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "demo-report")
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    parser.add_argument(
        "--bad-candidate",
        action="store_true",
        help="retrain into a candidate that answers 503 to half its requests (rolled back)",
    )
    args = parser.parse_args(argv)
    # SIGTERM tears down like Ctrl-C: every process the demo started is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    began = time.monotonic()
    out = sys.stdout

    def say(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", file=out, flush=True)

    namespace = "demo"
    with _workdir(args.workdir) as workdir, DemoEnvironment(workdir, [namespace], say) as env:
        champion = env.build_champion()
        plan = StoryPlan(
            namespace=namespace,
            champion_tag=champion,
            rate=args.rate,
            baseline_seconds=args.baseline_seconds,
            bad_candidate=args.bad_candidate,
        )
        say("the story (time since the ModelDeployment was applied):")
        result = run_story(env, plan, workdir, out)
        result.total_seconds = time.monotonic() - began
        print_figures(result.figures, out)
        figures = result.figures
        radius = blast_radius(
            result.records, result.traffic_offset, figures.rolled_back or figures.promoted
        )
        print(
            f"blast radius: the candidate answered {radius.served} requests, {radius.failed} "
            f"failed; first failure to the last: {radius.seconds_failing()} s, to the end of "
            f"the canary: {radius.seconds_to_end()} s",
            file=out,
        )
        path = write_report(result.report("Rollforward demo"), args.report)
        shutil.copy(result.traffic_log, args.report / "traffic.jsonl")
        say(f"report: {path} (with drift.png, split.png, versions.png)")
    say(f"done: {result.outcome} in {time.monotonic() - began:.0f} s, everything stopped")
    expected = "RolledBack" if args.bad_candidate else "Promoted"
    return 0 if result.outcome == expected else 1


if __name__ == "__main__":
    sys.exit(main())
