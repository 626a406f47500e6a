"""The demo's outcomes, pure parts: the experiment it sets up (and that the choice of minEffect
is one the demo's traffic can settle), quality and the experiment read off status, the
verdicts of a story, and the report's quality and experiment plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from devenv.api_cases import example_manifest
from devenv.demo import DEMO_EXPERIMENT, FEEDBACK_HORIZON, demo_manifest, feedback_plan
from devenv.demo_report import (
    REPORT_PLOTS,
    StoryReport,
    experiment_series,
    labelled_series,
    quality_series,
    write_report,
)
from devenv.demo_timeline import key_figures, snapshot_of, timeline_line, verdicts
from devenv.feedback_sender import FeedbackStats
from rollforward.api import duration_seconds
from rollforward.api.resource import ModelDeployment
from rollforward.experiment import half_width


def test_the_demo_runs_an_experiment_of_the_sticky_challenger_with_quality() -> None:
    manifest, notes = demo_manifest(example_manifest(), namespace="demo")
    deployment = ModelDeployment.model_validate(manifest)
    assert deployment.spec.quality is not None and deployment.spec.experiment is not None
    assert deployment.spec.quality.positive_label == "upgrade"
    challenger = next(v for v in deployment.spec.variants if v.role == "challenger")
    assert (challenger.bento, challenger.weight) == ("upsell:v1-gbm", 10)
    assert deployment.spec.traffic.sticky_header == "x-user-id"
    assert deployment.spec.experiment.min_effect == DEMO_EXPERIMENT["minEffect"]
    # Counting starts only once a fresh version's labels include those at the horizon.
    assert duration_seconds(deployment.spec.experiment.label_horizon) >= FEEDBACK_HORIZON
    assert any("experiment" in note and f"{FEEDBACK_HORIZON:g} s" in note for note in notes)
    assert "experiment" not in example_manifest()["spec"]
    plan = feedback_plan(manifest)
    assert plan is not None and plan.horizon_seconds == FEEDBACK_HORIZON
    assert plan.pin == ("x-rollforward-pin", "champion")
    assert feedback_plan(example_manifest()) is None


def test_the_demos_min_effect_is_settled_by_two_minutes_of_its_labels() -> None:
    """At 25 req/s with 10% on the challenger and outcome rates near 0.3, ~2 minutes of labels
    (300 on the challenger) give an always-valid interval narrow enough that an effect of 0
    lands inside +-minEffect with room (NoDifference needs |effect| + half-width < minEffect)."""
    min_effect, alpha = float(DEMO_EXPERIMENT["minEffect"]), float(DEMO_EXPERIMENT["alpha"])
    challenger, champion = 300, 2700
    variance = 0.3 * 0.7 * (1 / challenger + 1 / champion)
    width = half_width(variance, min_effect, alpha)
    # Room for an observed effect of 2.5 standard errors either way.
    assert width + 2.5 * math.sqrt(variance) < min_effect


def quality_status(at: float, verdict: str = "Running", concluded: bool = False) -> dict[str, Any]:
    return {
        "phase": "Stable",
        "champion": "upsell:v1",
        "quality": {
            "variants": [
                {"variant": "champion", "version": "v1", "labelled": 900, "accuracy": 0.8,
                 "outcomeRate": 0.31},
                {"variant": "challenger", "version": "v1-gbm", "labelled": 100,
                 "accuracy": None, "outcomeRate": 0.29},
            ]
        },
        "estimatedQuality": {
            "variants": [
                {"variant": "champion", "version": "v1", "samples": 400,
                 "accuracy": {"value": 0.78, "lower": 0.74, "upper": 0.82}},
                {"variant": "challenger", "version": "v1-gbm", "reason": "no calibration"},
            ]
        },
        "experiment": {
            "verdict": verdict, "champion": "champion", "challenger": "challenger",
            "championVersion": "v1", "challengerVersion": "v1-gbm", "effect": -0.02,
            "lower": -0.09, "upper": 0.05, "championSamples": 900, "challengerSamples": 100,
            **({"concludedAt": "2026-12-01T03:00:00Z"} if concluded else {}),
        },
    }  # fmt: skip


def test_without_outcomes_the_story_has_no_quality_experiment_or_labels() -> None:
    manifest, _ = demo_manifest(example_manifest(), namespace="demo", outcomes=False)
    assert "quality" not in manifest["spec"] and "experiment" not in manifest["spec"]
    assert feedback_plan(manifest) is None


def test_a_running_look_with_a_stale_concluded_at_is_not_a_verdict() -> None:
    stale = quality_status(1.0, "Running", concluded=True)
    snapshot = snapshot_of(stale, 1.0)
    assert snapshot.experiment is not None and not snapshot.experiment.concluded
    assert verdicts([snapshot]) == []


def test_quality_and_the_experiment_are_read_off_status() -> None:
    snapshot = snapshot_of(quality_status(1.0), 1.0)
    champion, challenger = snapshot.realized
    assert (champion.variant, champion.version, champion.accuracy) == ("champion", "v1", 0.8)
    assert (challenger.accuracy, challenger.outcome_rate) == (None, 0.29)
    [estimate] = snapshot.estimated  # the challenger has no estimate, only a reason
    assert (estimate.accuracy, estimate.lower, estimate.upper) == (0.78, 0.74, 0.82)
    assert snapshot.experiment is not None and not snapshot.experiment.concluded
    assert "Running v1-gbm vs v1, effect -2.0 pt [-9.0, +5.0] (n 100/900)" in timeline_line(
        snapshot
    )
    assert snapshot_of({"phase": "Stable"}, 0.0).experiment is None


def test_new_quality_figures_print_no_line_but_a_verdict_does() -> None:
    running = snapshot_of(quality_status(1.0), 1.0)
    moved = snapshot_of({**quality_status(2.0), "quality": {"variants": []}}, 2.0)
    concluded = snapshot_of(quality_status(3.0, "NoDifference", concluded=True), 3.0)
    assert moved.change_key() == running.change_key()
    assert concluded.change_key() != running.change_key()


def test_each_pair_of_versions_concludes_once_in_order() -> None:
    restarted = quality_status(0.0, "NoDifference", concluded=True)
    restarted["experiment"] = {**restarted["experiment"], "championVersion": "v2"}
    snapshots = [
        snapshot_of(quality_status(0.0), 1.0),
        snapshot_of(quality_status(0.0, "NoDifference", concluded=True), 2.0),
        snapshot_of(quality_status(0.0, "NoDifference", concluded=True), 3.0),
        snapshot_of(restarted, 9.0),
    ]
    found = verdicts(snapshots)
    assert [(at, e.verdict, e.champion_version) for at, e in found] == [
        (2.0, "NoDifference", "v1"),
        (9.0, "NoDifference", "v2"),
    ]
    assert verdicts(snapshots[:1]) == []


def test_series_for_the_plots_keep_gaps_as_nan() -> None:
    snapshots = [snapshot_of(quality_status(at), at) for at in (1.0, 2.0)]
    realized = quality_series(snapshots, estimated=False)
    assert set(realized) == {"champion v1", "challenger v1-gbm"}
    assert realized["champion v1"].values == [80.0, 80.0]
    assert all(math.isnan(v) for v in realized["challenger v1-gbm"].values)
    estimated = quality_series(snapshots, estimated=True)
    assert estimated["champion v1"].lower == [74.0, 74.0]
    assert labelled_series(snapshots)["challenger v1-gbm"] == ([1.0, 2.0], [100, 100])
    before = snapshot_of(
        {**quality_status(0.0), "experiment": {"verdict": "Running", "championSamples": 3}}, 0.5
    )
    effect = experiment_series([before, *snapshots])
    assert effect.times == [0.5, 1.0, 2.0]
    assert math.isnan(effect.values[0]) and effect.upper[1:] == [5.0, 5.0]


def test_the_report_plots_quality_and_the_experiment_and_prints_the_verdict(
    tmp_path: Path,
) -> None:
    snapshots = [
        snapshot_of(quality_status(1.0), 1.0),
        snapshot_of(quality_status(2.0, "NoDifference", concluded=True), 2.0),
    ]
    feedback = FeedbackStats(queued=10, sent=8, accepted=8, unsent=2)
    report = StoryReport("Demo", "Promoted", key_figures(snapshots, None), snapshots, [], 0.0,
                         3.0, feedback=feedback, min_effect=0.15)  # fmt: skip
    text = write_report(report, tmp_path).read_text()
    assert "Verdict at 2.0 s: **NoDifference**" in text
    assert "8 sent, 8 accepted" in text and "2 not yet due" in text
    assert "Realized champion v1: accuracy 80.0%" in text
    assert "Estimated champion v1: accuracy 78.0% [74.0%, 82.0%]" in text
    for plot in REPORT_PLOTS:
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")
        assert f"![{plot}]({plot})" in text
