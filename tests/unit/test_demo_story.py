"""The demo's pure parts: the compressed README example, the timeline, the key figures and the
traffic buckets of its report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from devenv.api_cases import example_manifest
from devenv.demo import COMPRESSED_STEPS, FAULTY_RETRAIN, demo_manifest
from devenv.demo_report import StoryReport, blast_radius, bucketed_shares, write_report
from devenv.demo_timeline import key_figures, snapshot_of, timeline_line
from devenv.traffic import TrafficRecord
from rollforward.api.resource import ModelDeployment

CHAMPION = "soom-upsell:abc"


def compressed(bad_candidate: bool = False) -> tuple[dict[str, Any], list[str]]:
    return demo_manifest(
        example_manifest(),
        namespace="demo",
        champion_tag=CHAMPION,
        prometheus_url="http://127.0.0.1:9090",
        bad_candidate=bad_candidate,
    )


def test_the_compressed_example_is_still_a_valid_model_deployment() -> None:
    manifest, notes = compressed()
    deployment = ModelDeployment.model_validate(manifest)
    assert deployment.metadata.namespace == "demo"
    [champion] = deployment.spec.variants
    assert (champion.bento, champion.weight, champion.replicas) == (CHAMPION, 100, 1)
    assert deployment.spec.monitoring.prometheus_url == "http://127.0.0.1:9090"
    assert len(deployment.spec.rollout.steps) == len(COMPRESSED_STEPS)
    # The example's own retraining command is kept: it is what the demo shows working.
    container = manifest["spec"]["retraining"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["python", "-m", "upsell.retrain"]
    assert any("challenger" in note and "dropped" in note for note in notes)


def test_the_example_itself_is_not_changed() -> None:
    example = example_manifest()
    compressed()
    assert example == example_manifest()
    assert len(example["spec"]["variants"]) == 2


def test_a_bad_candidate_story_retrains_with_the_faulty_entrypoint() -> None:
    manifest, notes = compressed(bad_candidate=True)
    ModelDeployment.model_validate(manifest)
    container = manifest["spec"]["retraining"]["template"]["spec"]["containers"][0]
    assert container["command"] == FAULTY_RETRAIN
    [pythonpath] = [e["value"] for e in container["env"] if e["name"] == "PYTHONPATH"]
    assert pythonpath.endswith("/hack")
    assert any("503" in note for note in notes)


def status(phase: str, champion: str = CHAMPION, **extra: Any) -> dict[str, Any]:
    return {"phase": phase, "champion": champion, "split": "champion=100", **extra}


def drifted(flag: bool) -> dict[str, Any]:
    return {"conditions": [{"type": "Drifted", "status": "True" if flag else "False"}]}


def test_key_figures_read_the_milestones_in_order() -> None:
    drift = {"outcome": "NoDrift", "version": "new", "score": 0.1, "threshold": 6.6}
    statuses = [
        (0.0, {}),  # before the operator wrote any status
        (1.0, status("Stable")),
        (10.0, status("Stable", **drifted(True))),
        (12.0, status("Retraining", retraining={"jobName": "j", "phase": "Running"})),
        (30.0, status("Degraded", rollout={"candidateVersion": "soom-upsell:new", "step": 0})),
        (50.0, status("Stable", champion="soom-upsell:new", **drifted(True))),
        (60.0, status("Stable", champion="soom-upsell:new", drift=drift, **drifted(False))),
    ]
    snapshots = [snapshot_of(s, at) for at, s in statuses]
    figures = key_figures(snapshots, drift_onset=5.0)
    assert (figures.detected, figures.job_started, figures.canary_started) == (10.0, 12.0, 30.0)
    assert (figures.promoted, figures.drift_cleared, figures.rolled_back) == (50.0, 60.0, None)
    assert figures.since_onset(figures.promoted) == 45.0
    assert (figures.champion_before, figures.candidate) == (CHAMPION, "soom-upsell:new")


def test_nothing_before_the_onset_counts_as_detection() -> None:
    snapshots = [snapshot_of(status("Stable", **drifted(True)), 1.0)]
    assert key_figures(snapshots, drift_onset=2.0).detected is None
    assert key_figures(snapshots, drift_onset=None).detected is None


def test_a_timeline_line_shows_drift_against_threshold_job_and_analysis() -> None:
    snapshot = snapshot_of(
        status(
            "Canary",
            drift={"outcome": "Drift", "statistic": "chiSquare", "score": 38.4,
                   "threshold": 6.63, "pValue": 1e-9, "currentSamples": 180,
                   "effect": {"estimate": 0.25, "lower": 0.21, "upper": 0.29,
                              "confidence": 0.99, "minimum": 0.03}},
            retraining={"jobName": "upsell-retrain-1", "phase": "Succeeded"},
            rollout={"candidateVersion": "soom-upsell:new", "step": 1,
                     "analysis": [{"name": "errorRate", "outcome": "Successful", "value": 0.0}]},
            **drifted(True),
        ),
        42.0,
        "concept-drift",
        steps=2,
    )  # fmt: skip
    line = timeline_line(snapshot)
    for part in ("42.0s", "Canary", "chiSquare 38.40 > 6.63", "DRIFTED", "upsell-retrain-1",
                 "TVD 25.0 pt [21.0-29.0] >= 3.0",
                 "canary step 2/2", "errorRate=Successful"):  # fmt: skip
        assert part in line
    assert replace(snapshot, at=50.0).change_key() == snapshot.change_key()


def record(elapsed: float, variant: str) -> TrafficRecord:
    return TrafficRecord(0, "", elapsed, "baseline", "u", 200, variant, "stay", "v")


def test_traffic_is_bucketed_into_shares_per_variant() -> None:
    records = [record(0.5, "champion"), record(1.0, "champion"), record(6.0, "champion"),
               record(7.0, "candidate"), record(16.0, "")]  # fmt: skip
    times, shares = bucketed_shares(records, "variant", offset=0.0)
    assert times == [0.0, 5.0]
    assert shares == {"candidate": [0.0, 0.5], "champion": [1.0, 0.5]}


def test_the_report_tells_the_story_in_markdown_and_three_plots(tmp_path: Path) -> None:
    drift = {"outcome": "Drift", "statistic": "chiSquare", "score": 40.0, "threshold": 6.63,
             "pValue": 1e-9, "checkedAt": "t1", "version": "abc",
             "effect": {"estimate": 0.25, "lower": 0.21, "upper": 0.29, "confidence": 0.99,
                        "minimum": 0.03}}  # fmt: skip
    snapshots = [
        snapshot_of(status("Stable"), 0.0, "baseline"),
        snapshot_of(status("Retraining", drift=drift, **drifted(True)), 12.0, "concept-drift"),
    ]
    figures = key_figures(snapshots, drift_onset=5.0)
    records = [record(1.0, "champion"), replace(record(7.0, "candidate"), status=502)]
    report = StoryReport("Demo", "Timeout", figures, snapshots, records, 0.0, 20.0,
                         notes=["compressed"], significance=0.01)  # fmt: skip
    path = write_report(report, tmp_path)
    text = path.read_text()
    assert "| drift detected (Drifted=True) | 7.0 s |" in text
    assert "'502 from candidate': 1" in text and "- compressed" in text
    assert "## Blast radius of the canary" in text
    assert "total variation distance 25.0 points" in text and "minEffect 3.0" in text
    for plot in ("drift.png", "split.png", "versions.png"):
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")


def test_the_blast_radius_counts_the_candidates_failures_until_the_last() -> None:
    failing = [replace(record(at, "candidate"), status=503) for at in (10.0, 11.5, 14.0)]
    records = [record(9.0, "candidate"), *failing, replace(record(12.0, "champion"), status=503)]
    radius = blast_radius(records, offset=2.0, ended=17.0)
    assert (radius.served, radius.failed) == (4, 3)
    assert radius.first_failure == 12.0 and radius.seconds_failing() == 4.0
    assert radius.seconds_to_end() == 5.0


def test_the_demo_looks_at_the_canary_every_two_seconds() -> None:
    manifest, notes = compressed()
    assert manifest["spec"]["rollout"]["analysis"]["interval"] == "2s"
    assert any("rollout.analysis.interval" in note for note in notes)
