"""When a variant may take traffic, and when a variant that left may be deleted. Pure.

A request is lost when the router sends it where no pod answers. Two rules close both ends
of a variant's life; with the pods' preStop and graceful shutdown (rollforward.builders) and
the router's retries and fallback (rollforward.routers.nginx_config), a canary, a promotion
and a rollback lose no request.

1. **Weight only to a variant that serves** (`gated_weights`), for a router that does not
   route around a variant with no ready pod by itself
   (`Router.routes_around_unready_variants` False: the Gateway API router). A variant whose
   Deployment is not Available with every updated replica ready
   (`rollforward.observed.serving`) routes nothing: its share goes to the champion. The
   champion keeps its own share whatever its state, because there is nowhere better to send
   it, and a champion rolling to a new version stays Available throughout (maxUnavailable 0).
   So a new challenger starts at 0% and gets its weight on the reconcile after it becomes
   ready, a challenger rolling to a new version is served by the champion until the roll
   finishes, and a crashed variant stops taking users on the next reconcile.
   The nginx router is given the declared split at once, and written once: the champion's
   Service is the backup of every other routed variant, so nginx itself sends the users of a
   variant with no ready pod to the champion, at once and without a rewrite. The Service
   router is not gated either: kube-proxy sends connections only to ready pods, and there the
   weight sets the replicas, so gating it would scale the variant to zero.
   A canary's candidate gets its step weight only once it serves, whatever the router
   (rollforward.variants, `candidate_ready`), because its first step's clock starts then.
2. **Delete a variant only after the router has let go of it** (`held_deletes`). A variant
   that left the served set (a promoted or rolled-back candidate, a removed challenger)
   keeps its Deployment and Service until the router's new objects are written and its
   old pods are gone (`Router.drained`): until then an old router pod still routes to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from rollforward.observed import ChildKey
from rollforward.variants import ServedRole, ServedVariant

VARIANT_KINDS = ("Deployment", "Service")
"""The kinds of a variant's own children, which routers address."""


def gated_weights(
    served: Sequence[ServedVariant], serving: Mapping[str, bool]
) -> list[ServedVariant]:
    """`served` with the weight of every non-champion variant that does not serve (by
    `serving[name]`, missing means not serving) moved to the champion."""
    withheld = sum(
        v.weight
        for v in served
        if v.role is not ServedRole.CHAMPION and v.weight > 0 and not serving.get(v.name, False)
    )
    result = []
    for variant in served:
        if variant.role is ServedRole.CHAMPION:
            result.append(replace(variant, weight=variant.weight + withheld))
        elif serving.get(variant.name, False):
            result.append(variant)
        else:
            result.append(replace(variant, weight=0))
    return result


@dataclass(frozen=True)
class Deletes:
    """The children to delete now, and those that wait for the router."""

    now: list[ChildKey]
    held: list[ChildKey]


def held_deletes(
    deletes: Sequence[ChildKey], variant_children: set[ChildKey], router_let_go: bool
) -> Deletes:
    """Split `deletes`: a variant's Deployment or Service (one of `variant_children`) waits
    while the router may still route to it (`router_let_go` False); anything else goes now."""
    if router_let_go:
        return Deletes(list(deletes), [])
    held = [k for k in deletes if k[0] in VARIANT_KINDS and k in variant_children]
    return Deletes([k for k in deletes if k not in held], held)
