"""Snapshot tests of `kubectl rollforward` text: get, list, history and explain for a
ModelDeployment in each phase (tests/data/cli_snapshots/phases.yaml).

A snapshot test fails when the output changes. After a deliberate change, regenerate with

    ROLLFORWARD_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/unit/test_cli_render.py

and review the diff of tests/data/cli_snapshots/ before committing it.
"""

from __future__ import annotations

import copy
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollforward.api import ModelDeployment, parse_model_deployment
from rollforward.kubectl.render import (
    EventRecord,
    bar,
    event_record,
    histogram,
    render_explain,
    render_get,
    render_history,
    render_list,
    table,
)
from rollforward.kubectl.style import Style, visible_width

SNAPSHOTS = Path(__file__).resolve().parents[1] / "data" / "cli_snapshots"
PHASES: dict[str, Any] = yaml.safe_load((SNAPSHOTS / "phases.yaml").read_text())
NOW = datetime.fromisoformat(PHASES["now"].replace("Z", "+00:00"))
PLAIN = Style(color=False)


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("ROLLFORWARD_UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert path.exists(), f"no snapshot {path}; run with ROLLFORWARD_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(), f"{name} changed; see the module docstring to regenerate"


def phase_body(phase: str) -> dict[str, Any]:
    case = PHASES["phases"][phase]
    metadata = {**PHASES["metadata"], "annotations": case.get("annotations", {})}
    return copy.deepcopy(
        {
            "apiVersion": "rollforward.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": metadata,
            "spec": PHASES["spec"],
            "status": case["status"],
        }
    )


def phase_model(phase: str) -> ModelDeployment:
    return parse_model_deployment(phase_body(phase))


def phase_events(phase: str) -> list[EventRecord]:
    raw = [{**e, "lastTimestamp": e["at"]} for e in PHASES["phases"][phase]["events"]]
    return [record for record in map(event_record, raw) if record is not None]


ALL_PHASES = list(PHASES["phases"])


def test_every_phase_has_a_fixture() -> None:
    from rollforward.api import Phase

    assert sorted(ALL_PHASES) == sorted(p.value for p in Phase)


@pytest.mark.parametrize("phase", ALL_PHASES)
def test_get(phase: str) -> None:
    assert_snapshot(f"get-{phase}.txt", render_get(phase_model(phase), NOW, PLAIN))


@pytest.mark.parametrize("phase", ALL_PHASES)
def test_history(phase: str) -> None:
    assert_snapshot(f"history-{phase}.txt", render_history(phase_model(phase), PLAIN))


@pytest.mark.parametrize("phase", ALL_PHASES)
def test_explain(phase: str) -> None:
    text = render_explain(phase_model(phase), phase_events(phase), NOW, PLAIN)
    assert_snapshot(f"explain-{phase}.txt", text)


def test_list_all_namespaces() -> None:
    models = [phase_model(phase) for phase in ALL_PHASES]
    renamed = [
        m.model_copy(update={"metadata": m.metadata.model_copy(update={"name": p.lower()})})
        for m, p in zip(models, ALL_PHASES, strict=True)
    ]
    assert_snapshot("list-A.txt", render_list(renamed, NOW, PLAIN, all_namespaces=True))


def test_list_one_namespace_and_empty() -> None:
    assert_snapshot("list.txt", render_list([phase_model("Canary")], NOW, PLAIN, False))
    assert render_list([], NOW, PLAIN, False) == "No ModelDeployments found.\n"


def test_colour_snapshot_of_a_canary() -> None:
    """Colour is part of the interface too: a drifted, canarying model in ANSI."""
    assert_snapshot("get-Canary.color.txt", render_get(phase_model("Canary"), NOW, Style(True)))


def test_plain_text_has_no_escape_codes() -> None:
    for phase in ALL_PHASES:
        assert "\x1b" not in render_get(phase_model(phase), NOW, PLAIN)


def test_colour_does_not_change_the_layout() -> None:
    model = phase_model("Canary")
    plain = render_get(model, NOW, PLAIN).splitlines()
    colour = render_get(model, NOW, Style(True)).splitlines()
    assert [len(line) for line in plain] == [visible_width(line) for line in colour]


def test_histogram_bars_are_proportional_and_mark_the_largest_shift() -> None:
    report = phase_model("Drifted").status.drift
    assert report is not None
    lines = histogram(report, PLAIN)
    no, yes = lines[1], lines[2]
    assert no.count("█") == round(0.8 * 20) + round(0.62 * 20)
    assert yes.count("█") == round(0.2 * 20) + round(0.38 * 20)
    assert "-18.0 pt" in no and "+18.0 pt" in yes
    # (0.18^2)/0.2 > (0.18^2)/0.8: the rare label carries the drift.
    assert "largest shift" in yes and "largest shift" not in no


def test_bar_bounds() -> None:
    assert bar(0.0) == "░" * 20
    assert bar(1.0) == "█" * 20
    assert bar(1.7) == "█" * 20


def test_table_aligns_on_visible_width() -> None:
    style = Style(True)
    lines = table(
        ["A", "B"], [["xx", "1"], ["y", "22"]], lambda r, c, cell, pad: style.bad(pad), ""
    )
    assert [visible_width(line) for line in lines] == [5, 5, 6]


def test_get_shows_the_psi_threshold_and_noise_floor() -> None:
    body = phase_body("Drifted")
    body["status"]["drift"] = {
        **body["status"]["drift"],
        "statistic": "psi",
        "score": 0.31,
        "threshold": 0.1,
        "pValue": None,
        "noiseFloor": 0.024,
        "baselineSamples": 5000,
        "baseline": "reference",
    }
    text = render_get(parse_model_deployment(body), NOW, PLAIN)
    assert "psi = 0.31 > threshold 0.1   (noise floor 0.024)" in text
    assert "current n = 1200   baseline m = 5000" in text


def test_a_status_with_unknown_newer_fields_still_renders() -> None:
    body = phase_body("Stable")
    body["status"]["somethingNew"] = {"x": 1}
    assert "Stable" in render_get(parse_model_deployment(body), NOW, PLAIN)


def test_long_operator_messages_are_clipped_to_one_line_unless_wide() -> None:
    body = phase_body("Degraded")
    long_message = "query failed:\n" + "x" * 300
    body["status"]["conditions"][0]["message"] = long_message
    model = parse_model_deployment(body)
    clipped = render_get(model, NOW, PLAIN)
    assert "query failed: " + "x" * 85 + "…" in clipped
    assert all(len(line) < 160 for line in clipped.splitlines())
    assert "x" * 300 in render_get(model, NOW, Style(message_width=None))


def test_get_shows_each_variants_estimated_quality_and_its_assumption() -> None:
    body = phase_body("Stable")
    body["status"]["estimatedQuality"] = {
        "window": "1h",
        "estimatedAt": "2026-11-27T11:57:00Z",
        "variants": [
            {
                "variant": "champion",
                "version": "upsell:v1",
                "samples": 1200,
                "accuracy": {"value": 0.8213, "lower": 0.8011, "upper": 0.8415},
                "precision": {"value": 0.74, "lower": 0.7, "upper": 0.78},
                "recall": {"value": 0.62, "lower": 0.58, "upper": 0.66},
            },
            {"variant": "challenger", "version": "upsell:v0", "reason": "no calibration"},
        ],
    }
    text = render_get(parse_model_deployment(body), NOW, PLAIN)
    assert "not concept drift" in text
    assert "82.1% (80.1-84.2)" in text
    assert "no calibration" in text
