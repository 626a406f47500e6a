"""What gather read from the bento store, and how it changes one reconcile's plan. Pure.

decide() passes its plan through here: the Job learns where to export its bento, variants
whose bento cannot be fetched say why (and the serving facts say not ready, so the summary's
Ready names the reason while the others serve), and stored bentos nobody needs are listed for
deletion.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rollforward.api import ModelDeployment, ModelDeploymentStatus, Reason
from rollforward.api.spec import BentoStoreSpec
from rollforward.bentostore.decisions import bentos_to_delete, variant_problems
from rollforward.bentostore.pod import job_with_store
from rollforward.builders import with_desired_hash
from rollforward.observed import Manifest
from rollforward.serving.objectstore.client import Answer, Presence
from rollforward.summary import ServingFacts

_REASONS = {
    Presence.MISSING: Reason.BENTO_NOT_FOUND,
    Presence.FORBIDDEN: Reason.BENTO_STORE_FORBIDDEN,
    Presence.UNREACHABLE: Reason.BENTO_STORE_UNREACHABLE,
}


@dataclass(frozen=True)
class StoreView:
    """The store that applies to this ModelDeployment and its answers this reconcile."""

    store: BentoStoreSpec
    answers: dict[str, Answer] = field(default_factory=dict)
    """HEAD answers by bento tag: every served bento, and a finished Job's candidate."""
    stored_tags: set[str] | None = None
    """Tags stored under this model's bento names, when deletion candidates were listed."""


def with_store_env(jobs: list[Manifest], view: StoreView | None) -> list[Manifest]:
    if view is None:
        return jobs
    return [with_desired_hash(job_with_store(job, view.store)) for job in jobs]


def with_variant_reasons(
    status: ModelDeploymentStatus, view: StoreView | None
) -> ModelDeploymentStatus:
    """Each variant whose bento cannot be fetched says why; the others say nothing."""
    if view is None:
        return status
    problems = variant_problems({v.name: v.version for v in status.variants}, view.answers)
    variants = [
        v.model_copy(
            update={
                "reason": _REASONS[problems[v.name].presence].value if v.name in problems else None,
                "message": problems[v.name].message if v.name in problems else None,
            }
        )
        for v in status.variants
    ]
    return status.model_copy(update={"variants": variants})


def store_facts(
    facts: ServingFacts, status: ModelDeploymentStatus, view: StoreView | None
) -> ServingFacts:
    """The serving facts, not ready when a variant cannot fetch its bento (the summary turns
    that into Ready=False with the store's reason; the other variants keep serving)."""
    if view is None:
        return facts
    problems = variant_problems({v.name: v.version for v in status.variants}, view.answers)
    if not problems:
        return facts
    first = problems[sorted(problems)[0]]
    message = "; ".join(f"variant {name}: {p.message}" for name, p in sorted(problems.items()))
    reason = _REASONS[first.presence]
    return replace(facts, ready=False, reason=reason, message=f"{reason.value}: {message}"[:1000])


def deletions(
    deployment: ModelDeployment, status: ModelDeploymentStatus, view: StoreView | None
) -> list[str]:
    if view is None or view.stored_tags is None:
        return []
    return bentos_to_delete(deployment, status, view.stored_tags)
