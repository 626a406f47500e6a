"""Builders shared by the lifecycle and drift-check unit tests (no cluster, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from harness.api_cases import example_manifest
from rollforward.analysis import AnalysisInputs
from rollforward.api import ModelDeployment, ModelDeploymentStatus, parse_model_deployment
from rollforward.prometheus import QueryResult, Sample
from rollforward.serving.contract import (
    EvaluationMetrics,
    RetrainingMetrics,
    RetrainingResult,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NS = "default"


def deployment(
    status: ModelDeploymentStatus | None = None,
    annotations: dict[str, str] | None = None,
    mutate: Any = None,
) -> ModelDeployment:
    manifest = example_manifest()
    manifest["metadata"].update(uid="uid-1", generation=1, annotations=annotations or {})
    manifest["spec"]["rollout"]["steps"] = [
        {"weight": 10, "pause": "1m"},
        {"weight": 50, "pause": "1m"},
    ]
    if mutate:
        mutate(manifest["spec"])
    parsed = parse_model_deployment(manifest)
    return parsed.model_copy(update={"status": status}) if status is not None else parsed


def result(
    version: str = "upsell:v2",
    holdout_auc: float = 0.82,
    recent_auc: float = 0.80,
    champion_recent_auc: float | None = 0.70,
    accepted: bool = True,
) -> RetrainingResult:
    def evaluation(auc: float | None) -> EvaluationMetrics:
        return EvaluationMetrics(auc=auc, accuracy=0.8, recall=0.6, samples=1000)

    return RetrainingResult(
        version=version,
        accepted=accepted,
        reasons=[] if accepted else ["too little data"],
        metrics=RetrainingMetrics(
            holdout=evaluation(holdout_auc),
            recent=evaluation(recent_auc),
            champion_recent=evaluation(champion_recent_auc) if champion_recent_auc else None,
        ),
        baseline_distribution={"upgrade": 0.2, "stay": 0.8},
        trained_at=T0,
        training_rows=5000,
    )


def finished_job(name: str, succeeded: bool = True) -> dict[str, Any]:
    condition = "Complete" if succeeded else "Failed"
    return {
        "metadata": {"name": name},
        "status": {"conditions": [{"type": condition, "status": "True", "reason": "R"}]},
    }


def job_pod(message: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "pod"},
        "status": {
            "containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": message}}}]
        },
    }


def per_variant(values: dict[str, float]) -> QueryResult:
    return QueryResult(
        samples=tuple(
            Sample(
                labels={
                    "namespace": NS,
                    "rollforward_io_model_deployment": "upsell",
                    "rollforward_io_variant": variant,
                },
                value=value,
            )
            for variant, value in values.items()
        )
    )


def predictions(variant: str, version: str, counts: dict[str, float]) -> QueryResult:
    return QueryResult(
        samples=tuple(
            Sample(
                labels={
                    "namespace": NS,
                    "model": "upsell",
                    "version": version,
                    "variant": variant,
                    "label": label,
                    "segment": "",
                },
                value=value,
            )
            for label, value in counts.items()
        )
    )


def baseline_ratio(version: str, ratios: dict[str, float]) -> QueryResult:
    return QueryResult(
        samples=tuple(
            Sample(
                labels={"namespace": NS, "model": "upsell", "version": version, "label": label},
                value=value,
            )
            for label, value in ratios.items()
        )
    )


def analysis_inputs(
    candidate_errors: float = 0,
    champion_errors: float = 0,
    requests: float = 400,
    candidate_p99: float = 0.05,
    champion_p99: float = 0.05,
    candidate_counts: dict[str, float] | None = None,
    error: str | None = None,
) -> AnalysisInputs:
    if error is not None:
        failed = QueryResult(error=error)
        return AnalysisInputs(failed, failed, failed, failed, failed)
    counts: dict[str, float] = candidate_counts or {"upgrade": 80.0, "stay": 320.0}
    return AnalysisInputs(
        requests=per_variant({"champion": requests, "candidate": requests}),
        errors=per_variant({"champion": champion_errors, "candidate": candidate_errors}),
        latency_p99=per_variant({"champion": champion_p99, "candidate": candidate_p99}),
        predictions=predictions("candidate", "upsell:v2", counts),
        baseline=baseline_ratio("upsell:v2", {"upgrade": 0.2, "stay": 0.8}),
    )
