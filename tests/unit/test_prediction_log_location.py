"""Each ModelDeployment's prediction log is its own (rollforward.bentostore.location): the
bentos that write it and the retraining Jobs that read it are told one location, keyed by
namespace and name, so two ModelDeployments serving one model never share a log or its
feedback claims."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from fixtures.fakes import MemoryStore
from rollforward.api import ModelDeployment, parse_model_deployment
from rollforward.bentostore.location import log_prefix, store_for
from rollforward.bentostore.pod import job_with_store
from rollforward.builders import variant_deployment
from rollforward.observed import Manifest
from rollforward.retraining import retraining_job
from rollforward.serving.contract import ENV_MODEL, ENV_PREDICTION_LOG_PREFIX
from rollforward.serving.feedback_claims import claims_prefix
from rollforward.serving.prediction_log import LogIdentity, LogSettings, PredictionLog
from rollforward.serving.settings import ServingSettings
from rollforward.settings import OperatorSettings
from rollforward.variants import served_variants
from upsell import logged_data
from upsell.retrain import RetrainSettings

pytestmark = pytest.mark.unit

SETTINGS = OperatorSettings(
    bento_image="registry.local/bento-runtime:1",
    bento_store_endpoint="http://s3.local:7070",
    bento_store_bucket="bentos",
)
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def deployment(
    namespace: str = "default", name: str = "upsell", mutate: Callable[[Any], None] | None = None
) -> ModelDeployment:
    manifest = example_manifest()
    manifest["metadata"].update(namespace=namespace, name=name, uid=f"uid-{namespace}-{name}")
    if mutate:
        mutate(manifest["spec"])
    return parse_model_deployment(manifest)


def bento_containers(md: ModelDeployment) -> list[Manifest]:
    """The serving container of every variant's Deployment, as the operator applies it."""
    return [
        container
        for variant in served_variants(md.spec, md.status)
        for container in variant_deployment(md, variant, SETTINGS)["spec"]["template"]["spec"][
            "containers"
        ]
    ]


def job_containers(md: ModelDeployment) -> list[Manifest]:
    """The retraining Job's containers, with the store's env as decide adds it."""
    store = store_for(md, SETTINGS)
    assert store is not None
    job = job_with_store(retraining_job(md, "t1", 1, "{}"), store)
    containers: list[Manifest] = job["spec"]["template"]["spec"]["containers"]
    return containers


def log_values(containers: list[Manifest]) -> set[str]:
    """The log prefixes the containers are told; each must name it exactly once."""
    values = set()
    for container in containers:
        named = [e for e in container["env"] if e["name"] == ENV_PREDICTION_LOG_PREFIX]
        assert len(named) == 1, container["env"]
        values.add(named[0]["value"])
    return values


def plain_env(container: Manifest) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


class TestOneLogPerModelDeployment:
    def test_the_bentos_and_the_retraining_job_are_told_the_same_log(self) -> None:
        md = deployment()
        assert len(bento_containers(md)) == 2  # champion and challenger
        assert log_values(bento_containers(md)) == {"logs/default/upsell"}
        assert log_values(job_containers(md)) == {"logs/default/upsell"}
        assert log_prefix(md) == "logs/default/upsell"

    def test_one_model_in_two_namespaces_gets_two_logs(self) -> None:
        a, b = deployment("team-a"), deployment("team-b")
        assert a.spec.model == b.spec.model
        assert log_values(bento_containers(a)) == log_values(job_containers(a))
        assert log_values(bento_containers(b)) == log_values(job_containers(b))
        assert log_values(bento_containers(a)) == {"logs/team-a/upsell"}
        assert log_values(job_containers(b)) == {"logs/team-b/upsell"}

    def test_one_model_under_two_names_in_one_namespace_gets_two_logs(self) -> None:
        a, b = deployment(name="upsell"), deployment(name="upsell-eu")
        assert log_values(bento_containers(a)) != log_values(bento_containers(b))
        assert log_values(job_containers(a)) != log_values(job_containers(b))
        assert log_values(job_containers(b)) == log_values(bento_containers(b))

    def test_a_log_prefix_in_the_job_template_gives_way_to_the_operators(self) -> None:
        def own_prefix(spec: Any) -> None:
            container = spec["retraining"]["template"]["spec"]["containers"][0]
            container["env"] = [
                {"name": ENV_PREDICTION_LOG_PREFIX, "value": "logs"},
                {"name": "SOOM_RETRAIN_MIN_LABELLED", "value": "500"},
            ]

        (container,) = job_containers(deployment("team-a", mutate=own_prefix))
        assert log_values([container]) == {"logs/team-a/upsell"}
        assert plain_env(container)["SOOM_RETRAIN_MIN_LABELLED"] == "500"


def serve_and_label(
    monkeypatch: pytest.MonkeyPatch, store: MemoryStore, bento: Manifest, country: str
) -> str:
    """One prediction and its label through a bento's own log, configured from the env the
    operator put on `bento`; returns where its feedback claims go."""
    with monkeypatch.context() as env:
        for name, value in plain_env(bento).items():
            env.setenv(name, value)
        serving, settings = ServingSettings(), LogSettings()
    log = PredictionLog(
        store,
        LogIdentity(serving.model, serving.version, serving.variant),
        settings,
        clock=lambda: AT,
    )
    log.prediction(f"id-{country}", {"country": country}, "stay", 0.2)
    log.feedback(f"id-{country}", "upgrade")
    log.close()
    return claims_prefix(settings.prefix, serving.model)


def read_as_the_job(
    monkeypatch: pytest.MonkeyPatch, store: MemoryStore, job: Manifest
) -> logged_data.LoggedData:
    """What `upsell.retrain --source logs` loads, configured from the env on the Job."""
    with monkeypatch.context() as env:
        for name, value in plain_env(job).items():
            env.setenv(name, value)
        settings = RetrainSettings(source="logs")
    return logged_data.load(
        store, settings.log_prefix, settings.log_model, AT + timedelta(minutes=1), days=1
    )


def test_a_job_reads_only_what_its_own_deployments_bentos_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given two ModelDeployments of one model in two namespaces, each one's bento logging one
    labelled prediction, when each one's retraining Job loads the log, then it finds its own
    prediction only; and the two keep their feedback claims apart."""
    for name in (ENV_PREDICTION_LOG_PREFIX, ENV_MODEL):
        monkeypatch.delenv(name, raising=False)
    store = MemoryStore()
    a, b = deployment("team-a"), deployment("team-b")
    claims = {
        country: serve_and_label(monkeypatch, store, bento_containers(md)[0], country)
        for md, country in ((a, "US"), (b, "DE"))
    }

    for md, country in ((a, "US"), (b, "DE")):
        (job,) = job_containers(md)
        data = read_as_the_job(monkeypatch, store, job)
        assert (data.predictions, data.labelled) == (1, 1), md.metadata.namespace
        assert list(data.frame["country"]) == [country]
    assert claims == {
        "US": "logs/team-a/upsell/upsell/feedback-claims/",
        "DE": "logs/team-b/upsell/upsell/feedback-claims/",
    }
