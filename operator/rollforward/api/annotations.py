"""Annotations a person (or `kubectl rollforward`) writes to steer a ModelDeployment.

They are GitOps-safe: the operator never writes spec, and annotations can live in Git too.
One-shot requests carry a unique value (a timestamp or id); the operator records the values
it has acted on in status.handledRequests, so a request is honoured exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

RETRAIN: Final = "rollforward.io/retrain"
"""One-shot: start a retraining Job now (within cooldown and daily limits)."""
APPROVE: Final = "rollforward.io/approve"
"""One-shot: promote the candidate waiting for Manual approval."""
ROLLBACK: Final = "rollforward.io/rollback"
"""One-shot: abort the canary under way and give the champion all traffic."""
PAUSED: Final = "rollforward.io/paused"
"""Level: while "true", the rollout and retraining make no further step. Remove to resume."""

ONE_SHOT_REQUESTS: Final = (RETRAIN, APPROVE, ROLLBACK)


def request_key(annotation: str, value: str) -> str:
    """How a handled one-shot request is remembered in status.handledRequests."""
    return f"{annotation.removeprefix('rollforward.io/')}={value}"


def is_paused(annotations: Mapping[str, str]) -> bool:
    """Whether the PAUSED annotation pauses the resource. Its value is read case-blind, so
    the operator and `kubectl rollforward` (which both call this) agree on "True"."""
    return annotations.get(PAUSED, "").lower() == "true"
