"""The chart's Grafana dashboard and alert rules query only metrics that exist.

"Exist" means: exported by the operator (rollforward.metrics.OperatorMetrics), by a bento under
the metric contract (rollforward.serving), or, for the alerts of the kube-state-metrics group
only, by kube-state-metrics.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from devenv.cluster import REPO_ROOT
from rollforward.metrics import OperatorMetrics
from rollforward.serving import contract
from rollforward.serving.metrics import MetricIdentity, ServingMetrics

FILES = REPO_ROOT / "charts" / "rollforward" / "files"
# The kube-state-metrics series the optional alert group reads (documented in values.yaml).
KUBE_STATE_METRICS = {
    "kube_deployment_status_condition",
    "kube_deployment_labels",
    "kube_job_failed",
}
_PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                    "or", "unless", "offset", "inf", "nan"}  # fmt: skip
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """Series names a registry exposes, whether or not a sample exists yet."""
    return {
        family.name + suffix for family in registry.collect() for suffix in _SUFFIXES[family.type]
    }


def existing_metrics() -> set[str]:
    serving = CollectorRegistry()
    ServingMetrics(MetricIdentity("m", "v1", "champion"), serving)
    bentoml = {contract.BENTOML_REQUESTS_TOTAL} | {
        contract.BENTOML_REQUEST_DURATION + s for s in _SUFFIXES["histogram"]
    }
    return exposed_names(OperatorMetrics().registry) | exposed_names(serving) | bentoml


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (functions, keywords and labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and match.group().lower() not in _PROMQL_KEYWORDS:
            names.add(match.group())
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (result) (rate(a_total{x="y", z=~"$ns"}[$__rate_interval]))', {"a_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(b_bucket[5m])))", {"b_bucket"}),
        ("a / ignoring (label) group_left () sum by (m) (b) > 0.5", {"a", "b"}),
        ('c * on (namespace, deployment) group_left () d{e="f"} > 1e3', {"c", "d"}),
        ("up == bool 1 unless absent(missing_metric)", {"up", "missing_metric"}),
    ],
)
def test_metric_names_finds_exactly_the_metrics(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_known_metrics_include_both_contracts() -> None:
    known = existing_metrics()
    assert "rollforward_operator_reconciles_total" in known
    assert "rollforward_operator_reconcile_duration_seconds_bucket" in known
    assert "rollforward_predictions_total" in known
    assert "rollforward_prediction_score_bucket" in known
    assert "rollforward_baseline_ratio" in known
    assert "bentoml_service_request_duration_seconds_bucket" in known
    assert "rollforward_predictions" not in known


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FILES / "dashboard.json").read_text())
    return loaded


def dashboard_queries() -> list[str]:
    queries = [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            match = re.fullmatch(r"label_values\((.+), *\w+\)", query)
            assert match, f"unexpected variable query {query}"
            queries.append(match.group(1))
    return queries


def test_dashboard_queries_only_existing_metrics() -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15
    for expr in queries:
        used = metric_names(expr)
        assert used, f"no metric found in {expr}"
        assert used <= existing_metrics(), f"{expr} reads {used - existing_metrics()}"


def test_dashboard_shows_every_metric_of_both_contracts() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_queries()))
    for family in (
        "rollforward_operator_reconciles_total",
        "rollforward_operator_api_writes_total",
        "rollforward_operator_drift_score",
        "rollforward_operator_drift_checks_total",
        "rollforward_operator_prometheus_queries_total",
        contract.PREDICTIONS_TOTAL,
        contract.BASELINE_RATIO,
        contract.INPUT_ANOMALIES_TOTAL,
        contract.OUTCOMES_TOTAL,
        contract.BENTOML_REQUESTS_TOTAL,
    ):
        assert family in used


# Bento families that are inputs to the operator's estimates (the calibration table) or only
# join keys (the variant), not something an operator of the service watches as a series.
NOT_PLOTTED = {
    contract.VARIANT_INFO,
    contract.SCORE_CALIBRATION,
    contract.SCORE_CALIBRATION_SAMPLES,
    contract.DECISION_THRESHOLD,
}


def test_dashboard_plots_every_counter_and_histogram_a_bento_exports() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_queries()))
    families = {
        value
        for name, value in vars(contract).items()
        if name.isupper() and isinstance(value, str) and value.startswith("rollforward_")
    }
    assert contract.FEEDBACK_UNVERIFIED_TOTAL in families
    missing = {f for f in families - NOT_PLOTTED if not any(u.startswith(f) for u in used)}
    assert not missing, f"no dashboard panel plots {sorted(missing)}"


def test_dashboard_panels_are_laid_out_without_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel['title']} overlaps another"
        cells |= area
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def rule_groups() -> dict[str, list[dict[str, Any]]]:
    loaded = yaml.safe_load((FILES / "prometheus-rules.yaml").read_text())
    return {group["name"]: group["rules"] for group in loaded["groups"]}


def test_alerts_cover_the_four_situations() -> None:
    alerts = {rule["alert"] for rules in rule_groups().values() for rule in rules}
    assert {
        "RollforwardDriftDetected",
        "RollforwardRolloutFailed",
        "RollforwardMonitoringUnavailable",
        "RollforwardRetrainFailing",
    } <= alerts


def test_alerts_read_only_existing_metrics() -> None:
    for group, rules in rule_groups().items():
        allowed = existing_metrics() | (
            KUBE_STATE_METRICS if group.endswith("-kube-state-metrics") else set()
        )
        for rule in rules:
            used = metric_names(rule["expr"])
            assert used, rule["alert"]
            assert used <= allowed, f"{rule['alert']} reads {used - allowed}"
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
