"""The retraining result and the metric names are a contract with the operator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from rollforward.serving import contract
from rollforward.serving.contract import (
    EvaluationMetrics,
    RetrainingMetrics,
    RetrainingResult,
)

METRICS = EvaluationMetrics(auc=0.88, accuracy=0.86, recall=0.77, samples=5000)


def result(reasons: list[str]) -> RetrainingResult:
    return RetrainingResult(
        version="soom-upsell:abcdefghijklmnop",
        accepted=not reasons,
        reasons=reasons,
        metrics=RetrainingMetrics(holdout=METRICS, recent=METRICS, champion_recent=METRICS),
        baseline_distribution={"stay": 0.65, "upgrade": 0.35},
        trained_at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
        training_rows=15000,
    )


def test_termination_message_is_camel_case_and_round_trips() -> None:
    message = result([]).to_termination_message()
    document = json.loads(message)

    assert {"baselineDistribution", "trainedAt", "trainingRows"} <= set(document)
    assert document["metrics"]["championRecent"]["auc"] == 0.88
    assert RetrainingResult.from_termination_message(message) == result([])


def test_termination_message_fits_kubernetes_limit_even_with_huge_reasons() -> None:
    reasons = [f"reason {i}: " + "x" * 3000 for i in range(40)]

    message = result(reasons).to_termination_message()

    assert len(message.encode()) <= contract.TERMINATION_MESSAGE_LIMIT_BYTES
    parsed = RetrainingResult.from_termination_message(message)
    assert parsed.reasons and parsed.reasons[0].startswith("reason 0")
    assert parsed.accepted is False


def test_a_typical_result_is_far_below_the_limit() -> None:
    size = len(
        result(["AUC on recent data 0.70 is worse than the champion's 0.80"])
        .to_termination_message()
        .encode()
    )

    assert size < contract.TERMINATION_MESSAGE_LIMIT_BYTES // 4


def test_metric_names_and_labels_are_the_documented_ones() -> None:
    assert contract.PREDICTIONS_TOTAL == "rollforward_predictions_total"
    assert contract.PREDICTIONS_LABELS == ("model", "version", "variant", "label", "segment")
    assert contract.BASELINE_RATIO_LABELS == ("model", "version", "label")
    assert contract.INPUT_ANOMALIES_LABELS == ("model", "version", "field", "kind")
    assert contract.OUTCOMES_LABELS == ("model", "version", "variant", "label", "predicted")
    assert contract.LABEL_DELAY_LABELS == ("model", "version", "variant")


def test_contract_module_imports_only_stdlib_and_pydantic() -> None:
    lines = Path(contract.__file__).read_text(encoding="utf-8").splitlines()
    imports = [line.split()[1] for line in lines if line.startswith(("import ", "from "))]

    assert {i.split(".")[0] for i in imports} <= {
        "__future__",
        "json",
        "datetime",
        "enum",
        "typing",
        "pydantic",
    }


def test_serving_package_never_imports_kopf_or_kubernetes() -> None:
    modules = [
        f"rollforward.serving.{p.stem}"
        for p in Path(contract.__file__).parent.glob("*.py")
        if p.stem != "__init__"
    ]
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kopf', 'kubernetes')))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(Path(contract.__file__).parents[2])},
        capture_output=True,
        text=True,
        check=True,
    )

    assert len(modules) >= 8
    assert done.stdout.strip() == "[]"
