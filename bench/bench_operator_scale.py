"""The operator's latency and memory on the local control plane, for 1 and for N (300,
1,000) ModelDeployments created at once, on 1 or more shards.

One fresh LocalCluster (3 kwok nodes), a real (empty) Prometheus that every resource points
at, and the real operator (`rollforward run --all-namespaces`) under exactly the chart's RBAC.
The bench watches the API itself and stamps every event on arrival with its own monotonic
clock, so all figures share one clock and are finer than the API's 1-s timestamps:

- apply -> children: from the start of `kubectl apply` to the arrival of the last of the
  resource's 7 children (3 Deployments, 3 Services, the router ConfigMap); and, isolating
  the operator, from the arrival of the ModelDeployment's own ADDED event to that moment;
- apply -> Ready: to the first event whose Ready condition is True for the current generation;
- peak RSS: VmHWM of the operator process and any descendants.

Baselines come from the same run, and do the operator's work without it: a `kubectl apply`
of the very children the operator would write (the operator's own pure planner renders them,
labelled so the operator ignores them), timed the same way. Before each single-resource
trial, its 7 children; before the N at once, the N x 7 children in one List, to their
arrival and to every Deployment Available: the physical limit of this control plane for
this work. The operator's figures are reported as ratios to them.

Each kwok node's pod capacity is sized to the pods of the run (baseline and operator;
kwok keeps the capacity it finds); the nodes stay fake either way.

    PYTHONPATH=operator:tests python bench/bench_operator_scale.py
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import math
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from devenv.api_cases import example_manifest
from devenv.cluster import REPO_ROOT, LocalCluster
from devenv.operator import IMAGE_ENV, OperatorProcess, grant_operator_rbac
from devenv.processes import wait_until
from devenv.prometheus import LocalPrometheus
from rollforward.api import parse_model_deployment
from rollforward.observed import Observed
from rollforward.serving_plan import plan_serving
from rollforward.settings import OperatorSettings

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
OWNER_LABEL = "rollforward.io/model-deployment"
BASELINE_LABEL = "bench.rollforward.io/baseline"
CHILDREN_PER_RESOURCE = 7
SINGLE_NAMESPACE = "bench-one"
SCALE_NAMESPACE = "bench-scale"
BASELINE_NAMESPACE = "bench-baseline"
BASELINE_MANAGER = "bench-baseline"
NODES = 3

TARGET_SINGLE_P50_SECONDS = 1.0
TARGET_ALL_READY_SECONDS = 120.0
TARGET_RSS_MB = 300.0


# --- what the bench saw, stamped on arrival -------------------------------------------------


@dataclass
class Arrivals:
    """First arrival (bench monotonic clock) of every event the bench cares about.

    Written by the watch threads, read by the main thread; one lock guards it all.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    added: dict[tuple[str, str], float] = field(default_factory=dict)
    ready: dict[tuple[str, str], float] = field(default_factory=dict)
    children: dict[tuple[str, str], dict[tuple[str, str], float]] = field(default_factory=dict)
    available: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    baseline: dict[tuple[str, str], float] = field(default_factory=dict)

    def children_done(self, key: tuple[str, str]) -> float | None:
        """When the last of the resource's children arrived, once all have."""
        with self.lock:
            seen = self.children.get(key, {})
            return max(seen.values()) if len(seen) >= CHILDREN_PER_RESOURCE else None

    def ready_at(self, key: tuple[str, str]) -> float | None:
        with self.lock:
            return self.ready.get(key)

    def added_at(self, key: tuple[str, str]) -> float | None:
        with self.lock:
            return self.added.get(key)

    def available_done(self, key: tuple[str, str], deployments: int = 3) -> float | None:
        with self.lock:
            seen = self.available.get(key, {})
            return max(seen.values()) if len(seen) >= deployments else None

    def baseline_at(self, key: tuple[str, str]) -> float | None:
        with self.lock:
            return self.baseline.get(key)


def _is_ready(body: dict[str, Any]) -> bool:
    generation = body.get("metadata", {}).get("generation")
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return bool(condition.get("observedGeneration", generation) == generation)
    return False


def _is_available(body: dict[str, Any]) -> bool:
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


def record_model_deployment(arrivals: Arrivals, kind: str, body: dict[str, Any], at: float) -> None:
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    with arrivals.lock:
        arrivals.added.setdefault(key, at)
        if _is_ready(body):
            arrivals.ready.setdefault(key, at)


def record_child(arrivals: Arrivals, kind: str, body: dict[str, Any], at: float) -> None:
    metadata = body["metadata"]
    labels = metadata.get("labels") or {}
    with arrivals.lock:
        owner = labels.get(OWNER_LABEL)
        if owner is None:
            return
        key = (metadata["namespace"], owner)
        arrivals.children.setdefault(key, {}).setdefault((kind, metadata["name"]), at)
        if kind == "Deployment" and _is_available(body):
            arrivals.available.setdefault(key, {}).setdefault(metadata["name"], at)


Handler = Callable[[Arrivals, str, dict[str, Any], float], None]


@dataclass(frozen=True)
class WatchedResource:
    kind: str
    path: str
    selector: str | None
    handler: Handler


def watched_resources() -> list[WatchedResource]:
    return [
        WatchedResource(
            "ModelDeployment",
            "/apis/rollforward.io/v1alpha1/modeldeployments",
            None,
            record_model_deployment,
        ),
        WatchedResource("Deployment", "/apis/apps/v1/deployments", None, record_child),
        WatchedResource("Service", "/api/v1/services", None, record_child),
        WatchedResource("ConfigMap", "/api/v1/configmaps", None, record_child),
    ]


class WatchExpiredError(Exception):
    """The API server ended a watch with an ERROR event (e.g. 410 Gone)."""


class ApiWatcher:
    """Cluster-wide watches as the admin, one thread per resource, stamping arrivals."""

    def __init__(self, cluster: LocalCluster, arrivals: Arrivals) -> None:
        self.cluster = cluster
        self.arrivals = arrivals
        self._started: list[str] = []
        self._stopped = threading.Event()

    def start(self) -> ApiWatcher:
        resources = watched_resources()
        for resource in resources:
            threading.Thread(target=self._watch, args=(resource,), daemon=True).start()
        wait_until(lambda: len(self._started) == len(resources), 30, what="the bench's watches")
        return self

    def stop(self) -> None:
        """Let the watch threads end quietly when the cluster goes away."""
        self._stopped.set()

    def _session(self) -> requests.Session:
        session = requests.Session()
        # Else REQUESTS_CA_BUNDLE from the environment would override the cluster's CA.
        session.trust_env = False
        session.verify = str(self.cluster.ca_path)
        cert, key = self.cluster.admin_client_cert
        session.cert = (str(cert), str(key))
        return session

    def _watch(self, resource: WatchedResource) -> None:
        """List, then watch from the list's version; on a dropped stream resume from the last
        version seen, and on an expired one (410) list again. Only first arrivals count, so
        seeing an object twice is harmless."""
        session = self._session()
        params = {"labelSelector": resource.selector} if resource.selector else {}
        version = self._list(session, resource, params)
        self._started.append(resource.kind)
        while not self._stopped.is_set():
            try:
                version = self._stream(session, resource, params, version)
            except (requests.RequestException, OSError):
                time.sleep(0.2)
            except WatchExpiredError:
                version = self._list(session, resource, params)

    def _list(
        self, session: requests.Session, resource: WatchedResource, params: dict[str, str]
    ) -> str:
        url = f"{self.cluster.server_url}{resource.path}"
        deadline = time.monotonic() + 60
        while True:
            # A CRD just established can answer 429 for a moment.
            try:
                listed = session.get(url, params=params, timeout=30)
                listed.raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        body = listed.json()
        at = time.monotonic()
        for item in body["items"]:
            resource.handler(self.arrivals, resource.kind, item, at)
        version: str = body["metadata"]["resourceVersion"]
        return version

    def _stream(
        self,
        session: requests.Session,
        resource: WatchedResource,
        params: dict[str, str],
        version: str,
    ) -> str:
        query = {**params, "watch": "1", "resourceVersion": version, "timeoutSeconds": "3600"}
        url = f"{self.cluster.server_url}{resource.path}"
        with session.get(url, params=query, stream=True, timeout=(10, 3700)) as response:
            for line in response.iter_lines():
                at = time.monotonic()
                if not line:
                    continue
                event = json.loads(line)
                body = event["object"]
                if event["type"] == "ERROR":
                    raise WatchExpiredError(f"watch of {resource.kind} ended: {body}")
                version = body["metadata"]["resourceVersion"]
                if event["type"] in ("ADDED", "MODIFIED"):
                    resource.handler(self.arrivals, resource.kind, body, at)
        return version


# --- the operator's memory ------------------------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def process_tree(root: int) -> list[int]:
    """`root` and every descendant, from /proc's parent links."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = [root]
    for pid in tree:
        tree.extend(child for child, parent in parents.items() if parent == pid)
    return tree


class MemorySampler:
    """Samples the operator tree's RSS twice a second; VmHWM per process is the true peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_kb = 0
        self.hwm_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def sample(self) -> None:
        pids = process_tree(self.pid)
        self.peak_rss_kb = max(self.peak_rss_kb, sum(_status_kb(p, "VmRSS") for p in pids))
        for pid in pids:
            self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), _status_kb(pid, "VmHWM"))

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        """Sum of every process's high-water mark (an upper bound on the tree's peak)."""
        return sum(self.hwm_kb.values()) / 1024


# --- manifests ------------------------------------------------------------------------------


def model_deployment(namespace: str, name: str, prometheus_url: str) -> dict[str, Any]:
    """The README example, one replica per variant (as the integration tests run it)."""
    manifest = copy.deepcopy(example_manifest())
    manifest["metadata"] = {"name": name, "namespace": namespace}
    manifest["spec"]["variants"][0]["replicas"] = 1
    manifest["spec"]["monitoring"]["prometheusUrl"] = prometheus_url
    return manifest


def baseline_children(namespace: str, name: str, prometheus_url: str) -> list[dict[str, Any]]:
    """The 7 children the operator would write for this resource, rendered by its own pure
    planner, without owner and under another manager label, so the operator ignores them."""
    body = model_deployment(namespace, name, prometheus_url)
    body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    deployment = parse_model_deployment(body)
    plan = plan_serving(deployment, Observed(), OperatorSettings(), datetime.now(UTC))
    children = []
    for manifest in copy.deepcopy(plan.apply):
        metadata = manifest["metadata"]
        metadata.pop("ownerReferences", None)
        metadata["labels"] = {**metadata.get("labels", {}), MANAGED_BY_LABEL: BASELINE_MANAGER}
        metadata["labels"][BASELINE_LABEL] = "true"
        children.append(manifest)
    assert len(children) == CHILDREN_PER_RESOURCE, [c["kind"] for c in children]
    return children


def pods_per_resource(prometheus_url: str) -> int:
    children = baseline_children("x", "x", prometheus_url)
    return sum(int(c["spec"].get("replicas", 1)) for c in children if c["kind"] == "Deployment")


def as_list(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


# --- figures --------------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Distribution:
    values: list[float]

    @property
    def p50(self) -> float:
        return quantile(self.values, 0.5)

    @property
    def p95(self) -> float:
        return quantile(self.values, 0.95)

    @property
    def max(self) -> float:
        return max(self.values)

    def row(self, label: str) -> str:
        return (
            f"| {label} | {len(self.values)} | {self.p50:.3f} | {self.p95:.3f} | {self.max:.3f} |"
        )


@dataclass
class SingleTrials:
    apply_to_children: list[float] = field(default_factory=list)
    added_to_children: list[float] = field(default_factory=list)
    apply_to_ready: list[float] = field(default_factory=list)
    baseline_apply_to_seen: list[float] = field(default_factory=list)
    kubectl_seconds: list[float] = field(default_factory=list)


@dataclass
class ScaleRun:
    count: int
    kubectl_seconds: float
    apply_to_children: list[float]
    added_to_children: list[float]
    apply_to_ready: list[float]
    available_to_ready: list[float]
    children_to_available: list[float]
    all_children_seconds: float | None
    all_available_seconds: float | None
    all_ready_seconds: float | None
    timeout_seconds: float


APPLY_TIMEOUT_SECONDS = 1800.0


def timed_apply(cluster: LocalCluster, manifest: dict[str, Any]) -> tuple[float, float]:
    """(monotonic start, duration) of one `kubectl apply`."""
    started = time.monotonic()
    # A List of thousands of objects takes minutes on 2 cores, beyond kubectl's usual limit.
    cluster.apply(manifest, timeout=APPLY_TIMEOUT_SECONDS)
    return started, time.monotonic() - started


def wait_for(probe: Callable[[], float | None], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the bench waited too long")
        time.sleep(0.02)
    return value


def run_single_trials(
    cluster: LocalCluster, arrivals: Arrivals, prometheus_url: str, trials: int
) -> SingleTrials:
    """One resource at a time, each to Ready, with a baseline apply of its 7 children
    (another namespace) before each."""
    result = SingleTrials()
    for index in range(trials):
        direct = (BASELINE_NAMESPACE, f"single-{index:03d}")
        started, _ = timed_apply(cluster, as_list(baseline_children(*direct, prometheus_url)))
        seen = wait_for(functools.partial(arrivals.children_done, direct), 60)
        result.baseline_apply_to_seen.append(seen - started)

        key = (SINGLE_NAMESPACE, f"single-{index:03d}")
        started, took = timed_apply(cluster, model_deployment(*key, prometheus_url))
        result.kubectl_seconds.append(took)
        done = wait_for(functools.partial(arrivals.children_done, key), 120)
        ready = wait_for(functools.partial(arrivals.ready_at, key), 180)
        added = arrivals.added_at(key)
        assert added is not None
        result.apply_to_children.append(done - started)
        result.added_to_children.append(done - added)
        result.apply_to_ready.append(ready - started)
    return result


@dataclass(frozen=True)
class BaselineRun:
    """`kubectl apply` of the N x 7 children directly: the control plane's own limit."""

    kubectl_seconds: float
    all_children_seconds: float | None
    all_available_seconds: float | None


def run_baseline(
    cluster: LocalCluster, arrivals: Arrivals, prometheus_url: str, count: int, timeout: float
) -> BaselineRun:
    keys = [(BASELINE_NAMESPACE, f"scale-{index:04d}") for index in range(count)]
    children = [c for key in keys for c in baseline_children(*key, prometheus_url)]
    started, took = timed_apply(cluster, as_list(children))
    deadline = started + timeout
    while time.monotonic() < deadline and not all(arrivals.available_done(k) for k in keys):
        time.sleep(0.1)

    def latest(probe: Callable[[tuple[str, str]], float | None]) -> float | None:
        values = [probe(key) for key in keys]
        return None if None in values else max(v for v in values if v is not None) - started

    return BaselineRun(took, latest(arrivals.children_done), latest(arrivals.available_done))


def run_scale(
    cluster: LocalCluster, arrivals: Arrivals, prometheus_url: str, count: int, timeout: float
) -> ScaleRun:
    """`count` resources in one `kubectl apply` of a List; wait until every one is Ready."""
    keys = [(SCALE_NAMESPACE, f"scale-{index:04d}") for index in range(count)]
    manifests = [model_deployment(*key, prometheus_url) for key in keys]
    started, took = timed_apply(cluster, as_list(manifests))
    deadline = started + timeout
    while time.monotonic() < deadline and not all(arrivals.ready_at(k) for k in keys):
        time.sleep(0.1)

    def latest(probe: Callable[[tuple[str, str]], float | None]) -> float | None:
        values = [probe(key) for key in keys]
        return None if None in values else max(v for v in values if v is not None) - started

    children = {k: arrivals.children_done(k) for k in keys}
    ready = {k: arrivals.ready_at(k) for k in keys}
    available = {k: arrivals.available_done(k) for k in keys}
    added = {k: arrivals.added_at(k) for k in keys}
    return ScaleRun(
        count=count,
        kubectl_seconds=took,
        apply_to_children=[v - started for v in children.values() if v is not None],
        added_to_children=[
            done - add
            for k in keys
            if (done := children[k]) is not None and (add := added[k]) is not None
        ],
        apply_to_ready=[v - started for v in ready.values() if v is not None],
        available_to_ready=[
            r - a for k in keys if (r := ready[k]) is not None and (a := available[k]) is not None
        ],
        children_to_available=[
            a - c
            for k in keys
            if (a := available[k]) is not None and (c := children[k]) is not None
        ],
        all_children_seconds=latest(arrivals.children_done),
        all_available_seconds=latest(arrivals.available_done),
        all_ready_seconds=latest(arrivals.ready_at),
        timeout_seconds=timeout,
    )


def pod_count(quantity: str) -> int:
    """A pod-count quantity as the API canonicalizes it ("1k" for 1000)."""
    return int(quantity[:-1]) * 1000 if quantity.endswith("k") else int(quantity)


def raise_pod_capacity(cluster: LocalCluster, pods: int) -> int:
    """Room for `pods` on the 3 fake nodes, with a margin (kwok keeps the capacity a node
    reports); returns the capacity per node."""
    per_node = math.ceil(pods * 1.2 / NODES) + 50
    capacity = {"cpu": "100k", "memory": "400Ti", "pods": str(per_node)}
    patch = json.dumps({"status": {"capacity": capacity, "allocatable": capacity}})
    for node in cluster.kubectl_json("get", "nodes")["items"]:
        name = node["metadata"]["name"]
        cluster.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p", patch)

    def raised() -> bool:
        nodes = cluster.kubectl_json("get", "nodes")["items"]
        return all(pod_count(n["status"]["allocatable"]["pods"]) == per_node for n in nodes)

    wait_until(raised, 30, what="the nodes to report the raised pod capacity")
    return per_node


# --- the operator's own metrics -------------------------------------------------------------


@dataclass(frozen=True)
class OperatorCounters:
    reconciles: dict[str, float]
    reconcile_count: float
    reconcile_sum: float
    reconcile_buckets: list[tuple[float, float]]
    writes: dict[tuple[str, str], float]
    prometheus_queries: dict[str, float]


def operator_counters(metrics_text: str) -> OperatorCounters:
    reconciles: dict[str, float] = {}
    writes: dict[tuple[str, str], float] = {}
    queries: dict[str, float] = {}
    count = total = 0.0
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "rollforward_operator_reconciles_total":
                reconciles[sample.labels["result"]] = sample.value
            elif sample.name == "rollforward_operator_api_writes_total":
                writes[(sample.labels["verb"], sample.labels["kind"])] = sample.value
            elif sample.name == "rollforward_operator_prometheus_queries_total":
                queries[sample.labels["result"]] = sample.value
            elif sample.name == "rollforward_operator_reconcile_duration_seconds_count":
                count = sample.value
            elif sample.name == "rollforward_operator_reconcile_duration_seconds_sum":
                total = sample.value
            elif sample.name == "rollforward_operator_reconcile_duration_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
    return OperatorCounters(reconciles, count, total, buckets, writes, queries)


def counter_delta(after: OperatorCounters, before: OperatorCounters) -> OperatorCounters:
    def minus(new: dict[Any, float], old: dict[Any, float]) -> dict[Any, float]:
        return {k: v - old.get(k, 0.0) for k, v in new.items() if v - old.get(k, 0.0)}

    old_buckets = dict(before.reconcile_buckets)
    return OperatorCounters(
        reconciles=minus(after.reconciles, before.reconciles),
        reconcile_count=after.reconcile_count - before.reconcile_count,
        reconcile_sum=after.reconcile_sum - before.reconcile_sum,
        reconcile_buckets=[(le, v - old_buckets.get(le, 0.0)) for le, v in after.reconcile_buckets],
        writes=minus(after.writes, before.writes),
        prometheus_queries=minus(after.prometheus_queries, before.prometheus_queries),
    )


# --- the report -----------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.1f}x" if baseline > 0 else "n/a"


def counters_lines(label: str, counters: OperatorCounters, resources: int) -> list[str]:
    mean = counters.reconcile_sum / counters.reconcile_count if counters.reconcile_count else 0.0
    writes = sum(counters.writes.values())
    by_kind = ", ".join(
        f"{verb} {kind}: {n:.0f}" for (verb, kind), n in sorted(counters.writes.items())
    )
    buckets = ", ".join(f"<={le:g}s: {n:.0f}" for le, n in counters.reconcile_buckets)
    reconciles = sum(counters.reconciles.values())
    return [
        f"- {label}: {reconciles:.0f} reconciles ({counters.reconciles}), "
        f"{reconciles / resources:.1f} per resource; mean reconcile {mean * 1000:.0f} ms, "
        f"total reconcile time {counters.reconcile_sum:.1f} s",
        f"  - reconcile duration histogram (cumulative): {buckets}",
        f"  - API writes: {writes:.0f} ({writes / resources:.1f} per resource): {by_kind}",
        f"  - Prometheus queries: {counters.prometheus_queries}",
    ]


@dataclass(frozen=True)
class RunContext:
    workers: int
    resync: float
    revision: str
    log_errors: list[str]
    """The operator logs' ERROR lines, most frequent first, with counts."""
    load: tuple[float, float]
    """The machine's 1-minute load average before the trials and after the scale run."""
    shards: int
    node_pods: int
    idle_rss_mb: list[float]
    """Each replica's RSS once started, before any resource: imports, threads, kopf."""
    error_lines: int


def source_revision() -> str:
    """The commit the operator ran from, and whether its code had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "operator")
    return git("rev-parse", "--short", "HEAD") + (
        " + uncommitted operator changes" if dirty else ""
    )


_RESOURCE = re.compile(rf"({SINGLE_NAMESPACE}|{SCALE_NAMESPACE})/[a-z0-9-]+")
_RAISED = re.compile(r"^([A-Za-z_.]*(?:Error|Exception)): ")
"""The last line of a traceback: the exception's type."""


def log_errors(log: str, top: int = 5) -> list[str]:
    """Distinct ERROR messages of the operator's log (timestamp dropped), most frequent first."""
    # Per-resource messages differ only by the resource; one line stands for all of them.
    grouped = Counter(
        _RESOURCE.sub("NAMESPACE/NAME", line.split(" ERROR ", 1)[1])
        for line in log.splitlines()
        if " ERROR " in line
    )
    raised = Counter(match.group(1) for line in log.splitlines() if (match := _RAISED.match(line)))
    lines = [f"{count} x `{message}`" for message, count in grouped.most_common(top)]
    lines += [f"{count} x traceback ending in `{name}`" for name, count in raised.most_common(top)]
    return lines


def report(
    single: SingleTrials,
    baseline_run: BaselineRun,
    scale: ScaleRun,
    memory: list[MemorySampler],
    single_counters: OperatorCounters,
    scale_counters: OperatorCounters,
    context: RunContext,
    settled: Settled | None = None,
) -> str:
    one_children = Distribution(single.apply_to_children)
    one_added = Distribution(single.added_to_children)
    one_ready = Distribution(single.apply_to_ready)
    baseline = Distribution(single.baseline_apply_to_seen)
    many_children = Distribution(scale.apply_to_children or [math.nan])
    many_added = Distribution(scale.added_to_children or [math.nan])
    many_ready = Distribution(scale.apply_to_ready or [math.nan])
    ready_gap = Distribution(scale.available_to_ready or [math.nan])
    control_plane = Distribution(scale.children_to_available or [math.nan])
    all_ready = scale.all_ready_seconds
    base_available = baseline_run.all_available_seconds
    ready_text = (
        f"{all_ready:.1f} s"
        if all_ready is not None
        else f"not all within {scale.timeout_seconds:.0f} s "
        f"({len(scale.apply_to_ready)}/{scale.count} Ready)"
    )
    reconciles = sum(scale_counters.reconciles.values()) / scale.count
    writes = sum(scale_counters.writes.values()) / scale.count
    # The writes that follow Ready (the last status patch of each resource) count too.
    settled_writes = sum(settled.counters.writes.values()) / scale.count if settled else writes
    writes_text = f"{writes:.1f}" + (
        f" at all Ready, {settled_writes:.1f} once settled" if settled else ""
    )
    peak = max(m.peak_mb for m in memory)
    ready_ratio = (
        all_ready / base_available if all_ready is not None and base_available else math.inf
    )
    single_ratio = one_children.p50 / baseline.p50 if baseline.p50 > 0 else math.inf

    def optional(value: float | None) -> str:
        return f"{value:.1f} s" if value is not None else "not all"

    children_ratio = _ratio(
        scale.all_children_seconds or math.nan, baseline_run.all_children_seconds or math.nan
    )
    n = scale.count
    lines = [
        f"# Operator latency and memory: {n} resources, {context.shards} shard(s)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs: a fresh local "
        f"control plane ({NODES} kwok nodes, {context.node_pods} pods each), "
        f"{context.shards} operator replica(s) (`rollforward run --all-namespaces"
        f"{' --shard i/n' if context.shards > 1 else ''}`) under the chart's RBAC, "
        "with the environment the image and chart give it "
        f"({', '.join(f'{k}={v}' for k, v in IMAGE_ENV.items())}), "
        f"ROLLFORWARD_WORKERS={context.workers}, ROLLFORWARD_RESYNC_SECONDS={context.resync:g}, "
        f"a real empty Prometheus; source {context.revision}; 1-min load average "
        f"{context.load[0]:.1f} before, {context.load[1]:.1f} after (other work on the machine "
        "slows every figure alike). Times are seconds, stamped by the bench on arrival of watch "
        "events (one monotonic clock).",
        "",
        "## Targets (issue 19)",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| 1 resource: apply -> 7 children <= 1.5x `kubectl apply` of the 7 children (p50) "
        f"| {one_children.p50:.3f} s vs {baseline.p50:.3f} s = {single_ratio:.2f}x "
        f"| {_verdict(single_ratio <= 1.5)} |",
        f"| {n}: all Ready <= 1.5x the baseline's all Available | {ready_text} vs "
        f"{optional(base_available)} = {ready_ratio:.2f}x | {_verdict(ready_ratio <= 1.5)} |",
        f"| {n}: <= 5 reconciles per resource | {reconciles:.1f} | {_verdict(reconciles <= 5)} |",
        f"| {n}: <= 12 API writes per resource | {writes_text} "
        f"| {_verdict(settled_writes <= 12)} |",
        f"| peak RSS < {TARGET_RSS_MB:g} MB per replica | {peak:.0f} MB "
        f"| {_verdict(peak < TARGET_RSS_MB)} |",
        f"| 0 ERROR lines | {context.error_lines} | {_verdict(context.error_lines == 0)} |",
        "",
        "## Latencies",
        "",
        "| measure | n | p50 | p95 | max |",
        "|---|---|---|---|---|",
        baseline.row("baseline: `kubectl apply` of 1 resource's 7 children -> all seen"),
        one_children.row("1 resource: apply -> 7 children"),
        one_added.row("1 resource: resource seen -> 7 children (operator alone)"),
        one_ready.row("1 resource: apply -> Ready"),
        many_children.row(f"{n} at once: apply -> 7 children"),
        many_added.row(f"{n} at once: resource seen -> 7 children"),
        many_ready.row(f"{n} at once: apply -> Ready"),
        control_plane.row(
            f"{n} at once: children written -> 3 Deployments Available (control plane)"
        ),
        ready_gap.row(f"{n} at once: last Deployment Available -> Ready (operator)"),
        "",
        f"## {n} at once, as a timeline (from the start of each `kubectl apply`)",
        "",
        f"- baseline, `kubectl apply` of the {n * CHILDREN_PER_RESOURCE} children directly: "
        f"returned after {baseline_run.kubectl_seconds:.1f} s; all seen "
        f"{optional(baseline_run.all_children_seconds)}; every Deployment Available "
        f"{optional(base_available)}",
        f"- operator: `kubectl apply` of the {n} resources returned after "
        f"{scale.kubectl_seconds:.1f} s (1 resource: p50 "
        f"{statistics.median(single.kubectl_seconds):.2f} s); every resource had its 7 children "
        f"{optional(scale.all_children_seconds)} "
        f"({children_ratio} the baseline); every Deployment Available "
        f"{optional(scale.all_available_seconds)}; "
        f"every resource Ready: {ready_text}",
        "",
        "## Operator internals (its /metrics, summed over the replicas, per phase)",
        "",
        *counters_lines(
            f"{len(single.apply_to_ready)} single trials",
            single_counters,
            max(1, len(single.apply_to_ready)),
        ),
        *counters_lines(f"{n} at once", scale_counters, n),
        *(settled.lines(n) if settled else []),
        "",
        "## Memory",
        "",
        *[
            f"- replica {i}: peak {m.peak_mb:.0f} MB (sum of VmHWM over its process tree, "
            f"{len(m.hwm_kb)} process(es)); {context.idle_rss_mb[i]:.0f} MB once started, "
            f"before any resource"
            for i, m in enumerate(memory)
        ],
        "",
        "## Operator log (bench-results/operator-scale.operator.log)",
        "",
        *([f"- {line}" for line in context.log_errors] or ["- no ERROR lines"]),
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Settled:
    """The scale run's counters once the operator stopped writing, and its Events."""

    counters: OperatorCounters
    seconds: float
    """From every resource Ready to the last write seen."""
    events: dict[str, int]
    """Event objects on the run's ModelDeployments, by reason."""

    def lines(self, resources: int) -> list[str]:
        writes = sum(self.counters.writes.values())
        by_kind = ", ".join(
            f"{verb} {kind}: {n:.0f}" for (verb, kind), n in sorted(self.counters.writes.items())
        )
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.events.items()))
        return [
            f"  - once settled ({SETTLE_QUIET_SECONDS:g} s without a write, the last "
            f"{self.seconds:.0f} s after every resource was Ready): API writes {writes:.0f} "
            f"({writes / resources:.1f} per resource): {by_kind}",
            f"  - Events on the {resources} resources, by reason: {reasons}",
        ]


SETTLE_QUIET_SECONDS = 10.0
SETTLE_LIMIT_SECONDS = 120.0


def settle(
    operators: list[OperatorProcess], since: OperatorCounters
) -> tuple[OperatorCounters, float]:
    """The counters (from `since`) once no write came for SETTLE_QUIET_SECONDS, and how long
    after the call the last write came (bounded by SETTLE_LIMIT_SECONDS)."""
    start = time.monotonic()
    last = summed_counters(operators)
    changed = start
    while time.monotonic() - changed < SETTLE_QUIET_SECONDS:
        if time.monotonic() - start > SETTLE_LIMIT_SECONDS:
            break
        time.sleep(1.0)
        now = summed_counters(operators)
        if now.writes != last.writes:
            last, changed = now, time.monotonic()
    return counter_delta(last, since), changed - start


def event_reasons(cluster: LocalCluster, namespace: str) -> dict[str, int]:
    events = cluster.kubectl_json("-n", namespace, "get", "events")["items"]
    return dict(
        Counter(e["reason"] for e in events if e["involvedObject"].get("kind") == "ModelDeployment")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "bench-results/operator-scale.md"
    )
    parser.add_argument("--single-trials", type=int, default=15)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--resync-seconds", type=float, default=30.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-operator-") as scratch:
        workdir = Path(scratch)
        with (
            LocalCluster(workdir / "cluster") as cluster,
            LocalPrometheus(workdir / "prom") as prom,
            contextlib.ExitStack() as operators_stack,
        ):
            cluster.install_crds(REPO_ROOT / "crds")
            pods = 2 * (args.count + args.single_trials) * pods_per_resource(prom.url)
            node_pods = raise_pod_capacity(cluster, pods)
            for namespace in (SINGLE_NAMESPACE, SCALE_NAMESPACE, BASELINE_NAMESPACE):
                cluster.kubectl("create", "namespace", namespace)
            kubeconfig = grant_operator_rbac(cluster, workdir)
            arrivals = Arrivals()
            watcher = ApiWatcher(cluster, arrivals).start()
            operators = []
            for index in range(args.shards):
                env = {
                    "ROLLFORWARD_WORKERS": str(args.workers),
                    "ROLLFORWARD_RESYNC_SECONDS": str(args.resync_seconds),
                    "ROLLFORWARD_SHARD": f"{index}/{args.shards}",
                }
                place = workdir / f"operator-{index}"
                place.mkdir()
                operators.append(
                    operators_stack.enter_context(OperatorProcess(kubeconfig, place, env=env))
                )
            idle = [_status_kb(o.process.pid, "VmRSS") / 1024 for o in operators]
            memory = [MemorySampler(o.process.pid).start() for o in operators]
            before = summed_counters(operators)
            load_before = os.getloadavg()[0]
            single = run_single_trials(cluster, arrivals, prom.url, args.single_trials)
            baseline_run = run_baseline(cluster, arrivals, prom.url, args.count, args.timeout)
            middle = summed_counters(operators)
            scale = run_scale(cluster, arrivals, prom.url, args.count, args.timeout)
            after = summed_counters(operators)
            settled_counters, settled_seconds = settle(operators, middle)
            settled = Settled(
                settled_counters, settled_seconds, event_reasons(cluster, SCALE_NAMESPACE)
            )
            load_after = os.getloadavg()[0]
            for sampler in memory:
                sampler.stop()
            watcher.stop()
            operators_stack.close()
            log = "\n".join(o.log_path.read_text() for o in operators)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.with_suffix(".operator.log").write_text(log)
            if "is forbidden: User" in log:
                print("warning: the operator hit RBAC denials; see its log")
    text = report(
        single,
        baseline_run,
        scale,
        memory,
        counter_delta(middle, before),
        counter_delta(after, middle),
        RunContext(
            args.workers,
            args.resync_seconds,
            source_revision(),
            log_errors(log),
            (load_before, load_after),
            args.shards,
            node_pods,
            idle,
            sum(1 for line in log.splitlines() if " ERROR " in line),
        ),
        settled,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


def summed_counters(operators: list[OperatorProcess]) -> OperatorCounters:
    """Every replica's counters added up (each owns a disjoint part of the resources)."""
    total = operator_counters("")
    for running in operators:
        total = counter_sum(total, operator_counters(running.metrics_text()))
    return total


def counter_sum(a: OperatorCounters, b: OperatorCounters) -> OperatorCounters:
    def plus(x: dict[Any, float], y: dict[Any, float]) -> dict[Any, float]:
        return {k: x.get(k, 0.0) + y.get(k, 0.0) for k in {*x, *y}}

    buckets = plus(dict(a.reconcile_buckets), dict(b.reconcile_buckets))
    return OperatorCounters(
        reconciles=plus(a.reconciles, b.reconciles),
        reconcile_count=a.reconcile_count + b.reconcile_count,
        reconcile_sum=a.reconcile_sum + b.reconcile_sum,
        reconcile_buckets=sorted(buckets.items()),
        writes=plus(a.writes, b.writes),
        prometheus_queries=plus(a.prometheus_queries, b.prometheus_queries),
    )


if __name__ == "__main__":
    main()
