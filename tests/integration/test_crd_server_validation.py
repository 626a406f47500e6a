"""The generated ModelDeployment CRD, as the real API server enforces and presents it.

The invalid cases are the same file the pydantic tests use, so the two layers cannot drift
apart: every case must be rejected here by the API server itself (schema or CEL), naming
the field, before any operator code runs.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import yaml

from devenv.cluster import REPO_ROOT, LocalCluster

CRD_FILE = REPO_ROOT / "crds" / "modeldeployments.rollforward.io.yaml"
EXAMPLE_FILE = REPO_ROOT / "examples" / "modeldeployment.yaml"
INVALID_CASES_FILE = REPO_ROOT / "tests" / "data" / "invalid_modeldeployments.yaml"


def load_invalid_cases() -> list[dict[str, Any]]:
    if not INVALID_CASES_FILE.exists():
        return []
    cases: list[dict[str, Any]] = yaml.safe_load(INVALID_CASES_FILE.read_text())
    return cases


def crd_version(crd: dict[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return stored


def collection_path(namespace: str) -> str:
    crd = yaml.safe_load(CRD_FILE.read_text())
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    return f"/apis/{group}/{crd_version(crd)['name']}/namespaces/{namespace}/{plural}"


def example_in(namespace: str) -> dict[str, Any]:
    example: dict[str, Any] = yaml.safe_load(EXAMPLE_FILE.read_text())
    example["metadata"]["namespace"] = namespace
    return example


def assert_kept(sent: Any, stored: Any, path: str = "") -> None:
    """Every value sent is stored unchanged: nothing was pruned or rewritten by the schema."""
    if isinstance(sent, dict):
        assert isinstance(stored, dict), path
        for key, value in sent.items():
            assert key in stored, f"{path}.{key} was dropped by the API server"
            assert_kept(value, stored[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(stored, list) and len(stored) == len(sent), path
        for i, (a, b) in enumerate(zip(sent, stored, strict=True)):
            assert_kept(a, b, f"{path}[{i}]")
    else:
        assert sent == stored, f"{path}: sent {sent!r}, stored {stored!r}"


def table(output: str) -> list[dict[str, str]]:
    """Rows of `kubectl get` output, keyed by header, split at the header's column starts."""
    header, *rows = output.rstrip("\n").splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    bounds = [*starts[1:], None]
    return [
        {
            name: row[start:end].strip()
            for name, start, end in zip(names, starts, bounds, strict=True)
        }
        for row in rows
    ]


@pytest.fixture(scope="module")
def crd(local_cluster: LocalCluster, installed_crds: list[str]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    assert loaded["metadata"]["name"] in installed_crds
    return loaded


def test_the_crd_is_established_and_served(
    local_cluster: LocalCluster, crd: dict[str, Any]
) -> None:
    stored = local_cluster.kubectl_json("get", "crd", crd["metadata"]["name"])
    conditions = {c["type"]: c["status"] for c in stored["status"]["conditions"]}

    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    resources = local_cluster.kubectl("api-resources", f"--api-group={crd['spec']['group']}")
    assert crd["spec"]["names"]["plural"] in resources.stdout


def test_the_readme_example_is_accepted_and_stored_as_written(
    local_cluster: LocalCluster, crd: dict[str, Any], cluster_namespace: str
) -> None:
    example = example_in(cluster_namespace)

    response = local_cluster.api(
        "POST", collection_path(cluster_namespace) + "?fieldValidation=Strict", example
    )

    assert response.status == 201, response.body
    assert_kept(example["spec"], response.body["spec"])


@pytest.mark.parametrize(
    "schedule", ["0 3 * * *", "@daily", "*/15 2-5 1,15 jan-mar mon-fri", "0 0 * * 7"]
)
def test_valid_cron_schedules_are_accepted(
    local_cluster: LocalCluster, crd: dict[str, Any], cluster_namespace: str, schedule: str
) -> None:
    example = example_in(cluster_namespace)
    example["metadata"]["name"] = f"schedule-{abs(hash(schedule)) % 10**8}"
    example["spec"]["retraining"].update(trigger="schedule", schedule=schedule)

    response = local_cluster.api(
        "POST", collection_path(cluster_namespace) + "?fieldValidation=Strict", example
    )

    assert response.status == 201, response.body


@pytest.mark.parametrize("case", load_invalid_cases(), ids=lambda case: str(case["name"]))
def test_the_api_server_rejects_each_invalid_case_naming_the_field(
    local_cluster: LocalCluster, crd: dict[str, Any], cluster_namespace: str, case: dict[str, Any]
) -> None:
    manifest = copy.deepcopy(case["manifest"])
    manifest["metadata"]["namespace"] = cluster_namespace

    # Strict field validation is what `kubectl apply` asks for by default.
    response = local_cluster.api(
        "POST", collection_path(cluster_namespace) + "?fieldValidation=Strict", manifest
    )

    assert response.status in (400, 422), f"accepted ({response.status}): {response.body}"
    assert response.body["kind"] == "Status"
    assert case["field"] in response.body["message"], response.body["message"]
    name = manifest["metadata"]["name"]
    assert local_cluster.api("GET", f"{collection_path(cluster_namespace)}/{name}").status == 404


def test_there_are_invalid_cases_to_check() -> None:
    # A missing or empty file would otherwise make the parametrized test vanish silently.
    assert len(load_invalid_cases()) > 0


def test_status_is_a_subresource(
    local_cluster: LocalCluster, crd: dict[str, Any], cluster_namespace: str
) -> None:
    ns, plural = cluster_namespace, crd["spec"]["names"]["plural"]
    example = example_in(ns)
    name = example["metadata"]["name"]
    local_cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(example))
    before = local_cluster.kubectl_json("get", plural, name, "-n", ns)

    # A write to the main resource cannot set status...
    local_cluster.kubectl(
        "patch", plural, name, "-n", ns, "--type=merge", "-p", '{"status": {"phase": "Drifted"}}'
    )
    assert (
        local_cluster.kubectl_json("get", plural, name, "-n", ns).get("status", {}).get("phase")
        != "Drifted"
    )

    # ...only a write to /status can, and it does not bump the spec's generation.
    local_cluster.kubectl(
        "patch", plural, name, "-n", ns, "--subresource=status", "--type=merge",
        "-p", '{"status": {"phase": "Drifted", "observedGeneration": 1}}',
    )  # fmt: skip
    after = local_cluster.kubectl_json("get", plural, name, "-n", ns)
    assert after["status"]["phase"] == "Drifted"
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]


def test_kubectl_get_shows_the_printer_columns(
    local_cluster: LocalCluster, crd: dict[str, Any], cluster_namespace: str
) -> None:
    ns, plural = cluster_namespace, crd["spec"]["names"]["plural"]
    example = example_in(ns)
    name = example["metadata"]["name"]
    local_cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(example))
    status = {
        "champion": "upsell:v1",
        "challenger": "upsell:v1-gbm",
        "split": "90/10",
        "driftScore": "0.042",
        "phase": "Stable",
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "VariantsReady",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
    }  # fmt: skip
    local_cluster.kubectl(
        "patch", plural, name, "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip

    rows = table(local_cluster.kubectl("get", plural, "-n", ns, "-o", "wide").stdout)

    columns = crd_version(crd)["additionalPrinterColumns"]
    assert [c["name"].upper() for c in columns] == list(rows[0])[1:]
    (row,) = rows
    assert row["NAME"] == name
    shown = {c["jsonPath"]: row[c["name"].upper()] for c in columns}
    for field, value in status.items():
        if isinstance(value, str) and f".status.{field}" in shown:
            assert shown[f".status.{field}"] == value
    assert shown.get('.status.conditions[?(@.type=="Ready")].status', "True") == "True"
    # Short names work too, so people can type `kubectl get md`.
    for short in crd["spec"]["names"].get("shortNames", []):
        assert name in local_cluster.kubectl("get", short, "-n", ns, "-o", "name").stdout
