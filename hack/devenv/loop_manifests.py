"""ModelDeployments and retraining results for the roll-forward tests on kwok.

A retraining Job's pod on kwok terminates with the message its template carries (see
devenv/kwok/stages.yaml), so these manifests put a RetrainingResult there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rollforward.serving.contract import (
    EvaluationMetrics,
    RetrainingMetrics,
    RetrainingResult,
)

CHAMPION, CANDIDATE = "upsell:v1", "upsell:v2"
TRAINING_SHARES = {"upgrade": 0.3, "stay": 0.7}
DRIFTED_SHARES = {"upgrade": 0.1, "stay": 0.9}


def retraining_result(holdout_auc: float = 0.85) -> str:
    def evaluation(auc: float) -> EvaluationMetrics:
        return EvaluationMetrics(auc=auc, accuracy=0.8, recall=0.6, samples=2000)

    return RetrainingResult(
        version=CANDIDATE,
        accepted=True,
        metrics=RetrainingMetrics(holdout=evaluation(holdout_auc), recent=evaluation(0.8)),
        baseline_distribution=DRIFTED_SHARES,
        trained_at=datetime.now(UTC),
        training_rows=5000,
    ).to_termination_message()


def manifest(namespace: str, prometheus: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "rollforward.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "upsell", "namespace": namespace},
        "spec": {
            "model": "upsell",
            "variants": [
                {"name": "champion", "role": "champion", "bento": CHAMPION, "weight": 100}
            ],
            "monitoring": {"prometheusUrl": prometheus},
            "drift": {
                "window": "10s",
                "interval": "3s",
                "minSamples": 50,
                "consecutiveBreaches": 2,
                "significance": 0.01,
            },
            "retraining": {
                "trigger": "onDrift",
                "cooldown": "1s",
                "maxPerDay": 10,
                "template": {
                    "metadata": {
                        "annotations": {"rollforward.io/test-termination-message": message}
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": "retrain",
                                "image": "trainer",
                                "command": ["python", "-m", "upsell.retrain"],
                            }
                        ]
                    },
                },
            },
            "rollout": {
                "steps": [{"weight": 50, "pause": "8s"}],
                "analysis": {"minRequests": 20, "maxErrorRateIncrease": 0.05},
            },
        },
    }


def manual_rollforward(
    namespace: str, prometheus: str, version: str, trigger: str, pause: str = "3s"
) -> dict[str, Any]:
    """A ModelDeployment whose annotation asks for one retraining (`trigger`): the Job's pod
    reports `version` as an accepted candidate, which then runs one canary step of `pause`."""
    result = RetrainingResult(
        version=version,
        accepted=True,
        metrics=RetrainingMetrics(
            holdout=EvaluationMetrics(auc=0.85, accuracy=0.8, recall=0.6, samples=2000),
            recent=EvaluationMetrics(auc=0.85, accuracy=0.8, recall=0.6, samples=2000),
        ),
        baseline_distribution=DRIFTED_SHARES,
        trained_at=datetime.now(UTC),
        training_rows=5000,
    ).to_termination_message()
    body = manifest(namespace, prometheus, result)
    body["metadata"]["annotations"] = {"rollforward.io/retrain": trigger}
    spec = body["spec"]
    spec["retraining"]["trigger"] = "manual"
    spec["retraining"]["maxPerDay"] = 100
    spec["rollout"] = {
        "steps": [{"weight": 50, "pause": pause}],
        "analysis": {"minRequests": 10, "maxErrorRateIncrease": 0.05},
    }
    return body


CHILD_SELECTOR = "app.kubernetes.io/managed-by=rollforward,rollforward.io/model-deployment=upsell"
EXPECTED_CHILDREN = [
    "ConfigMap/upsell-router",
    "Deployment/upsell-champion",
    "Deployment/upsell-router",
    "Service/upsell-champion",
    "Service/upsell-router",
]
"""The children of `manifest()`'s resource (the champion and the nginx router),
as `kind/name` sorted: what the loop's fault tests expect after every run."""
