"""The chart's values: every key documented, values.schema.json and README.md generated from
values.yaml and up to date, and the schema naming exactly the keys of values.yaml.

(That values.yaml validates against the schema is checked by Helm itself, in
tests/integration/test_helm_chart.py: `helm lint --strict` validates values against it.)
"""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest
import yaml

from devenv.cluster import REPO_ROOT

CHART = REPO_ROOT / "charts" / "rollforward"


def load_chart_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_docs", CHART / "hack" / "chart_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up while being defined.
    sys.modules.setdefault("chart_docs", module)
    spec.loader.exec_module(module)
    return module


chart_docs = load_chart_docs()


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def test_schema_and_readme_are_generated_from_the_current_values() -> None:
    assert chart_docs.main(["--check"]) == 0, "run `make chart-docs`"


def key_paths(node: dict[str, Any], schema_node: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted keys of a values mapping, down to where the schema stops listing properties."""
    paths = set()
    for key, value in node.items():
        path = f"{prefix}{key}"
        paths.add(path)
        child = schema_node.get("properties", {}).get(key, {})
        if isinstance(value, dict) and "properties" in child:
            paths |= key_paths(value, child, f"{path}.")
    return paths


def schema_paths(schema_node: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, child in schema_node.get("properties", {}).items():
        paths.add(f"{prefix}{key}")
        paths |= schema_paths(child, f"{prefix}{key}.")
    return paths


def test_every_key_of_values_is_in_the_schema_and_back() -> None:
    assert key_paths(values(), schema()) == schema_paths(schema())


def test_schema_rejects_unknown_keys_and_describes_every_key() -> None:
    def walk(node: dict[str, Any], path: str) -> None:
        for key, child in node.get("properties", {}).items():
            if "properties" not in child:
                assert child.get("description"), f"{path}{key} has no description"
            else:
                assert child["additionalProperties"] is False, f"{path}{key} takes any key"
                walk(child, f"{path}{key}.")

    assert schema()["additionalProperties"] is False
    walk(schema(), "")


def test_schema_types_match_the_defaults() -> None:
    def walk(node: dict[str, Any], value_node: dict[str, Any]) -> None:
        for key, child in node["properties"].items():
            value = value_node[key]
            allowed = child["type"] if isinstance(child["type"], list) else [child["type"]]
            python = {
                "object": dict,
                "array": list,
                "string": str,
                "boolean": bool,
                "integer": int,
                "number": (int, float),
            }
            assert any(isinstance(value, python[t]) for t in allowed), key  # type: ignore[arg-type]
            if "properties" in child:
                walk(child, value)

    walk(schema(), values())


def test_readme_lists_every_documented_leaf() -> None:
    readme = (CHART / "README.md").read_text()
    for doc in chart_docs.parse_values_docs((CHART / "values.yaml").read_text()):
        if doc.description:
            assert f"| `{doc.dotted}` |" in readme


def test_an_undocumented_key_is_refused() -> None:
    text = "image:\n  # -- Repository.\n  repository: x\n  tag: latest\n"
    with pytest.raises(chart_docs.ValuesDocError, match=r"`image\.tag`"):
        chart_docs.parse_values_docs(text)


def test_free_form_values_are_not_descended_into() -> None:
    text = (
        '# @schema {"x-freeform": true}\n# -- Resources.\nresources:\n  requests:\n'
        "    cpu: 1\n# -- Replicas.\nreplicas: 1\n"
    )
    docs = chart_docs.parse_values_docs(text)
    assert [d.dotted for d in docs] == ["resources", "replicas"]
    rendered = chart_docs.render_schema(docs, yaml.safe_load(text))
    assert rendered["properties"]["resources"] == {"type": "object", "description": "Resources."}
