"""The demo's pure parts: the compressed README example, the timeline, the key figures and the
traffic buckets of its report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from devenv.api_cases import example_manifest
from devenv.demo import (
    COMPRESSED_STEPS,
    FAULTY_RETRAIN,
    FAULTY_RETRAIN_CONFIGMAP,
    LOGS_MIN_LABELLED,
    LOGS_RETRAIN,
    demo_manifest,
    faulty_retrain_configmap,
    logs_retraining_request,
)
from devenv.demo_env import project_images, prometheus_service, prometheus_url
from devenv.demo_report import StoryReport, blast_radius, bucketed_shares, write_report
from devenv.demo_timeline import PodTable, key_figures, milestone_of, snapshot_of, timeline_line
from devenv.operator_chart import operator_values
from devenv.traffic import TrafficRecord
from rollforward.api.resource import ModelDeployment

CHAMPION = "upsell:v1"


def compressed(bad_candidate: bool = False) -> tuple[dict[str, Any], list[str]]:
    return demo_manifest(example_manifest(), namespace="demo", bad_candidate=bad_candidate)


def test_the_compressed_example_keeps_the_examples_bentos_split_and_prometheus() -> None:
    manifest, notes = compressed()
    deployment = ModelDeployment.model_validate(manifest)
    assert deployment.metadata.namespace == "demo"
    champion, challenger = deployment.spec.variants
    assert (champion.bento, champion.weight, champion.replicas) == (CHAMPION, 90, 1)
    assert (challenger.role, challenger.bento, challenger.weight) == (
        "challenger",
        "upsell:v1-gbm",
        10,
    )
    # The example's URL, which the demo serves through a Service of that name.
    assert deployment.spec.monitoring.prometheus_url == prometheus_url()
    assert len(deployment.spec.rollout.steps) == len(COMPRESSED_STEPS)
    # The example's own retraining command and image are kept: what the demo shows working.
    container = manifest["spec"]["retraining"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["python", "-m", "upsell.retrain"]
    assert container["image"] == "rollforward/upsell-trainer:0.1.0"
    assert any("replicas 2 -> 1" in note for note in notes)


def test_the_examples_prometheus_service_points_at_the_nodes_prometheus() -> None:
    namespace, service, endpoints = prometheus_service("10.250.0.1", 41234)
    assert prometheus_url() == "http://prometheus.monitoring.svc:9090"
    assert (service["metadata"]["name"], service["metadata"]["namespace"]) == (
        "prometheus",
        namespace["metadata"]["name"],
    )
    assert "selector" not in service["spec"]
    assert endpoints["metadata"]["labels"] == {"kubernetes.io/service-name": "prometheus"}
    assert endpoints["endpoints"][0]["addresses"] == ["10.250.0.1"]
    assert endpoints["ports"][0]["port"] == 41234


def test_the_example_itself_is_not_changed() -> None:
    example = example_manifest()
    compressed()
    assert example == example_manifest()
    assert len(example["spec"]["variants"]) == 2


def test_a_bad_candidate_story_retrains_with_the_faulty_entrypoint() -> None:
    manifest, notes = compressed(bad_candidate=True)
    ModelDeployment.model_validate(manifest)
    pod = manifest["spec"]["retraining"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == FAULTY_RETRAIN
    assert container["image"] == "rollforward/upsell-trainer:0.1.0"
    [mount] = container["volumeMounts"]
    assert FAULTY_RETRAIN[1].startswith(mount["mountPath"] + "/")
    [volume] = pod["volumes"]
    assert volume["configMap"]["name"] == FAULTY_RETRAIN_CONFIGMAP == mount["name"]
    configmap = faulty_retrain_configmap("demo")
    assert "export_to_store" in configmap["data"][FAULTY_RETRAIN[1].rsplit("/", 1)[1]]
    assert any("503" in note for note in notes)


def test_a_retraining_from_the_logs_is_the_examples_entrypoint_on_the_prediction_log() -> None:
    manifest, _ = compressed()
    patch = logs_retraining_request(manifest, "from-logs")

    assert patch["metadata"]["annotations"] == {"rollforward.io/retrain": "from-logs"}
    template = patch["spec"]["retraining"]["template"]
    [container] = template["spec"]["containers"]
    assert container["command"] == LOGS_RETRAIN
    assert container["command"][:3] == ["python", "-m", "upsell.retrain"]
    assert LOGS_RETRAIN[LOGS_RETRAIN.index("--source") + 1] == "logs"
    assert LOGS_RETRAIN[LOGS_RETRAIN.index("--min-labelled") + 1] == str(LOGS_MIN_LABELLED)
    assert container["image"] == "rollforward/upsell-trainer:0.1.0"
    # The rest of the template is the example's, and the manifest itself is untouched.
    example = manifest["spec"]["retraining"]["template"]
    assert template["spec"]["restartPolicy"] == example["spec"]["restartPolicy"]
    assert example["spec"]["containers"][0]["command"] != LOGS_RETRAIN
    patched = {**manifest, "spec": {**manifest["spec"], "retraining": {
        **manifest["spec"]["retraining"], "template": template}}}  # fmt: skip
    ModelDeployment.model_validate(patched)


def test_each_milestone_is_named_once_from_the_latest_state() -> None:
    base = snapshot_of(status("Stable"), 1.0, "baseline")
    ready = replace(base, ready=True)
    assert milestone_of(replace(base, ready=False), CHAMPION) is None
    assert milestone_of(ready, CHAMPION) == "baseline"
    assert milestone_of(replace(ready, drifted=True), CHAMPION) == "drift detected"
    assert milestone_of(replace(ready, drifted=True, job="upsell-r1"), CHAMPION) == (
        "retraining Job"
    )
    assert milestone_of(replace(ready, job="upsell-r1", step=0), CHAMPION) == "canary"
    assert milestone_of(replace(ready, champion="upsell:new"), CHAMPION) == "promoted"
    assert milestone_of(replace(ready, phase="RolledBack", step=0), CHAMPION) == "rolled back"


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


def test_the_timeline_and_report_name_the_data_the_candidate_was_trained_on(
    tmp_path: Path,
) -> None:
    trained = {"source": "generated", "start": "2026-05-01T00:00:00Z",
               "end": "2026-06-30T00:00:00Z", "predictions": 6600, "labelled": 6600}  # fmt: skip
    retraining = {"jobName": "upsell-retrain-1", "phase": "Succeeded",
                  "candidateVersion": "soom-upsell:new", "trainingData": trained}  # fmt: skip
    snapshot = snapshot_of(status("Canary", retraining=retraining), 42.0, "concept-drift")

    expected = "generated 2026-05-01 00:00:00 to 2026-06-30 00:00:00 UTC: 6600 rows"
    assert snapshot.job_data == expected
    assert f"(trained on {expected})" in timeline_line(snapshot)
    without = snapshot_of(status("Canary", retraining={"jobName": "j", "phase": "Running"}), 1.0)
    assert without.job_data == "" and "trained on" not in timeline_line(without)
    assert snapshot.change_key() != replace(snapshot, job_data="").change_key()


def test_a_nodrift_line_shows_a_score_above_threshold_as_above_it() -> None:
    """Significant (13.64 > 6.63) but too small to matter: the verdict is NoDrift, and the
    line must not claim the score is below the threshold."""
    snapshot = snapshot_of(
        status(
            "Stable",
            drift={"outcome": "NoDrift", "statistic": "chiSquare", "score": 13.64,
                   "threshold": 6.63, "pValue": 0.0011, "currentSamples": 264,
                   "effect": {"estimate": 0.037, "lower": 0.0, "upper": 0.08,
                              "confidence": 0.99, "minimum": 0.03}},
            **drifted(False),
        ),
        163.8,
        "concept-drift",
    )  # fmt: skip
    line = timeline_line(snapshot)
    assert "drift NoDrift (chiSquare 13.64 > 6.63" in line, line
    assert "TVD 3.7 pt [0.0-8.0] < 3.0" in line, line


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
    trained = replace(snapshots[1], at=14.0, job_data="prediction-log: 640 labelled")
    snapshots.append(trained)
    figures = key_figures(snapshots, drift_onset=5.0)
    records = [record(1.0, "champion"), replace(record(7.0, "candidate"), status=502)]
    pods = PodTable(
        "baseline",
        1.5,
        "NAME   READY   STATUS    NODE\nupsell-champion-x   1/1   Running   rf-node",
    )
    report = StoryReport("Demo", "Timeout", figures, snapshots, records, 0.0, 20.0,
                         notes=["compressed"], significance=0.01,
                         pod_tables=[pods])  # fmt: skip
    path = write_report(report, tmp_path)
    text = path.read_text()
    assert "## Pods at each milestone" in text and "baseline, at 1.5 s:" in text
    assert "upsell-champion-x   1/1   Running   rf-node" in text
    assert "| drift detected (Drifted=True) | 7.0 s |" in text
    assert "'502 from candidate': 1" in text and "- compressed" in text
    assert "## Blast radius of the canary" in text
    assert "candidate was trained on prediction-log: 640 labelled." in text
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


def test_the_demo_looks_at_the_canary_every_second_the_scrape_interval() -> None:
    manifest, notes = compressed()
    assert manifest["spec"]["rollout"]["analysis"]["interval"] == "1s"
    assert manifest["spec"]["rollout"]["analysis"]["maxLatencyRatio"] == 3.0
    assert example_manifest()["spec"]["rollout"]["analysis"]["maxLatencyRatio"] == 1.5
    assert any("rollout.analysis.interval" in note for note in notes)


def test_the_operator_chart_values_name_the_project_images_and_the_examples_prometheus() -> None:
    store = {"bentoStore": {"endpoint": "http://10.250.0.1:9000", "credentialsSecret": "s"}}
    values = operator_values(["demo"], prometheus_url(), store)
    assert values["watch"] == {"namespaces": ["demo"]}
    assert values["image"]["pullPolicy"] == "IfNotPresent"
    config = values["config"]
    assert config["prometheusUrl"] == "http://prometheus.monitoring.svc:9090"
    references = {
        f"{config[key]['repository']}:{config[key]['tag']}" for key in ("bentoImage", "routerImage")
    }
    assert references <= set(project_images())
    assert values["bentoStore"] == store["bentoStore"]
