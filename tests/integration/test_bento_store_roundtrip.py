"""A bento's round trip through a real S3 server (versitygw): a retraining Job's command,
as the operator builds it, exports the bento; the init container of a bento pod the
operator's builder produced imports it into an empty BENTOML_HOME; `bentoml serve` of it
answers /readyz. And the init container's failures name their reason."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devenv.bento import bentoml_env, start_bento_server
from devenv.processes import free_port
from devenv.s3 import S3Server
from fixtures.decision_inputs import deployment
from fixtures.fixtures_bento import SOOM_SERVER_ENV
from rollforward.bentostore.location import store_for
from rollforward.bentostore.pod import FETCH_CONTAINER
from rollforward.bentostore.view import StoreView, with_store_env
from rollforward.builders import variant_deployment
from rollforward.retraining import retraining_job
from rollforward.serving.contract import ENV_TERMINATION_MESSAGE_PATH, RetrainingResult
from rollforward.serving.objectstore.layout import bento_key
from rollforward.serving.objectstore.sigv4 import Credentials
from rollforward.settings import OperatorSettings
from rollforward.variants import served_variants

SECRET = "bento-store"
Manifest = dict[str, Any]


@dataclass(frozen=True)
class LocalRun:
    returncode: int
    stderr: str
    termination_message: str


def _settings(server: S3Server) -> OperatorSettings:
    return OperatorSettings(
        bento_store_endpoint=server.endpoint,
        bento_store_bucket=server.bucket,
        bento_store_secret=SECRET,
    )


def _resolved_env(container: Manifest, secret: dict[str, str]) -> dict[str, str]:
    """The container's env as the kubelet would resolve it, with the Secret's values."""
    env = {}
    for item in container.get("env", []):
        if "valueFrom" in item:
            env[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
        else:
            env[item["name"]] = item["value"]
    return env


def run_container(
    container: Manifest, secret: dict[str, str], home: Path, scratch: Path, timeout: float = 600
) -> LocalRun:
    """Run a container of a built manifest as a local process: its command, args and env,
    with BENTOML_HOME and the termination-message path moved to local directories."""
    termination = scratch / f"{container['name']}-termination-log"
    env = bentoml_env(home, _resolved_env(container, secret))
    env["BENTOML_HOME"] = str(home)
    env[ENV_TERMINATION_MESSAGE_PATH] = str(termination)
    argv = [*container["command"], *container.get("args", [])]
    argv = [sys.executable if part == "python" else part for part in argv]
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    message = termination.read_text() if termination.exists() else ""
    return LocalRun(done.returncode, done.stderr, message)


def _retrain_container(server: S3Server) -> Manifest:
    def small_retrain(spec: dict[str, Any]) -> None:
        spec["retraining"]["template"]["spec"]["containers"][0]["command"] = [
            "python", "-m", "upsell.retrain", "--rows", "3000", "--min-auc", "0.6",
        ]  # fmt: skip

    md = deployment(mutate=small_retrain)
    store = store_for(md, _settings(server))
    assert store is not None
    # The Job as decide() hands it to apply: the template's, plus the store's env.
    (job,) = with_store_env([retraining_job(md, "t1", 1, "{}")], StoreView(store))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _fetch_container(server: S3Server, tag: str) -> Manifest:
    def serve(spec: dict[str, Any]) -> None:
        spec["variants"] = [{"name": "champion", "role": "champion", "bento": tag, "weight": 100}]

    md = deployment(mutate=serve)
    (variant,) = served_variants(md.spec, md.status)
    pod = variant_deployment(md, variant, _settings(server))["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["name"] == FETCH_CONTAINER
    return dict(init)


@pytest.fixture(scope="module")
def exported(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> RetrainingResult:
    """One real retraining run, as the operator's Job runs it, exporting to the store."""
    trainer_home = tmp_path_factory.mktemp("trainer-home")
    run = run_container(
        _retrain_container(s3_server),
        _secret(s3_server.credentials),
        trainer_home,
        tmp_path_factory.mktemp("trainer"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return RetrainingResult.from_termination_message(run.termination_message)


def _secret(credentials: Credentials) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
    }


def test_a_retrained_bento_travels_through_the_store_to_a_serving_pod(
    s3_server: S3Server, exported: RetrainingResult, tmp_path: Path
) -> None:
    tag = exported.version
    key = bento_key("bentos", tag)
    assert exported.stored_at == f"s3://{s3_server.bucket}/{key}"
    assert s3_server.store().head(key).presence.value == "Present"

    empty_home = tmp_path / "pod-home"
    empty_home.mkdir()
    fetched = run_container(
        _fetch_container(s3_server, tag), _secret(s3_server.credentials), empty_home, tmp_path
    )

    assert fetched.returncode == 0, fetched.stderr[-3000:]
    name, version = tag.split(":")
    assert (empty_home / "bentos" / name / version / "bento.yaml").is_file()
    server = start_bento_server(tag, empty_home, tmp_path / "serve", env=SOOM_SERVER_ENV)
    try:
        status, _ = server.get("/readyz", timeout=5)
        assert status == 200
    finally:
        server.process.stop()


def test_the_init_container_names_a_missing_bento(s3_server: S3Server, tmp_path: Path) -> None:
    run = run_container(
        _fetch_container(s3_server, "soom-upsell:never-built"),
        _secret(s3_server.credentials),
        tmp_path / "home",
        tmp_path,
    )
    assert run.returncode == 1
    assert run.termination_message.startswith("BentoNotFound:"), run.stderr


def test_the_init_container_names_refused_credentials(
    s3_server: S3Server, exported: RetrainingResult, tmp_path: Path
) -> None:
    wrong = Credentials(s3_server.credentials.access_key, "not-the-secret")
    run = run_container(
        _fetch_container(s3_server, exported.version), _secret(wrong), tmp_path / "home", tmp_path
    )
    assert run.returncode == 1
    assert run.termination_message.startswith("BentoStoreForbidden:"), run.stderr


def test_the_init_container_names_an_unreachable_store(tmp_path: Path) -> None:
    nowhere = S3Server(f"http://127.0.0.1:{free_port()}", "bentos", Credentials("a", "b"), tmp_path)
    run = run_container(
        _fetch_container(nowhere, "soom-upsell:any"),
        _secret(nowhere.credentials),
        tmp_path / "home",
        tmp_path,
    )
    assert run.returncode == 1
    assert run.termination_message.startswith("BentoStoreUnreachable:"), run.stderr
