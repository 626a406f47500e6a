"""Every API write a new ModelDeployment costs, one by one, from its creation to Ready and
settled (issue 19: at most 12 per resource at 1,000 resources).

The scale bench applies the README example (one replica per variant) against an empty
Prometheus; here the same resource goes through the whole reconcile with in-memory fakes,
and the fake kubelet makes each Deployment available when the test says so. Each write is
named with why it happens, so a new one shows up here before it shows up in the bench.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from fixtures.decision_inputs import T0
from fixtures.fakes import FakeCluster, FakeMetrics
from rollforward.events import Event
from rollforward.measurements import QueryResult
from rollforward.reconcile import reconcile
from rollforward.settings import OperatorSettings

pytestmark = pytest.mark.unit

CHAMPION, CHALLENGER, ROUTER = "scale-champion", "scale-challenger", "scale-router"


def _available(deployment: dict[str, Any], generation: int, updated: int | None = None) -> None:
    """The kubelet's view: the pods of `generation` are up (`updated` of them, with the older
    ones still serving when fewer: a surge)."""
    wanted = deployment["spec"].get("replicas", 1)
    updated = wanted if updated is None else updated
    deployment["status"] = {
        "observedGeneration": generation,
        "replicas": wanted + (wanted - updated),
        "updatedReplicas": updated,
        "readyReplicas": wanted,
        "availableReplicas": wanted,
        "conditions": [{"type": "Available", "status": "True"}],
    }


@dataclass
class RecordingCluster(FakeCluster):
    """The fake cluster, recording each write in order, with the API server's generation."""

    log: list[str] = field(default_factory=list)
    posted: list[Event] = field(default_factory=list)

    def apply(self, manifest: dict[str, Any]) -> None:
        key = (manifest["kind"], manifest["metadata"]["name"])
        before = copy.deepcopy(self.children.get(key))
        super().apply(manifest)
        self.log.append(f"apply {manifest['kind']}")
        if manifest["kind"] == "Deployment":
            generation = 1 if before is None else before["metadata"].get("generation", 1)
            if before is not None and before["spec"] != manifest["spec"]:
                generation += 1
            self.children[key]["metadata"] = {**manifest["metadata"], "generation": generation}

    def create(self, manifest: dict[str, Any]) -> None:
        super().create(manifest)
        self.log.append(f"create {manifest['kind']}")

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        super().patch_status(namespace, name, patch)
        self.log.append("patch status")

    def post_event(self, deployment: Any, event: Event) -> None:
        super().post_event(deployment, event)
        self.posted.append(event)
        self.log.append(f"event {event.reason}")

    def generation(self, name: str) -> int:
        return int(self.children[("Deployment", name)]["metadata"]["generation"])

    def up(self, name: str, updated: int | None = None) -> None:
        _available(self.children[("Deployment", name)], self.generation(name), updated)


@dataclass
class NewResource:
    """The bench's resource: the README example, one champion replica, an empty Prometheus."""

    spec: Any = None
    cluster: RecordingCluster = field(default_factory=RecordingCluster)
    now: Any = T0

    def body(self) -> dict[str, Any]:
        manifest = copy.deepcopy(example_manifest())
        manifest["metadata"] = {"name": "scale", "namespace": "bench", "uid": "u", "generation": 1}
        manifest["spec"]["variants"][0]["replicas"] = 1
        manifest["spec"]["monitoring"]["prometheusUrl"] = "http://prometheus:9090"
        if self.spec is not None:
            self.spec(manifest["spec"])
        manifest["status"] = copy.deepcopy(self.cluster.status)
        return manifest

    def reconcile(self) -> list[str]:
        """One reconcile; the writes it made."""
        start = len(self.cluster.log)
        empty = FakeMetrics(answer=lambda promql, at: QueryResult())
        reconcile(self.body(), self.cluster, empty, OperatorSettings(), lambda: self.now)
        self.now += timedelta(seconds=1)
        return self.cluster.log[start:]

    def conditions(self) -> dict[str, str]:
        return {c["type"]: c["status"] for c in self.cluster.status.get("conditions", [])}


def test_a_new_champion_and_challenger_cost_11_writes_and_each_is_a_transition() -> None:
    resource = NewResource()
    # Created: the feedback key, the 7 children, the first status (Ready False, Pending, so
    # `kubectl wait` and kstatus see the resource taken up), one Event for the 7 writes. The
    # first drift check finds no predictions yet: a new model's first state, no Event.
    # The router gets the declared split at once: until the challenger has a ready pod, nginx
    # sends its users to the champion by itself (rollforward.routers.nginx_config).
    created = resource.reconcile()
    assert Counter(created) == {
        "create Secret": 1,
        "apply Deployment": 3,
        "apply Service": 3,
        "apply ConfigMap": 1,
        "patch status": 1,
        "event CreatedChildren": 1,
    }
    assert resource.conditions()["Ready"] == "False"
    assert resource.conditions()["Progressing"] == "True"
    assert resource.cluster.status["split"] == "champion=90 challenger=10"

    # The variants and the router serve: Ready becomes True and the variants are rolled out,
    # in one status patch. The challenger's users reach it through the router as written at
    # creation: no rewrite, no router roll, no Event.
    for name in (CHAMPION, CHALLENGER, ROUTER):
        resource.cluster.up(name)
    assert resource.reconcile() == ["patch status"]
    assert resource.conditions()["Ready"] == "True"
    assert resource.conditions()["Progressing"] == "False"
    assert resource.cluster.status["split"] == "champion=90 challenger=10"
    assert resource.cluster.status["phase"] == "Stable"
    assert resource.cluster.generation(ROUTER) == 1

    assert resource.reconcile() == []
    assert len(resource.cluster.log) == 11
    assert not [e for e in resource.cluster.posted if e.type == "Warning"]


def test_a_variant_roll_is_still_progress() -> None:
    resource = NewResource()
    resource.reconcile()
    for name in (CHAMPION, CHALLENGER, ROUTER):
        resource.cluster.up(name)
    resource.reconcile()

    resource.spec = lambda spec: spec["variants"][1].update(bento="upsell:v2")
    assert resource.reconcile() == [
        "apply Deployment",
        "patch status",
        "event UpdatedDeployment",
    ]
    assert resource.conditions()["Progressing"] == "True"
    # The challenger rolls: its new pod starts beside the old one, which keeps serving its
    # users (maxUnavailable 0), so the split and the router stay; Progressing stays True.
    resource.cluster.up(CHALLENGER, updated=0)
    assert resource.reconcile() == []
    assert resource.cluster.status["split"] == "champion=90 challenger=10"
    assert resource.conditions()["Progressing"] == "True"
    assert resource.conditions()["Ready"] == "True"
    # The roll is done: Progressing becomes False, and the router was never rewritten.
    resource.cluster.up(CHALLENGER)
    assert resource.reconcile() == ["patch status"]
    assert resource.cluster.status["split"] == "champion=90 challenger=10"
    assert resource.conditions()["Progressing"] == "False"
    assert resource.cluster.generation(ROUTER) == 1


def test_a_new_champion_alone_needs_no_router_rewrite() -> None:
    def champion_only(spec: dict[str, Any]) -> None:
        spec["variants"] = spec["variants"][:1]
        spec["variants"][0]["weight"] = 100

    resource = NewResource(spec=champion_only)
    resource.reconcile()
    for name in (CHAMPION, ROUTER):
        resource.cluster.up(name)
    assert resource.reconcile() == ["patch status"]
    assert resource.conditions()["Ready"] == "True"
    assert resource.conditions()["Progressing"] == "False"
    assert resource.reconcile() == []
    # The key, 5 children, the Created Event and 2 status writes.
    assert len(resource.cluster.log) == 9
