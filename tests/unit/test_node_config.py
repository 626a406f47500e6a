"""The real node's configuration keeps every path under the node's directory, and its test
images are reproducible OCI archives that name themselves."""

from __future__ import annotations

import json
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

from devenv import node_config
from devenv.node_config import NodeLayout
from devenv.oci_image import ImageSpec, write_archive

LAYOUT = NodeLayout(Path("/runs/abc/node"), "abc")


def test_containerd_state_under_the_node_dir_and_its_socket_short() -> None:
    config = tomllib.loads(node_config.containerd_toml(LAYOUT, "rollforward.local/pause:1"))
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    runc = runtime["containerd"]["runtimes"]["runc"]["options"]
    paths = [config["root"], config["state"], runtime["cni"]["conf_dir"], runc["Root"]]
    assert all(p.startswith("/runs/abc/node/") for p in paths)
    # A run of its own, and short enough for a unix socket (at most 104 bytes with ".ttrpc").
    assert config["grpc"]["address"] == "/run/rollforward/abc/containerd.sock"
    assert runtime["netns_mounts_under_state_dir"] is True
    assert "io.containerd.nri.v1.nri" in config["disabled_plugins"]
    pinned = config["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]
    assert pinned["sandbox"] == "rollforward.local/pause:1"


def test_a_node_directory_too_long_for_the_kubelets_sockets_is_refused_before_it_starts() -> None:
    # As pytest's tmp_path names it under xdist: popen-gwN adds a level.
    long_base = Path("/tmp/pytest-of-root/pytest-123/popen-gw1/test_stopping_the_node_leaves_0")
    with pytest.raises(ValueError, match="too long for a node directory"):
        NodeLayout(long_base / "node" / "node", "abc").check_socket_paths()
    # The teardown test's and the real_node fixture's directories fit.
    for short in ("teardown0", "real-node0"):
        base = Path("/tmp/pytest-of-root/pytest-123/popen-gw1") / short / "node"
        NodeLayout(base, "abc").check_socket_paths()


def test_kubelet_runs_on_cgroup_v1_under_its_own_cgroup_and_never_writes_host_sysctls() -> None:
    config = yaml.safe_load(node_config.kubelet_config(LAYOUT, "10.250.0.1", Path("/r")))
    assert config["failCgroupV1"] is False
    assert config["cgroupRoot"] == "/rollforward-abc"
    assert config["protectKernelDefaults"] is True
    assert config["podLogsDir"].startswith("/runs/abc/node/")


def test_kube_proxy_leaves_host_wide_conntrack_settings_alone() -> None:
    config = yaml.safe_load(node_config.kube_proxy_config(Path("/k"), "10.244.0.0/16"))
    assert config["mode"] == "iptables"
    assert config["conntrack"]["maxPerCore"] == 0
    assert config["conntrack"]["tcpEstablishedTimeout"] == "0s"


def test_cni_network_is_named_per_run_and_keeps_ipam_state_under_the_node_dir() -> None:
    conf = json.loads(node_config.cni_conflist(LAYOUT))
    assert conf["name"] == "rf-abc"
    assert conf["plugins"][0]["ipam"]["dataDir"].startswith("/runs/abc/node/")


def test_oci_archive_is_reproducible_and_names_its_image(tmp_path: Path) -> None:
    payload = tmp_path / "hello"
    payload.write_text("hi\n")
    spec = ImageSpec("rollforward.local/hello:1", {"/bin/hello": payload}, {"/hi": "/bin/hello"})
    first = write_archive(spec, tmp_path / "a.tar").read_bytes()
    second = write_archive(spec, tmp_path / "b.tar").read_bytes()
    assert first == second
    with tarfile.open(tmp_path / "a.tar") as archive:
        index = json.loads(archive.extractfile("index.json").read())  # type: ignore[union-attr]
    annotations = index["manifests"][0]["annotations"]
    assert annotations["io.containerd.image.name"] == "rollforward.local/hello:1"


def test_pod_scrape_config_keeps_annotated_pods_and_labels_namespace_pod_and_container() -> None:
    job = node_config.pod_scrape_config("https://127.0.0.1:1", Path("/ca"), Path("/c"), Path("/k"))
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    keep = job["relabel_configs"][0]
    assert keep["action"] == "keep"
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"namespace", "pod", "container", "__address__", "__metrics_path__"} <= targets
