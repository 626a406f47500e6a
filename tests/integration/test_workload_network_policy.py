"""The chart's workload NetworkPolicy, enforced on the real node (kube-network-policies).

Given one real node with a NetworkPolicy enforcer (devenv.network_policies), a bento pod and a
router pod labelled as the operator labels them (its own builders) with the bento's Service,
a Prometheus pod in a monitoring namespace, a feedback sender pod, and an unrelated pod in a
third namespace,
when nothing restricts them, then every one of them reaches the bento (so a refusal below is
the policy's doing);
and when the NetworkPolicies that `helm template` renders for `workloadNetworkPolicy` (with
`prometheusFrom` the monitoring namespace's Prometheus, `feedbackFrom` the sender) are applied,
then the router reaches the bento (pod IP and Service), Prometheus its /metrics and the sender
its /feedback, while the unrelated pod, and an unlabelled pod beside the bento, time out;
the router stays open to everyone (`routerFrom` empty); and removing the policies lets the
unrelated pod in again.

The bento is a stand-in (busybox httpd on the operator's named port, with its labels): a
NetworkPolicy decides by addresses, labels and ports alone, so the verdicts are those a real
bento gets, and the test needs no bento store or image unpacking.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from devenv.api_cases import example_manifest
from devenv.cluster import REPO_ROOT, ClusterBinaries
from devenv.network_policies import QUEUE_RULE, NetworkPolicyEnforcer
from devenv.node import RealNodeCluster
from devenv.oci_image import BUSYBOX_IMAGE
from devenv.processes import wait_until
from rollforward.api import ModelDeployment, parse_model_deployment
from rollforward.builders import variant_deployment, variant_service
from rollforward.naming import COMPONENT_ROUTER, owned_labels
from rollforward.serving.contract import DEFAULT_PORT
from rollforward.settings import OperatorSettings
from rollforward.variants import served_variants

Manifest = dict[str, Any]
CHART = REPO_ROOT / "charts" / "rollforward"
PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}
FEEDBACK_SENDER = {"app.kubernetes.io/name": "feedback-sender"}
# nc's connect timeout per probe: a dropped SYN is retried, never answered.
PROBE_TIMEOUT = 3
# How long the enforcer may take to see a policy change (its informers) before a probe counts.
POLICY_SETTLE = 20.0
# The stand-in router's port (the policy names the router's port `http`, whatever its number).
ROUTER_PORT = 8080


@dataclass(frozen=True)
class Place:
    models: str
    monitoring: str
    other: str


def model_deployment(namespace: str) -> ModelDeployment:
    manifest = example_manifest()
    manifest["metadata"].update(name="upsell", namespace=namespace, uid="uid-1", generation=1)
    manifest["spec"]["variants"] = [
        {"name": "champion", "role": "champion", "bento": "upsell:v1", "weight": 100}
    ]
    return parse_model_deployment(manifest)


def unowned(manifest: Manifest) -> Manifest:
    """No ModelDeployment object exists here; the garbage collector deletes what names one."""
    metadata = {k: v for k, v in manifest["metadata"].items() if k != "ownerReferences"}
    return {**manifest, "metadata": metadata}


def busybox_pod(
    name: str, namespace: str, labels: dict[str, str], container: Manifest | None = None
) -> Manifest:
    """A pod of the node's busybox image: `container` merged over one that sleeps."""
    base: Manifest = {"name": "main", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                      "command": ["sleep", "3600"]}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{**base, **(container or {})}]},
    }


def web_server(port: int, pages: tuple[str, ...]) -> Manifest:
    """busybox httpd on `port` (named `http`), answering GET /<page> with the page's name."""
    write = " && ".join(f"echo {page} > /tmp/www/{page}" for page in pages)
    return {
        "command": ["sh", "-c", f"mkdir -p /tmp/www && {write} && "
                    f"exec httpd -f -p {port} -h /tmp/www"],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": f"/{pages[0]}", "port": "http"},
                           "periodSeconds": 1},
    }  # fmt: skip


def stand_in_bento(md: ModelDeployment) -> tuple[Manifest, Manifest]:
    """A pod with the labels and named port of the operator's bento Deployment, serving
    /metrics, /predict and /feedback as pages; and the operator's Service of that variant."""
    (variant,) = served_variants(md.spec, md.status)
    template = variant_deployment(md, variant, OperatorSettings())["spec"]["template"]
    (serving,) = template["spec"]["containers"]
    server = web_server(DEFAULT_PORT, ("metrics", "predict", "feedback"))
    assert server["ports"] == serving["ports"]  # the operator's port, name and protocol
    pod = busybox_pod("bento", md.metadata.namespace, template["metadata"]["labels"], server)
    return pod, unowned(variant_service(md, variant))


def rendered_policies(place: Place) -> list[Manifest]:
    """The chart's workload NetworkPolicies, as `helm template` renders them."""
    values = {"workloadNetworkPolicy": {
        "enabled": True,
        "namespaces": [place.models],
        "prometheusFrom": [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": place.monitoring}},
            "podSelector": {"matchLabels": PROMETHEUS},
        }],
        "feedbackFrom": [{"podSelector": {"matchLabels": FEEDBACK_SENDER}}],
    }}  # fmt: skip
    helm = str(ClusterBinaries.from_environment().path("helm"))
    result = subprocess.run(
        [helm, "template", "rf", str(CHART), "-n", "rollforward-system",
         "--show-only", "templates/workload-networkpolicy.yaml", "-f", "-"],
        input=yaml.safe_dump(values), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted(d["metadata"]["name"] for d in docs) == [
        "rollforward-bentos",
        "rollforward-routers",
    ]
    return docs


def probe(node: RealNodeCluster, namespace: str, pod: str, ip: str, port: int, page: str) -> bool:
    """Whether `pod` gets `page` from ip:port over HTTP, connecting within PROBE_TIMEOUT
    seconds. busybox nc, because this busybox's wget crashes (SIGSEGV) when given -T."""
    request = f"printf 'GET /{page} HTTP/1.0\\r\\n\\r\\n' | nc -w {PROBE_TIMEOUT} {ip} {port}"
    result = node.cluster.kubectl(
        "exec", "-n", namespace, pod, "--", "sh", "-c", request, check=False, timeout=30
    )
    # Text mode has turned the answer's CRLFs into newlines.
    lines = result.stdout.splitlines()
    return result.returncode == 0 and " 200 " in lines[0] and lines[-1] == page if lines else False


@dataclass(frozen=True)
class Scene:
    place: Place
    bento_ip: str
    service_ip: str
    router_ip: str

    def bento(self, page: str) -> tuple[str, int, str]:
        return self.bento_ip, DEFAULT_PORT, page


# Who asks, from where: (namespace attribute of Place, pod name).
ROUTER = ("models", "router")
PROMETHEUS_POD = ("monitoring", "prometheus")
SENDER = ("models", "feedback-sender")
STRANGER = ("other", "stranger")
NEIGHBOUR = ("models", "neighbour")


def asks(
    node: RealNodeCluster, scene: Scene, who: tuple[str, str], where: tuple[str, int, str]
) -> bool:
    return probe(node, getattr(scene.place, who[0]), who[1], *where)


@pytest.fixture(scope="module")
def scene(real_node: RealNodeCluster) -> Iterator[Scene]:
    """The pods, Ready, with the enforcer running and no NetworkPolicy yet."""
    cluster = real_node.cluster
    with (
        NetworkPolicyEnforcer(real_node),
        cluster.temporary_namespace("models") as models,
        cluster.temporary_namespace("monitoring") as monitoring,
        cluster.temporary_namespace("other") as other,
    ):
        place = Place(models, monitoring, other)
        md = model_deployment(models)
        bento, service = stand_in_bento(md)
        router_labels = owned_labels(md.metadata.name, COMPONENT_ROUTER)
        router = busybox_pod("router", models, router_labels, web_server(ROUTER_PORT, ("healthz",)))
        cluster.apply([
            bento, service, router,
            busybox_pod("prometheus", monitoring, PROMETHEUS),
            busybox_pod("feedback-sender", models, FEEDBACK_SENDER),
            busybox_pod("neighbour", models, {"app": "neighbour"}),
            busybox_pod("stranger", other, {"app": "stranger"}),
        ])  # fmt: skip
        for namespace in (models, monitoring, other):
            real_node.kubectl("wait", "--for=condition=Ready", "pod", "--all", "-n", namespace,
                              "--timeout=120s")  # fmt: skip
        ip = {
            name: cluster.kubectl_json("get", "pod", name, "-n", models)["status"]["podIP"]
            for name in ("bento", "router")
        }
        service_ip = cluster.kubectl_json(
            "get", "service", service["metadata"]["name"], "-n", models
        )["spec"]["clusterIP"]
        yield Scene(place, ip["bento"], service_ip, ip["router"])


@dataclass(frozen=True)
class Verdicts:
    before: dict[str, bool]
    enforced: dict[str, bool]
    lifted: dict[str, bool]


def settle(condition: Callable[[], bool]) -> None:
    """Give the enforcer up to POLICY_SETTLE seconds to see a change (its informers), until
    `condition` holds; the verdicts taken next show whether it ever did."""
    with contextlib.suppress(TimeoutError):
        wait_until(condition, POLICY_SETTLE, interval=0.5, what="the enforcer to see the change")


@pytest.fixture(scope="module")
def verdicts(real_node: RealNodeCluster, scene: Scene) -> Verdicts:
    """Who reaches what: with no policy, with the chart's policies, and with them removed."""
    router = (scene.router_ip, ROUTER_PORT, "healthz")

    def everyone() -> dict[str, bool]:
        return {
            "router -> bento /predict": asks(real_node, scene, ROUTER, scene.bento("predict")),
            "router -> bento Service": asks(
                real_node, scene, ROUTER, (scene.service_ip, DEFAULT_PORT, "predict")
            ),
            "prometheus -> bento /metrics": asks(
                real_node, scene, PROMETHEUS_POD, scene.bento("metrics")
            ),
            "sender -> bento /feedback": asks(real_node, scene, SENDER, scene.bento("feedback")),
            "stranger -> bento /predict": asks(real_node, scene, STRANGER, scene.bento("predict")),
            "neighbour -> bento /feedback": asks(
                real_node, scene, NEIGHBOUR, scene.bento("feedback")
            ),
            "stranger -> router": asks(real_node, scene, STRANGER, router),
        }

    before = everyone()
    policies = rendered_policies(scene.place)
    real_node.cluster.apply(policies)
    settle(lambda: not asks(real_node, scene, STRANGER, scene.bento("predict")))
    enforced = everyone()
    for policy in policies:
        real_node.kubectl("delete", "networkpolicy", policy["metadata"]["name"],
                          "-n", policy["metadata"]["namespace"])  # fmt: skip
    settle(lambda: asks(real_node, scene, STRANGER, scene.bento("predict")))
    lifted = {
        "stranger -> bento /predict": asks(real_node, scene, STRANGER, scene.bento("predict"))
    }
    return Verdicts(before, enforced, lifted)


ALLOWED = ("router -> bento /predict", "router -> bento Service", "prometheus -> bento /metrics",
           "sender -> bento /feedback", "stranger -> router")  # fmt: skip
REFUSED = ("stranger -> bento /predict", "neighbour -> bento /feedback")


def test_without_a_policy_everyone_reaches_the_bento(verdicts: Verdicts) -> None:
    assert verdicts.before == dict.fromkeys(verdicts.before, True)


def test_the_chart_policy_lets_in_only_the_router_prometheus_and_the_sender(
    verdicts: Verdicts,
) -> None:
    assert {k: verdicts.enforced[k] for k in ALLOWED} == dict.fromkeys(ALLOWED, True)
    assert {k: verdicts.enforced[k] for k in REFUSED} == dict.fromkeys(REFUSED, False)


def test_removing_the_policy_lets_the_stranger_in_again(verdicts: Verdicts) -> None:
    assert verdicts.lifted == {"stranger -> bento /predict": True}


def test_the_queue_rule_lives_in_the_node_namespace(
    real_node: RealNodeCluster, scene: Scene
) -> None:
    """The enforcer's hook is an iptables rule in the node's namespace (not the host's)."""
    inside = real_node.run_in_netns("iptables", "-w", "5", "-t", "mangle", "-S", "FORWARD")
    assert QUEUE_RULE in inside.stdout.splitlines()
