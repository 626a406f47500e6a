"""A NetworkPolicy enforcer for the real node: kube-network-policies (sigs.k8s.io), built by
`hack/build-cluster-bin.sh` with the entrypoint in hack/kube-network-policies/main.go.

It runs like kube-proxy: a host process inside the node's network namespace, reading the API
server with a kubeconfig of its own. While it runs, the first packet of every connection the
namespace forwards (pod to pod, on the bridge or through a Service) is queued to it through an
iptables `NFQUEUE` rule in mangle FORWARD, and it accepts or drops it by the NetworkPolicies of
both ends. Traffic from the node itself (host processes such as Prometheus) is not forwarded,
so policies never apply to it. Only the namespace's iptables change; stopping the enforcer
removes its rule (and the namespace goes with the node in any case).

Not started with every node: a test that needs NetworkPolicy enforced starts one with `with`,

    with NetworkPolicyEnforcer(real_node) as enforcer: ...
"""

from __future__ import annotations

from devenv.node import RealNodeCluster
from devenv.node_config import NODE_NAME
from devenv.processes import ManagedProcess, StartStop

QUEUE_ID = 100
# Inside the node's namespace (its own ports), where nothing else listens on it.
METRICS_ADDRESS = "127.0.0.1:9080"
QUEUE_RULE = f"-A FORWARD -m conntrack --ctstate NEW -j NFQUEUE --queue-num {QUEUE_ID}"


class NetworkPolicyEnforcer(StartStop):
    """kube-network-policies for `real`'s node; ready once its queue rule is in place and it
    reads the queue (its caches are synced by then)."""

    def __init__(self, real: RealNodeCluster, startup_timeout: float = 60.0) -> None:
        self.real = real
        self.startup_timeout = startup_timeout
        self.process: ManagedProcess | None = None

    def start(self) -> NetworkPolicyEnforcer:
        cluster = self.real.cluster
        # It lists Pods, Namespaces and NetworkPolicies cluster-wide and records Events.
        kubeconfig = cluster.issue_kubeconfig(
            "kube-network-policies", "rollforward-network-policies", ["system:masters"]
        )
        argv = [
            str(cluster.binaries.path("kube-network-policies")),
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            f"--nfqueue-id={QUEUE_ID}",
            f"--metrics-bind-address={METRICS_ADDRESS}",
            "--v=2",
        ]
        self.process = ManagedProcess(
            "kube-network-policies",
            self.real.netns.wrap(argv),
            self.real.layout.base / "logs" / "kube-network-policies.log",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            die_with_parent=cluster.die_with_parent,
        ).start()
        self.process.wait_until_ready(self.ready, self.startup_timeout)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=10.0)

    def ready(self) -> bool:
        return self.queue_rule_present() and self._queue_bound()

    def queue_rule_present(self) -> bool:
        """Its NFQUEUE rule is in the namespace's mangle FORWARD chain."""
        return QUEUE_RULE in self._in_netns("iptables", "-w", "5", "-t", "mangle", "-S", "FORWARD")

    def _queue_bound(self) -> bool:
        # One line per bound queue, its number first (the namespace's own view of /proc/net).
        table = self._in_netns("cat", "/proc/net/netfilter/nfnetlink_queue")
        return any(line.split()[:1] == [str(QUEUE_ID)] for line in table.splitlines())

    def log_tail(self, lines: int = 40) -> str:
        return "" if self.process is None else self.process.log_tail(lines)

    def _in_netns(self, *argv: str) -> str:
        result = self.real.run_in_netns(*argv, timeout=15.0)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
        return result.stdout
