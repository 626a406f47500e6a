"""The committed CRD is exactly what the API types generate, and it is structural."""

from __future__ import annotations

from typing import Any

from devenv.api_cases import REPO
from rollforward.api.crd import CRD_FILE, custom_resource_definition, render_crd_yaml
from rollforward.api.spec import ModelDeploymentSpec
from rollforward.cli import main


def test_committed_crd_matches_generated() -> None:
    committed = (REPO / CRD_FILE).read_text()
    assert committed == render_crd_yaml(), "crds/ is stale: run `make crds` and commit"


def test_cli_prints_the_same_crd(capsys: Any) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == (REPO / CRD_FILE).read_text()


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(_walk(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_walk(value, f"{path}[{index}]"))
    return found


def test_schema_is_structural() -> None:
    schema = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node, path
        assert node.get("additionalProperties") is not False, path
        assert node.get("type") != "null", path
        if "properties" in node and not path.endswith("/properties"):
            assert node.get("type") == "object", path


def test_crd_has_status_printer_columns_short_name_and_category() -> None:
    crd = custom_resource_definition()
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    for wanted in ("Champion", "Challenger", "Split", "Drift", "Phase", "Age"):
        assert wanted in columns
    assert "md" in crd["spec"]["names"]["shortNames"]
    assert "rollforward" in crd["spec"]["names"]["categories"]


def test_cel_rules_cover_cross_field_constraints() -> None:
    rules = [
        rule["rule"]
        for _, node in _walk(custom_resource_definition())
        for rule in node.get("x-kubernetes-validations", [])
    ]
    for rule_fragment in (
        "self.map(v, v.weight).sum() == 100",
        "exists_one(w, w.name == v.name)",
        "exists_one(v, v.role == 'champion')",
        "isSorted()",
        "self.kind != 'seasonal' || has(self.offset)",
        "self.trigger != 'schedule' || has(self.schedule)",
        "self.stickyHeader.lowerAscii() != self.pinHeader.lowerAscii()",
    ):
        assert any(rule_fragment in rule for rule in rules), rule_fragment


def test_nested_objects_default_so_live_objects_equal_git() -> None:
    spec = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]
    for name in ("traffic", "monitoring", "drift", "rollout"):
        assert spec["properties"][name]["default"] == {}, name
    assert "default" not in spec["properties"]["retraining"]


def test_objects_that_are_none_unless_set_get_no_default() -> None:
    """A `{}` default would switch them on in every live object: an unset experiment became
    an experiment without quality, and the API server rejected the README's example."""
    spec = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]
    off_unless_set = [
        field.alias or name
        for name, field in ModelDeploymentSpec.model_fields.items()
        if field.default is None and not field.is_required()
    ]
    assert {"retraining", "experiment"} <= set(off_unless_set)
    for name in off_unless_set:
        assert "default" not in spec["properties"][name], name
