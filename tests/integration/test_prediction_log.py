"""The prediction log against a real S3 server (versitygw) and real BentoML.

Given a bento serving with the store's environment, when it serves predictions and receives
their feedback, then both land in the bucket as partitioned, append-only JSON lines; and a
retraining run with `--source logs` trains on exactly those labelled records, naming its data
window in the candidate's metadata, or fails with a clear reason when they are too few. The
same labels resent to a restarted server count none (each was claimed once in the store).
Both the bento and the retraining run get the log's location the operator gives a
ModelDeployment's bentos and Jobs (rollforward.bentostore.location); a Job of another
ModelDeployment of the same model finds none of these records.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from devenv.bento import PYTHON, bentoml_env, run_retrain, start_bento_server
from devenv.s3 import S3Server
from fixtures.fixtures_bento import SOOM_SERVER_ENV, BuiltBento
from rollforward.api import parse_model_deployment
from rollforward.bentostore.location import log_env
from rollforward.serving.objectstore.s3 import S3Store
from rollforward.serving.prediction_log import (
    BUFFER_FULL,
    FEEDBACK,
    PREDICTIONS,
    STORE_ERROR,
    LogIdentity,
    LogSettings,
    PredictionLog,
)
from upsell.generator import generate, payload_of

MODEL = "soom-upsell"
RECORDS = 400


def operator_log_env(namespace: str) -> dict[str, str]:
    """The log's location, as the operator sets it on the bentos and the retraining Jobs of
    the example ModelDeployment in `namespace`."""
    manifest = example_manifest()
    manifest["metadata"]["namespace"] = namespace
    env = log_env(parse_model_deployment(manifest))
    return {env["name"]: env["value"]}


LOG_ENV = operator_log_env("team-a")
LOG_PREFIX = next(iter(LOG_ENV.values()))


def _lines(store: S3Store, prefix: str, tmp_path: Path) -> list[dict[str, object]]:
    records = []
    for key in store.list(prefix):
        target = tmp_path / "part.jsonl"
        store.get(key, target)
        records += [json.loads(line) for line in target.read_text().splitlines()]
    return records


def test_flushes_append_new_partitioned_objects_of_json_lines(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = s3_server.store()
    log = PredictionLog(
        store, LogIdentity("flush-test", "v1", "champion"), LogSettings(flush_seconds=3600)
    )
    log.prediction("id-1", {"country": "JP"}, "upgrade", 0.9)
    log.prediction("id-2", {"country": "US"}, "stay", 0.1)
    log.feedback("id-1", "upgrade")

    assert log.flush() == 3
    log.prediction("id-3", {}, "stay", 0.2)
    assert log.flush() == 1

    keys = store.list("logs/flush-test/")
    assert len(keys) == 3  # two prediction objects, one feedback object: nothing rewritten
    today = datetime.now(UTC)
    assert all(f"/date={today:%Y-%m-%d}/hour=" in key for key in keys)
    predictions = _lines(store, f"logs/flush-test/{PREDICTIONS}/", tmp_path)
    assert sorted(str(r["id"]) for r in predictions) == ["id-1", "id-2", "id-3"]
    first = next(r for r in predictions if r["id"] == "id-1")
    assert first["features"] == {"country": "JP"} and first["score"] == 0.9
    assert first["version"] == "v1" and first["variant"] == "champion"
    feedback = _lines(store, f"logs/flush-test/{FEEDBACK}/", tmp_path)
    assert [(r["id"], r["label"]) for r in feedback] == [("id-1", "upgrade")]


def test_a_full_buffer_or_a_dead_store_drops_records_and_counts_them(
    s3_server: S3Server,
) -> None:
    drops: list[tuple[str, str, int]] = []
    settings = LogSettings(buffer_records=2, flush_seconds=3600)
    dead = S3Store("http://127.0.0.1:9", s3_server.bucket, timeout=1.0)
    log = PredictionLog(
        dead,
        LogIdentity("drop-test", "v1", "champion"),
        settings,
        on_drop=lambda kind, reason, n: drops.append((kind, reason, n)),
    )
    for index in range(3):
        log.prediction(f"id-{index}", {}, "stay", 0.1)

    assert drops == [(PREDICTIONS, BUFFER_FULL, 1)]
    assert log.flush() == 0
    assert drops[-1] == (PREDICTIONS, STORE_ERROR, 2)
    assert log.dropped == 3


@pytest.fixture(scope="module")
def logged_traffic(
    soom_bento: BuiltBento, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> int:
    """A real bento logs RECORDS predictions and their feedback; returns the labelled count."""
    env = {
        **SOOM_SERVER_ENV,
        **s3_server.store_env(),
        **LOG_ENV,
        "ROLLFORWARD_PREDICTION_LOG_FLUSH_SECONDS": "1",
    }
    run_dir = tmp_path_factory.mktemp("logging-server")
    server = start_bento_server(soom_bento.tag, soom_bento.bentoml_home, run_dir, env=env)
    try:
        frame = generate("baseline", RECORDS, seed=5)
        rows = [payload_of(row._asdict()) for row in frame.itertuples(index=False)]
        code, answers = server.post("/predict", rows)
        assert code == 200
        labels = ["upgrade" if bool(v) else "stay" for v in frame["upgraded"]]
        feedback = [
            {"predictionId": a["predictionId"], "label": label}
            for a, label in zip(answers, labels, strict=True)
        ]
        code, verdict = server.post("/feedback", feedback)
        assert code == 200 and verdict["accepted"] == RECORDS
        _wait_for_lines(s3_server.store(), f"{LOG_PREFIX}/{MODEL}/{FEEDBACK}/", RECORDS, run_dir)
    finally:
        server.stop()
    _resend_to_a_restarted_server(soom_bento, env, feedback, tmp_path_factory)
    return RECORDS


def _resend_to_a_restarted_server(
    bento: BuiltBento,
    env: dict[str, str],
    feedback: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same labels, resent to a new server (a restart, or another replica), count none:
    each was claimed once in the store (rollforward.serving.feedback_claims)."""
    run_dir = tmp_path_factory.mktemp("restarted-server")
    server = start_bento_server(bento.tag, bento.bentoml_home, run_dir, env=env)
    try:
        code, verdict = server.post("/feedback", feedback)
    finally:
        server.stop()
    assert code == 200 and verdict["accepted"] == 0
    assert all("duplicate_feedback" in r["reason"] for r in verdict["rejected"])
    assert len(verdict["rejected"]) == RECORDS


def _wait_for_lines(store: S3Store, prefix: str, wanted: int, scratch: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(_lines(store, prefix, scratch)) >= wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"fewer than {wanted} records under {prefix} after 60 s")


def test_retraining_from_the_log_trains_on_the_labelled_records(
    logged_traffic: int, soom_bento: BuiltBento, s3_server: S3Server, tmp_path: Path
) -> None:
    home = tmp_path / "bentoml"
    store_env = {**s3_server.store_env(), **LOG_ENV, "ROLLFORWARD_MODEL": MODEL}

    run = run_retrain(
        home,
        tmp_path / "result.json",
        ["--source", "logs", "--window-days", "1", "--min-auc", "0.5"],
        env=store_env,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.result.training_rows == logged_traffic - round(logged_traffic * 0.25)
    assert run.result.stored_at.startswith(f"s3://{s3_server.bucket}/")
    window = _model_metadata(home, run.result.version)["data_window"]
    assert window["source"] == "prediction-log"
    assert window["labelled"] == logged_traffic and window["predictions"] == logged_traffic
    assert datetime.fromisoformat(window["from"]) < datetime.fromisoformat(window["to"])
    # The result names the same window, which the operator records in status.
    reported = run.result.data_window
    assert reported is not None and reported.source == "prediction-log"
    assert reported.labelled == logged_traffic and reported.drift_began_at is None
    assert reported.start == datetime.fromisoformat(window["from"])


def _model_metadata(home: Path, bento_tag: str) -> dict[str, Any]:
    """The metadata of the model a bento serves, read from the store in `home`."""
    script = (
        "import json, sys, bentoml; from upsell.packaging import model_tag_of_bento; "
        "tag = model_tag_of_bento(sys.argv[1]); "
        "print(json.dumps(bentoml.models.get(tag).info.metadata))"
    )
    done = subprocess.run(
        [PYTHON, "-c", script, bento_tag],
        env=bentoml_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    metadata: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return metadata


def test_too_few_labelled_records_fail_the_job_with_the_reason(
    logged_traffic: int, s3_server: S3Server, tmp_path: Path
) -> None:
    run = run_retrain(
        tmp_path / "bentoml",
        tmp_path / "result.json",
        ["--source", "logs", "--min-labelled", str(logged_traffic + 1)],
        env={**s3_server.store_env(), **LOG_ENV, "ROLLFORWARD_MODEL": MODEL},
    )

    assert run.returncode == 1
    assert not run.result.version and not run.result.accepted
    assert f"only {logged_traffic} labelled records" in run.result.reasons[0]
    assert f"need at least {logged_traffic + 1}" in run.result.reasons[0]


def test_a_job_of_the_same_model_in_another_namespace_finds_none_of_these_records(
    logged_traffic: int, s3_server: S3Server, tmp_path: Path
) -> None:
    """The log is the ModelDeployment's own: another one serving the same model name into the
    same bucket (here in namespace team-b) trains on its own traffic only, here none."""
    other = operator_log_env("team-b")
    assert other != LOG_ENV
    run = run_retrain(
        tmp_path / "bentoml",
        tmp_path / "result.json",
        ["--source", "logs", "--window-days", "1"],
        env={**s3_server.store_env(), **other, "ROLLFORWARD_MODEL": MODEL},
    )

    assert logged_traffic > 0 and run.returncode == 1
    [reason] = run.result.reasons
    assert "only 0 labelled records" in reason and "(0 predictions logged)" in reason
    assert f"in the prediction log logs/team-b/upsell/{MODEL}/ from" in reason


def test_a_window_from_the_drift_onset_leaves_out_what_was_logged_before_it(
    logged_traffic: int, s3_server: S3Server, tmp_path: Path
) -> None:
    """The operator names the drift onset (ROLLFORWARD_DRIFT_BEGAN_AT); with --since-drift the
    window starts there, so records logged before it are not training data: here all of them,
    and the Job fails saying so."""
    onset = datetime.now(UTC)
    run = run_retrain(
        tmp_path / "bentoml",
        tmp_path / "result.json",
        ["--source", "logs", "--since-drift", "--window-days", "1"],
        env={
            **s3_server.store_env(),
            **LOG_ENV,
            "ROLLFORWARD_MODEL": MODEL,
            "ROLLFORWARD_DRIFT_BEGAN_AT": onset.isoformat(),
        },
    )

    assert logged_traffic > 0 and run.returncode == 1
    [reason] = run.result.reasons
    assert "only 0 labelled records" in reason and f"from {onset:%Y-%m-%d %H:%M}" in reason
    assert "the window starts at the drift onset" in reason
