"""The local pod runner: the kubelet (and cluster DNS, and kube-proxy) of one local node.

kwok only pretends pods run. For the whole loop (real serving, real traffic, real retraining)
something must run them, so this runner registers a Node of its own (`local-runner`, which kwok
does not manage: kwok only takes nodes carrying its annotation) and runs the containers of every
pod the scheduler binds to that node as local processes (see `devenv.pod_launch`):
- a `bentoml serve` container serves on a free loopback port with a private BENTOML_HOME that
  shares the demo's store, and is scraped by Prometheus with the pod's labels;
- an nginx container runs Debian's nginx on the nginx.conf its ConfigMap holds, with Service
  names resolved to the local addresses of the Service's ready pods (`devenv.nginx_localize`),
  re-resolved and reloaded when they change, as kube-proxy would re-route;
- any other command (a retraining Job's pod) runs to completion; its exit code and termination
  message go back to the pod's status, so the Job controller and the operator see a real result;
- a deleted pod's processes are stopped, then the pod is removed, as a kubelet finalizes it;
- every Service with a selector gets a stable local address (`service_address`), as a ClusterIP,
  forwarding each connection to a ready pod (`devenv.service_proxy`), so a client such as the
  traffic driver keeps working while the operator replaces the pods behind it.

Why a node rather than labels: the binding of a pod to a node (`spec.nodeName`) is the real
contract between the scheduler and a kubelet. The runner needs no knowledge of who created a
pod or why; it runs what the API server bound to its node. A cluster for the whole loop is
started with no kwok nodes (`LocalCluster(..., node_count=0)`), so every pod lands here; the
operator's integration tests keep their kwok-only cluster unchanged.

Not emulated: liveness probes, init containers, volumes other than the nginx ConfigMap, resource
limits, image pulls (the image is ignored; commands run in the project's venv).

    with PodRunner(KubeApi(kubeconfig, workdir), workdir, bentoml_home=store,
                   scrape_targets=prometheus) as runner:
        runner.service_address("ns", "upsell-router")   # "127.0.0.1:41234", stable
        runner.service_addresses("ns", "svc")   # the ready pods' own addresses, now

`python -m devenv.pod_runner --kubeconfig K --workdir D` runs it until SIGTERM, writing the
local addresses of pods and Services to D/endpoints.json (see `read_service_address`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from devenv.bento import server_home
from devenv.kube_api import KubeApi, KubeApiError
from devenv.nginx import NginxConfigError, NginxProcess, run_nginx
from devenv.nginx_localize import ServiceRef, localize_nginx_config
from devenv.pod_launch import (
    LOCAL_HOST,
    ContainerLaunch,
    LaunchError,
    Workload,
    container_ports,
    plan_container,
    port_number,
    scrape_path,
    scrape_port,
    scrape_target_labels,
)
from devenv.pod_status import ContainerState, Terminated, pod_status, timestamp
from devenv.processes import ManagedProcess, StartStop, free_port, wait_until
from devenv.service_proxy import ServicePort, ServiceProxies
from rollforward.serving.contract import TERMINATION_MESSAGE_LIMIT_BYTES

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNER_NODE = "local-runner"
SCRAPE_JOB = "kubernetes-pods"
ENDPOINTS_FILE = "endpoints.json"
# What the runner did (starts, exits, stops, sync errors), one line each, in its workdir.
EVENTS_FILE = "runner.log"
_PYTHONPATH = os.pathsep.join(str(REPO_ROOT / p) for p in ("operator", "bentos"))
# Kubelet-like crash-loop backoff, compressed: 1s, 2s, 4s ... capped.
_BACKOFF_START, _BACKOFF_CAP = 1.0, 30.0
_HEARTBEAT_SECONDS = 10.0
_LEASE_SECONDS = 40
# A deleted pod's processes get at most this long to exit on SIGTERM before SIGKILL.
_STOP_GRACE_CAP = 5.0
_PROBE_TIMEOUT = 1.0
# Until first ready, probe often: the operator waits on readiness, and so does the demo.
_STARTUP_PROBE_PERIOD = 0.5
_LOG_FALLBACK_BYTES = 2048

Manifest = dict[str, Any]


class ScrapeTargets(Protocol):
    """Where pods are registered for scraping (`devenv.prometheus.LocalPrometheus`)."""

    def add_target(
        self, job: str, address: str, labels: Mapping[str, str] | None = None
    ) -> None: ...

    def add_pod_target(self, job: str, address: str, labels: Mapping[str, str]) -> None: ...

    def remove_target(self, job: str, address: str) -> None: ...


@dataclass
class LocalContainer:
    """One container of a pod the runner runs, and what has become of it."""

    spec: Manifest
    launch: ContainerLaunch | None
    run_dir: Path
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    process: ContainerProcess | None = None
    nginx: NginxProcess | None = None
    nginx_template: str | None = None
    nginx_text: str | None = None
    running_since: str | None = None
    restart_count: int = 0
    ready: bool = False
    probe_failures: int = 0
    next_probe: float = 0.0
    terminated: Terminated | None = None
    last_terminated: Terminated | None = None
    final: bool = False
    restart_at: float = 0.0
    start_failures: int = 0

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    @property
    def message_path(self) -> Path:
        return self.run_dir / f"{self.name}.termination-log"

    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid
        if self.nginx is not None:
            return self.nginx.process.pid
        return None

    def is_running(self) -> bool:
        if self.process is not None:
            return self.process.running()
        return self.nginx is not None and self.nginx.process.running()

    def state(self) -> ContainerState:
        pid = self.pid()
        return ContainerState(
            name=self.name,
            image=str(self.spec.get("image", "")),
            restart_count=self.restart_count,
            running_since=self.running_since,
            terminated=self.terminated,
            waiting_reason=self.waiting_reason,
            waiting_message=self.waiting_message,
            ready=self.ready,
            last_terminated=self.last_terminated,
            final=self.final,
            container_id=f"local://{pid}" if pid is not None else "",
        )


@dataclass
class LocalPod:
    pod: Manifest
    run_dir: Path
    containers: list[LocalContainer]
    start_time: str
    written_status: Manifest | None = None
    scrape_address: str | None = None

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.pod["metadata"].get("labels") or {})

    def ready(self) -> bool:
        return all(c.ready and c.running_since is not None for c in self.containers)

    def local_port(self, target: int | str) -> int | None:
        """The local port of a container port (number or name) of this pod."""
        for container in self.containers:
            if container.launch is None:
                continue
            with contextlib.suppress(LaunchError):
                number = port_number(container.spec, target)
                if number in container.launch.ports:
                    return container.launch.ports[number]
        return None


class ContainerProcess(ManagedProcess):
    """A container's process, whose exit code the runner reports."""

    def exit_code(self) -> int | None:
        return None if self._popen is None else self._popen.poll()


class PodRunner(StartStop):
    """Runs the pods bound to `node_name`; start() registers the node and syncs in a thread."""

    def __init__(
        self,
        api: KubeApi,
        workdir: Path,
        *,
        node_name: str = RUNNER_NODE,
        bentoml_home: Path | None = None,
        scrape_targets: ScrapeTargets | None = None,
        python: Path = Path(sys.executable),
        tick_seconds: float = 0.5,
        write_endpoints: bool = False,
    ) -> None:
        self.api = api
        self.workdir = workdir
        self.node_name = node_name
        self.bentoml_home = bentoml_home
        self.scrape_targets = scrape_targets
        self.python = python
        self.tick_seconds = tick_seconds
        self.write_endpoints = write_endpoints
        self.errors: list[str] = []
        self._pods: dict[str, LocalPod] = {}
        self._services: dict[tuple[str, str], Manifest] = {}
        # Replaced whole, never mutated: the proxies' thread reads it without the lock.
        self._endpoint_table: dict[ServicePort, list[str]] = {}
        self._proxies = ServiceProxies(lambda: self._endpoint_table)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self._started_at = datetime.now(UTC)
        self._endpoints_text = ""

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> PodRunner:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._register_node()
        self._proxies.start()
        self._thread = threading.Thread(target=self._loop, name="pod-runner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop syncing and every process the runner started (pods stay in the API)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None
        self._proxies.stop()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- what callers use ------------------------------------------------------------------

    def pod_address(self, namespace: str, pod: str, port: int | str) -> str | None:
        """`127.0.0.1:<local port>` of a container port of a pod this runner runs."""
        with self._lock:
            for local in self._pods.values():
                if (local.namespace, local.name) == (namespace, pod):
                    found = local.local_port(port)
                    return f"{LOCAL_HOST}:{found}" if found is not None else None
        return None

    def service_addresses(self, namespace: str, service: str, port: int | None = None) -> list[str]:
        """Local addresses of the ready pods behind a Service port (the first port if None)."""
        try:
            manifest = self.api.get(f"/api/v1/namespaces/{namespace}/services/{service}")
        except KubeApiError:
            return []
        ports = manifest["spec"].get("ports") or []
        if not ports:
            return []
        chosen = ports[0]["port"] if port is None else port
        with self._lock:
            return self._resolve(manifest, ServiceRef(namespace, service), int(chosen))

    def service_address(self, namespace: str, service: str, port: int | None = None) -> str:
        """The stable local address of a Service port (the first port if None), as a ClusterIP:
        it outlives the pods behind it and forwards each connection to one that is ready now."""

        def published() -> str | None:
            with self._lock:
                manifest = self._services.get((namespace, service))
            ports = (manifest or {}).get("spec", {}).get("ports") or []
            if not ports:
                return None
            chosen = int(ports[0]["port"] if port is None else port)
            return self._proxies.address(ServiceRef(namespace, service), chosen)

        wait_until(lambda: published() is not None, 60, what=f"Service {namespace}/{service}")
        address = published()
        assert address is not None
        return address

    def process_ids(self) -> list[int]:
        """Process ids of every container process running now (for leak checks)."""
        with self._lock:
            return [
                pid
                for local in self._pods.values()
                for container in local.containers
                if container.is_running() and (pid := container.pid()) is not None
            ]

    def local_ports(self) -> list[int]:
        """Every local port allocated to a pod the runner still tracks."""
        with self._lock:
            return [
                port
                for local in self._pods.values()
                for container in local.containers
                if container.launch is not None
                for port in container.launch.ports.values()
            ]

    # --- the node --------------------------------------------------------------------------

    def _register_node(self) -> None:
        try:
            self.api.create("/api/v1/nodes", node_manifest(self.node_name))
        except KubeApiError as error:
            if error.status != 409:
                raise
        self._heartbeat(force=True)

    def _heartbeat(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_heartbeat < _HEARTBEAT_SECONDS:
            return
        now = datetime.now(UTC)
        status = node_status(now, self._started_at)
        self.api.merge_patch(f"/api/v1/nodes/{self.node_name}/status", {"status": status})
        self._renew_lease(now)
        self._last_heartbeat = time.monotonic()

    def _renew_lease(self, now: datetime) -> None:
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": _LEASE_SECONDS,
            "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        try:
            self.api.merge_patch(f"{path}/{self.node_name}", {"spec": spec})
        except KubeApiError as error:
            if error.status != 404:
                raise
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
                "spec": spec,
            }
            self.api.create(path, lease)

    # --- the sync loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                try:
                    self.sync_once()
                except Exception as error:  # the API may blip; the next pass is level-based
                    self.errors.append(f"{type(error).__name__}: {error}")
                    self._note(f"sync failed: {self.errors[-1]}")
                    del self.errors[:-50]
                self._stopping.wait(max(0.0, self.tick_seconds - (time.monotonic() - started)))
        finally:
            # Processes are stopped from this thread, which started them (PR_SET_PDEATHSIG is
            # tied to the starting thread, so they must not outlive it unstopped).
            with self._lock:
                for local in list(self._pods.values()):
                    self._stop_pod(local, grace=_STOP_GRACE_CAP)
                self._pods.clear()

    def sync_once(self) -> None:
        """One level-based pass: make the local processes match the pods bound to the node."""
        pods = self.api.items("/api/v1/pods", fieldSelector=f"spec.nodeName={self.node_name}")
        with self._lock:
            seen: set[str] = set()
            for pod in pods:
                uid = str(pod["metadata"]["uid"])
                seen.add(uid)
                self._sync_pod(uid, pod)
            for uid in [uid for uid in self._pods if uid not in seen]:
                # Gone without a graceful deletion (force-deleted, or its node object removed).
                self._stop_pod(self._pods.pop(uid), grace=0.0)
            self._services = {
                (s["metadata"]["namespace"], s["metadata"]["name"]): s
                for s in self.api.items("/api/v1/services")
            }
            self._publish_endpoints()
            self._sync_routers()
            for local in self._pods.values():
                self._write_status(local)
            self._proxies.sync(list(self._endpoint_table))
            if self.write_endpoints:
                self._write_endpoints_file()
        self._heartbeat()

    def _publish_endpoints(self) -> None:
        """Recompute every Service port's ready local endpoints (what EndpointSlices hold)."""
        table: dict[ServicePort, list[str]] = {}
        for (namespace, name), service in self._services.items():
            if not service["spec"].get("selector"):
                continue  # endpoints managed by hand, e.g. `kubernetes`: nothing local
            ref = ServiceRef(namespace, name)
            for service_port in service["spec"].get("ports") or []:
                port = int(service_port["port"])
                table[(ref, port)] = self._resolve(service, ref, port)
        self._endpoint_table = table

    def _sync_pod(self, uid: str, pod: Manifest) -> None:
        local = self._pods.get(uid)
        if pod["metadata"].get("deletionTimestamp"):
            if local is not None:
                # Out of the endpoints first, then stopped, as a terminating pod is.
                del self._pods[uid]
                self._publish_endpoints()
                self._stop_pod(local, grace=_grace(pod))
            self._finalize_deletion(pod)
            return
        if local is None:
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                return  # finished before this runner (re)started; nothing to run again
            local = self._admit(pod)
            self._pods[uid] = local
        local.pod = pod
        restart_policy = str(pod["spec"].get("restartPolicy", "Always"))
        for container in local.containers:
            self._drive(local, container, restart_policy)
        self._sync_scrape_target(local)

    def _admit(self, pod: Manifest) -> LocalPod:
        metadata = pod["metadata"]
        run_dir = (
            self.workdir
            / "pods"
            / (f"{metadata['namespace']}_{metadata['name']}_{str(metadata['uid'])[:8]}")
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        containers = []
        for spec in pod["spec"]["containers"]:
            container_dir = run_dir / str(spec["name"])
            container_dir.mkdir(exist_ok=True)
            ports = {port: free_port() for port in container_ports(spec)}
            container = LocalContainer(spec=spec, launch=None, run_dir=container_dir)
            try:
                container.launch = plan_container(
                    pod,
                    spec,
                    ports,
                    self.python,
                    container.message_path,
                    self._secret_reader(str(metadata["namespace"])),
                )
            except LaunchError as error:
                container.waiting_reason, container.waiting_message = error.reason, str(error)
            containers.append(container)
        return LocalPod(pod=pod, run_dir=run_dir, containers=containers, start_time=timestamp())

    def _secret_reader(self, namespace: str) -> Callable[[str, str], str | None]:
        """Reads a Secret's key through the API, as a kubelet does for env secretKeyRef."""

        def value(name: str, key: str) -> str | None:
            try:
                secret = self.api.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
            except KubeApiError as error:
                if error.status == 404:
                    return None
                raise LaunchError("CreateContainerConfigError", str(error)) from error
            raw = (secret.get("data") or {}).get(key)
            return base64.b64decode(raw).decode() if raw is not None else None

        return value

    # --- one container ---------------------------------------------------------------------

    def _drive(self, local: LocalPod, container: LocalContainer, restart_policy: str) -> None:
        if container.launch is None or container.final:
            return
        if container.running_since is None:
            if time.monotonic() >= container.restart_at:
                self._start_container(local, container)
            return
        if not container.is_running():
            self._note_exit(container, restart_policy)
            return
        self._probe(container)

    def _start_container(self, local: LocalPod, container: LocalContainer) -> None:
        launch = container.launch
        assert launch is not None
        container.message_path.unlink(missing_ok=True)
        try:
            if launch.workload is Workload.NGINX:
                self._start_nginx(local, container, launch)
            else:
                process = ContainerProcess(
                    name=f"{local.namespace}/{local.name}/{container.name}",
                    argv=launch.argv,
                    log_path=container.log_path,
                    env=self._environment(local, container, launch),
                    cwd=container.run_dir,
                    die_with_parent=True,
                )
                process.start()
                container.process = process
        except (OSError, KubeApiError, NginxConfigError, RuntimeError) as error:
            container.waiting_reason = "RunContainerError"
            container.waiting_message = str(error)[-1000:]
            container.start_failures += 1
            container.restart_at = time.monotonic() + self._backoff(container)
            return
        container.running_since = timestamp()
        self._note(
            f"started {local.namespace}/{local.name}/{container.name} (pid {container.pid()})"
        )
        container.last_terminated = container.terminated or container.last_terminated
        container.terminated = None
        container.ready = launch.readiness is None
        container.probe_failures = 0
        container.next_probe = 0.0

    def _start_nginx(
        self, local: LocalPod, container: LocalContainer, launch: ContainerLaunch
    ) -> None:
        source = launch.nginx_config
        assert source is not None
        # Read once at start: a subPath mount never sees later ConfigMap changes, which is why
        # the operator rolls the router pod (config checksum) when its config changes.
        if container.nginx_template is None:
            config_map = self.api.get(
                f"/api/v1/namespaces/{local.namespace}/configmaps/{source.config_map}"
            )
            container.nginx_template = str((config_map.get("data") or {})[source.key])
        text = self._localized(local, container)
        container.nginx = run_nginx(text, container.run_dir / "nginx")
        container.nginx_text = text

    def _localized(self, local: LocalPod, container: LocalContainer) -> str:
        assert container.nginx_template is not None and container.launch is not None
        return localize_nginx_config(
            container.nginx_template,
            local.namespace,
            lambda ref, port: self._resolve(
                self._services.get((ref.namespace, ref.name)), ref, port
            ),
            container.launch.ports,
        )

    def _environment(
        self, local: LocalPod, container: LocalContainer, launch: ContainerLaunch
    ) -> dict[str, str]:
        env = {
            "PATH": f"{self.python.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", str(container.run_dir)),
            "LANG": "C.UTF-8",
            "HOSTNAME": local.name,
            "BENTOML_DO_NOT_TRACK": "True",
        }
        if not launch.serves_bento:
            # A bento carries its own code; anything else runs from this checkout.
            env["PYTHONPATH"] = _PYTHONPATH
        env.update(launch.env)
        if self.bentoml_home is not None:
            # A server wipes its home's metrics directory at start, so each gets its own home
            # sharing the store; a Job builds into the store itself.
            home = (
                server_home(self.bentoml_home, container.run_dir)
                if launch.serves_bento
                else self.bentoml_home
            )
            env["BENTOML_HOME"] = str(home)
        return env

    def _note_exit(self, container: LocalContainer, restart_policy: str) -> None:
        code = self._exit_code(container)
        self._note(f"{container.run_dir.parent.name}/{container.name} exited {code}")
        container.terminated = Terminated(
            exit_code=code,
            message=self._termination_message(container, code),
            started_at=container.running_since or timestamp(),
            finished_at=timestamp(),
        )
        container.running_since = None
        container.ready = False
        self._release(container)
        restarts = restart_policy == "Always" or (restart_policy == "OnFailure" and code != 0)
        if restarts:
            # While backing off, the container is waiting and its exit is the last state.
            container.last_terminated, container.terminated = container.terminated, None
            container.restart_count += 1
            container.waiting_reason = "CrashLoopBackOff"
            container.waiting_message = f"back-off restarting failed container {container.name}"
            container.restart_at = time.monotonic() + self._backoff(container)
        else:
            container.final = True

    def _exit_code(self, container: LocalContainer) -> int:
        if container.process is not None:
            code = container.process.exit_code()
        elif container.nginx is not None:
            # nginx only exits on its own when it fails.
            code = 1
        else:
            code = None
        if code is None:
            return 1
        # A signal death is reported as 128+signal, as a container runtime does.
        return code if code >= 0 else 128 - code

    def _termination_message(self, container: LocalContainer, code: int) -> str:
        raw = b""
        with contextlib.suppress(FileNotFoundError):
            raw = container.message_path.read_bytes()[:TERMINATION_MESSAGE_LIMIT_BYTES]
        launch = container.launch
        if not raw and code != 0 and launch is not None and launch.fallback_to_logs_on_error:
            with contextlib.suppress(FileNotFoundError):
                raw = container.log_path.read_bytes()[-_LOG_FALLBACK_BYTES:]
        return raw.decode(errors="replace")

    def _backoff(self, container: LocalContainer) -> float:
        attempts = max(container.restart_count, container.start_failures)
        return float(min(_BACKOFF_CAP, _BACKOFF_START * 2 ** max(0, attempts - 1)))

    def _release(self, container: LocalContainer) -> None:
        if container.process is not None:
            container.process.stop(grace=0.0)
            container.process = None
        if container.nginx is not None:
            container.nginx.stop()
            container.nginx = None
            container.nginx_text = None

    def _probe(self, container: LocalContainer) -> None:
        launch = container.launch
        assert launch is not None
        probe = launch.readiness
        now = time.monotonic()
        if probe is None or now < container.next_probe:
            return
        port = launch.ports.get(probe.container_port)
        healthy = port is not None and _http_ok(f"http://{LOCAL_HOST}:{port}{probe.path}")
        if healthy:
            container.ready, container.probe_failures = True, 0
        else:
            container.probe_failures += 1
            if container.probe_failures >= probe.failure_threshold:
                container.ready = False
        period = probe.period_seconds if container.ready else _STARTUP_PROBE_PERIOD
        container.next_probe = now + min(period, probe.period_seconds)

    # --- pods ------------------------------------------------------------------------------

    def _note(self, message: str) -> None:
        with (self.workdir / EVENTS_FILE).open("a") as events:
            events.write(f"{timestamp()} {message}\n")

    def _stop_pod(self, local: LocalPod, grace: float) -> None:
        self._note(f"stopping {local.namespace}/{local.name}")
        for container in local.containers:
            if container.process is not None:
                container.process.stop(grace=grace)
                container.process = None
            if container.nginx is not None:
                _stop_nginx_gracefully(container.nginx, grace)
                container.nginx = None
        if local.scrape_address is not None and self.scrape_targets is not None:
            self.scrape_targets.remove_target(SCRAPE_JOB, local.scrape_address)
            local.scrape_address = None

    def _finalize_deletion(self, pod: Manifest) -> None:
        """Remove a pod whose containers are stopped, as a kubelet does after graceful stop."""
        metadata = pod["metadata"]
        path = f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}"
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": metadata["uid"]}}
        try:
            self.api.delete(path, body)
        except KubeApiError as error:
            if error.status not in (404, 409):
                raise

    def _sync_scrape_target(self, local: LocalPod) -> None:
        if self.scrape_targets is None or local.scrape_address is not None:
            return
        container_port = scrape_port(local.pod)
        running = any(c.running_since is not None for c in local.containers)
        if container_port is None or not running:
            return
        port = local.local_port(container_port)
        if port is None:
            return
        labels = scrape_target_labels(local.pod)
        path = scrape_path(local.pod)
        if path != "/metrics":
            labels["__metrics_path__"] = path
        local.scrape_address = f"{LOCAL_HOST}:{port}"
        self.scrape_targets.add_pod_target(SCRAPE_JOB, local.scrape_address, labels)

    def _write_status(self, local: LocalPod) -> None:
        status = pod_status(
            [c.state() for c in local.containers],
            local.pod.get("status", {}).get("conditions") or [],
            LOCAL_HOST,
            local.start_time,
            timestamp(),
        )
        if status == local.written_status:
            return
        path = f"/api/v1/namespaces/{local.namespace}/pods/{local.name}/status"
        try:
            self.api.merge_patch(path, {"status": status})
        except KubeApiError as error:
            if error.status != 404:
                raise
        local.written_status = status

    # --- routing ---------------------------------------------------------------------------

    def _resolve(self, service: Manifest | None, ref: ServiceRef, port: int) -> list[str]:
        """Local addresses of the ready pods behind `service`'s `port`, as kube-proxy picks."""
        if service is None:
            return []
        selector = service["spec"].get("selector") or {}
        service_port = next(
            (p for p in service["spec"].get("ports") or [] if int(p["port"]) == port), None
        )
        if not selector or service_port is None:
            return []
        target = service_port.get("targetPort", port)
        addresses = []
        for local in sorted(self._pods.values(), key=lambda p: p.name):
            labels = local.labels
            matches = all(labels.get(k) == v for k, v in selector.items())
            if local.namespace != ref.namespace or not matches or not local.ready():
                continue
            found = local.local_port(target)
            if found is not None:
                addresses.append(f"{LOCAL_HOST}:{found}")
        return addresses

    def _sync_routers(self) -> None:
        for local in self._pods.values():
            for container in local.containers:
                if container.nginx is None or not container.nginx.process.running():
                    continue
                text = self._localized(local, container)
                if text != container.nginx_text:
                    container.nginx.reload(text)
                    container.nginx_text = text

    def _write_endpoints_file(self) -> None:
        pods = {
            f"{p.namespace}/{p.name}": {
                "ready": p.ready(),
                "ports": {
                    str(cp): f"{LOCAL_HOST}:{lp}"
                    for c in p.containers
                    if c.launch is not None
                    for cp, lp in c.launch.ports.items()
                },
            }
            for p in self._pods.values()
        }
        services = {
            f"{ns}/{name}": {
                str(sp["port"]): self._resolve(svc, ServiceRef(ns, name), int(sp["port"]))
                for sp in svc["spec"].get("ports") or []
            }
            for (ns, name), svc in self._services.items()
        }
        proxies: dict[str, dict[str, str]] = {}
        for (ref, port), address in self._proxies.addresses().items():
            proxies.setdefault(f"{ref.namespace}/{ref.name}", {})[str(port)] = address
        text = json.dumps(
            {"pods": pods, "services": services, "proxies": proxies}, indent=2, sort_keys=True
        )
        if text != self._endpoints_text:
            path = self.workdir / ENDPOINTS_FILE
            path.with_suffix(".tmp").write_text(text)
            path.with_suffix(".tmp").replace(path)
            self._endpoints_text = text


def read_service_addresses(
    workdir: Path, namespace: str, service: str, port: int | None = None
) -> list[str]:
    """What a runner started with `write_endpoints` last published for a Service port."""
    try:
        services = json.loads((workdir / ENDPOINTS_FILE).read_text())["services"]
    except (FileNotFoundError, ValueError):
        return []
    ports: dict[str, list[str]] = services.get(f"{namespace}/{service}", {})
    if not ports:
        return []
    return list(ports[str(port)] if port is not None else next(iter(ports.values())))


def _stop_nginx_gracefully(nginx: NginxProcess, grace: float) -> None:
    """SIGQUIT first (the stock image's stop signal): requests in flight are finished."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(nginx.process.pid, signal.SIGQUIT)
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not nginx.process.running(), grace, interval=0.05, what="nginx")
    nginx.stop()


def read_service_address(
    workdir: Path, namespace: str, service: str, port: int | None = None
) -> str | None:
    """The stable proxy address a runner started with `write_endpoints` published for a
    Service port (the first port if None), or None while it has none."""
    try:
        proxies = json.loads((workdir / ENDPOINTS_FILE).read_text())["proxies"]
    except (FileNotFoundError, ValueError, KeyError):
        return None
    ports: dict[str, str] = proxies.get(f"{namespace}/{service}", {})
    if not ports:
        return None
    return ports[str(port)] if port is not None else next(iter(ports.values()))


def _grace(pod: Manifest) -> float:
    seconds = pod["metadata"].get("deletionGracePeriodSeconds")
    return _STOP_GRACE_CAP if seconds is None else min(float(seconds), _STOP_GRACE_CAP)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT) as response:
            return 200 <= int(response.status) < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def node_manifest(name: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "local-runner",
            },
        },
        "spec": {},
    }


def node_status(now: datetime, since: datetime) -> Manifest:
    beat, transition = timestamp(now), timestamp(since)
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    healthy = {
        "MemoryPressure": ("False", "KubeletHasSufficientMemory"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID"),
        "Ready": ("True", "KubeletReady"),
    }
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": "local pod runner",
                "lastHeartbeatTime": beat,
                "lastTransitionTime": transition,
            }
            for kind, (status, reason) in healthy.items()
        ],
        "addresses": [
            {"type": "InternalIP", "address": LOCAL_HOST},
            {"type": "Hostname", "address": "localhost"},
        ],
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "kubeletVersion": "local-runner",
            "kubeProxyVersion": "local-runner",
            "containerRuntimeVersion": "local-process://1",
            "kernelVersion": os.uname().release,
            "osImage": "local",
            "bootID": "",
            "machineID": "",
            "systemUUID": "",
        },
    }


@contextlib.contextmanager
def _until_signalled() -> Iterator[threading.Event]:
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.pod_runner", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--node", default=RUNNER_NODE)
    parser.add_argument("--bentoml-home", type=Path, help="the BentoML store the pods serve from")
    parser.add_argument(
        "--prometheus-dir", type=Path, help="a LocalPrometheus directory to add scrape targets to"
    )
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    targets: ScrapeTargets | None = None
    if args.prometheus_dir is not None:
        from devenv.prometheus import LocalPrometheus

        targets = LocalPrometheus(args.prometheus_dir.resolve())
    api = KubeApi(args.kubeconfig, workdir / "credentials")
    runner = PodRunner(
        api,
        workdir,
        node_name=args.node,
        bentoml_home=args.bentoml_home.resolve() if args.bentoml_home else None,
        scrape_targets=targets,
        write_endpoints=True,
    )
    with _until_signalled() as stop, runner:
        print(f"pod runner is up: node {args.node}, endpoints in {workdir / ENDPOINTS_FILE}")
        sys.stdout.flush()
        while not stop.wait(1.0):
            if not runner.running():
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
