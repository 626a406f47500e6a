"""A real Kubernetes node: containerd, kubelet, kube-proxy (iptables) and CoreDNS, with the
control plane, all inside one network namespace that the harness creates and removes.

    with RealNodeCluster(tmp_dir) as cluster:
        cluster.kubectl("get", "pods", "-o", "wide")     # from the host, through a forwarder
        cluster.netns.wrap(["wget", "-qO-", "http://10.96.12.34"])   # inside the namespace

Nothing changes the host's routes, iptables or sysctls: the pod bridge, veths, service rules
and every listening socket live in the namespace. State (containerd root/state, kubelet
root, CNI config, pod logs) lives under the run's directory, the pods' cgroups under
`/rollforward-<id>`, and `stop` removes all of it (see `leftovers`).

`python -m devenv.node up|down [--dir _out/node]` does the same for `make node-up`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv import node_cleanup, node_config
from devenv.cgroups import NodeCgroup
from devenv.cluster import POD_CIDR, REPO_ROOT, ClusterBinaries, LocalCluster, _node_is_ready
from devenv.netns import NetworkNamespace
from devenv.node_config import NODE_NAME, NodeLayout
from devenv.oci_image import PAUSE_IMAGE, node_test_images
from devenv.processes import ManagedProcess, StartStop
from devenv.prometheus import LocalPrometheus

IMAGES_CACHE = Path(os.environ.get("ROLLFORWARD_CACHE", Path.home() / ".cache" / "rollforward"))
PROJECT_IMAGES = REPO_ROOT / "_out" / "images"
_STATE_FILE = "node-state.json"

# kubelet sets these host-wide sysctls unless they already hold its values; in its own mount
# namespace it is shown files with those values instead (protectKernelDefaults makes it
# fail, not write, if that ever stops working).
_KUBELET_SYSCTLS = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}


class RealNode(StartStop):
    """containerd, kubelet, kube-proxy and CoreDNS for `cluster`, inside `netns`."""

    def __init__(
        self,
        cluster: LocalCluster,
        netns: NetworkNamespace,
        layout: NodeLayout,
        startup_timeout: float = 180.0,
    ) -> None:
        self.cluster = cluster
        self.netns = netns
        self.layout = layout
        self.cgroup = NodeCgroup(layout.cgroup_name)
        self.binaries = cluster.binaries
        self.startup_timeout = startup_timeout
        self.processes: list[ManagedProcess] = []

    def start(self) -> RealNode:
        self.cgroup.create()
        self._start_containerd()
        self.import_images(node_test_images(IMAGES_CACHE / "node-images"))
        self.import_images(sorted(PROJECT_IMAGES.glob("*.oci.tar")))
        self._start_kubelet()
        self._start_kube_proxy()
        self._start_coredns()
        self.wait_ready()
        return self

    def stop(self) -> None:
        """Stop the daemons, then sweep: pods, shims, mounts, cgroups and caches."""
        for process in reversed(self.processes):
            process.stop(grace=5.0)
        sweep(self.layout)

    # --- images ----------------------------------------------------------------------------

    def ctr(self, *args: str) -> str:
        argv = [
            str(self.binaries.path("ctr")),
            "--address",
            str(self.layout.containerd_socket),
            "--namespace",
            "k8s.io",
            *args,
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
        return result.stdout

    def import_images(self, archives: Sequence[Path]) -> None:
        """Import OCI archives into the CRI's namespace; pods then run them without a pull."""
        for archive in archives:
            self.ctr("images", "import", "--local", str(archive))

    def images(self) -> list[str]:
        return self.ctr("images", "list", "--quiet").split()

    # --- components ------------------------------------------------------------------------

    def _spawn(self, name: str, argv: Sequence[str], in_cgroup: bool = False) -> ManagedProcess:
        argv = self.netns.wrap(argv)
        if in_cgroup:
            # Joined before exec, so containerd's shims (which re-parent to init) are in it too.
            argv = ["sh", "-c", f'{self.cgroup.join_command()}; exec "$@"', "sh", *argv]
        env = {"PATH": f"{self.binaries.bin_dir('containerd')}:/usr/sbin:/usr/bin:/sbin:/bin"}
        process = ManagedProcess(
            name,
            argv,
            self.layout.base / "logs" / f"{name}.log",
            env=env,
            cwd=self.layout.base,
            die_with_parent=self.cluster.die_with_parent,
        )
        self.processes.append(process.start())
        return process

    def _start_containerd(self) -> None:
        config = self.layout.base / "containerd" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        self.layout.socket_dir.mkdir(parents=True, exist_ok=True)
        config.write_text(node_config.containerd_toml(self.layout, PAUSE_IMAGE))
        self.layout.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        conflist = self.layout.cni_conf_dir / "10-rollforward.conflist"
        conflist.write_text(node_config.cni_conflist(self.layout))
        containerd = self._spawn(
            "containerd", [str(self.binaries.path("containerd")), "--config", str(config)], True
        )
        containerd.wait_until_ready(lambda: bool(self.ctr("version")), self.startup_timeout)

    def _kubelet_mount_setup(self) -> str:
        """Shell run in the kubelet's own mount namespace before it starts."""
        fake = self.layout.base / "kubelet-sysctl"
        fake.mkdir(parents=True, exist_ok=True)
        lines = []
        for key, value in _KUBELET_SYSCTLS.items():
            (fake / key.replace("/", ".")).write_text(value + "\n")
            lines.append(f"mount --bind {fake / key.replace('/', '.')} /proc/sys/{key}")
        # kubelet links container logs from /var/log/containers (a fixed path).
        var_log = self.layout.base / "kubelet-var-log"
        var_log.mkdir(parents=True, exist_ok=True)
        lines.append(f"mount --bind {var_log} /var/log")
        return " && ".join(lines)

    def _start_kubelet(self) -> None:
        root = self.layout.kubelet_root
        root.mkdir(parents=True, exist_ok=True)
        # A shared mount, so the volumes kubelet mounts in its own mount namespace show up in
        # the host's, where containerd and runc bind them into containers.
        subprocess.run(["mount", "--bind", str(root), str(root)], check=True)
        subprocess.run(["mount", "--make-rshared", str(root)], check=True)
        resolv = self.layout.base / "resolv.conf"
        resolv.write_text("# cluster DNS only; nothing upstream\n")
        config = self.layout.base / "kubelet-config.yaml"
        config.write_text(node_config.kubelet_config(self.layout, self.netns.node_ip, resolv))
        kubeconfig = self.cluster.issue_kubeconfig(
            "kubelet", f"system:node:{NODE_NAME}", ["system:nodes"]
        )
        kubelet = [
            str(self.binaries.path("kubelet")),
            f"--config={config}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={root}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={self.netns.node_ip}",
            "--v=1",
        ]
        script = f'{self._kubelet_mount_setup()} && exec "$@"'
        self._spawn(
            "kubelet",
            [
                "unshare",
                "--mount",
                "--propagation",
                "unchanged",
                "--",
                "sh",
                "-c",
                script,
                "sh",
                *kubelet,
            ],
            True,
        )

    def _start_kube_proxy(self) -> None:
        kubeconfig = self.cluster.issue_kubeconfig("kube-proxy", "system:kube-proxy")
        config = self.layout.base / "kube-proxy-config.yaml"
        config.write_text(node_config.kube_proxy_config(kubeconfig, POD_CIDR))
        proxy = self._spawn(
            "kube-proxy", [str(self.binaries.path("kube-proxy")), f"--config={config}", "--v=1"]
        )
        proxy.wait_until_ready(
            self.cluster.in_network(lambda: _http_ok("http://127.0.0.1:10256/healthz")),
            self.startup_timeout,
        )

    def _start_coredns(self) -> None:
        # CoreDNS lists Services, EndpointSlices, Pods and Namespaces cluster-wide.
        kubeconfig = self.cluster.issue_kubeconfig(
            "coredns", "rollforward-coredns", ["system:masters"]
        )
        corefile = self.layout.base / "Corefile"
        corefile.write_text(node_config.corefile(self.netns.node_ip, kubeconfig))
        self.cluster.apply(node_config.kube_dns_manifests(self.netns.node_ip))
        coredns = self._spawn(
            "coredns", [str(self.binaries.path("coredns")), "-conf", str(corefile)]
        )
        coredns.wait_until_ready(
            self.cluster.in_network(lambda: _http_ok("http://127.0.0.1:8181/ready")),
            self.startup_timeout,
        )

    def wait_ready(self) -> None:
        kubelet = next(p for p in self.processes if p.name == "kubelet")

        def node_ready() -> bool:
            node = self.cluster.kubectl_json("get", "node", NODE_NAME)
            return _node_is_ready(node)

        kubelet.wait_until_ready(node_ready, self.startup_timeout, interval=1.0)


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return bool(response.status == 200)


@dataclass(frozen=True)
class Leftovers:
    """What a stopped node left behind; all empty after a clean teardown."""

    processes: set[int]
    mounts: list[str]
    netns: bool
    cgroups: bool
    shim_sockets: list[Path]
    cni_cache: list[Path]
    socket_dir: bool

    def empty(self) -> bool:
        return not (
            self.processes
            or self.mounts
            or self.netns
            or self.cgroups
            or self.shim_sockets
            or self.cni_cache
            or self.socket_dir
        )


class RealNodeCluster(StartStop):
    """The control plane plus one real node, all in a fresh network namespace."""

    def __init__(
        self,
        base_dir: Path,
        run_id: str | None = None,
        binaries: ClusterBinaries | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.base_dir = base_dir
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.netns = NetworkNamespace(f"rf-{self.run_id}")
        self.layout = NodeLayout(base_dir / "node", self.run_id)
        self.cluster = LocalCluster(
            base_dir / "cluster",
            node_count=0,
            binaries=binaries,
            die_with_parent=die_with_parent,
            netns=self.netns,
        )
        self.node = RealNode(self.cluster, self.netns, self.layout)

    def start(self) -> RealNodeCluster:
        self.layout.check_socket_paths()
        self.netns.create()
        self.cluster.start()
        self.node.start()
        return self

    def stop(self) -> None:
        self.node.stop()
        self.cluster.stop()
        teardown(self.netns, self.layout)

    def leftovers(self) -> Leftovers:
        return leftovers(self.netns, self.layout)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, input=input, check=check)

    def prometheus(
        self, base_dir: Path, scrape_configs: Sequence[Mapping[str, Any]] | None = None
    ) -> LocalPrometheus:
        """A Prometheus inside the namespace, listening on the node's address (so pods reach
        it too), that discovers pods through the API server (`kubernetes_sd_configs`): with
        `scrape_configs` from `kubernetes_sd_scrape_config`, else the annotation-driven job of
        `node_config.pod_scrape_config`; start it with `with`."""
        if scrape_configs is None:
            cert, key = self.cluster.admin_client_cert
            scrape_configs = [
                node_config.pod_scrape_config(
                    self.cluster.server_url, self.cluster.ca_path, cert, key
                )
            ]
        executable = str(self.cluster.binaries.path("prometheus"))
        return LocalPrometheus(
            base_dir,
            executable=executable,
            netns=self.netns,
            scrape_configs=scrape_configs,
            die_with_parent=self.cluster.die_with_parent,
            host=self.netns.node_ip,
        )

    def kubernetes_sd_tls(self) -> dict[str, str]:
        """The `tls_config` with which a Prometheus in the namespace reads the API server."""
        cert, key = self.cluster.admin_client_cert
        return {"ca_file": str(self.cluster.ca_path), "cert_file": str(cert), "key_file": str(key)}

    def run_in_netns(self, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a host command (e.g. busybox wget) inside the namespace."""
        return subprocess.run(
            self.netns.wrap(argv), capture_output=True, text=True, timeout=timeout, check=False
        )


def teardown(netns: NetworkNamespace, layout: NodeLayout) -> None:
    """Remove whatever is left of a node, also after its harness died (used by node-down)."""
    node_cleanup.kill_netns_processes(netns.path)
    sweep(layout)
    netns.delete()


def sweep(layout: NodeLayout) -> None:
    """Kill what is left in the node's cgroup (pods, shims), then remove its mounts, shim
    sockets, CNI cache files and cgroups."""
    cgroup = NodeCgroup(layout.cgroup_name)
    cgroup.kill_all()
    node_cleanup.unmount_all(layout.base)
    node_cleanup.remove_shim_sockets(layout.containerd_socket, _task_dir(layout))
    shutil.rmtree(layout.socket_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # still in use by another run: that run removes it
        layout.socket_dir.parent.rmdir()
    sandboxes = node_cleanup.sandbox_ids(layout.containerd_root, layout.containerd_state)
    node_cleanup.remove_cni_cache(layout.network_name, sandboxes)
    cgroup.remove()
    node_cleanup.remove_image_store(layout.containerd_root)


def _task_dir(layout: NodeLayout) -> Path:
    return layout.containerd_state / "io.containerd.runtime.v2.task"


def leftovers(netns: NetworkNamespace, layout: NodeLayout) -> Leftovers:
    sandboxes = node_cleanup.sandbox_ids(layout.containerd_root, layout.containerd_state)
    return Leftovers(
        processes=node_cleanup.pids_in_netns(netns.path),
        mounts=node_cleanup.mounts_under(layout.base),
        netns=netns.exists(),
        cgroups=NodeCgroup(layout.cgroup_name).exists(),
        shim_sockets=node_cleanup.shim_sockets(layout.containerd_socket, _task_dir(layout)),
        cni_cache=node_cleanup.cni_cache_files(layout.network_name, sandboxes),
        socket_dir=layout.socket_dir.exists(),
    )


# --- `make node-up` / `make node-down` ---------------------------------------------------------


def node_up(state_dir: Path) -> RealNodeCluster:
    state = state_dir / _STATE_FILE
    if state.exists():
        raise FileExistsError(f"a node may still run from {state_dir}; `make node-down` first")
    if state_dir.exists():
        shutil.rmtree(state_dir)
    started = time.monotonic()
    real = RealNodeCluster(state_dir, die_with_parent=False)
    state_dir.mkdir(parents=True)
    state.write_text(json.dumps({"run_id": real.run_id}))
    try:
        real.start()
    except BaseException:
        real.stop()
        state.unlink()
        raise
    print(f"node ready in {time.monotonic() - started:.1f}s")
    state.write_text(
        json.dumps(
            {
                "run_id": real.run_id,
                "kubeconfig": str(real.cluster.kubeconfig_path),
                "server": real.cluster.server_url,
            }
        )
    )
    return real


def node_down(state_dir: Path) -> Leftovers | None:
    state = state_dir / _STATE_FILE
    if not state.exists():
        return None
    run_id = json.loads(state.read_text())["run_id"]
    netns, layout = NetworkNamespace(f"rf-{run_id}"), NodeLayout(state_dir / "node", run_id)
    teardown(netns, layout)
    state.unlink()
    return leftovers(netns, layout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.node", description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / "_out" / "node")
    args = parser.parse_args(argv)
    state_dir: Path = args.dir.resolve()
    if args.command == "up":
        real = node_up(state_dir)
        print(
            f"node is up: {real.cluster.server_url} (namespace {real.netns.name}, "
            f"logs in {state_dir}/*/logs)"
        )
        print(f"export KUBECONFIG={real.cluster.kubeconfig_path}")
        return 0
    left = node_down(state_dir)
    if left is None:
        print("no node was running")
        return 0
    print("stopped; nothing left behind" if left.empty() else f"left behind: {left}")
    return 0 if left.empty() else 1


if __name__ == "__main__":
    sys.exit(main())
