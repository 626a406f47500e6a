"""Every pod the operator builds is `restricted`, and the Job template gets only the defaults
it leaves unset. (tests/integration/test_pod_security_admission.py has the API server admit
them.)"""

from __future__ import annotations

from typing import Any

import pytest

from devenv.api_cases import example_manifest
from fixtures.decision_inputs import serving_deployments
from rollforward.api import parse_model_deployment
from rollforward.builders import BENTOML_HOME
from rollforward.pod_security import TMP_PATH, with_restricted_defaults
from rollforward.retraining import retraining_job
from rollforward.routers.nginx import LISTEN_PORT, nginx_command
from rollforward.settings import OperatorSettings

Manifest = dict[str, Any]
SETTINGS = OperatorSettings()


def operator_pods() -> dict[str, Manifest]:
    """The pod specs of the bento and router Deployments for the README's example."""
    return {kind: d["spec"]["template"]["spec"] for kind, d in serving_deployments().items()}


@pytest.mark.parametrize("kind", ["bento", "router"])
def test_operator_pods_run_restricted_with_a_read_only_root(kind: str) -> None:
    pod = operator_pods()[kind]
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] > 0
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        }
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == TMP_PATH]
        assert tmp, f"{kind} has no writable /tmp"
        (volume,) = [v for v in pod["volumes"] if v["name"] == tmp[0]["name"]]
        assert volume == {"name": "tmp", "emptyDir": {}}


def test_the_bento_store_is_in_the_tmp_empty_dir() -> None:
    (container,) = operator_pods()["bento"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BENTOML_HOME"] == BENTOML_HOME
    assert BENTOML_HOME.startswith(TMP_PATH + "/")


def test_the_router_runs_unprivileged_nginx_writing_only_under_tmp() -> None:
    (container,) = operator_pods()["router"]["containers"]
    assert SETTINGS.router_image.startswith("nginxinc/nginx-unprivileged:")
    assert container["command"] == nginx_command()
    argv = container["command"]
    assert argv[argv.index("-p") + 1] == "/tmp/"
    assert argv[argv.index("-e") + 1] == "stderr"
    assert argv[argv.index("-c") + 1] == "/etc/nginx/nginx.conf"
    assert container["ports"] == [{"name": "http", "containerPort": LISTEN_PORT}]
    assert LISTEN_PORT >= 1024


def job_pod(template_spec: Manifest) -> Manifest:
    manifest = example_manifest()
    manifest["metadata"].update(name="u", uid="1")
    manifest["spec"]["retraining"]["template"] = {"spec": template_spec}
    md = parse_model_deployment(manifest)
    job = retraining_job(md, "abc", 1, "{}")
    pod: Manifest = job["spec"]["template"]["spec"]
    return pod


def test_an_unset_job_template_gets_every_restricted_field() -> None:
    pod = job_pod({"containers": [{"name": "train", "image": "t"}]})
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def test_values_the_user_set_win() -> None:
    pod = job_pod(
        {
            "securityContext": {
                "runAsUser": 1000,
                "runAsNonRoot": False,
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
            },
            "initContainers": [
                {
                    "name": "fetch",
                    "image": "f",
                    "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}},
                }
            ],
            "containers": [
                {
                    "name": "train",
                    "image": "t",
                    "securityContext": {
                        "allowPrivilegeEscalation": True,
                        "capabilities": {"drop": ["NET_RAW"]},
                        "readOnlyRootFilesystem": False,
                    },
                }
            ],
        }
    )
    assert pod["securityContext"] == {
        "runAsUser": 1000,
        "runAsNonRoot": False,
        "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
    }
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": True,
        "capabilities": {"drop": ["NET_RAW"]},
        "readOnlyRootFilesystem": False,
    }
    assert pod["initContainers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
    }


def test_a_privileged_or_root_template_gets_no_contradicting_default() -> None:
    spec = with_restricted_defaults(
        {
            "securityContext": {"runAsUser": 0},
            "containers": [{"name": "c", "securityContext": {"privileged": True}}],
        }
    )
    assert "runAsNonRoot" not in spec["securityContext"]
    assert "allowPrivilegeEscalation" not in spec["containers"][0]["securityContext"]


def test_filling_defaults_leaves_the_template_untouched() -> None:
    template: Manifest = {"containers": [{"name": "c", "securityContext": {}}]}
    with_restricted_defaults(template)
    assert template == {"containers": [{"name": "c", "securityContext": {}}]}
