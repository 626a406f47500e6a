"""Generate the chart's values.schema.json and README.md from the comments in values.yaml.

One source for every value's documentation: a `# -- description` comment above each key
(helm-docs' convention), optionally a `# @schema {json}` line with extra JSON-schema keywords.
`{"x-freeform": true}` marks a value that takes any Kubernetes object (resources, affinity...):
its children are not listed, and the schema accepts any properties.

    python charts/rollforward/hack/chart_docs.py          # rewrite both files
    python charts/rollforward/hack/chart_docs.py --check  # exit 1 when either is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CHART_DIR = Path(__file__).resolve().parent.parent
VALUES = CHART_DIR / "values.yaml"
SCHEMA = CHART_DIR / "values.schema.json"
README = CHART_DIR / "README.md"
README_TEMPLATE = CHART_DIR / "hack" / "README.md.tmpl"
TABLE_MARKER = "{{ values_table }}"

_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s|$)")
_DOC_START = "# -- "
_SCHEMA_START = "# @schema "


class ValuesDocError(ValueError):
    """values.yaml breaks the documentation convention (e.g. a key without `# --`)."""


@dataclass
class ValueDoc:
    """One documented key of values.yaml."""

    path: tuple[str, ...]
    description: str
    schema_hint: dict[str, Any] = field(default_factory=dict)

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def freeform(self) -> bool:
        """A map whose keys are the user's (labels, resources...), not the chart's."""
        return (
            bool(self.schema_hint.get("x-freeform")) or "additionalProperties" in self.schema_hint
        )


def parse_values_docs(text: str) -> list[ValueDoc]:
    """Every key of values.yaml with its comment, in file order.

    Keys that hold a mapping of documented keys (sections) need no description of their own;
    every other key must have one. Children of free-form values are skipped.
    """
    docs: list[ValueDoc] = []
    stack: list[tuple[int, str]] = []
    description: list[str] = []
    hint: dict[str, Any] = {}
    freeform_indent: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(_SCHEMA_START):
            hint = json.loads(stripped.removeprefix(_SCHEMA_START))
            continue
        if stripped.startswith(_DOC_START):
            description = [stripped.removeprefix(_DOC_START)]
            continue
        if stripped.startswith("#") and description:
            description.append(stripped.lstrip("#").strip())
            continue
        match = _KEY_LINE.match(line)
        if not match:
            if not stripped:
                description, hint = [], {}
            continue
        indent = len(match["indent"])
        if freeform_indent is not None:
            if indent > freeform_indent:
                continue
            freeform_indent = None
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        doc = ValueDoc(tuple(key for _, key in stack), " ".join(description), hint)
        if doc.freeform:
            freeform_indent = indent
        if not doc.description and not _opens_section(line):
            raise ValuesDocError(f"values.yaml:{number}: `{doc.dotted}` has no `# --` comment")
        docs.append(doc)
        description, hint = [], {}
    return docs


def _opens_section(line: str) -> bool:
    return line.rstrip().endswith(":")


def _lookup(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = values
    for key in path:
        node = node[key]
    return node


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise ValuesDocError(f"no JSON type for {value!r}")


def render_schema(docs: list[ValueDoc], values: dict[str, Any]) -> dict[str, Any]:
    """A draft-07 schema with exactly the documented keys; unknown keys are rejected."""
    root: dict[str, Any] = _object_schema()
    by_path = {doc.path: doc for doc in docs}
    for doc in docs:
        parent = root
        for key in doc.path[:-1]:
            parent = parent["properties"][key]
        default = _lookup(values, doc.path)
        node: dict[str, Any] = {"type": _json_type(default)}
        if node["type"] == "object" and not doc.freeform:
            node = _object_schema()
            if not any(other[:-1] == doc.path for other in by_path):
                node["additionalProperties"] = True
        if doc.description:
            node["description"] = doc.description
        node.update({k: v for k, v in doc.schema_hint.items() if k != "x-freeform"})
        parent["properties"][doc.path[-1]] = node
    return {"$schema": "http://json-schema.org/draft-07/schema#", **root}


def _object_schema() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": {}}


def render_values_table(docs: list[ValueDoc], values: dict[str, Any]) -> str:
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for doc in docs:
        default = _lookup(values, doc.path)
        if (
            isinstance(default, dict)
            and not doc.freeform
            and any(other.path[:-1] == doc.path for other in docs)
        ):
            continue
        shown = json.dumps(default, separators=(", ", ": "))
        kind = doc.schema_hint.get("type", _json_type(default))
        kind_text = " or ".join(kind) if isinstance(kind, list) else kind
        description = doc.description.replace("|", "\\|")
        rows.append(f"| `{doc.dotted}` | {kind_text} | `{shown}` | {description} |")
    return "\n".join(rows)


def render(values_text: str, readme_template: str) -> tuple[str, str]:
    """(values.schema.json, README.md) for the given values.yaml and README template."""
    docs = parse_values_docs(values_text)
    values = yaml.safe_load(values_text)
    schema = json.dumps(render_schema(docs, values), indent=2) + "\n"
    readme = readme_template.replace(TABLE_MARKER, render_values_table(docs, values))
    return schema, readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args(argv)
    schema, readme = render(VALUES.read_text(), README_TEMPLATE.read_text())
    stale = [p for p, text in ((SCHEMA, schema), (README, readme)) if _read(p) != text]
    if args.check:
        for path in stale:
            print(f"{path} is stale: run `make chart-docs`", file=sys.stderr)
        return 1 if stale else 0
    SCHEMA.write_text(schema)
    README.write_text(readme)
    return 0


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main())
