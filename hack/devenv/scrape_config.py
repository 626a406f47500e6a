"""Scrape bento pods the way a cluster's Prometheus does: kubernetes_sd target labels relabelled
as the chart's PodMonitor (charts/rollforward/templates/podmonitor.yaml) says.

The local Prometheus has no Kubernetes service discovery, so a pod's target carries the labels
kubernetes_sd would give it (`__meta_kubernetes_namespace`, `__meta_kubernetes_pod_name`,
`__meta_kubernetes_pod_label_<name>`...) in a file_sd group, and the same relabelings as a
cluster's scrape job turn them into `namespace` and `pod`. Nothing else of the pod reaches the
series: the operator's queries rely only on what the bento exports and on those two labels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# The chart's PodMonitor relabelings, in Prometheus' own spelling (a test checks they agree).
POD_RELABELINGS: tuple[dict[str, Any], ...] = (
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
)
META = "__meta_kubernetes_"
# Prometheus label names allow only these characters; kubernetes_sd replaces the others by "_".
_LABEL_NAME_INVALID = re.compile(r"[^a-zA-Z0-9_]")
# Prometheus Operator's RelabelConfig fields whose Prometheus names are not plain snake_case.
_FIELD_NAMES = {"sourceLabels": "source_labels", "targetLabel": "target_label"}


def label_name(name: str) -> str:
    """A Kubernetes label key as kubernetes_sd spells it in a meta label name."""
    return _LABEL_NAME_INVALID.sub("_", name)


def kubernetes_sd_labels(
    namespace: str,
    pod: str,
    labels: Mapping[str, str] | None = None,
    container: str = "",
    port_name: str = "",
) -> dict[str, str]:
    """The target labels kubernetes_sd's `pod` role gives one container port of a pod."""
    meta = {f"{META}namespace": namespace, f"{META}pod_name": pod}
    if container:
        meta[f"{META}pod_container_name"] = container
    if port_name:
        meta[f"{META}pod_container_port_name"] = port_name
    for key, value in (labels or {}).items():
        meta[f"{META}pod_label_{label_name(key)}"] = str(value)
        meta[f"{META}pod_labelpresent_{label_name(key)}"] = "true"
    return meta


def relabel_config(relabeling: Mapping[str, Any]) -> dict[str, Any]:
    """A Prometheus Operator RelabelConfig (camelCase) as a Prometheus relabel_config."""
    converted: dict[str, Any] = {}
    for key, value in relabeling.items():
        name = _FIELD_NAMES.get(key) or re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
        converted[name] = value
    return converted


def _keep(meta_label: str, value: str) -> dict[str, Any]:
    return {"source_labels": [f"{META}{meta_label}"], "regex": re.escape(value), "action": "keep"}


def _selector_relabelings(match_labels: Mapping[str, str], port: str) -> list[dict[str, Any]]:
    """What Prometheus Operator makes of a PodMonitor's `selector.matchLabels` and port."""
    keep = [_keep(f"pod_label_{label_name(k)}", str(v)) for k, v in sorted(match_labels.items())]
    return [*keep, _keep("pod_container_port_name", port)] if port else keep


def pod_monitor_scrape_config(
    pod_monitor: Mapping[str, Any], job_name: str, files: Sequence[str]
) -> dict[str, Any]:
    """A Prometheus scrape job equivalent to a PodMonitor's first endpoint, over file_sd
    targets that carry kubernetes_sd labels: its selector becomes `keep` rules, its path,
    honorLabels and relabelings carry over as they are."""
    return {
        **_pod_monitor_job(pod_monitor, job_name),
        "file_sd_configs": [{"files": list(files), "refresh_interval": "1s"}],
    }


def pod_monitor_kubernetes_sd_config(
    pod_monitor: Mapping[str, Any], job_name: str, api_server: str, tls: Mapping[str, str]
) -> dict[str, Any]:
    """The same job, discovering pods through the API server at `api_server` (as Prometheus
    Operator generates it from the PodMonitor), in the PodMonitor's namespaces."""
    discovery: dict[str, Any] = {"role": "pod", "api_server": api_server, "tls_config": dict(tls)}
    names = (pod_monitor["spec"].get("namespaceSelector") or {}).get("matchNames")
    if names:
        discovery["namespaces"] = {"names": list(names)}
    return {**_pod_monitor_job(pod_monitor, job_name), "kubernetes_sd_configs": [discovery]}


def _pod_monitor_job(pod_monitor: Mapping[str, Any], job_name: str) -> dict[str, Any]:
    spec = pod_monitor["spec"]
    (endpoint,) = spec["podMetricsEndpoints"]
    return {
        "job_name": job_name,
        "metrics_path": endpoint.get("path", "/metrics"),
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "relabel_configs": [
            *_selector_relabelings(
                spec["selector"].get("matchLabels") or {}, str(endpoint.get("port", ""))
            ),
            *(relabel_config(r) for r in endpoint.get("relabelings") or []),
        ],
    }
