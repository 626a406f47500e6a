"""Stopping a real node leaves nothing behind: no process, mount, network namespace, veth,
cgroup, shim socket or CNI cache file, and the host's interfaces and NAT rules are unchanged.

A module of its own, so that no other node (the module-scoped one of test_real_node.py) is
running while the host is compared before and after. Under xdist it runs in the real-node
work unit (tests/fixtures/suite_order.py), never beside another module's node; the
`real_node` mark makes the collection check that it is listed there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devenv.node import RealNodeCluster
from devenv.oci_image import BUSYBOX_IMAGE
from devenv.processes import wait_until

pytestmark = pytest.mark.real_node

SLEEPER = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sleeper", "namespace": "default"},
    "spec": {"containers": [{"name": "sleep", "image": BUSYBOX_IMAGE,
                             "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]},
}  # fmt: skip


def _running(node: RealNodeCluster) -> bool:
    pod = node.cluster.kubectl_json("get", "pod", "sleeper", "-n", "default")
    return bool(pod["status"].get("phase") == "Running")


def _host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _host_nat_rules() -> set[str]:
    out = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    return set(out.splitlines())


def _host_paths() -> set[str]:
    """What exists under the host paths containerd and libcni write to by default."""
    roots = [Path("/run/containerd"), Path("/var/lib/cni"), Path("/var/log/containers")]
    return {str(p) for root in roots if root.exists() for p in [root, *root.rglob("*")]}


def test_stopping_the_node_leaves_nothing_behind(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    links_before, nat_before, paths_before = _host_links(), _host_nat_rules(), _host_paths()
    # Given a node that ran a pod (so there are shims, veths, mounts and pod cgroups), in a
    # short directory: under xdist's popen-gwN, tmp_path puts the kubelet's sockets past the
    # 108 bytes a unix socket path may have.
    node = RealNodeCluster(tmp_path_factory.mktemp("teardown"))
    with node:
        node.cluster.apply(SLEEPER)
        wait_until(lambda: _running(node), 180, what="the pod to run")
        running = node.leftovers()
        assert running.processes and running.mounts and running.netns and running.cgroups
        assert any(name.startswith("veth") for name in node.netns.interfaces())
    # When it is stopped (by the context manager)
    # Then no process, mount, namespace, cgroup, shim socket or CNI cache file is left
    left = node.leftovers()
    assert left.empty(), left
    # And the host's interfaces and NAT rules are what they were before
    assert _host_links() == links_before
    assert _host_nat_rules() == nat_before
    assert _host_paths() == paths_before
