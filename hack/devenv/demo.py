"""The whole loop on one machine: `make demo` (`python -m devenv.demo`).

A real node (containerd, kubelet, kube-proxy, CoreDNS) with the control plane in a network
namespace of its own, Prometheus discovering pods through the API server, the S3 bento store
holding `upsell:v1` and `upsell:v1-gbm`, and the operator as a pod installed by Helm
(`devenv.demo_env`). The README's example ModelDeployment is applied with its intervals
compressed to seconds: champion and challenger serve from the bento-runtime image behind the
nginx router pod. Then Soom traffic flows through the router's ClusterIP Service with stable
user ids, the data drifts (`concept-drift`), and the operator detects it, runs a retraining Job
in the trainer image, canaries and promotes (or rolls back). Meanwhile the traffic sends each
prediction's true label to /feedback seconds later (`devenv.feedback_sender`), and the
operator's A/B experiment of the challenger against the champion (spec.experiment) runs to a
verdict; the story goes on at the end until it has one (`--verdict-timeout`). A line per
change shows the story live, with `kubectl get pods -o wide` at each milestone; a markdown
report with plots (drift, split, versions, realized and estimated quality, the experiment's
effect and interval) goes to `demo-report/`. Everything is torn down at the end, whatever
happens.

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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from devenv.api_cases import example_manifest
from devenv.bento import REPO_ROOT
from devenv.demo_env import DemoEnvironment
from devenv.demo_report import REPORT_PLOTS, StoryReport, blast_radius, write_report
from devenv.demo_timeline import (
    KeyFigures,
    PodTable,
    Snapshot,
    experiment_text,
    key_figures,
    milestone_of,
    snapshot_of,
    timeline_line,
    verdicts,
)
from devenv.feedback_sender import FeedbackPlan, FeedbackStats
from devenv.traffic import TrafficDriver, TrafficPlan, TrafficRecord, read_log
from rollforward.api import annotations as steering
from rollforward.naming import router_name

__all__ = [
    "DemoEnvironment",
    "StoryPlan",
    "StoryResult",
    "demo_manifest",
    "logs_retraining_request",
    "run_story",
]
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
# Error rate and latency are looked at every 1 s, the scrape interval (the example's 5 s,
# compressed like the rest; looks every 2 s let the bad candidate fail 22 requests in a
# clean-clone run, over the 20 the e2e allows): a candidate failing half its requests at
# 25 req/s x 25% is seen and aborted within a few seconds of its first failure
# (bench-results/canary-abort.md).
COMPRESSED_ANALYSIS_INTERVAL = "1s"
# On the real node a candidate is a fresh container sharing two busy cores with the Job that
# just built it: its p99 over a 40 s step was twice the warm champion's (486 ms vs 248 ms) in
# two runs, and the example's 1.5 rolled a healthy candidate back each time.
DEMO_MAX_LATENCY_RATIO = 3.0
# The bad candidate's retraining entrypoint, mounted from a ConfigMap into the trainer image.
# Realized quality and the A/B experiment, compressed like the rest. The traffic driver sends
# each prediction's true label back (the generator's 90-day horizon in FEEDBACK_HORIZON
# seconds); quality is read every 10 s. The experiment compares the outcome rate of the
# challenger (10% of users, ~2.5 labelled predictions/s at 25 req/s) with the champion's. The
# model does not change whether a synthetic user upgrades, so the true effect is 0 and the
# honest verdict is NoDifference; it comes when the always-valid interval lies inside
# +-minEffect. With outcome rates near 0.3 and alpha 0.1, the interval's half-width is about
# 8.6 points after 250 challenger labels (~100 s of traffic) and 7.1 after 400, so a
# minEffect of 15 points is reached in about two minutes of labels, before the promotion
# restarts the experiment for the new champion version (the 2-point minEffect of production
# needs days of traffic: `make bench-experiment`). minSamples 100 per variant;
# maxDuration 10m bounds the run (Inconclusive past it). labelHorizon 10s, the first quality
# interval past the 8 s horizon: counting starts when every label arriving comes from the
# versions under test, for both arms alike (a version's first labels are all upgrades).
FEEDBACK_HORIZON = 8.0
DEMO_QUALITY = {"positiveLabel": "upgrade", "interval": "10s"}
DEMO_EXPERIMENT: dict[str, str | float] = {
    "metric": "outcomeRate",
    "minEffect": 0.15,
    "alpha": 0.1,
    "minSamples": 100,
    "maxDuration": "10m",
    "labelHorizon": "10s",
}
# Retraining on what the story's traffic logged: the example's entrypoint on the prediction log
# (the bentos append every prediction and every /feedback label to the S3 bento store), from the
# drift onset when the operator names one, else the last day; fewer than LOGS_MIN_LABELLED
# labelled records fail the Job with the reason. Not the happy story's own Job: ~20 s after the
# onset the log holds a few hundred labelled post-drift records, and a candidate trained on them
# rarely passes notWorseThanChampion (README, "Retraining on logged data").
LOGS_MIN_LABELLED = 500
LOGS_RETRAIN = ["python", "-m", "upsell.retrain", "--source", "logs", "--since-drift",
                "--window-days", "1", "--min-labelled", str(LOGS_MIN_LABELLED)]  # fmt: skip
FAULTY_RETRAIN_SOURCE = REPO_ROOT / "hack" / "devenv" / "faulty_retrain.py"
FAULTY_RETRAIN_CONFIGMAP = "faulty-retrain"
FAULTY_RETRAIN_DIR = "/opt/rollforward-demo"
FAULTY_RETRAIN = ["python", f"{FAULTY_RETRAIN_DIR}/faulty_retrain.py", "--scenario",
                  "concept-drift"]  # fmt: skip


@dataclass(frozen=True)
class StoryPlan:
    """One run of the story: where, with which champion, and when the data drifts."""

    namespace: str
    champion_tag: str = "upsell:v1"
    rate: float = 25.0
    users: int = 400
    baseline_seconds: float = 30.0
    # From the drift onset: give up after this long without a promotion or rollback.
    loop_timeout: float = 420.0
    # After a promotion, wait this long at most for drift to fall below threshold again.
    settle_timeout: float = 90.0
    bad_candidate: bool = False
    seed: int = 1
    # At the end, keep traffic and labels flowing this long at most until the A/B experiment
    # has reached a verdict (0: do not wait).
    verdict_timeout: float = 0.0
    # Quality, the A/B experiment and delayed /feedback labels in the story.
    outcomes: bool = False


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
    pod_tables: list[PodTable] = field(default_factory=list)
    feedback: FeedbackStats | None = None
    min_effect: float | None = None
    """The experiment's minEffect, drawn on its plot."""

    def failed_requests(self) -> list[TrafficRecord]:
        """Requests answered >= 500 or not at all (connection errors, timeouts), except the
        503s a bad candidate answers on purpose."""
        return [r for r in self.records if _lost(r, self.plan.bad_candidate)]

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
            pod_tables=self.pod_tables,
            feedback=self.feedback,
            min_effect=self.min_effect,
        )


def demo_manifest(
    example: dict[str, Any], *, namespace: str, bad_candidate: bool = False, outcomes: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """The README's example, made runnable here; returns it with one note per change. Pure.

    The changes: the namespace; the champion runs one replica (two cores); drift, cooldown,
    canary pauses compressed from minutes to seconds. The bentos (`upsell:v1`, challenger
    `upsell:v1-gbm`), the images, the sticky split and the Prometheus URL stay the example's.
    With `bad_candidate`, the retraining command builds a candidate that answers 503 to half
    its requests (`devenv.faulty_retrain`, mounted from a ConfigMap into the trainer image),
    and the cooldown is long so that the rolled-back champion stays put. With `outcomes`,
    spec.quality and spec.experiment are added (DEMO_QUALITY, DEMO_EXPERIMENT).
    """
    manifest = copy.deepcopy(example)
    spec = manifest["spec"]
    notes = [f"applied examples/modeldeployment.yaml into namespace {namespace}, with:"]
    manifest["metadata"]["namespace"] = namespace
    champion = next(v for v in spec["variants"] if v["role"] == "champion")
    notes.append(f"champion {champion['bento']}: replicas {champion['replicas']} -> 1")
    champion["replicas"] = 1
    before = {k: spec["drift"].get(k) for k in COMPRESSED_DRIFT}
    spec["drift"].update(COMPRESSED_DRIFT)
    notes.append(f"drift {before} -> {COMPRESSED_DRIFT}")
    retraining = spec["retraining"]
    retraining["cooldown"] = "30m" if bad_candidate else "30s"
    retraining["maxPerDay"] = 3
    notes.append(f"retraining.cooldown 1h -> {retraining['cooldown']}")
    if bad_candidate:
        pod = retraining["template"]["spec"]
        container = pod["containers"][0]
        container["command"] = FAULTY_RETRAIN
        container["volumeMounts"] = [{"name": "faulty-retrain", "mountPath": FAULTY_RETRAIN_DIR}]
        pod["volumes"] = [
            {"name": "faulty-retrain", "configMap": {"name": FAULTY_RETRAIN_CONFIGMAP}}
        ]
        notes.append(
            "retraining command -> devenv.faulty_retrain (ConfigMap faulty-retrain, in the "
            "trainer image): a real retrain whose bento answers 503 to half of its requests "
            "(a deliberately bad candidate)"
        )
    rollout = spec["rollout"]
    notes.append(f"rollout.steps {rollout['steps']} -> {COMPRESSED_STEPS}")
    rollout["steps"] = copy.deepcopy(COMPRESSED_STEPS)
    rollout["analysis"]["minRequests"] = COMPRESSED_MIN_REQUESTS
    notes.append(
        f"rollout.analysis.minRequests {COMPRESSED_MIN_REQUESTS}; canary weights raised so "
        "that each step sees enough predictions of the rare label for a valid test"
    )
    before_ratio = rollout["analysis"].get("maxLatencyRatio")
    rollout["analysis"]["maxLatencyRatio"] = DEMO_MAX_LATENCY_RATIO
    notes.append(
        f"rollout.analysis.maxLatencyRatio {before_ratio} -> {DEMO_MAX_LATENCY_RATIO}: a fresh "
        "candidate container on two shared cores answers its first requests slowly"
    )
    before_interval = rollout["analysis"].get("interval")
    rollout["analysis"]["interval"] = COMPRESSED_ANALYSIS_INTERVAL
    notes.append(f"rollout.analysis.interval {before_interval} -> {COMPRESSED_ANALYSIS_INTERVAL}")
    if not outcomes:
        return manifest, notes
    spec["quality"] = copy.deepcopy(DEMO_QUALITY)
    spec["experiment"] = copy.deepcopy(DEMO_EXPERIMENT)
    notes.append(
        f"quality {DEMO_QUALITY} and experiment {DEMO_EXPERIMENT} added: the traffic sends each "
        f"true label to /feedback, the 90-day label horizon compressed to {FEEDBACK_HORIZON:g} s; "
        "a 15-point minEffect is what ~2.5 labelled challenger predictions/s can settle in "
        "about two minutes (production's 2 points needs days)"
    )
    return manifest, notes


def logs_retraining_request(manifest: dict[str, Any], request: str) -> dict[str, Any]:
    """A merge patch asking the ModelDeployment `manifest` (as the API server returns it) for
    one retraining from the prediction log (LOGS_RETRAIN), by the rollforward.io/retrain
    annotation with the value `request`. Pure."""
    template = copy.deepcopy(manifest["spec"]["retraining"]["template"])
    template["spec"]["containers"][0]["command"] = list(LOGS_RETRAIN)
    return {
        "metadata": {"annotations": {steering.RETRAIN: request}},
        "spec": {"retraining": {"template": template}},
    }


def _lost(record: TrafficRecord, bad_candidate: bool) -> bool:
    if bad_candidate and record.status == 503 and record.variant == "candidate":
        return False
    return record.status == 0 or record.status >= 500


def faulty_retrain_configmap(namespace: str) -> dict[str, Any]:
    """The bad candidate's entrypoint (hack/devenv/faulty_retrain.py) as a ConfigMap, which
    its retraining Job mounts into the trainer image. Reads the file."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": FAULTY_RETRAIN_CONFIGMAP, "namespace": namespace},
        "data": {"faulty_retrain.py": FAULTY_RETRAIN_SOURCE.read_text()},
    }


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
        self.pod_tables: list[PodTable] = []
        self.scenario = ""
        self.champion_before = ""
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
        self.champion_before = self.champion_before or snapshot.champion
        milestone = milestone_of(snapshot, self.champion_before)
        if milestone is not None and all(t.milestone != milestone for t in self.pod_tables):
            self.show_pods(milestone)
        return snapshot

    def show_pods(self, milestone: str) -> None:
        """Show and keep `kubectl get pods -o wide` for a milestone reached just now."""
        table = PodTable(milestone, round(self.now(), 1), self.env.pods_wide(self.namespace))
        self.pod_tables.append(table)
        command = f"kubectl get pods -n {self.namespace} -o wide"
        self.show(f"{table.at:7.1f}s  $ {command}  # {milestone}")
        for line in table.text.splitlines():
            self.show(f"           {line}")

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
        bad_candidate=plan.bad_candidate,
        outcomes=plan.outcomes,
    )
    if plan.bad_candidate:
        env.cluster.apply(faulty_retrain_configmap(plan.namespace))
    name = str(manifest["metadata"]["name"])
    steps = len(manifest["spec"]["rollout"]["steps"])
    follower = Follower(env, plan.namespace, name, steps, out)
    for note in notes:
        follower.show(f"  - {note}")
    env.cluster.apply(manifest)
    follower.show(f"{follower.now():7.1f}s  applied ModelDeployment {plan.namespace}/{name}")
    follower.wait(lambda s: s.ready and s.phase == "Stable", "the champion to be Ready", 180)
    router = env.service_address(plan.namespace, router_name(name))
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
            # The Service's ClusterIP exists only inside the node's network namespace.
            netns=str(env.node.netns.path),
            # Each answered prediction's true label, to /feedback when the generator says it
            # is known: what spec.quality and spec.experiment count.
            feedback=feedback_plan(manifest),
        ),
        log,
    )
    traffic_offset = follower.now()
    follower.scenario = "baseline"
    follower.show(
        f"{follower.now():7.1f}s  traffic: {plan.rate:.0f} req/s from {plan.users} users "
        f"through the router's ClusterIP Service ({router}, from inside the node's network "
        "namespace), scenario `baseline`"
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
        await_verdict(follower, plan.verdict_timeout if plan.outcomes else 0.0)
    finally:
        driver.stop()
    stats = driver.stats
    follower.show(
        f"{follower.now():7.1f}s  traffic stopped: {stats.completed} requests, "
        f"status {dict(stats.by_status)}, variants {dict(stats.by_variant)}"
    )
    if driver.feedback is not None:
        follower.show(f"{follower.now():7.1f}s  feedback: {driver.feedback.stats}")
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
        pod_tables=follower.pod_tables,
        feedback=driver.feedback.stats if driver.feedback is not None else None,
        min_effect=(manifest["spec"].get("experiment") or {}).get("minEffect"),
    )


def feedback_plan(manifest: dict[str, Any]) -> FeedbackPlan | None:
    """Labels for a ModelDeployment with spec.quality, pinned to its champion variant (the
    one with the most capacity; any variant's bento reads any id). Pure."""
    spec = manifest["spec"]
    if "quality" not in spec:
        return None
    champion = next(v["name"] for v in spec["variants"] if v["role"] == "champion")
    pin_header = str(spec.get("traffic", {}).get("pinHeader", "x-rollforward-pin"))
    return FeedbackPlan(FEEDBACK_HORIZON, pin=(pin_header, champion))


def await_verdict(follower: Follower, timeout: float) -> None:
    """Follow on (traffic and labels still flowing) until the experiment has concluded, for
    `timeout` seconds at most; a story without a verdict is reported, not failed."""
    if timeout <= 0 or verdicts(follower.snapshots):
        return
    follower.show(f"{follower.now():7.1f}s  waiting for the A/B experiment's verdict")
    try:
        follower.wait(lambda _: bool(verdicts(follower.snapshots)), "a verdict", timeout)
    except StoryTimeoutError as error:
        follower.show(f"{follower.now():7.1f}s  !!! {error}")


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
    line("no drift that matters on the new baseline", figures.drift_cleared)


def print_experiment(result: StoryResult, out: TextIO) -> None:
    """Each verdict the A/B experiment reached, and what became of the labels sent."""
    concluded = verdicts(result.snapshots)
    for at, point in concluded:
        print(f"A/B experiment at {at:.1f} s: {experiment_text(point)}", file=out)
    if not concluded:
        last = next((s.experiment for s in reversed(result.snapshots) if s.experiment), None)
        shown = experiment_text(last) if last is not None else "never looked"
        print(f"A/B experiment: no verdict; last look {shown}", file=out)
    if result.feedback is not None:
        print(f"feedback labels: {result.feedback}", file=out)


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
        "--verdict-timeout",
        type=float,
        default=180.0,
        help="seconds to keep going at the end until the A/B experiment has a verdict",
    )
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
        plan = StoryPlan(
            namespace=namespace,
            rate=args.rate,
            baseline_seconds=args.baseline_seconds,
            bad_candidate=args.bad_candidate,
            verdict_timeout=args.verdict_timeout,
            outcomes=True,
        )
        say("the story (time since the ModelDeployment was applied):")
        result = run_story(env, plan, workdir, out)
        result.total_seconds = time.monotonic() - began
        print_figures(result.figures, out)
        print_experiment(result, out)
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
        failed = result.failed_requests()
        print(
            f"failed requests (>= 500 or no answer, not counting a bad candidate's own 503s): "
            f"{len(failed)} of {len(result.records)}, by status "
            f"{dict(Counter(r.status for r in failed))}",
            file=out,
        )
        path = write_report(result.report("Rollforward demo"), args.report)
        shutil.copy(result.traffic_log, args.report / "traffic.jsonl")
        say(f"report: {path} (with {', '.join(REPORT_PLOTS)})")
    say(f"done: {result.outcome} in {time.monotonic() - began:.0f} s, everything stopped")
    expected = "RolledBack" if args.bad_candidate else "Promoted"
    return 0 if result.outcome == expected else 1


if __name__ == "__main__":
    sys.exit(main())
