"""rollforward.serving: what a bento needs to speak the Rollforward metric contract.

Importing the package is cheap (stdlib and pydantic); the operator uses `contract` only.
A bento uses `inputs.sanitize`, `instrumentation.Instrumentation` and
`http_guard.JsonBodyGuard`. Nothing here imports kopf or kubernetes.
"""

from rollforward.serving.contract import (
    AnomalyKind,
    EvaluationMetrics,
    RetrainingMetrics,
    RetrainingResult,
)

__all__ = ["AnomalyKind", "EvaluationMetrics", "RetrainingMetrics", "RetrainingResult"]
