"""The scrape setups the operator's queries rely on agree: the chart's PodMonitor, the plain
job its README documents, and the devenv's Prometheus. (The PodMonitor rendered by helm is
checked against the devenv in tests/integration/test_chart_monitor_prometheus.py.)"""

from __future__ import annotations

import re
from typing import Any

import yaml

from devenv.cluster import REPO_ROOT
from devenv.prometheus import default_pod_job
from devenv.scrape_config import (
    POD_RELABELINGS,
    kubernetes_sd_labels,
    pod_monitor_kubernetes_sd_config,
    pod_monitor_scrape_config,
    relabel_config,
)

CHART = REPO_ROOT / "charts" / "rollforward"
POD_MONITOR = {
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/component": "bento"}},
        "podMetricsEndpoints": [
            {
                "port": "http",
                "path": "/metrics",
                "honorLabels": True,
                "relabelings": [
                    {"sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "pod"},
                    {"sourceLabels": ["a"], "regex": "(.+)", "action": "replace",
                     "targetLabel": "b", "replacement": "$1"},
                ],
            }
        ],
    }
}  # fmt: skip


def documented_job() -> dict[str, Any]:
    readme = (CHART / "README.md").read_text()
    match = re.search(r"```yaml\n(\s*scrape_configs:.*?)```", readme, re.S)
    assert match, "the chart README documents no scrape_configs job"
    (job,) = yaml.safe_load(match.group(1))["scrape_configs"]
    assert isinstance(job, dict)
    return job


def test_the_documented_job_relabels_as_the_devenv_and_keeps_bentoml_labels() -> None:
    job = documented_job()
    assert job["relabel_configs"][-len(POD_RELABELINGS) :] == list(POD_RELABELINGS)
    assert job["honor_labels"] is True
    assert default_pod_job(["x.json"])["honor_labels"] is True


def test_the_documented_job_keeps_what_the_pod_monitor_selects() -> None:
    template = (CHART / "templates" / "podmonitor.yaml").read_text()
    selected = dict(re.findall(r"^\s+(app\.kubernetes\.io/[\w-]+): (\w+)$", template, re.M))
    assert selected == {
        "app.kubernetes.io/managed-by": "rollforward",
        "app.kubernetes.io/component": "bento",
    }
    keeps = {
        rule["source_labels"][0]: rule["regex"]
        for rule in documented_job()["relabel_configs"]
        if rule.get("action") == "keep"
    }
    for label, value in selected.items():
        name = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)
        assert keeps[name] == value
    assert keeps["__meta_kubernetes_pod_container_port_name"] == "http"


def test_relabelings_convert_to_prometheus_spelling() -> None:
    assert relabel_config({"sourceLabels": ["x"], "targetLabel": "y", "action": "replace"}) == {
        "source_labels": ["x"],
        "target_label": "y",
        "action": "replace",
    }


def test_a_pod_monitor_becomes_keep_rules_then_its_relabelings() -> None:
    job = pod_monitor_scrape_config(POD_MONITOR, "bentos", ["pods/*.json"])
    assert job["honor_labels"] is True
    assert job["metrics_path"] == "/metrics"
    assert job["relabel_configs"] == [
        {
            "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
            "regex": "bento",
            "action": "keep",
        },
        {
            "source_labels": ["__meta_kubernetes_pod_container_port_name"],
            "regex": "http",
            "action": "keep",
        },
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["a"], "regex": "(.+)", "action": "replace", "target_label": "b",
         "replacement": "$1"},
    ]  # fmt: skip


def test_kubernetes_sd_labels_spell_label_keys_as_prometheus_does() -> None:
    labels = kubernetes_sd_labels("ml", "p-1", {"rollforward.io/variant": "c"}, "bento", "http")
    assert labels == {
        "__meta_kubernetes_namespace": "ml",
        "__meta_kubernetes_pod_name": "p-1",
        "__meta_kubernetes_pod_container_name": "bento",
        "__meta_kubernetes_pod_container_port_name": "http",
        "__meta_kubernetes_pod_label_rollforward_io_variant": "c",
        "__meta_kubernetes_pod_labelpresent_rollforward_io_variant": "true",
    }


def test_a_pod_monitor_over_kubernetes_sd_has_the_same_rules_and_its_namespaces() -> None:
    tls = {"ca_file": "ca.pem"}
    monitor = {"spec": {**POD_MONITOR["spec"], "namespaceSelector": {"matchNames": ["demo"]}}}
    job = pod_monitor_kubernetes_sd_config(monitor, "bentos", "https://127.0.0.1:6443", tls)
    file_job = pod_monitor_scrape_config(POD_MONITOR, "bentos", ["pods.json"])
    assert job["relabel_configs"] == file_job["relabel_configs"]
    assert (job["honor_labels"], job["metrics_path"]) == (True, "/metrics")
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "api_server": "https://127.0.0.1:6443",
                                             "tls_config": tls,
                                             "namespaces": {"names": ["demo"]}}]  # fmt: skip
    assert "file_sd_configs" not in job
