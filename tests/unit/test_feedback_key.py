"""The feedback key: one Secret per ModelDeployment, created once, read by every bento."""

from __future__ import annotations

from typing import Any

import pytest

from devenv.api_cases import example_manifest
from fixtures.decision_inputs import T0
from fixtures.fakes import FakeCluster, FakeMetrics
from rollforward.reconcile import reconcile
from rollforward.serving.contract import ENV_FEEDBACK_SECRET, FEEDBACK_SECRET_MIN_LENGTH
from rollforward.settings import OperatorSettings


def body() -> dict[str, Any]:
    manifest = example_manifest()
    manifest["metadata"].update(uid="uid-1", generation=1)
    return manifest


def run(cluster: FakeCluster, manifest: dict[str, Any]) -> None:
    manifest = {**manifest, "status": dict(cluster.status)}
    reconcile(manifest, cluster, FakeMetrics(), OperatorSettings(), lambda: T0)


def test_the_key_is_created_once_random_and_never_rewritten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, other = FakeCluster(), FakeCluster()
    run(cluster, body())
    run(other, body())
    namespace = body()["metadata"]["namespace"]
    name = f"{body()['metadata']['name']}-feedback-key"
    key = cluster.secrets[(namespace, name)]["key"]
    assert len(key) >= FEEDBACK_SECRET_MIN_LENGTH
    assert key != other.secrets[(namespace, name)]["key"]

    created: list[dict[str, Any]] = []
    monkeypatch.setattr(cluster, "create", created.append)
    run(cluster, body())
    assert cluster.secrets[(namespace, name)]["key"] == key
    assert created == []  # it exists: no write at all, let alone a new key


def test_every_bento_reads_the_one_key_of_its_model_deployment() -> None:
    cluster = FakeCluster()
    run(cluster, body())
    bentos = [
        manifest
        for (kind, _), manifest in cluster.children.items()
        if kind == "Deployment" and "router" not in manifest["metadata"]["name"]
    ]
    assert bentos
    refs = set()
    for deployment in bentos:
        (container,) = [
            c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "bento"
        ]
        (variable,) = [v for v in container["env"] if v["name"] == ENV_FEEDBACK_SECRET]
        refs.add(tuple(sorted(variable["valueFrom"]["secretKeyRef"].items())))
    assert refs == {(("key", "key"), ("name", f"{body()['metadata']['name']}-feedback-key"))}
