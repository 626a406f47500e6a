"""Could the e2e's drift-triggered retraining Job train on the prediction log and pass its gate?

The e2e's and `make demo`'s compressed timeline, simulated with the real generator, training
and acceptance code: 25 requests/s, 30 s of `baseline` traffic, then `concept-drift`; every
label comes back within the 8 s horizon (upgrades earlier); the Job reads the log R seconds
after the onset, and sees what was flushed 5 s before (the bentos flush every 10 s). Its
window starts where the operator says the drift began (the first breaching check's window
start: 11 s before the onset in the e2e, whose first breach came 9 s after it, with a 20 s
window) or at the onset itself. A candidate passes when the entrypoint accepts it (AUC >= 0.75
on the holdout and the recent slice, not worse than the champion by 0.02) and so does the
operator's gate (minRecentAuc 0.70, notWorseThanChampion with tolerance 0.01). The champion is
the demo's v1 (logistic, `baseline`, 20,000 rows, seed 0). The last column is the distance
between the candidate's drift baseline (its holdout's upgrade share) and what it predicts on
the traffic after: over the e2e's 3-point minEffect, drift is raised again after promotion.

    PYTHONPATH=operator:bentos python bench/bench_logs_retraining.py
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from upsell.generator import LABEL_HORIZON, GeneratorConfig, generate
from upsell.retrain import acceptance_problems
from upsell.training import (
    TrainedModel,
    TrainingError,
    TrainingOptions,
    evaluate,
    predicted_labels,
    scores,
    train,
)

OUTPUT = Path("bench-results/logs-retraining.md")
RATE = 25.0
BASELINE_SECONDS = 30.0
FLUSH_LAG = 5.0
LABEL_HORIZON_SECONDS = 8.0
READS = (22.0, 55.0, 115.0, 235.0)
"""Seconds after the onset: the e2e's first attempt, then what retries would see."""
STARTS = (-11.0, 0.0)
"""The window's start, seconds from the onset."""
START = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    labelled: int
    post_drift: int
    passed: bool
    baseline_gap: float


def simulate(champion: TrainedModel, seed: int, read_after: float, start_offset: float) -> Run:
    onset = START + timedelta(seconds=BASELINE_SECONDS)
    scale = LABEL_HORIZON_SECONDS / LABEL_HORIZON.total_seconds()
    after = read_after + 60.0
    before = generate(
        "baseline",
        int(BASELINE_SECONDS * RATE),
        seed,
        start=START,
        config=GeneratorConfig(span=timedelta(seconds=BASELINE_SECONDS), label_delay_scale=scale),
    )
    drifted = generate(
        "concept-drift",
        int(after * RATE),
        seed + 1000,
        start=onset,
        config=GeneratorConfig(
            span=timedelta(seconds=after), pivot_at=onset, label_delay_scale=scale
        ),
    )
    frame = pd.concat([before.assign(post=False), drifted.assign(post=True)], ignore_index=True)
    read = pd.Timestamp(onset + timedelta(seconds=read_after - FLUSH_LAG))
    first = pd.Timestamp(onset + timedelta(seconds=start_offset))
    times, known = frame["signup_at"], frame["label_known_at"]
    window = frame[(times >= first) & (times <= read) & (known <= read)]
    later = frame[frame["post"] & (times > read)]
    post = int(window["post"].sum())
    try:
        model = train(window.drop(columns=["label_known_at", "post"]), TrainingOptions(seed=0))
    except TrainingError:
        return Run(len(window), post, False, float("nan"))
    metrics = model.metrics
    reference = evaluate(champion.pipeline, model.recent, champion.threshold)
    refused = acceptance_problems(metrics.holdout, metrics.recent, reference, 0.75, 0.02)
    recent, best = metrics.recent.auc, reference.auc
    gated = recent is None or recent < 0.70 or (best is not None and recent < best - 0.01)
    upgrades = predicted_labels(scores(model.pipeline, later), model.threshold) == "upgrade"
    gap = abs(float(np.mean(upgrades)) - model.baseline_distribution["upgrade"])
    return Run(len(window), post, not refused and not gated, gap)


def report(seeds: int) -> str:
    champion = train(generate("baseline", 20_000, seed=0), TrainingOptions(seed=0))
    lines = [
        "# Retraining on the e2e's prediction log",
        "",
        f"{seeds} simulated runs per row (`bench/bench_logs_retraining.py`).",
        "",
        "| window starts | Job reads at | labelled (post-drift), median | gates passed "
        "| baseline vs traffic after, median |",
        "|---|---|---|---|---|",
    ]
    for start_offset in STARTS:
        for read_after in READS:
            runs = [simulate(champion, s, read_after, start_offset) for s in range(seeds)]
            labelled = int(np.median([r.labelled for r in runs]))
            post = int(np.median([r.post_drift for r in runs]))
            passed = sum(r.passed for r in runs)
            gap = float(np.nanmedian([r.baseline_gap for r in runs]))
            lines.append(
                f"| onset {start_offset:+.0f} s | onset +{read_after:.0f} s | {labelled} ({post}) "
                f"| {passed}/{seeds} | {gap * 100:.1f} pt |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    text = report(args.seeds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
