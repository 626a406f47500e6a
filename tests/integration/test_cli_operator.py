"""The steering commands against the real operator (`rollforward run`, under the chart's RBAC).

Given a Ready ModelDeployment with a retraining spec, `kubectl rollforward retrain` makes the
operator start exactly one retraining Job for the request and record it as handled; `pause`
holds that request back until `resume`. For approve and rollback, a candidate waits for
Manual approval: its canary is written into status as the operator would have left it (state
lives in status, so the operator carries on from there); then approve promotes it and
rollback removes it and remembers it as failed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from devenv.cluster import LocalCluster
from devenv.operator import OperatorProcess
from devenv.processes import free_port, wait_until
from rollforward.api import annotations as steering
from rollforward.api import parse_model_deployment
from rollforward.cli import main

RECONCILES = "rollforward_operator_reconciles_total"
JOBS = "rollforward.io/model-deployment=upsell,app.kubernetes.io/component=retraining"


@pytest.fixture
def ready_model(
    local_cluster: LocalCluster, cluster_namespace: str, operator: OperatorProcess
) -> str:
    """The README example, retraining by hand only, Ready under the running operator."""
    manifest = example_manifest()
    manifest["metadata"]["namespace"] = cluster_namespace
    manifest["spec"]["variants"][0]["replicas"] = 1
    manifest["spec"]["retraining"]["trigger"] = "manual"
    manifest["spec"]["rollout"]["approval"] = "Manual"
    # Nothing listens there: drift checks are Inconclusive at once, never a DNS wait.
    manifest["spec"]["monitoring"]["prometheusUrl"] = f"http://127.0.0.1:{free_port()}"
    local_cluster.apply(manifest)
    local_cluster.kubectl(
        "-n", cluster_namespace, "wait", "md/upsell", "--for=condition=Ready", "--timeout=120s",
        timeout=130,
    )  # fmt: skip
    return cluster_namespace


def steer(local_cluster: LocalCluster, namespace: str, action: str) -> None:
    code = main(
        [action, "upsell", "-n", namespace, "--kubeconfig", str(local_cluster.kubeconfig_path)]
    )
    assert code == 0, action


def read(local_cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = local_cluster.kubectl_json("-n", namespace, "get", "md", "upsell")
    return body


def retraining_jobs(local_cluster: LocalCluster, namespace: str) -> list[str]:
    listed = local_cluster.kubectl_json("-n", namespace, "get", "jobs", "-l", JOBS)
    return [item["metadata"]["name"] for item in listed["items"]]


def handled(local_cluster: LocalCluster, namespace: str, annotation: str) -> bool:
    body = read(local_cluster, namespace)
    value = body["metadata"].get("annotations", {}).get(annotation)
    key = steering.request_key(annotation, value or "")
    return value is not None and key in body.get("status", {}).get("handledRequests", [])


def wait_for_reconciles(operator: OperatorProcess, count: int) -> None:
    """Proof that the operator has looked again (state, not time)."""
    start = operator.counter(RECONCILES)
    wait_until(
        lambda: operator.counter(RECONCILES) >= start + count,
        timeout=60,
        what=f"{count} more reconciles",
    )


def test_retrain_starts_one_job_for_the_request(
    local_cluster: LocalCluster, ready_model: str, operator: OperatorProcess
) -> None:
    namespace = ready_model
    assert retraining_jobs(local_cluster, namespace) == []

    steer(local_cluster, namespace, "retrain")

    wait_until(
        lambda: handled(local_cluster, namespace, steering.RETRAIN),
        timeout=60,
        what="the retrain request to be handled",
    )
    status = read(local_cluster, namespace)["status"]
    assert status["retraining"]["trigger"] == "manual"
    jobs = retraining_jobs(local_cluster, namespace)
    assert jobs == [status["retraining"]["jobName"]]
    wait_for_reconciles(operator, 2)
    assert retraining_jobs(local_cluster, namespace) == jobs  # honoured exactly once


def test_pause_holds_a_retrain_request_until_resume(
    local_cluster: LocalCluster, ready_model: str, operator: OperatorProcess
) -> None:
    namespace = ready_model
    steer(local_cluster, namespace, "pause")
    steer(local_cluster, namespace, "retrain")

    wait_for_reconciles(operator, 2)
    assert retraining_jobs(local_cluster, namespace) == []
    assert not handled(local_cluster, namespace, steering.RETRAIN)

    steer(local_cluster, namespace, "resume")

    wait_until(
        lambda: handled(local_cluster, namespace, steering.RETRAIN),
        timeout=60,
        what="the held retrain request to be handled after resume",
    )
    assert len(retraining_jobs(local_cluster, namespace)) == 1


CANDIDATE = "upsell:v2"


def await_approval(local_cluster: LocalCluster, namespace: str) -> None:
    """Write the status a passed canary under Manual approval leaves behind."""
    from rollforward.lifecycle import rollout_hash

    body = read(local_cluster, namespace)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    last_step = len(body["spec"]["rollout"]["steps"]) - 1
    history = [
        *body["status"]["history"],
        {"version": CANDIDATE, "trigger": "manual", "triggerId": "cli-test", "outcome": "Canary",
         "startedAt": now},
    ]  # fmt: skip
    rollout = {
        "candidateVersion": CANDIDATE,
        "triggerId": "cli-test",
        "step": last_step,
        "stepStartedAt": now,
        "specHash": rollout_hash(parse_model_deployment(body)),
        "awaitingApproval": True,
        "analysis": [{"name": "errorRate", "outcome": "Successful", "value": 0.0}],
    }
    local_cluster.kubectl(
        "-n", namespace, "patch", "md", "upsell", "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"rollout": rollout, "history": history}}),
    )  # fmt: skip


def outcome_of(local_cluster: LocalCluster, namespace: str, version: str) -> str:
    history = read(local_cluster, namespace)["status"]["history"]
    return str(next(entry["outcome"] for entry in history if entry["version"] == version))


def test_approve_promotes_the_candidate_waiting_for_approval(
    local_cluster: LocalCluster, ready_model: str, operator: OperatorProcess
) -> None:
    namespace = ready_model
    await_approval(local_cluster, namespace)
    wait_until(
        lambda: read(local_cluster, namespace)["status"]["phase"] == "AwaitingApproval",
        timeout=60,
        what="phase AwaitingApproval",
    )
    wait_for_reconciles(operator, 2)  # Manual: without approve, nothing moves
    status = read(local_cluster, namespace)["status"]
    assert status["rollout"]["awaitingApproval"] and status["champion"] == "upsell:v1"

    steer(local_cluster, namespace, "approve")

    # The champion Deployment rolls first; the promotion is recorded once it is available.
    wait_until(
        lambda: outcome_of(local_cluster, namespace, CANDIDATE) == "Promoted",
        timeout=120,
        what="the candidate to be promoted",
    )
    status = read(local_cluster, namespace)["status"]
    assert handled(local_cluster, namespace, steering.APPROVE)
    assert status["champion"] == CANDIDATE and "rollout" not in status
    assert outcome_of(local_cluster, namespace, "upsell:v1") == "Superseded"


def test_rollback_removes_the_candidate_and_never_deploys_it_again(
    local_cluster: LocalCluster, ready_model: str, operator: OperatorProcess
) -> None:
    namespace = ready_model
    await_approval(local_cluster, namespace)
    wait_until(
        lambda: read(local_cluster, namespace)["status"]["phase"] == "AwaitingApproval",
        timeout=60,
        what="phase AwaitingApproval",
    )

    steer(local_cluster, namespace, "rollback")

    wait_until(
        lambda: handled(local_cluster, namespace, steering.ROLLBACK),
        timeout=60,
        what="the rollback request to be handled",
    )
    status = read(local_cluster, namespace)["status"]
    assert "rollout" not in status
    assert CANDIDATE in status["failedVersions"]
    assert status["champion"] == "upsell:v1"
    assert outcome_of(local_cluster, namespace, CANDIDATE) == "RolledBack"
