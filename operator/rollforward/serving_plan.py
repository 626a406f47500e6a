"""Decide the children and the serving status of a ModelDeployment. Pure: no I/O, no clock.

Given the resource, the observed children and `now`, it returns what to write. The same
function runs on create, update, resume, timer and child events (level-based), so running it
twice in a row with nothing changed yields no writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rollforward.api import (
    ModelDeployment,
    ModelDeploymentStatus,
    Reason,
    VariantStatus,
    child_event_reason,
)
from rollforward.builders import variant_deployment, variant_service
from rollforward.events import Event
from rollforward.naming import (
    ANNOTATION_DESIRED_HASH,
    COMPONENT_BENTO,
    LABEL_COMPONENT,
    variant_name,
)
from rollforward.observed import ChildKey, Manifest, Observed, deployment_health, serving
from rollforward.routers import Router, router_for
from rollforward.settings import OperatorSettings
from rollforward.summary import Facts, ServingFacts, summarize
from rollforward.traffic_gate import gated_weights, held_deletes
from rollforward.variants import (
    ServedRole,
    ServedVariant,
    champion_version,
    served_variants,
    spec_source,
    split_summary,
)

MANAGED_KINDS = ("Deployment", "Service", "ConfigMap", "HTTPRoute")
"""Kinds of serving children; anything of these kinds we own but no longer want is deleted."""


@dataclass(frozen=True)
class ServingPlan:
    apply: list[Manifest] = field(default_factory=list)
    delete: list[ChildKey] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    bento_deletes: list[str] = field(default_factory=list)
    """Bento tags to delete from the bento store."""


def _key(manifest: Manifest) -> ChildKey:
    return manifest["kind"], manifest["metadata"]["name"]


def _needs_write(desired: Manifest, observed: Manifest | None) -> bool:
    if observed is None:
        return True
    want = desired["metadata"]["annotations"][ANNOTATION_DESIRED_HASH]
    have = (observed.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_DESIRED_HASH)
    return bool(want != have)


def _change_event(desired: Manifest, existed: bool, split: str) -> Event:
    kind, name = _key(desired)
    verb = "Updated" if existed else "Created"
    detail = f" (split {split})" if kind in ("ConfigMap", "HTTPRoute") else ""
    return Event("Normal", child_event_reason(verb, kind), f"{verb} {kind} {name}{detail}")


@dataclass(frozen=True)
class Children:
    """The serving children to write and delete, and what they say about serving."""

    apply: list[Manifest]
    delete: list[ChildKey]
    events: list[Event]
    facts: ServingFacts
    status: ModelDeploymentStatus
    """The serving part of status (variants, split, champion); conditions are the summary's."""


def plan_children(
    deployment: ModelDeployment,
    observed: Observed,
    settings: OperatorSettings,
    status: ModelDeploymentStatus,
) -> Children:
    """The serving children to write and delete for `status` (which the drift and rollout
    decisions may already have moved on)."""
    wanted_split = served_variants(deployment.spec, status)
    router = router_for(deployment.spec.traffic.router)
    served = _routed(router, deployment, observed, wanted_split)
    withheld = [w.name for w, r in zip(wanted_split, served, strict=True) if r.weight < w.weight]
    split = split_summary(served)
    router_plan = router.plan(deployment, served, settings, observed)

    desired: list[Manifest] = []
    for variant in served:
        desired.append(variant_deployment(deployment, variant, settings))
        desired.append(variant_service(deployment, variant))
    desired.extend(router_plan.objects)

    writes = [d for d in desired if _needs_write(d, observed.get(*_key(d)))]
    wanted = {_key(d) for d in desired}
    unwanted = sorted(
        key for key in observed.children if key[0] in MANAGED_KINDS and key not in wanted
    )
    router_keys = {_key(o) for o in router_plan.objects}
    router_let_go = not any(_key(w) in router_keys for w in writes) and router.drained(
        deployment, observed
    )
    split_deletes = held_deletes(unwanted, _variant_children(observed), router_let_go)
    deletes = split_deletes.now
    events = [_change_event(d, observed.get(*_key(d)) is not None, split) for d in writes]
    events += [
        Event("Normal", child_event_reason("Deleted", kind), f"Deleted {kind} {name}")
        for kind, name in deletes
    ]
    ready, reason, message, up_to_date = _readiness(
        deployment, served, observed, router_plan.blocked, withheld
    )
    facts = ServingFacts(
        ready=ready,
        reason=reason,
        message=message,
        up_to_date=up_to_date,
        blocked=router_plan.blocked is not None,
        writing=bool(unwanted) or any(_key(w) not in router_keys for w in writes),
    )
    new_status = _serving_status(deployment, status, served, observed)
    return Children(writes, deletes, events, facts, new_status)


def plan_serving(
    deployment: ModelDeployment,
    observed: Observed,
    settings: OperatorSettings,
    now: datetime,
    status: ModelDeploymentStatus | None = None,
) -> ServingPlan:
    """The serving children and the status they lead to, on their own (no drift check or
    lifecycle step): `status` defaults to the one in the resource."""
    children = plan_children(deployment, observed, settings, status or deployment.status)
    summary = summarize(deployment, children.status, Facts(serving=children.facts), now)
    return ServingPlan(children.apply, children.delete, children.events, summary)


def _routed(
    router: Router, deployment: ModelDeployment, observed: Observed, served: list[ServedVariant]
) -> list[ServedVariant]:
    """`served` as the router is given it: the declared split when the router falls back to
    the champion by itself, else with weight only for the variants that serve
    (rollforward.traffic_gate)."""
    if router.routes_around_unready_variants:
        return served
    name = deployment.metadata.name
    serves = {
        v.name: serving(observed.get("Deployment", variant_name(name, v.name))) for v in served
    }
    return gated_weights(served, serves)


def _variant_children(observed: Observed) -> set[ChildKey]:
    return {
        key
        for key, body in observed.children.items()
        if (body.get("metadata", {}).get("labels") or {}).get(LABEL_COMPONENT) == COMPONENT_BENTO
    }


def _variant_statuses(
    deployment: ModelDeployment, served: list[ServedVariant], observed: Observed
) -> list[VariantStatus]:
    result = []
    for variant in served:
        health = deployment_health(
            observed.get("Deployment", variant_name(deployment.metadata.name, variant.name))
        )
        result.append(
            VariantStatus(
                name=variant.name,
                role=variant.role,
                version=variant.version,
                weight=variant.weight,
                replicas=variant.replicas,
                ready_replicas=health.ready_replicas,
            )
        )
    return result


def _readiness(
    deployment: ModelDeployment,
    served: list[ServedVariant],
    observed: Observed,
    blocked: tuple[Reason, str] | None,
    withheld: list[str],
) -> tuple[bool, Reason, str, bool]:
    """(ready, reason, message, all children up to date). A variant whose weight the
    champion holds until it serves (`withheld`, with a router that does not fall back to the
    champion) is not ready either."""
    if blocked is not None:
        return False, blocked[0], blocked[1], False
    problems: list[str] = []
    up_to_date = True
    for variant in served:
        if variant.replicas == 0:
            continue
        health = deployment_health(
            observed.get("Deployment", variant_name(deployment.metadata.name, variant.name))
        )
        up_to_date = up_to_date and health.up_to_date
        if not health.available:
            problems.append(f"variant {variant.name}: {health.message}")
        elif variant.name in withheld:
            problems.append(f"variant {variant.name}: rolling out, its users go to the champion")
    if problems:
        return False, Reason.VARIANT_UNAVAILABLE, "; ".join(problems), up_to_date
    router_ok, router_message = router_for(deployment.spec.traffic.router).readiness(
        deployment, observed
    )
    if not router_ok:
        return False, Reason.ROUTER_UNAVAILABLE, router_message, up_to_date
    return True, Reason.RECONCILED, "all variants and the router are available", up_to_date


def _serving_status(
    deployment: ModelDeployment,
    status: ModelDeploymentStatus,
    served: list[ServedVariant],
    observed: Observed,
) -> ModelDeploymentStatus:
    others = [v for v in served if v.role in (ServedRole.CHALLENGER, ServedRole.CANDIDATE)]
    return status.model_copy(
        update={
            # The committed champion: during a promotion its Deployment already runs the
            # candidate, but the candidate is champion only once the promotion finishes.
            "champion": champion_version(deployment.spec, status),
            "champion_source": spec_source(deployment.spec.champion()),
            "challenger": others[-1].version if others else "",
            "split": split_summary(served),
            "variants": _variant_statuses(deployment, served, observed),
        }
    )
