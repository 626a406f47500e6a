"""How the local pod runner turns a container into a local process (pure decisions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from devenv.pod_launch import (
    LaunchError,
    Workload,
    expand_references,
    is_nginx,
    plan_container,
    rewrite_listen_args,
    scrape_port,
    scrape_target_labels,
)
from rollforward.api import parse_model_deployment
from rollforward.observed import Observed
from rollforward.routers.nginx import NginxRouter
from rollforward.serving.contract import ENV_TERMINATION_MESSAGE_PATH
from rollforward.settings import OperatorSettings
from rollforward.variants import served_variants

PYTHON = Path("/venv/bin/python")
MESSAGE = Path("/run/pod/termination-log")


def pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "upsell-champion-abc",
            "namespace": "ml",
            "uid": "u-1",
            "labels": {"rollforward.io/variant": "champion", "app": "upsell"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "3000"},
        },
        "spec": {"nodeName": "local-runner", "containers": [container], **spec},
    }


BENTO = {
    "name": "bento",
    "image": "rollforward/bento-runtime:0.1.0",
    "command": ["bentoml", "serve", "soom-upsell:v1"],
    "args": ["--host", "0.0.0.0", "--port", "3000"],
    "env": [
        {"name": "ROLLFORWARD_VARIANT", "value": "champion"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "GREETING", "value": "hi $(POD) $$(POD) $(MISSING)"},
    ],
    "ports": [{"name": "http", "containerPort": 3000}],
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
}


def test_a_bento_container_serves_on_its_local_port_on_loopback() -> None:
    launch = plan_container(pod(BENTO), BENTO, {3000: 41000}, PYTHON, MESSAGE)

    assert launch.workload is Workload.PROCESS
    assert launch.serves_bento
    assert launch.argv[1:] == ("serve", "soom-upsell:v1", "--host", "127.0.0.1", "--port", "41000")
    assert launch.readiness is not None
    assert (launch.readiness.path, launch.readiness.container_port) == ("/readyz", 3000)


def test_env_follows_kubernetes_value_field_ref_and_expansion_rules() -> None:
    launch = plan_container(pod(BENTO), BENTO, {3000: 41000}, PYTHON, MESSAGE)

    assert launch.env["ROLLFORWARD_VARIANT"] == "champion"
    assert launch.env["POD"] == "upsell-champion-abc"
    assert launch.env["GREETING"] == "hi upsell-champion-abc $(POD) $(MISSING)"
    assert launch.env[ENV_TERMINATION_MESSAGE_PATH] == str(MESSAGE)


def test_python_resolves_to_the_runners_interpreter() -> None:
    container = {"name": "retrain", "image": "x", "command": ["python", "-m", "upsell.retrain"]}

    launch = plan_container(pod(container), container, {}, PYTHON, MESSAGE)

    assert launch.argv == (str(PYTHON), "-m", "upsell.retrain")
    assert not launch.serves_bento


def test_an_nginx_router_reads_the_configmap_mounted_at_nginx_conf() -> None:
    container = {
        "name": "nginx",
        "image": "docker.io/library/nginx:1.27-alpine",
        "ports": [{"name": "http", "containerPort": 8080}],
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"}
        ],
    }
    spec = {"volumes": [{"name": "config", "configMap": {"name": "upsell-router"}}]}

    launch = plan_container(pod(container, **spec), container, {8080: 42000}, PYTHON, MESSAGE)

    assert launch.workload is Workload.NGINX
    assert launch.nginx_config is not None
    assert (launch.nginx_config.config_map, launch.nginx_config.key) == (
        "upsell-router",
        "nginx.conf",
    )


def test_the_operators_router_container_runs_as_nginx() -> None:
    md = parse_model_deployment({**example_manifest(), "metadata": {"name": "u", "uid": "1"}})
    served = served_variants(md.spec, md.status)
    plan = NginxRouter().plan(md, served, OperatorSettings(), Observed())
    (router,) = [o for o in plan.objects if o["kind"] == "Deployment"]
    router_pod = {"metadata": {"name": "r", "namespace": "ns"}, **router["spec"]["template"]}
    (container,) = router_pod["spec"]["containers"]

    launch = plan_container(router_pod, container, {8080: 42000}, PYTHON, MESSAGE)

    assert launch.workload is Workload.NGINX
    assert launch.nginx_config is not None
    assert launch.nginx_config.config_map == "u-router"


def test_an_image_without_a_command_cannot_run_and_says_so() -> None:
    container = {"name": "app", "image": "example/app:1"}

    with pytest.raises(LaunchError) as raised:
        plan_container(pod(container), container, {}, PYTHON, MESSAGE)

    assert raised.value.reason == "ErrImagePull"


def test_secret_env_is_refused_rather_than_left_empty() -> None:
    container = {
        "name": "app",
        "image": "x",
        "command": ["python"],
        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    }

    with pytest.raises(LaunchError, match="TOKEN"):
        plan_container(pod(container), container, {}, PYTHON, MESSAGE)


def test_secret_env_is_read_through_the_reader_and_a_missing_one_waits() -> None:
    container = {
        "name": "app",
        "image": "x",
        "command": ["python"],
        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    }
    stored = {("s", "k"): "v4lue"}

    launch = plan_container(
        pod(container), container, {}, PYTHON, MESSAGE, lambda n, k: stored.get((n, k))
    )
    assert launch.env["TOKEN"] == "v4lue"
    with pytest.raises(LaunchError, match='secret "s"') as raised:
        plan_container(pod(container), container, {}, PYTHON, MESSAGE, lambda n, k: None)
    assert raised.value.reason == "CreateContainerConfigError"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "3000"], ["--port", "41000"]),
        (["--port=3000", "--host=0.0.0.0"], ["--port=41000", "--host=127.0.0.1"]),
        (["--port", "9999"], ["--port", "9999"]),  # not a declared port: left alone
        (["serve", "--workers", "2"], ["serve", "--workers", "2"]),
    ],
)
def test_listen_arguments_are_rewritten_to_the_local_port(
    args: list[str], expected: list[str]
) -> None:
    assert rewrite_listen_args(args, {3000: 41000}) == expected


def test_dollar_dollar_escapes_a_reference() -> None:
    assert expand_references("$$(A)-$(A)", {"A": "x"}) == "$(A)-x"


def test_scrape_labels_are_kubernetes_sd_meta_labels() -> None:
    labels = scrape_target_labels(pod(BENTO))

    assert labels == {
        "__meta_kubernetes_namespace": "ml",
        "__meta_kubernetes_pod_name": "upsell-champion-abc",
        "__meta_kubernetes_pod_container_name": BENTO["name"],
        "__meta_kubernetes_pod_label_rollforward_io_variant": "champion",
        "__meta_kubernetes_pod_labelpresent_rollforward_io_variant": "true",
        "__meta_kubernetes_pod_label_app": "upsell",
        "__meta_kubernetes_pod_labelpresent_app": "true",
    }
    assert scrape_port(pod(BENTO)) == 3000


@pytest.mark.parametrize(
    "image",
    [OperatorSettings().router_image, "docker.io/rollforward/router:0.1.0", "nginx:1.27-alpine"],
)
def test_every_router_image_runs_as_nginx(image: str) -> None:
    assert is_nginx({"name": "nginx", "image": image})
    assert not is_nginx({"name": "nginx", "image": image, "command": ["sh"]})
