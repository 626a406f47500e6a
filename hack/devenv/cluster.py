"""A real Kubernetes control plane as local processes: etcd, kube-apiserver, controller-manager,
scheduler and kwok (which plays the kubelets of a few fake nodes).

There is no container engine here, so this follows envtest and kwok's binary runtime: the
components are built from source by `hack/build-cluster-bin.sh` and run on loopback, each with
its own free ports and data directory. Nothing is shared between runs except those binaries.

    with LocalCluster(tmp_dir) as cluster:
        cluster.kubectl("get", "nodes")

`python -m devenv.cluster up|down [--dir _out/cluster]` does the same for `make cluster-up`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devenv.netns import NetworkNamespace
from devenv.pki import ClusterPki, KeyPair, issue_certificate
from devenv.processes import (
    ManagedProcess,
    StartStop,
    free_port,
    stop_recorded,
    wait_until,
    write_records,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "hack" / "versions.env"
KWOK_STAGES = Path(__file__).resolve().parent / "kwok" / "stages.yaml"

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
# The first address of the service range, which the apiserver gives the `kubernetes` Service.
KUBERNETES_SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# kwok manages only nodes carrying this annotation, so it never touches anything else.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")

# Which cached directory (hack/build-cluster-bin.sh) holds each binary, and its version key.
_COMPONENT_DIRS = {"kubernetes": ("k8s", "KUBE_VERSION"), "etcd": ("etcd", "ETCD_VERSION"),
                   "kwok": ("kwok", "KWOK_VERSION"), "helm": ("helm", "HELM_VERSION"),
                   "containerd": ("containerd", "CONTAINERD_VERSION"),
                   "coredns": ("coredns", "COREDNS_VERSION"),
                   "prometheus": ("prometheus", "PROMETHEUS_VERSION"),
                   "versitygw": ("versitygw", "VERSITYGW_VERSION"),
                   "kube-network-policies": ("kube-network-policies",
                                             "KUBE_NETWORK_POLICIES_VERSION")}  # fmt: skip
_BINARY_COMPONENT = {
    "kube-apiserver": "kubernetes",
    "kube-controller-manager": "kubernetes",
    "kube-scheduler": "kubernetes",
    "kubectl": "kubernetes",
    "kubelet": "kubernetes",
    "kube-proxy": "kubernetes",
    "containerd": "containerd",
    "ctr": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "coredns": "coredns",
    "prometheus": "prometheus",
    "etcd": "etcd",
    "kwok": "kwok",
    "helm": "helm",
    "versitygw": "versitygw",
    "kube-network-policies": "kube-network-policies",
}

_CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                           "kwok", "kubectl")  # fmt: skip


class KubectlError(RuntimeError):
    """kubectl (or helm) exited non-zero; `stderr` says why."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} exited {returncode}:\n{stderr.strip()}")
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """The KEY=value pins of hack/versions.env."""
    versions = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            versions[key.strip()] = value.strip()
    return versions


@dataclass(frozen=True)
class ClusterBinaries:
    """Where hack/build-cluster-bin.sh caches each binary for the pinned versions."""

    cache_dir: Path
    versions: Mapping[str, str]

    @classmethod
    def from_environment(cls) -> ClusterBinaries:
        cache = os.environ.get("ROLLFORWARD_CACHE", str(Path.home() / ".cache" / "rollforward"))
        return cls(Path(cache), read_versions())

    def bin_dir(self, component: str) -> Path:
        """The directory of `component`: kubernetes, etcd, kwok or helm."""
        prefix, version_key = _COMPONENT_DIRS[component]
        return self.cache_dir / "bin" / f"{prefix}-v{self.versions[version_key]}"

    def path(self, binary: str) -> Path:
        """The path of `binary` (e.g. "kube-apiserver"), which must have been built."""
        path = self.bin_dir(_BINARY_COMPONENT[binary]) / binary
        if not os.access(path, os.X_OK):
            raise FileNotFoundError(
                f"{path} is missing; build the cluster binaries first with `make cluster-bin`"
            )
        return path


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any


class LocalCluster(StartStop):
    """A running control plane with >=3 Ready kwok nodes and an admin kubeconfig."""

    def __init__(
        self,
        base_dir: Path,
        node_count: int = 3,
        binaries: ClusterBinaries | None = None,
        startup_timeout: float = 180.0,
        die_with_parent: bool = True,
        netns: NetworkNamespace | None = None,
    ) -> None:
        self.base_dir = base_dir
        # With a namespace every component runs inside it, the apiserver advertises the
        # namespace's node address (pods reach it through the `kubernetes` Service), and the
        # host reaches the apiserver through a forwarder on the same loopback port.
        self.netns = netns
        self.die_with_parent = die_with_parent
        self.node_count = node_count
        self.binaries = binaries or ClusterBinaries.from_environment()
        self.startup_timeout = startup_timeout
        self.ports: dict[str, int] = {}
        self.processes: list[ManagedProcess] = []
        self._pki: ClusterPki | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        if self.base_dir.exists() and any(self.base_dir.iterdir()):
            raise FileExistsError(f"{self.base_dir} is not empty; a cluster needs a fresh dir")
        for binary in _CONTROL_PLANE_BINARIES:
            self.binaries.path(binary)  # fail before starting anything if one is missing
        names = ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler")
        self.ports = {name: free_port() for name in names}
        self._pki = ClusterPki.create(
            self.base_dir / "pki",
            serving_ips=["127.0.0.1", KUBERNETES_SERVICE_IP, *self._node_ips()],
            serving_dns=["localhost", "kubernetes", "kubernetes.default",
                         "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
        )  # fmt: skip
        self._write_component_kubeconfigs()
        if self.netns is not None:
            self._start_forwarder(self.netns)
        self._start_etcd()
        self._start_apiserver()
        self._start_controllers()
        self._register_nodes()
        self._wait_for_nodes_ready()
        # A working controller-manager is the last thing a usable cluster needs.
        self.wait_for_service_account("default", "default", self.startup_timeout)
        return self

    def stop(self) -> None:
        """Stop every component, newest first, leaving no process or port behind."""
        for process in reversed(self.processes):
            process.stop()

    def running(self) -> bool:
        return bool(self.processes) and all(p.running() for p in self.processes)

    def stop_component(self, name: str) -> None:
        """Stop one component (e.g. "etcd", "kube-apiserver", "kwok"), as an outage would."""
        self._component(name).stop()

    def start_component(self, name: str) -> None:
        """Start a stopped component again with the same flags, ports and data directory,
        and wait until it answers: a restart, as after a crash or an upgrade."""
        process = self._component(name)
        if process.running():
            raise RuntimeError(f"{name} is still running; stop it first")
        process.start()
        probe = self._readiness.get(name)
        if probe is not None:
            process.wait_until_ready(probe, self.startup_timeout)

    def _component(self, name: str) -> ManagedProcess:
        found = [p for p in self.processes if p.name == name]
        if not found:
            raise KeyError(f"no component {name!r}; have {[p.name for p in self.processes]}")
        return found[0]

    @property
    def _readiness(self) -> dict[str, Callable[[], bool]]:
        return {"etcd": self._etcd_healthy, "kube-apiserver": self._apiserver_ready}

    def _etcd_healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.ports['etcd']}/health"
        return bool(self.in_network(lambda: json.loads(_http_get(url)).get("health") == "true")())

    def _apiserver_ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        context.load_cert_chain(*map(str, self.admin_client_cert))
        return _http_get(f"{self.server_url}/readyz", context) == "ok"

    # --- what callers use ------------------------------------------------------------------

    @property
    def server_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def kubeconfig_path(self) -> Path:
        """Cluster-admin (system:masters) credentials."""
        return self.base_dir / "kubeconfigs" / "admin.kubeconfig"

    @property
    def ca_path(self) -> Path:
        return self._require_pki().ca.cert

    @property
    def admin_client_cert(self) -> tuple[Path, Path]:
        """(cert, key) of the admin user, e.g. for `requests.get(..., cert=...)`."""
        pair = self._admin_pair()
        return pair.cert, pair.key

    def bin_dir(self, component: str) -> Path:
        """The directory holding `component`'s binaries: kubernetes, etcd, kwok or helm."""
        return self.binaries.bin_dir(component)

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raise KubectlError on failure when `check`."""
        argv = [
            str(self.binaries.path("kubectl")),
            f"--kubeconfig={kubeconfig or self.kubeconfig_path}",
            f"--cache-dir={self.base_dir / 'kubectl-cache'}",
            *args,
        ]
        return _run(argv, input=input, check=check, timeout=timeout, env=None)

    def kubectl_json(self, *args: str, kubeconfig: Path | None = None) -> Any:
        """kubectl ... -o json, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json", kubeconfig=kubeconfig).stdout)

    def apply(
        self,
        manifest: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str,
        timeout: float = 120.0,
    ) -> None:
        """kubectl apply a manifest given as a dict, a list of dicts or YAML text."""
        text = manifest if isinstance(manifest, str) else _to_yaml(manifest)
        self.kubectl("apply", "-f", "-", input=text, timeout=timeout)

    def api(self, method: str, path: str, body: Any = None) -> ApiResponse:
        """One raw request to the API server as the admin (e.g. `POST /apis/...?dryRun=All`).

        Unlike kubectl, it hands back the server's own status code and Status object, so a
        test can tell what the API server decided, not what a client made of it.
        """
        context = ssl.create_default_context(cafile=str(self.ca_path))
        context.load_cert_chain(*map(str, self.admin_client_cert))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.server_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60, context=context) as response:
                return ApiResponse(response.status, _json_or_text(response.read()))
        except urllib.error.HTTPError as error:
            return ApiResponse(error.code, _json_or_text(error.read()))

    def helm(
        self, *args: str, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against this cluster, with its config and cache kept inside the cluster dir."""
        helm_home = self.base_dir / "helm"
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig_path),
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }
        argv = [str(self.binaries.path("helm")), *args]
        return _run(argv, input=None, check=check, timeout=timeout, env=env)

    @contextlib.contextmanager
    def temporary_namespace(self, prefix: str) -> Iterator[str]:
        """A fresh namespace whose `default` ServiceAccount exists; deleted (without waiting)
        afterwards."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.kubectl("create", "namespace", name)
        self.wait_for_service_account(name, "default")
        try:
            yield name
        finally:
            self.kubectl("delete", "namespace", name, "--wait=false", check=False)

    def wait_for_service_account(self, namespace: str, name: str, timeout: float = 60.0) -> None:
        """Wait for a ServiceAccount, e.g. the `default` one the controller-manager creates in
        each new namespace: pods cannot be admitted into a namespace before it exists."""
        wait_until(
            lambda: (
                self.kubectl("get", "serviceaccount", name, "-n", namespace, check=False).returncode
                == 0
            ),
            timeout,
            what=f"ServiceAccount {namespace}/{name}",
        )

    def install_crds(self, directory: Path, timeout: float = 60.0) -> list[str]:
        """Apply every *.yaml CRD in `directory` and wait until each is Established."""
        names: list[str] = []
        for path in sorted(directory.glob("*.yaml")):
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
            names.extend(
                doc["metadata"]["name"]
                for doc in yaml.safe_load_all(path.read_text())
                if doc and doc.get("kind") == "CustomResourceDefinition"
            )
        for name in names:
            self.kubectl(
                "wait", "--for=condition=Established", f"crd/{name}", f"--timeout={timeout:.0f}s"
            )
        return names

    def kubeconfig_for_service_account(
        self, namespace: str, name: str, path: Path, duration: str = "24h"
    ) -> Path:
        """A kubeconfig holding a TokenRequest token for ServiceAccount `namespace/name`.

        The ServiceAccount must exist. The token carries exactly its RBAC, nothing more.
        """
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration}"
        ).stdout.strip()
        _write_kubeconfig(
            path, self.server_url, self.ca_path, f"{namespace}-{name}", {"token": token}, namespace
        )
        return path

    # --- startup steps ---------------------------------------------------------------------

    def _require_pki(self) -> ClusterPki:
        if self._pki is None:
            raise RuntimeError("the cluster has not been started")
        return self._pki

    def _admin_pair(self) -> KeyPair:
        pki_dir = self.base_dir / "pki"
        return KeyPair(pki_dir / "admin.crt", pki_dir / "admin.key")

    def issue_kubeconfig(self, name: str, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig with a client certificate for `user` in `groups` (CN and O), as used by
        a component that authenticates the way the bootstrap RBAC expects (e.g. kubelet)."""
        pki = self._require_pki()
        pair = issue_certificate(pki.ca, pki.ca.cert.parent, name, user, groups)
        path = self.base_dir / "kubeconfigs" / f"{name}.kubeconfig"
        _write_kubeconfig(path, self.server_url, pki.ca.cert, user, {
            "client-certificate-data": _b64(pair.cert.read_bytes()),
            "client-key-data": _b64(pair.key.read_bytes()),
        })  # fmt: skip
        return path

    def _write_component_kubeconfigs(self) -> None:
        # Each component authenticates as the user the bootstrap RBAC policy expects of it.
        users = {
            "admin": ("rollforward-admin", ["system:masters"]),
            "controller-manager": ("system:kube-controller-manager", []),
            "scheduler": ("system:kube-scheduler", []),
            # kwok plays every kubelet and writes status of pods and nodes on any node.
            "kwok": ("rollforward-kwok", ["system:masters"]),
        }
        for name, (user, groups) in users.items():
            self.issue_kubeconfig(name, user, groups)

    def _node_ips(self) -> list[str]:
        return [self.netns.node_ip] if self.netns is not None else []

    def in_network(self, probe: Callable[[], bool]) -> Callable[[], bool]:
        """`probe` run where the components listen (inside the namespace, if any)."""
        netns = self.netns
        return probe if netns is None else lambda: netns.call(probe)

    def _start_forwarder(self, netns: NetworkNamespace) -> None:
        address = f"127.0.0.1:{self.ports['apiserver']}"
        self._spawn(
            "apiserver-forwarder",
            [sys.executable, "-m", "devenv.netns_forward", "--netns", netns.name,
             f"{address}={address}"],
            wrap=False,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "hack")},
        )  # fmt: skip

    def _spawn(
        self,
        name: str,
        argv: Sequence[str],
        wrap: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        if wrap and self.netns is not None:
            argv = self.netns.wrap(argv)
        process = ManagedProcess(
            name=name,
            argv=list(argv),
            env=env,
            log_path=self.base_dir / "logs" / f"{name}.log",
            cwd=self.base_dir,
            die_with_parent=self.die_with_parent,
        )
        self.processes.append(process.start())
        return process

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        etcd = self._spawn("etcd", [
            str(self.binaries.path("etcd")),
            "--name=rollforward",
            f"--data-dir={self.base_dir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=rollforward={peer}",
            # Test data is thrown away after the run; fsync would only slow every write.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ])  # fmt: skip
        etcd.wait_until_ready(self._etcd_healthy, self.startup_timeout)

    def _start_apiserver(self) -> None:
        pki = self._require_pki()
        node_ips = self._node_ips()
        advertise = node_ips[0] if node_ips else "127.0.0.1"
        apiserver = self._spawn("kube-apiserver", [
            str(self.binaries.path("kube-apiserver")),
            # Inside a namespace, 0.0.0.0 is the namespace's loopback and node address only.
            f"--advertise-address={advertise}",
            f"--bind-address={'0.0.0.0' if node_ips else '127.0.0.1'}",
            f"--secure-port={self.ports['apiserver']}",
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            f"--cert-dir={self.base_dir / 'apiserver'}",
            f"--tls-cert-file={pki.apiserver.cert}", f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca.cert}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            # Node names do not resolve here; their InternalIP does (logs, exec).
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--profiling=false",
        ])  # fmt: skip
        apiserver.wait_until_ready(self._apiserver_ready, self.startup_timeout)

    def _start_controllers(self) -> None:
        pki = self._require_pki()
        kubeconfigs = self.base_dir / "kubeconfigs"

        def delegated(name: str) -> list[str]:
            kubeconfig = kubeconfigs / f"{name}.kubeconfig"
            return [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports[name]}",
                f"--cert-dir={self.base_dir / name}",
                "--leader-elect=false",
                "--profiling=false",
            ]

        controller_manager = self._spawn("kube-controller-manager", [
            str(self.binaries.path("kube-controller-manager")),
            *delegated("controller-manager"),
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca.cert}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={pki.ca.cert}",
            f"--cluster-signing-key-file={pki.ca.key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # Every default controller, garbage collection among them.
            "--controllers=*",
            # The client defaults (20 qps) throttle a control plane that creates hundreds of
            # ReplicaSets at once; large clusters raise them the same way.
            *CLIENT_THROUGHPUT,
            "--concurrent-deployment-syncs=20",
            "--concurrent-replicaset-syncs=20",
        ])  # fmt: skip
        scheduler = self._spawn("kube-scheduler", [
            str(self.binaries.path("kube-scheduler")), *delegated("scheduler"),
            *CLIENT_THROUGHPUT,
        ])  # fmt: skip
        annotation = "=".join(KWOK_NODE_ANNOTATION)
        self._spawn("kwok", [
            str(self.binaries.path("kwok")),
            f"--kubeconfig={kubeconfigs / 'kwok.kubeconfig'}",
            f"--config={KWOK_STAGES}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={annotation}",
            f"--cidr={POD_CIDR}",
            "--node-ip=10.240.0.1",
            "--node-lease-duration-seconds=40",
        ])  # fmt: skip
        insecure = ssl.create_default_context()
        # These serve a certificate they generated themselves; only liveness matters here.
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        for process, name in ((controller_manager, "controller-manager"), (scheduler, "scheduler")):
            url = f"https://127.0.0.1:{self.ports[name]}/healthz"
            process.wait_until_ready(
                self.in_network(_answers_ok(url, insecure)), self.startup_timeout
            )

    def _register_nodes(self) -> None:
        nodes = [_kwok_node(f"kwok-node-{i}") for i in range(self.node_count)]
        # With no kwok node, pods wait for another node (a real one: devenv.node) to appear.
        if nodes:
            self.apply({"apiVersion": "v1", "kind": "List", "items": nodes})

    def _wait_for_nodes_ready(self) -> None:
        kwok = next(p for p in self.processes if p.name == "kwok")

        def all_ready() -> bool:
            items = self.kubectl_json("get", "nodes")["items"]
            return len(items) >= self.node_count and all(map(_node_is_ready, items))

        kwok.wait_until_ready(all_ready, self.startup_timeout)


CLIENT_THROUGHPUT = ("--kube-api-qps=200", "--kube-api-burst=400")


def _kwok_node(name: str) -> dict[str, Any]:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1]},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def _node_is_ready(node: Mapping[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _run(
    argv: Sequence[str],
    input: str | None,
    check: bool,
    timeout: float,
    env: Mapping[str, str] | None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        check=False,
    )
    if check and result.returncode != 0:
        raise KubectlError(argv, result.returncode, result.stdout, result.stderr)
    return result


def _answers_ok(url: str, context: ssl.SSLContext) -> Callable[[], bool]:
    return lambda: _http_get(url, context) == "ok"


def _http_get(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=5, context=context) as response:
        body: bytes = response.read()
        return body.decode()


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _to_yaml(manifest: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    documents = [manifest] if isinstance(manifest, Mapping) else list(manifest)
    return yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False)


def _write_kubeconfig(
    path: Path,
    server: str,
    ca: Path,
    user: str,
    credentials: Mapping[str, str],
    namespace: str | None = None,
) -> None:
    context: dict[str, str] = {"cluster": "rollforward-local", "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "rollforward-local",
            "cluster": {"server": server, "certificate-authority-data": _b64(ca.read_bytes())},
        }],
        "users": [{"name": user, "user": dict(credentials)}],
        "contexts": [{"name": "rollforward-local", "context": context}],
        "current-context": "rollforward-local",
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


# --- `make cluster-up` / `make cluster-down` ---------------------------------------------------

_STATE_FILE = "state.json"


def cluster_up(state_dir: Path, node_count: int = 3) -> LocalCluster:
    """Start a cluster in `state_dir` that outlives this process (see `cluster_down`).

    `node_count=0` starts no kwok node, for a cluster whose pods a real node runs.
    """
    state = state_dir / _STATE_FILE
    if state.exists():
        raise FileExistsError(
            f"a cluster may still run from {state_dir}; `make cluster-down` first"
        )
    if state_dir.exists():
        shutil.rmtree(state_dir)  # nothing but a previous, stopped run's leftovers lives here
    cluster = LocalCluster(state_dir, node_count=node_count, die_with_parent=False)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    write_records(
        state, cluster.processes, kubeconfig=str(cluster.kubeconfig_path), server=cluster.server_url
    )
    return cluster


def cluster_down(state_dir: Path) -> list[str]:
    """Stop what `cluster_up` started in `state_dir`; returns the stopped components' names."""
    state = state_dir / _STATE_FILE
    if not state.exists():
        return []
    stopped = stop_recorded(state)
    state.unlink()
    return stopped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / "_out" / "cluster")
    parser.add_argument("--kwok-nodes", type=int, default=3, help="fake nodes; 0 for a real node's")
    args = parser.parse_args(argv)
    state_dir: Path = args.dir.resolve()
    if args.command == "up":
        cluster = cluster_up(state_dir, args.kwok_nodes)
        print(f"cluster is up: {cluster.server_url} (logs in {state_dir / 'logs'})")
        print(f"export KUBECONFIG={cluster.kubeconfig_path}")
        print(f"kubectl: {cluster.bin_dir('kubernetes') / 'kubectl'}")
    else:
        stopped = cluster_down(state_dir)
        print(f"stopped: {', '.join(stopped)}" if stopped else "no cluster was running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
