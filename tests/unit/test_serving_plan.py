"""The pure serving decision: builders, routers and status, without a cluster."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from rollforward.api import (
    ConditionType,
    ModelDeployment,
    ModelDeploymentStatus,
    Phase,
    Reason,
    RolloutStatus,
    parse_model_deployment,
)
from rollforward.builders import variant_deployment, variant_service
from rollforward.conditions import find_condition, set_condition
from rollforward.naming import ANNOTATION_DESIRED_HASH, CANDIDATE_VARIANT, job_name, variant_name
from rollforward.observed import Observed, deployment_health
from rollforward.routers.gateway_api import http_route
from rollforward.routers.nginx import nginx_config
from rollforward.serving.contract import (
    ENV_FEEDBACK_SECRET,
    ENV_MODEL,
    ENV_PREDICTION_LOG_PREFIX,
    ENV_VARIANT,
    ENV_VERSION,
)
from rollforward.serving_plan import ServingPlan, plan_serving
from rollforward.settings import OperatorSettings
from rollforward.variants import served_variants

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SETTINGS = OperatorSettings(bento_image="registry.local/bento-runtime:1")


def deployment(mutate: Any = None, status: ModelDeploymentStatus | None = None) -> ModelDeployment:
    manifest = example_manifest()
    manifest["metadata"].update(uid="uid-1", generation=3)
    if mutate:
        mutate(manifest["spec"])
    parsed = parse_model_deployment(manifest)
    return parsed.model_copy(update={"status": status}) if status else parsed


def available(manifest: dict[str, Any], ready: int | None = None) -> dict[str, Any]:
    """What the API server would show once the Deployment rolled out."""
    live = copy.deepcopy(manifest)
    replicas = manifest["spec"]["replicas"]
    ready = replicas if ready is None else ready
    live["metadata"]["generation"] = 1
    live["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": [
            {"type": "Available", "status": "True" if ready else "False", "message": "m"},
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": "ok",
            },
        ],
    }
    return live


def rolled(observed: Observed, plan: ServingPlan) -> Observed:
    """`observed` after `plan` was applied and every Deployment rolled out."""
    children = {k: v for k, v in observed.children.items() if k not in plan.delete}
    for manifest in plan.apply:
        live = available(manifest) if manifest["kind"] == "Deployment" else manifest
        children[(manifest["kind"], manifest["metadata"]["name"])] = live
    return Observed(children=children)


def converged(md: ModelDeployment) -> Observed:
    """The children as they exist after the plans were applied and rolled out (the nginx
    router has the declared split from the first plan; a gated router gets it on the second,
    rollforward.traffic_gate)."""
    observed = Observed()
    for _ in range(3):
        plan = plan_serving(md, observed, SETTINGS, NOW)
        if not plan.apply and not plan.delete:
            return observed
        observed = rolled(observed, plan)
    raise AssertionError(f"no fixed point: {plan.apply}")


class TestVariantDeployment:
    def test_runs_bentoml_serve_with_contract_env_probes_and_scrape_metadata(self) -> None:
        md = deployment()
        champion = served_variants(md.spec, md.status)[0]
        manifest = variant_deployment(md, champion, SETTINGS)
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        assert manifest["metadata"]["name"] == "upsell-champion"
        assert container["image"] == "registry.local/bento-runtime:1"
        assert container["command"] == ["bentoml", "serve", "upsell:v1"]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert env == {
            ENV_MODEL: "upsell",
            ENV_VERSION: "upsell:v1",
            ENV_VARIANT: "champion",
            ENV_FEEDBACK_SECRET: {"secretKeyRef": {"name": "upsell-feedback-key", "key": "key"}},
            ENV_PREDICTION_LOG_PREFIX: "logs/default/upsell",
            "BENTOML_HOME": "/tmp/bentoml",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["resources"] == {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": "1Gi"},
        }
        pod_annotations = manifest["spec"]["template"]["metadata"]["annotations"]
        assert pod_annotations["prometheus.io/scrape"] == "true"
        assert manifest["spec"]["replicas"] == 2

    def test_math_libraries_run_single_threaded_in_every_variant(self) -> None:
        md = deployment()
        for variant in served_variants(md.spec, md.status):
            container = variant_deployment(md, variant, SETTINGS)["spec"]["template"]["spec"][
                "containers"
            ][0]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"

    def test_is_owned_by_the_model_deployment(self) -> None:
        md = deployment()
        manifest = variant_deployment(md, served_variants(md.spec, md.status)[0], SETTINGS)
        (owner,) = manifest["metadata"]["ownerReferences"]
        assert owner["uid"] == "uid-1"
        assert owner["kind"] == "ModelDeployment"
        assert owner["controller"] is True

    def test_image_only_variant_keeps_the_image_entrypoint(self) -> None:
        def image_only(spec: dict[str, Any]) -> None:
            spec["variants"][1] = {"name": "challenger", "image": "acme/model:2", "weight": 10}

        md = deployment(image_only)
        manifest = variant_deployment(md, served_variants(md.spec, md.status)[1], SETTINGS)
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "acme/model:2"
        assert "command" not in container

    def test_selector_does_not_change_with_the_version(self) -> None:
        md = deployment()
        v1 = variant_deployment(md, served_variants(md.spec, md.status)[0], SETTINGS)
        md2 = deployment(lambda spec: spec["variants"][0].update(bento="upsell:v9"))
        v9 = variant_deployment(md2, served_variants(md2.spec, md2.status)[0], SETTINGS)
        assert v1["spec"]["selector"] == v9["spec"]["selector"]
        assert v1["metadata"]["annotations"] != v9["metadata"]["annotations"]

    def test_service_targets_the_variant_pods(self) -> None:
        md = deployment()
        service = variant_service(md, served_variants(md.spec, md.status)[1])
        assert service["spec"]["selector"]["rollforward.io/variant"] == "challenger"
        assert service["spec"]["ports"][0]["port"] == 3000


class TestServedVariants:
    def test_weights_come_from_spec(self) -> None:
        md = deployment()
        assert [(v.name, v.weight) for v in served_variants(md.spec, md.status)] == [
            ("champion", 90),
            ("challenger", 10),
        ]

    def test_candidate_takes_its_step_weight_from_the_champion_only(self) -> None:
        rollout = RolloutStatus(
            candidate_version="upsell:v2",
            trigger_id="t",
            step=1,
            step_started_at=NOW,
            spec_hash="h",
            candidate_ready=True,
        )
        md = deployment(status=ModelDeploymentStatus(rollout=rollout))
        served = served_variants(md.spec, md.status)
        assert [(v.name, v.weight, v.version) for v in served] == [
            ("champion", 40, "upsell:v1"),
            ("challenger", 10, "upsell:v1-gbm"),
            (CANDIDATE_VARIANT, 50, "upsell:v2"),
        ]

    def test_promoted_version_serves_until_git_changes_the_champion(self) -> None:
        status = ModelDeploymentStatus(champion="upsell:v2", champion_source="upsell:v1")
        md = deployment(status=status)
        assert served_variants(md.spec, md.status)[0].version == "upsell:v2"
        overridden = deployment(lambda s: s["variants"][0].update(bento="upsell:v3"), status)
        assert served_variants(overridden.spec, overridden.status)[0].version == "upsell:v3"

    def test_service_router_sets_replicas_by_weight(self) -> None:
        def service_router(spec: dict[str, Any]) -> None:
            spec["traffic"] = {"router": "service"}
            spec["variants"][0].update(replicas=8, weight=75)
            spec["variants"][1].update(replicas=2, weight=25)

        md = deployment(service_router)
        assert [v.replicas for v in served_variants(md.spec, md.status)] == [8, 2]


class TestRouters:
    def test_nginx_config_routes_to_variant_services(self) -> None:
        md = deployment()
        config = nginx_config(md, served_variants(md.spec, md.status))
        assert config.champion == "champion"
        assert config.sticky_header == "x-user-id"
        assert config.pin_header == "x-rollforward-pin"
        upstreams = {v.name: v.upstream for v in config.variants}
        assert upstreams["challenger"] == "upsell-challenger.default.svc:3000"

    def test_gateway_route_has_weights_and_pin_matches(self) -> None:
        def gateway(spec: dict[str, Any]) -> None:
            spec["traffic"] = {"router": "gateway-api", "gateway": {"name": "public"}}

        md = deployment(gateway)
        route = http_route(md, served_variants(md.spec, md.status))
        *pins, split = route["spec"]["rules"]
        assert [ref["weight"] for ref in split["backendRefs"]] == [90, 10]
        assert pins[1]["matches"][0]["headers"][0] == {
            "name": "x-rollforward-pin",
            "value": "challenger",
        }

    def test_gateway_router_without_crds_blocks_with_a_condition(self) -> None:
        def gateway(spec: dict[str, Any]) -> None:
            spec["traffic"] = {"router": "gateway-api", "gateway": {"name": "public"}}

        plan = plan_serving(
            deployment(gateway), Observed(gateway_api_installed=False), SETTINGS, NOW
        )
        assert not [m for m in plan.apply if m["kind"] == "HTTPRoute"]
        ready = find_condition(plan.status.conditions, ConditionType.READY)
        assert ready is not None and ready.reason == "GatewayAPIMissing"
        assert plan.status.phase is Phase.DEGRADED


class TestPlanServing:
    def test_first_reconcile_creates_every_child_and_is_not_ready(self) -> None:
        plan = plan_serving(deployment(), Observed(), SETTINGS, NOW)
        kinds = sorted((m["kind"], m["metadata"]["name"]) for m in plan.apply)
        assert kinds == [
            ("ConfigMap", "upsell-router"),
            ("Deployment", "upsell-challenger"),
            ("Deployment", "upsell-champion"),
            ("Deployment", "upsell-router"),
            ("Service", "upsell-challenger"),
            ("Service", "upsell-champion"),
            ("Service", "upsell-router"),
        ]
        assert all(ANNOTATION_DESIRED_HASH in m["metadata"]["annotations"] for m in plan.apply)
        assert len(plan.events) == 7
        ready = find_condition(plan.status.conditions, ConditionType.READY)
        assert ready is not None and ready.status == "False"
        assert plan.status.phase is Phase.PENDING

    def test_converged_children_need_no_write_and_report_ready(self) -> None:
        md = deployment()
        plan = plan_serving(md, converged(md), SETTINGS, NOW)
        assert plan.apply == [] and plan.delete == [] and plan.events == []
        ready = find_condition(plan.status.conditions, ConditionType.READY)
        assert ready is not None and ready.status == "True"
        assert ready.observed_generation == 3
        assert plan.status.observed_generation == 3
        assert plan.status.split == "champion=90 challenger=10"
        assert plan.status.phase is Phase.STABLE

    def test_steady_state_is_a_fixed_point(self) -> None:
        md = deployment()
        observed = converged(md)
        first = plan_serving(md, observed, SETTINGS, NOW)
        again = plan_serving(
            md.model_copy(update={"status": first.status}),
            observed,
            SETTINGS,
            NOW + timedelta(minutes=5),
        )
        assert again.status == first.status
        assert again.apply == []

    def test_weight_change_rewrites_only_the_router(self) -> None:
        md = deployment()
        observed = converged(md)

        def reweigh(spec: dict[str, Any]) -> None:
            spec["variants"][0]["weight"] = 75
            spec["variants"][1]["weight"] = 25

        plan = plan_serving(deployment(reweigh), observed, SETTINGS, NOW)
        written = sorted((m["kind"], m["metadata"]["name"]) for m in plan.apply)
        assert written == [("ConfigMap", "upsell-router"), ("Deployment", "upsell-router")]
        router = next(m for m in plan.apply if m["kind"] == "Deployment")
        old_router = observed.get("Deployment", "upsell-router")
        assert old_router is not None
        template_annotations = router["spec"]["template"]["metadata"]["annotations"]
        assert template_annotations != old_router["spec"]["template"]["metadata"]["annotations"]
        assert "split champion=75 challenger=25" in plan.events[0].message

    def test_bento_change_rolls_only_that_variant(self) -> None:
        md = deployment()
        observed = converged(md)
        changed = deployment(lambda spec: spec["variants"][1].update(bento="upsell:v1-gbm2"))
        plan = plan_serving(changed, observed, SETTINGS, NOW)
        written = sorted((m["kind"], m["metadata"]["name"]) for m in plan.apply)
        assert ("Deployment", "upsell-challenger") in written
        assert ("Deployment", "upsell-champion") not in written

    def test_removed_variant_objects_are_deleted(self) -> None:
        md = deployment()
        observed = converged(md)

        def drop_challenger(spec: dict[str, Any]) -> None:
            spec["variants"] = [dict(spec["variants"][0], weight=100)]

        dropped = deployment(drop_challenger)
        plan = plan_serving(dropped, observed, SETTINGS, NOW)
        # The router stops routing to it first; its objects stay while old nginx pods may.
        written = sorted((m["kind"], m["metadata"]["name"]) for m in plan.apply)
        assert written == [("ConfigMap", "upsell-router"), ("Deployment", "upsell-router")]
        assert plan.delete == []

        rolling = rolled(observed, plan)
        router = rolling.children[("Deployment", "upsell-router")]
        router["status"]["terminatingReplicas"] = 1
        assert plan_serving(dropped, rolling, SETTINGS, NOW).delete == []

        router["status"]["terminatingReplicas"] = 0
        plan = plan_serving(dropped, rolling, SETTINGS, NOW)
        assert plan.delete == [
            ("Deployment", "upsell-challenger"),
            ("Service", "upsell-challenger"),
        ]
        assert {e.reason for e in plan.events} >= {"DeletedDeployment", "DeletedService"}

    def test_the_nginx_router_gets_the_declared_split_once(self) -> None:
        """nginx falls back to the champion by itself (rollforward.routers.nginx_config), so
        the router is written with the declared split at once and never again for readiness."""
        md = deployment()
        first = plan_serving(md, Observed(), SETTINGS, NOW)
        assert first.status.split == "champion=90 challenger=10"
        config = next(m for m in first.apply if m["kind"] == "ConfigMap")["data"]["nginx.conf"]
        assert "10%   challenger;" in config
        assert "server upsell-champion.default.svc:3000 max_fails=0 backup;" in config

        observed = rolled(Observed(), first)
        starting = observed.children[("Deployment", "upsell-challenger")]
        # No ready pod: nginx sends its users to the champion; the status says it is down.
        observed.children[("Deployment", "upsell-challenger")] = available(starting, ready=0)
        plan = plan_serving(md, observed, SETTINGS, NOW)
        assert plan.apply == [] and plan.status.split == "champion=90 challenger=10"
        ready = find_condition(plan.status.conditions, ConditionType.READY)
        assert ready is not None and ready.status == "False"
        assert ready.reason == "VariantUnavailable" and "variant challenger" in ready.message
        challenger = next(v for v in plan.status.variants if v.name == "challenger")
        assert (challenger.weight, challenger.ready_replicas) == (10, 0)

        # Rolling to a new version, its old pod still serving beside the new one: its users
        # stay on it, as the champion's do during its roll.
        rolling = available(starting)
        rolling["status"]["replicas"] += 1
        rolling["status"]["updatedReplicas"] -= 1
        observed.children[("Deployment", "upsell-challenger")] = rolling
        plan = plan_serving(md, observed, SETTINGS, NOW)
        assert plan.apply == [] and plan.status.split == "champion=90 challenger=10"
        conditions = {c.type: c.status for c in plan.status.conditions}
        assert conditions[ConditionType.READY] == "True"
        assert conditions[ConditionType.PROGRESSING] == "True"

        observed.children[("Deployment", "upsell-challenger")] = available(starting)
        plan = plan_serving(md, observed, SETTINGS, NOW)
        assert plan.apply == [] and plan.status.split == "champion=90 challenger=10"
        conditions = {c.type: c.status for c in plan.status.conditions}
        assert conditions[ConditionType.READY] == "True"
        assert conditions[ConditionType.PROGRESSING] == "False"

    def test_the_gateway_router_gives_a_variant_weight_only_once_it_serves(self) -> None:
        """An HTTPRoute's weight holds whatever the endpoints: it is gated
        (rollforward.traffic_gate)."""

        def gateway(spec: dict[str, Any]) -> None:
            spec["traffic"] = {"router": "gateway-api", "gateway": {"name": "public"}}

        def route_weights(plan: ServingPlan) -> list[int]:
            route = next(m for m in plan.apply if m["kind"] == "HTTPRoute")
            return [ref["weight"] for ref in route["spec"]["rules"][-1]["backendRefs"]]

        md = deployment(gateway)
        first = plan_serving(md, Observed(gateway_api_installed=True), SETTINGS, NOW)
        assert first.status.split == "champion=100 challenger=0"
        assert route_weights(first) == [100, 0]
        children = rolled(Observed(), first).children
        starting = children[("Deployment", "upsell-challenger")]
        children[("Deployment", "upsell-challenger")] = available(starting, ready=0)
        observed = Observed(children=children, gateway_api_installed=True)
        assert plan_serving(md, observed, SETTINGS, NOW).apply == []
        rolling = available(starting)
        rolling["status"]["replicas"] += 1  # an old pod still runs beside the new one
        children[("Deployment", "upsell-challenger")] = rolling
        plan = plan_serving(md, observed, SETTINGS, NOW)
        assert plan.apply == [] and plan.status.split == "champion=100 challenger=0"
        ready = find_condition(plan.status.conditions, ConditionType.READY)
        assert ready is not None and ready.status == "False"
        assert "challenger: rolling out" in ready.message
        children[("Deployment", "upsell-challenger")] = available(starting)
        plan = plan_serving(md, observed, SETTINGS, NOW)
        assert plan.status.split == "champion=90 challenger=10"
        assert [m["kind"] for m in plan.apply] == ["HTTPRoute"]
        assert route_weights(plan) == [90, 10]

    def test_variant_that_never_becomes_ready_makes_ready_false_with_its_reason(self) -> None:
        md = deployment()
        observed = converged(md)
        name = variant_name("upsell", "challenger")
        stuck = available(plan_serving(md, Observed(), SETTINGS, NOW).apply[2], ready=0)
        assert stuck["metadata"]["name"] == name
        stuck["status"]["conditions"][1] = {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "upsell-challenger-abc" has timed out progressing.',
        }
        children = {**observed.children, ("Deployment", name): stuck}
        plan = plan_serving(md, Observed(children=children), SETTINGS, NOW)
        ready = find_condition(plan.status.conditions, ConditionType.READY)
        assert ready is not None and ready.status == "False"
        assert ready.reason == "VariantUnavailable"
        assert "variant challenger" in ready.message
        assert "has timed out progressing" in ready.message
        champion = next(v for v in plan.status.variants if v.name == "champion")
        assert champion.ready_replicas == 2


class TestConditions:
    def test_transition_time_kept_unless_status_flips(self) -> None:
        first = set_condition([], ConditionType.READY, "True", Reason.RECONCILED, "a", 1, NOW)
        later = NOW + timedelta(minutes=1)
        same = set_condition(first, ConditionType.READY, "True", Reason.RECONCILED, "b", 2, later)
        assert same[0].last_transition_time == NOW and same[0].message == "b"
        flipped = set_condition(
            same, ConditionType.READY, "False", Reason.RECONCILED, "c", 2, later
        )
        assert flipped[0].last_transition_time == later


@pytest.mark.parametrize(
    ("status", "available"),
    [
        ({"replicas": 2, "availableReplicas": 2, "readyReplicas": 2, "updatedReplicas": 2}, True),
        ({"replicas": 2, "availableReplicas": 0, "readyReplicas": 0}, False),
        ({}, False),
    ],
)
def test_deployment_health(status: dict[str, Any], available: bool) -> None:
    manifest = {"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": status}
    assert deployment_health(manifest).available is available


def test_long_names_stay_valid_and_distinct() -> None:
    long = "m" * 60
    a, b = variant_name(long, "champion"), variant_name(long, "challenger")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert len(job_name(long, "0123456789abcdef", 1)) <= 63
