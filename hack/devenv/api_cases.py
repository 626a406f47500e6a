"""The README example and the shared invalid ModelDeployments, for every test layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PATH = REPO / "examples" / "modeldeployment.yaml"
INVALID_CASES_PATH = REPO / "tests" / "data" / "invalid_modeldeployments.yaml"


@dataclass(frozen=True)
class InvalidCase:
    name: str
    field: str
    manifest: dict[str, Any]


def example_manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE_PATH.read_text())
    return loaded


def invalid_cases() -> list[InvalidCase]:
    return [InvalidCase(**raw) for raw in yaml.safe_load(INVALID_CASES_PATH.read_text())]
