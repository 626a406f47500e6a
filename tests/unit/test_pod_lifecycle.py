"""The serving Deployments start and stop pods without losing a request: a new bento pod
counts as available only after kube-proxy has had time to route to it (a router pod at once),
and an old pod leaves only once a new one is available. (tests/e2e asserts the outcome.)"""

from __future__ import annotations

import pytest

from fixtures.decision_inputs import serving_deployments
from rollforward.pod_lifecycle import MIN_READY_SECONDS, PRE_STOP_SECONDS


def test_a_new_bento_pod_is_available_only_after_it_has_been_ready_for_a_while() -> None:
    spec = serving_deployments()["bento"]["spec"]
    assert spec["minReadySeconds"] == MIN_READY_SECONDS >= 1


def test_a_new_router_pod_takes_over_as_soon_as_it_is_ready() -> None:
    """Old and new router pods serve different splits; a user alternating between them
    would leave the candidate, so their overlap is not stretched."""
    assert "minReadySeconds" not in serving_deployments()["router"]["spec"]


@pytest.mark.parametrize("kind", ["bento", "router"])
def test_an_old_pod_leaves_only_after_a_new_one_is_available(kind: str) -> None:
    spec = serving_deployments()[kind]["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    for container in spec["template"]["spec"]["containers"]:
        assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}


def test_a_new_router_config_takes_over_within_a_second_of_nginx_starting() -> None:
    """A readiness probe that comes before nginx listens fails; the next one decides when the
    new split (a rollback, above all) replaces the old one."""
    (nginx,) = serving_deployments()["router"]["spec"]["template"]["spec"]["containers"]
    assert nginx["readinessProbe"]["periodSeconds"] == 1
