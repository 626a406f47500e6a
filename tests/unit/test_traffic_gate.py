"""When a variant may take traffic and when a variant that left may go (rollforward.traffic_gate),
and the reading of a Deployment's status behind it (rollforward.observed.serving / drained)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from rollforward.api import RouterKind
from rollforward.observed import drained, serving
from rollforward.routers import router_for
from rollforward.traffic_gate import gated_weights, held_deletes
from rollforward.variants import ServedRole, ServedVariant

pytestmark = pytest.mark.unit


def variant(name: str, role: ServedRole, weight: int) -> ServedVariant:
    return ServedVariant(name, role, f"m:{name}", f"m:{name}", None, 1, weight, None)


def rolled_out(wanted: int = 2, **status: Any) -> dict[str, Any]:
    """A Deployment whose rollout finished; `status` overrides single fields."""
    return {
        "metadata": {"generation": 4},
        "spec": {"replicas": wanted},
        "status": {
            "observedGeneration": 4,
            "replicas": wanted,
            "updatedReplicas": wanted,
            "readyReplicas": wanted,
            "availableReplicas": wanted,
            "conditions": [{"type": "Available", "status": "True"}],
            **status,
        },
    }


class TestServing:
    def test_a_finished_rollout_serves(self) -> None:
        assert serving(rolled_out())

    @pytest.mark.parametrize(
        "why, status",
        [
            ("controller has not seen the latest spec", {"observedGeneration": 3}),
            ("an updated replica is still missing", {"updatedReplicas": 1}),
            ("a replica is not available yet", {"availableReplicas": 1}),
            ("an old replica still runs beside the new ones", {"replicas": 3}),
            ("not Available", {"conditions": [{"type": "Available", "status": "False"}]}),
            ("no conditions reported yet", {"conditions": []}),
            ("no status yet", {"observedGeneration": 0, "replicas": 0, "updatedReplicas": 0,
                               "readyReplicas": 0, "availableReplicas": 0}),
        ],
    )  # fmt: skip
    def test_not_serving(self, why: str, status: dict[str, Any]) -> None:
        assert not serving(rolled_out(**status)), why

    def test_missing_and_scaled_to_zero_never_serve(self) -> None:
        assert not serving(None)
        assert not serving(rolled_out(wanted=0))

    def test_drained_needs_no_terminating_pod(self) -> None:
        assert drained(rolled_out())
        assert drained(rolled_out(terminatingReplicas=0))
        assert not drained(rolled_out(terminatingReplicas=1))
        assert not drained(rolled_out(updatedReplicas=1))
        assert not drained(None)


ROLES = (ServedRole.CHALLENGER, ServedRole.CANDIDATE, ServedRole.SHADOW)
SPLITS = [
    (champion, first, 100 - champion - first)
    for champion in range(0, 101, 25)
    for first in range(0, 101 - champion, 25)
]


def _cases() -> list[tuple[tuple[int, int, int], tuple[ServedRole, ...], tuple[bool, ...]]]:
    """Every split of 100 in quarters over a champion and two others, every pair of roles for
    the others, and every serving state of the three."""
    return [
        (split, roles, states)
        for split in SPLITS
        for roles in itertools.product(ROLES, repeat=2)
        for states in itertools.product((False, True), repeat=3)
        if all(w == 0 for w, r in zip(split[1:], roles, strict=True) if r is ServedRole.SHADOW)
    ]


@pytest.mark.parametrize("split, roles, states", _cases())
def test_weight_goes_only_to_serving_variants_and_the_rest_to_the_champion(
    split: tuple[int, int, int], roles: tuple[ServedRole, ...], states: tuple[bool, ...]
) -> None:
    served = [
        variant("champion", ServedRole.CHAMPION, split[0]),
        variant("a", roles[0], split[1]),
        variant("b", roles[1], split[2]),
    ]
    gated = gated_weights(served, dict(zip(("champion", "a", "b"), states, strict=True)))

    assert [v.name for v in gated] == ["champion", "a", "b"]
    assert sum(v.weight for v in gated) == 100
    for before, after, serves in zip(served[1:], gated[1:], states[1:], strict=True):
        assert after.weight == (before.weight if serves else 0)
        assert after == before.__class__(**{**before.__dict__, "weight": after.weight})
    # The champion keeps its share whether or not it serves: there is nowhere better.
    assert gated[0].weight == 100 - sum(v.weight for v in gated[1:])


def test_a_variant_missing_from_the_observations_does_not_serve() -> None:
    served = [
        variant("champion", ServedRole.CHAMPION, 75),
        variant("candidate", ServedRole.CANDIDATE, 25),
    ]
    assert [v.weight for v in gated_weights(served, {})] == [100, 0]


class TestHeldDeletes:
    VARIANT = {("Deployment", "m-candidate"), ("Service", "m-candidate")}
    DELETES = [("ConfigMap", "m-old"), ("Deployment", "m-candidate"), ("Service", "m-candidate")]

    def test_a_variant_waits_while_the_router_may_route_to_it(self) -> None:
        split = held_deletes(self.DELETES, self.VARIANT, router_let_go=False)
        assert split.now == [("ConfigMap", "m-old")]
        assert split.held == [("Deployment", "m-candidate"), ("Service", "m-candidate")]

    def test_everything_goes_once_the_router_let_go(self) -> None:
        split = held_deletes(self.DELETES, self.VARIANT, router_let_go=True)
        assert (split.now, split.held) == (self.DELETES, [])

    def test_other_children_never_wait(self) -> None:
        others = [("Deployment", "m-router"), ("Service", "m-router"), ("HTTPRoute", "m")]
        split = held_deletes(others, self.VARIANT, router_let_go=False)
        assert (split.now, split.held) == (others, [])


@pytest.mark.parametrize(
    ("kind", "falls_back"),
    [(RouterKind.NGINX, True), (RouterKind.SERVICE, True), (RouterKind.GATEWAY_API, False)],
)
def test_only_a_router_without_fallback_is_gated(kind: RouterKind, falls_back: bool) -> None:
    """nginx backs every routed variant with the champion's Service, and the Service router
    sends connections to ready pods only; an HTTPRoute's weights hold whatever the endpoints."""
    assert router_for(kind).routes_around_unready_variants is falls_back
