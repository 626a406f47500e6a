"""Decisions about stored bentos: the gate's store check, a variant's store readiness, and
which bentos to delete. Pure: the store's answers come in, nothing here does I/O.

The deletion rule errs on the side of keeping: a bento is deleted only when this
ModelDeployment's own status names it as a failed candidate or a superseded champion, it is
outside the newest `revisionHistoryLimit` champions, and nothing serving or about to serve
refers to it. A bento that someone uploaded by hand is never ours to delete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rollforward.api import JobPhase, ModelDeployment, ModelDeploymentStatus
from rollforward.serving.objectstore.client import Answer, Presence
from rollforward.variants import champion_version, served_variants, spec_source

_CHAMPION_OUTCOMES = ("Promoted", "Serving", "Superseded")


@dataclass(frozen=True)
class StoreProblem:
    """Why a variant cannot fetch its bento."""

    presence: Presence
    message: str


def gate_refusal(tag: str, stored: Mapping[str, Answer] | None) -> str | None:
    """Why a candidate must not serve because of the store; None when it may (or no store)."""
    if stored is None:
        return None
    answer = stored.get(tag)
    if answer is None:
        return f"bento {tag} was not checked in the bento store"
    if answer.presence is Presence.PRESENT:
        return None
    detail = f" ({answer.detail})" if answer.detail else ""
    return f"bento {tag} is not in the bento store: {answer.presence.value}{detail}"


def variant_problems(
    variants: Mapping[str, str], stored: Mapping[str, Answer] | None
) -> dict[str, StoreProblem]:
    """Store problems by variant name, from {variant: bento tag} and the store's answers."""
    if stored is None:
        return {}
    problems = {}
    for name, tag in variants.items():
        answer = stored.get(tag)
        if answer is None or answer.presence is Presence.PRESENT:
            continue
        detail = f": {answer.detail}" if answer.detail else ""
        problems[name] = StoreProblem(answer.presence, f"bento {tag}{detail}")
    return problems


def referenced_tags(deployment: ModelDeployment, status: ModelDeploymentStatus) -> set[str]:
    """Every bento tag that serves, is about to serve, or that Git names."""
    tags = {v.bento for v in served_variants(deployment.spec, status) if v.bento}
    tags |= {spec_source(v) for v in deployment.spec.variants}
    tags.add(champion_version(deployment.spec, status))
    if status.champion:
        tags.add(status.champion)
    if status.rollout is not None:
        tags.add(status.rollout.candidate_version)
    retraining = status.retraining
    if retraining is not None and retraining.phase in (JobPhase.RUNNING, JobPhase.SUCCEEDED):
        # A rejected candidate is not referenced: deleting it is the point.
        tags.add(retraining.candidate_version or "")
    return {tag for tag in tags if tag}


def kept_champions(status: ModelDeploymentStatus, limit: int) -> set[str]:
    """The newest `limit` former champions, kept for a quick rollback."""
    former = [
        e.version
        for e in sorted(status.history, key=lambda e: e.started_at)
        if e.outcome in _CHAMPION_OUTCOMES and e.version != status.champion
    ]
    newest: list[str] = []
    for version in reversed(former):
        if version not in newest:
            newest.append(version)
    return set(newest[:limit])


def deletable(deployment: ModelDeployment, status: ModelDeploymentStatus) -> set[str]:
    """Bentos of failed candidates and of champions beyond revisionHistoryLimit, whether
    stored or not; never one that is referenced."""
    ours = {e.version for e in status.history} | set(status.failed_versions)
    keep = referenced_tags(deployment, status) | kept_champions(
        status, deployment.spec.rollout.revision_history_limit
    )
    return {tag for tag in ours if ":" in tag and tag not in keep}


def bentos_to_delete(
    deployment: ModelDeployment, status: ModelDeploymentStatus, stored_tags: Iterable[str]
) -> list[str]:
    """The deletable bentos that are actually stored."""
    return sorted(deletable(deployment, status) & set(stored_tags))
