"""`python -m upsell.retrain`, as the operator's Job runs it, against a real model store."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.bento import run_retrain
from fixtures.fixtures_bento import BuiltBento
from rollforward.serving.contract import TERMINATION_MESSAGE_LIMIT_BYTES


def test_retrain_after_a_pivot_builds_a_new_version_and_reports_it(
    soom_bento: BuiltBento, tmp_path: Path
) -> None:
    output = tmp_path / "termination-log"

    run = run_retrain(
        soom_bento.bentoml_home,
        output,
        [
            "--scenario",
            "concept-drift",
            "--seed",
            "4",
            "--rows",
            "12000",
            "--window-days",
            "60",
            "--min-auc",
            "0.7",
        ],
        # As on the operator's Job: the champion named by the serving version.
        env={"ROLLFORWARD_VERSION": soom_bento.tag},
    )

    result = run.result
    assert run.returncode == 0, run.stderr
    assert result.version.startswith("soom-upsell:") and result.version != soom_bento.tag
    assert (
        soom_bento.bentoml_home / "bentos" / "soom-upsell" / result.version.split(":")[1]
    ).is_dir()
    assert result.metrics is not None and result.metrics.champion_recent is not None
    assert result.metrics.holdout.samples > result.metrics.recent.samples > 0
    assert sum(result.baseline_distribution.values()) == pytest.approx(1.0, abs=1e-4)
    # The window kept only post-pivot rows: far fewer than the 75% of 12000 trained otherwise.
    assert result.training_rows < 4000
    assert result.accepted == (not result.reasons)
    assert len(output.read_bytes()) <= TERMINATION_MESSAGE_LIMIT_BYTES


def test_retrain_that_cannot_train_exits_non_zero_with_a_rejected_result(
    soom_bento: BuiltBento, tmp_path: Path
) -> None:
    output = tmp_path / "termination-log"

    run = run_retrain(soom_bento.bentoml_home, output, ["--since", "2031-01-01"])

    assert run.returncode == 1
    assert run.result.accepted is False and run.result.version == ""
    assert "labelled rows" in run.result.reasons[0]
    assert "retraining failed" in run.stderr


def test_a_champion_that_cannot_be_loaded_is_skipped_not_fatal(
    soom_bento: BuiltBento, tmp_path: Path
) -> None:
    output = tmp_path / "termination-log"

    run = run_retrain(
        soom_bento.bentoml_home, output, ["--rows", "3000", "--champion", "soom-upsell:gone"]
    )

    assert run.returncode == 0, run.stderr
    assert run.result.metrics is not None and run.result.metrics.champion_recent is None
    assert "not comparable" in run.stderr
