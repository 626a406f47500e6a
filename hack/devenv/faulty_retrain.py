"""A retraining entrypoint that builds a deliberately broken candidate, for the bad-candidate
end-to-end test and `python -m devenv.demo --bad-candidate`.

It trains the Soom model exactly as `upsell.retrain` does (same data, same training code, a
real bento in the store), then marks the saved model with the service's fault-injection key
(`upsell.service.FAULT_RATIO_METADATA`), so the bento answers 503 to that share of /predict
requests. Its predictions are as good as a real retrain's: only the error rate is bad, which
the canary analysis must catch. Like the real entrypoint it exports the bento to the bento
store the operator names (`upsell.retrain.export_to_store`) and reports an accepted
RetrainingResult through the termination message.

It imports only the product and the Soom bento, so it also runs as a plain script in the
trainer image (the demo mounts it from a ConfigMap):

    python -m devenv.faulty_retrain --scenario concept-drift --fault-5xx-ratio 0.5
    python /opt/rollforward-demo/faulty_retrain.py --scenario concept-drift
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rollforward.serving.contract import (
    DEFAULT_TERMINATION_MESSAGE_PATH,
    ENV_TERMINATION_MESSAGE_PATH,
    RetrainingResult,
)
from upsell.generator import SCENARIOS, generate
from upsell.packaging import build_bento, save_model
from upsell.retrain import export_to_store
from upsell.service import FAULT_RATIO_METADATA
from upsell.training import TrainingOptions, train


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.faulty_retrain", description=__doc__)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="concept-drift")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--window-days", type=float, default=60.0, help="last N days only")
    parser.add_argument("--fault-5xx-ratio", type=float, default=0.5)
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(
            os.environ.get(ENV_TERMINATION_MESSAGE_PATH, DEFAULT_TERMINATION_MESSAGE_PATH)
        ),
    )
    args = parser.parse_args(argv)
    trained_at = datetime.now(UTC)
    data = generate(args.scenario, args.rows, args.seed)
    # As the example's `upsell.retrain --window-days 60`: recent data only, so the candidate's
    # predictions match the traffic and only its error rate is bad.
    since = (data["signup_at"].max() - timedelta(days=args.window_days)).floor("s").to_pydatetime()
    model = train(data, TrainingOptions(seed=args.seed, since=since))
    model_tag = save_model(
        model,
        {
            "scenario": args.scenario,
            "seed": args.seed,
            "trained_at": trained_at.isoformat(),
            FAULT_RATIO_METADATA: args.fault_5xx_ratio,
        },
    )
    result = export_to_store(
        RetrainingResult(
            version=build_bento(model_tag),
            accepted=True,
            metrics=model.metrics,
            baseline_distribution=model.baseline_distribution,
            trained_at=trained_at,
            training_rows=model.training_rows,
        )
    )
    message = result.to_termination_message()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(message)
    print(
        f"built {result.version} with {FAULT_RATIO_METADATA}={args.fault_5xx_ratio}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
