"""Which CA and credentials go with which Prometheus URL, and what a missing Secret does.

Through the whole reconcile with in-memory fakes: a missing Secret is MonitoringAvailable
False with PrometheusSecretMissing and no query at all; a TLS or credential failure keeps
its reason up to the condition; none of them is evidence (Drifted stays inconclusive).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from fixtures.decision_inputs import T0
from fixtures.fakes import FakeCluster
from rollforward.api import ConditionType, Reason, parse_model_deployment
from rollforward.conditions import find_condition
from rollforward.measurements import QueryResult
from rollforward.prometheus_access import (
    PrometheusAccess,
    PrometheusTarget,
    resolve_target,
    url_problem,
)
from rollforward.reconcile import reconcile
from rollforward.settings import OperatorSettings

NS = "default"


class RecordingMetrics:
    """Answers every query with `answer` and records the access it was asked with."""

    def __init__(self, answer: QueryResult) -> None:
        self.answer = answer
        self.seen: list[tuple[str, PrometheusAccess | None]] = []

    def query(
        self, url: str, promql: str, at: datetime, access: PrometheusAccess | None = None
    ) -> QueryResult:
        self.seen.append((url, access))
        return self.answer


def manifest(**monitoring: Any) -> dict[str, Any]:
    body = example_manifest()
    body["metadata"].update(uid="uid-1", generation=1, namespace=NS)
    body["spec"]["monitoring"] = monitoring
    return body


def run(body: dict[str, Any], cluster: FakeCluster, metrics: RecordingMetrics) -> tuple[str, str]:
    reconcile(body, cluster, metrics, OperatorSettings(), lambda: T0)
    found = find_condition(
        parse_model_deployment({**body, "status": cluster.status}).status.conditions,
        ConditionType.MONITORING_AVAILABLE,
    )
    assert found is not None
    drifted = find_condition(
        parse_model_deployment({**body, "status": cluster.status}).status.conditions,
        ConditionType.DRIFTED,
    )
    assert drifted is not None and drifted.reason == Reason.CHECK_INCONCLUSIVE
    return found.reason, found.message


def test_secrets_named_in_the_spec_are_sent_with_its_url() -> None:
    cluster = FakeCluster(
        secrets={
            (NS, "prom-ca"): {"ca.crt": "PEM"},
            (NS, "prom-user"): {"username": "u", "password": "p"},
        }
    )
    metrics = RecordingMetrics(QueryResult())
    body = manifest(
        prometheusUrl="https://prom:9090",
        caSecret={"name": "prom-ca", "key": "ca.crt"},
        basicAuthSecret={"name": "prom-user"},
    )
    run(body, cluster, metrics)
    assert metrics.seen
    assert set(metrics.seen) == {
        ("https://prom:9090", PrometheusAccess(ca_pem="PEM", basic_auth=("u", "p")))
    }


def test_a_missing_secret_is_named_and_nothing_is_queried() -> None:
    metrics = RecordingMetrics(QueryResult())
    body = manifest(prometheusUrl="https://prom:9090", bearerTokenSecret={"name": "t", "key": "k"})
    reason, message = run(body, FakeCluster(), metrics)
    assert reason == Reason.PROMETHEUS_SECRET_MISSING
    assert "Secret default/t" in message
    assert metrics.seen == []


def test_a_missing_key_is_named() -> None:
    cluster = FakeCluster(secrets={(NS, "u"): {"username": "x"}})
    body = manifest(prometheusUrl="https://prom:9090", basicAuthSecret={"name": "u"})
    reason, message = run(body, cluster, RecordingMetrics(QueryResult()))
    assert reason == Reason.PROMETHEUS_SECRET_MISSING
    assert "'password'" in message


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://[::1", "IPv6"),
        ("http://prometheus:port/", "Port"),
        ("http://:9090", "no host"),
        ("http://%zz:9090", "not a host name"),
        ("http://prometheus..monitoring:9090", "not a host name"),
        ("http://prometheus:99999", "out of range"),
    ],
)
def test_a_url_that_passes_the_schema_but_is_not_a_url_is_named(url: str, named: str) -> None:
    metrics = RecordingMetrics(QueryResult())
    reason, message = run(manifest(prometheusUrl=url), FakeCluster(), metrics)
    assert reason == Reason.PROMETHEUS_URL_INVALID
    assert named in message and "is not a URL" in message
    assert metrics.seen == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9090", "https://prom.monitoring.svc:9090/prefix", "http://[::1]:9090",
     "http://thanos_query:10902"],
)  # fmt: skip
def test_real_urls_have_no_problem(url: str) -> None:
    assert url_problem(url) is None


def test_tls_and_credential_reasons_reach_the_condition() -> None:
    for failure in (Reason.PROMETHEUS_TLS_ERROR, Reason.PROMETHEUS_UNAUTHORIZED):
        metrics = RecordingMetrics(QueryResult(error="refused", reason=failure))
        reason, _ = run(manifest(prometheusUrl="https://prom:9090"), FakeCluster(), metrics)
        assert reason == failure


def test_operator_credentials_go_only_to_the_operator_url(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    settings = OperatorSettings(
        prometheus_url="https://central:9090", prometheus_bearer_token_file=token
    )
    own = parse_model_deployment(manifest())
    assert resolve_target(own, settings, None) == PrometheusTarget(
        "https://central:9090", PrometheusAccess(bearer_token="s3cret")
    )
    elsewhere = parse_model_deployment(manifest(prometheusUrl="https://attacker:9090"))
    assert resolve_target(elsewhere, settings, None) == PrometheusTarget("https://attacker:9090")


def test_an_unreadable_operator_credential_file_is_named(tmp_path: Path) -> None:
    settings = OperatorSettings(
        prometheus_url="https://central:9090", prometheus_ca_file=tmp_path / "absent.pem"
    )
    result = resolve_target(parse_model_deployment(manifest()), settings, None)
    assert isinstance(result, QueryResult)
    assert result.reason == Reason.PROMETHEUS_SECRET_MISSING
    assert "ROLLFORWARD_PROMETHEUS_CA_FILE" in (result.error or "")


def test_bearer_token_and_basic_auth_together_are_rejected() -> None:
    body = manifest(
        prometheusUrl="https://prom:9090",
        bearerTokenSecret={"name": "t", "key": "k"},
        basicAuthSecret={"name": "u"},
    )
    try:
        parse_model_deployment(body)
    except ValueError as error:
        assert "basicAuthSecret" in str(error)
    else:
        raise AssertionError("both credentials were accepted")
