"""Which variants serve, at which version and weight, right now.

Git owns spec, but the operator promotes retrained versions that Git has never seen. So the
serving version of the champion lives in status; it follows the spec again as soon as Git
changes the champion's bento or image (a human override always wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rollforward.api import (
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RouterKind,
    Variant,
    VariantRole,
)
from rollforward.api.spec import Resources
from rollforward.naming import CANDIDATE_VARIANT


class ServedRole(StrEnum):
    """The role of a variant that runs: the spec's roles, and the operator's candidate."""

    CHAMPION = VariantRole.CHAMPION.value
    """Serves by default; promoted versions replace it."""
    CHALLENGER = VariantRole.CHALLENGER.value
    """An A/B variant with its own share of the traffic."""
    SHADOW = VariantRole.SHADOW.value
    """Receives a copy of the traffic; its answers are never returned."""
    CANDIDATE = "candidate"
    """A retrained version in its canary (named CANDIDATE_VARIANT)."""


@dataclass(frozen=True)
class ServedVariant:
    """One variant as it must run now."""

    name: str
    role: ServedRole
    version: str
    """The bento tag (or image, for image-only variants) serving."""
    bento: str | None
    image: str | None
    replicas: int
    weight: int
    resources: Resources | None


def spec_source(variant: Variant) -> str:
    """What Git says a variant runs: its bento tag, or its image when it has no bento."""
    return variant.bento or variant.image or ""


def champion_version(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> str:
    """The champion's serving version: the promoted one, unless Git changed the champion since."""
    source = spec_source(spec.champion())
    if status.champion and status.champion_source == source:
        return status.champion
    return source


def retired(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, variant: Variant) -> bool:
    """A challenger whose version the operator promoted to champion (onChallengerBetter
    Promote): it would serve that version a second time, so it leaves as the old champion
    did, and its share goes to the champion. Git naming the same bento for both (an A/A
    test) is not a promotion, and a new challenger or champion in Git serves again."""
    champion = champion_version(spec, status)
    promoted = champion != spec_source(spec.champion())
    return variant.role is VariantRole.CHALLENGER and promoted and spec_source(variant) == champion


def _from_spec(variant: Variant, version: str, weight: int) -> ServedVariant:
    is_bento = variant.bento is not None or version != (variant.image or "")
    return ServedVariant(
        name=variant.name,
        role=ServedRole(variant.role.value),
        version=version,
        bento=version if is_bento else None,
        image=variant.image,
        replicas=variant.replicas,
        weight=weight,
        resources=variant.resources,
    )


def served_variants(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus
) -> list[ServedVariant]:
    """The variants to run, in spec order, with the candidate (if any) last.

    A canary's candidate takes its step weight from the champion only, so an A/B test
    between champion and challenger keeps its challenger share during a canary.
    """
    champion = spec.champion()
    rollout = status.rollout
    candidate_weight = 0
    if rollout is not None and not rollout.promoting and rollout.candidate_ready:
        candidate_weight = min(
            spec.rollout.steps[min(rollout.step, len(spec.rollout.steps) - 1)].weight,
            champion.weight,
        )
    elif rollout is not None and rollout.promoting:
        # While the champion rolls to the candidate's version, the candidate keeps serving
        # its share so no user sees an unready pod.
        candidate_weight = min(spec.rollout.steps[-1].weight, champion.weight)

    served: list[ServedVariant] = []
    gone = [v for v in spec.variants if retired(spec, status, v)]
    for variant in spec.variants:
        if variant in gone:
            continue
        if variant.role is VariantRole.CHAMPION:
            version = champion_version(spec, status)
            if rollout is not None and rollout.promoting:
                version = rollout.candidate_version
            weight = variant.weight + sum(v.weight for v in gone) - candidate_weight
            served.append(_from_spec(variant, version, weight))
        else:
            served.append(_from_spec(variant, spec_source(variant), variant.weight))
    if rollout is not None:
        served.append(
            ServedVariant(
                name=CANDIDATE_VARIANT,
                role=ServedRole.CANDIDATE,
                version=rollout.candidate_version,
                bento=rollout.candidate_version,
                image=champion.image,
                replicas=max(1, champion.replicas),
                weight=candidate_weight,
                resources=champion.resources,
            )
        )
    if spec.traffic.router is RouterKind.SERVICE:
        served = _replicas_follow_weights(served)
    return served


def _replicas_follow_weights(served: list[ServedVariant]) -> list[ServedVariant]:
    """Without a router, a Service spreads requests evenly over ready pods, so the replica
    ratio is the split. It is approximate: rounding, and readiness, move it."""
    routed = [v for v in served if v.role is not ServedRole.SHADOW]
    total = sum(v.replicas for v in routed)
    result = []
    for variant in served:
        if variant.role is ServedRole.SHADOW:
            result.append(variant)
            continue
        share = round(total * variant.weight / 100)
        replicas = max(share, 1) if variant.weight > 0 else 0
        result.append(ServedVariant(**{**variant.__dict__, "replicas": replicas}))
    return result


def split_summary(served: list[ServedVariant]) -> str:
    """e.g. "champion=90 challenger=10": the printer column and Event text."""
    return " ".join(f"{v.name}={v.weight}" for v in served if v.role is not ServedRole.SHADOW)
