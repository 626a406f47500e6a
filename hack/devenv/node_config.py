"""The configuration files of the real node (pure builders: paths in, text out).

Every path a component would default to on the host (/var/lib/containerd, /run/containerd,
/etc/cni/net.d, /var/lib/kubelet, /var/log/pods, /var/lib/cni/networks, /opt/containerd,
/var/run/nri) is moved under the node's own directory, so runs never collide with each other
or with anything on the host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NODE_NAME = "rf-node"
POD_SUBNET = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
CLUSTER_DNS_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
RUNC = Path("/usr/sbin/runc")
SOCKET_ROOT = Path("/run/rollforward")
# sun_path is 108 bytes; Go (the kubelet) fills it whole, with no terminating NUL.
MAX_SOCKET_PATH = 108
# The longest unix socket the kubelet makes under its root directory.
_KUBELET_SOCKET = Path("device-plugins") / "kubelet.sock"


@dataclass(frozen=True)
class NodeLayout:
    """Where everything of one node lives, under `base`."""

    base: Path
    run_id: str

    @property
    def containerd_root(self) -> Path:
        return self.base / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.base / "containerd" / "state"

    @property
    def socket_dir(self) -> Path:
        """A short directory of its own for containerd's sockets: a unix socket path may not
        exceed 104 bytes, and `base` (a pytest tmp dir, say) can be longer than that allows."""
        return SOCKET_ROOT / self.run_id

    @property
    def containerd_socket(self) -> Path:
        return self.socket_dir / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "cni" / "net.d"

    @property
    def kubelet_root(self) -> Path:
        return self.base / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.base / "pod-logs"

    @property
    def network_name(self) -> str:
        """The CNI network's name; libcni's result cache (/var/lib/cni) files start with it."""
        return f"rf-{self.run_id}"

    @property
    def cgroup_name(self) -> str:
        return f"rollforward-{self.run_id}"

    def check_socket_paths(self) -> None:
        """Fail at once, and say why, when `base` is too long for the kubelet's sockets
        (which it puts under its root directory); the kubelet would fail later and obscurely."""
        socket = self.kubelet_root / _KUBELET_SOCKET
        if len(str(socket).encode()) > MAX_SOCKET_PATH:
            raise ValueError(
                f"{self.base} is too long for a node directory: the kubelet's socket {socket} "
                f"would pass the {MAX_SOCKET_PATH} bytes a unix socket path may have"
            )


def containerd_toml(layout: NodeLayout, sandbox_image: str) -> str:
    """containerd 2.x configuration (version 3) for the CRI node."""
    opt = layout.base / "containerd" / "opt"
    return f"""version = 3
root = '{layout.containerd_root}'
state = '{layout.containerd_state}'
imports = []
# Plugins that would reach for host paths (/var/run/nri, /opt/...) and are not needed here.
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.erofs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing']

[grpc]
  address = '{layout.containerd_socket}'

[plugins.'io.containerd.internal.v1.opt']
  path = '{opt}'

# The CRI plugin depends on an image verifier; this one finds no verifiers and allows all.
[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = '{opt / "image-verifier"}'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{sandbox_image}'

[plugins.'io.containerd.cri.v1.runtime']
  enable_cdi = false
  cdi_spec_dirs = []
  # Pod network namespaces are bind-mounted under the state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which this machine's root lacks; clamp
  # sandboxes (-998) and Guaranteed pods to containerd's own score instead.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = '{RUNC}'
      Root = '{layout.base / "runc"}'
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['{CNI_BIN_DIR}']
    conf_dir = '{layout.cni_conf_dir}'
"""


def cni_conflist(layout: NodeLayout) -> str:
    ipam = {
        "type": "host-local",
        "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(layout.base / "cni" / "ipam"),
    }
    bridge = {
        "type": "bridge",
        "bridge": "rf-cni0",
        "isGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": ipam,
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    conf = {"cniVersion": "1.0.0", "name": layout.network_name, "plugins": [bridge, portmap]}
    return json.dumps(conf, indent=2)


def kubelet_config(layout: NodeLayout, node_ip: str, resolv_conf: Path) -> str:
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This machine runs cgroup v1, which 1.35 refuses unless told otherwise.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{layout.cgroup_name}",
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "address": node_ip,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        # Reachable only inside the namespace; the apiserver needs it for logs and exec.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDNS": [CLUSTER_DNS_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": str(resolv_conf),
        "podLogsDir": str(layout.pod_logs),
        "failSwapOn": False,
        # Fail rather than change host sysctls; the kubelet's mount namespace shows it the
        # values it wants (see devenv.node).
        "protectKernelDefaults": True,
        # Images are imported, never pulled: garbage-collecting one would break the next pod.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        "syncFrequency": "10s",
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_config(kubeconfig: Path, cluster_cidr: str) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": cluster_cidr,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # nf_conntrack_max and the global timeouts are host-wide: leave them alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def corefile(node_ip: str, kubeconfig: Path) -> str:
    """Cluster DNS only: there is no upstream, nothing leaves the namespace."""
    return f""".:53 {{
    bind {node_ip}
    errors
    ready 127.0.0.1:8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} rollforward-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""


def kube_dns_manifests(node_ip: str) -> list[dict[str, Any]]:
    """The `kube-dns` Service at the cluster DNS address, backed by CoreDNS on the node."""
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns"},
        },
        "spec": {
            "clusterIP": CLUSTER_DNS_IP,
            "ports": [{"name": n, "protocol": p, "port": 53, "targetPort": 53} for n, p in ports],
        },
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-node",
            "namespace": "kube-system",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": "devenv.rollforward.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [node_ip], "conditions": {"ready": True}}],
        "ports": [{"name": n, "protocol": p, "port": 53} for n, p in ports],
    }
    return [service, endpoints]


def pod_scrape_config(server: str, ca: Path, cert: Path, key: Path) -> dict[str, Any]:
    """A plain `kubernetes_sd_configs` job for a Prometheus inside the node's namespace: it
    scrapes pods annotated `prometheus.io/scrape: "true"` (port and path from
    `prometheus.io/port` and `prometheus.io/path`) and labels them with namespace, pod and
    container, the labels every standard scrape configuration adds."""
    tls = {"ca_file": str(ca), "cert_file": str(cert), "key_file": str(key)}
    meta = "__meta_kubernetes_pod_"
    relabel = [
        {"source_labels": [f"{meta}annotation_prometheus_io_scrape"], "action": "keep",
         "regex": "true"},
        {"source_labels": [f"{meta}annotation_prometheus_io_path"], "regex": "(.+)",
         "target_label": "__metrics_path__"},
        {"source_labels": ["__address__", f"{meta}annotation_prometheus_io_port"],
         "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2",
         "target_label": "__address__"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": [f"{meta}name"], "target_label": "pod"},
        {"source_labels": [f"{meta}container_name"], "target_label": "container"},
    ]  # fmt: skip
    return {
        # Apart from LocalPrometheus's own file_sd pod job (kubernetes-pods): one name per job.
        "job_name": "kubernetes-sd-pods",
        # Prometheus 3 refuses a page without a Content-Type unless told what to expect.
        "fallback_scrape_protocol": "PrometheusText0.0.4",
        "kubernetes_sd_configs": [{"role": "pod", "api_server": server, "tls_config": tls}],
        "relabel_configs": relabel,
    }
