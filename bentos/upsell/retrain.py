"""The retraining entrypoint the operator's Job runs: `python -m upsell.retrain`.

Trains on the configured data, evaluates on a random holdout and on the most recent rows
(also against the champion, when named), saves a new model and bento version, and writes a
RetrainingResult as JSON to the termination-message path. Exit codes: 0 when a candidate
was built (accepted or not: read `accepted`), 1 when training or the build failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import bentoml
import pandas as pd
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rollforward.serving.bento_store import StoreSettings, pull, push
from rollforward.serving.contract import (
    DEFAULT_PREDICTION_LOG_PREFIX,
    DEFAULT_TERMINATION_MESSAGE_PATH,
    ENV_DRIFT_BEGAN_AT,
    ENV_MODEL,
    ENV_PREDICTION_LOG_PREFIX,
    ENV_TERMINATION_MESSAGE_PATH,
    ENV_VERSION,
    DataWindow,
    EvaluationMetrics,
    RetrainingResult,
)
from rollforward.serving.objectstore.client import StoreError
from rollforward.serving.objectstore.layout import ENV_ENDPOINT as ENV_STORE_ENDPOINT
from rollforward.serving.prediction_log import log_root
from upsell import logged_data
from upsell.features import Algorithm
from upsell.generator import SCENARIOS, generate
from upsell.packaging import BuildError, build_bento, model_tag_of_bento, save_model
from upsell.schema import MODEL_NAME
from upsell.training import (
    DEFAULT_THRESHOLD,
    TrainedModel,
    TrainingError,
    TrainingOptions,
    evaluate,
    train,
)

DEFAULT_LOG_WINDOW_DAYS: Final = 30.0


class RetrainSettings(BaseSettings):
    """Where the data comes from and what a candidate must achieve; env or flags."""

    model_config = SettingsConfigDict(env_prefix="SOOM_RETRAIN_", extra="ignore")

    # Where the training data comes from: generated (the demo's synthetic scenarios), or
    # logs (the labelled predictions the serving bentos logged to the bento store).
    source: Literal["generated", "logs"] = "generated"
    # logs: the model name the bentos logged under (the operator sets ROLLFORWARD_MODEL).
    log_model: str = Field(
        default=MODEL_NAME, validation_alias=AliasChoices(ENV_MODEL, "log_model")
    )
    # logs: the root of the prediction log (ROLLFORWARD_PREDICTION_LOG_PREFIX), which the
    # operator sets on the Job to its ModelDeployment's own, `logs/<namespace>/<name>`, the
    # one its bentos write to.
    log_prefix: str = Field(
        default=DEFAULT_PREDICTION_LOG_PREFIX,
        validation_alias=AliasChoices(ENV_PREDICTION_LOG_PREFIX, "log_prefix"),
    )
    # logs: fewer labelled records than this fail the Job instead of training on noise.
    min_labelled: int = Field(default=200, ge=50)
    # logs: start the window where the drift episode's data began, when the operator says
    # (ROLLFORWARD_DRIFT_BEGAN_AT), so the candidate learns what production sees now.
    since_drift: bool = False
    # What the operator sets on a Job started while a drift episode is open.
    drift_began_at: datetime | None = Field(
        default=None, validation_alias=AliasChoices(ENV_DRIFT_BEGAN_AT, "drift_began_at")
    )
    scenario: str = "baseline"
    seed: int = 0
    rows: int = Field(default=20_000, ge=100)
    # Drop rows that signed up before this time (data from before a pivot).
    since: datetime | None = None
    # Or keep only the last N days of the data.
    window_days: float | None = Field(default=None, gt=0)
    # The serving bento (name:version); the candidate must not be worse on recent data.
    champion: str = ""
    # What the operator sets on the Job: the champion's bento tag, used when `champion` is not.
    serving_version: str = Field(default="", validation_alias=ENV_VERSION)
    min_auc: float = 0.75
    # How much worse than the champion on recent data a candidate may be.
    tolerance: float = 0.02
    # The classifier: logistic regression, or gradient-boosted trees.
    algorithm: Algorithm = "logistic"
    # Name the bento (name:version, e.g. `upsell:v1`) instead of `soom-upsell:<model version>`.
    bento_tag: str = Field(default="", pattern=r"^([a-z0-9_.-]+:[A-Za-z0-9_.-]+)?$")
    termination_message_path: Path = Field(
        default=Path(DEFAULT_TERMINATION_MESSAGE_PATH),
        validation_alias=AliasChoices(ENV_TERMINATION_MESSAGE_PATH, "termination_message_path"),
    )

    @field_validator("drift_began_at", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value


def main(argv: Sequence[str] | None = None) -> int:
    flags = _parse(argv)
    trained_at = datetime.now(UTC)
    try:
        settings = RetrainSettings(**flags)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return _fail(f"invalid configuration: {problems}", _fallback_path(flags), trained_at)
    try:
        result = export_to_store(retrain(settings, trained_at))
    except StoreError as error:
        # No bento in the store means no candidate: the pods could never fetch it.
        reason = f"exporting the bento to the store failed: {error}"
        return _fail(reason, settings.termination_message_path, trained_at)
    except (TrainingError, BuildError) as error:
        return _fail(f"retraining failed: {error}", settings.termination_message_path, trained_at)
    except Exception as error:
        # The process boundary: whatever broke, the operator still gets a result to read.
        traceback.print_exc()
        reason = f"retraining failed unexpectedly: {type(error).__name__}: {error}"
        return _fail(reason, settings.termination_message_path, trained_at)
    _write(result, settings.termination_message_path)
    verdict = "accepted" if result.accepted else "rejected: " + "; ".join(result.reasons)
    print(f"built {result.version}, {verdict}", file=sys.stderr)
    return 0


def retrain(settings: RetrainSettings, trained_at: datetime) -> RetrainingResult:
    data, window = training_data(settings, trained_at)
    since = _since(settings, data) if settings.source == "generated" else None
    if since is not None:
        window = window.model_copy(update={"start": since})
    options = TrainingOptions(seed=settings.seed, since=since, algorithm=settings.algorithm)
    model = train(data, options)
    window = window.model_copy(update={"labelled": model.labelled_rows})
    champion = _champion_recent(settings.champion or settings.serving_version, model)
    metrics = model.metrics.model_copy(update={"champion_recent": champion})
    reasons = acceptance_problems(
        metrics.holdout, metrics.recent, champion, settings.min_auc, settings.tolerance
    )
    model_tag = save_model(
        model,
        {
            "scenario": settings.scenario,
            "seed": settings.seed,
            "trained_at": trained_at.isoformat(),
            "accepted": not reasons,
            "algorithm": settings.algorithm,
            "data_window": window.model_dump(mode="json", by_alias=True, exclude_none=True),
        },
    )
    return RetrainingResult(
        version=build_bento(model_tag, tag=settings.bento_tag or None),
        accepted=not reasons,
        reasons=reasons,
        metrics=metrics,
        baseline_distribution=model.baseline_distribution,
        trained_at=trained_at,
        training_rows=model.training_rows,
        data_window=window,
    )


def training_data(settings: RetrainSettings, now: datetime) -> tuple[pd.DataFrame, DataWindow]:
    """The rows to train on, and the data window the candidate's result and metadata name."""
    if settings.source == "generated":
        data = generate(settings.scenario, settings.rows, settings.seed)
        window = DataWindow(
            source="generated",
            start=data["signup_at"].min().floor("s").to_pydatetime(),
            end=data["signup_at"].max().ceil("s").to_pydatetime(),
            predictions=len(data),
            labelled=int(data["upgraded"].notna().sum()),
            scenario=settings.scenario,
        )
        return data, window
    if not os.environ.get(ENV_STORE_ENDPOINT):
        raise TrainingError(f"--source logs needs the bento store ({ENV_STORE_ENDPOINT} is unset)")
    days = settings.window_days or DEFAULT_LOG_WINDOW_DAYS
    drift_began_at = settings.drift_began_at if settings.since_drift else None
    logged = logged_data.load(
        StoreSettings().store(), settings.log_prefix, settings.log_model, now, days, drift_began_at
    )
    if logged.labelled < settings.min_labelled:
        raise TrainingError(
            f"only {logged.labelled} labelled records in the prediction log "
            f"{log_root(settings.log_prefix, settings.log_model)} "
            f"from {logged.start:%Y-%m-%d %H:%M} to "
            f"{logged.end:%Y-%m-%d %H:%M} UTC ({logged.predictions} predictions logged); "
            f"need at least {settings.min_labelled}"
            + (" (the window starts at the drift onset)" if drift_began_at else "")
        )
    return logged.frame, logged.window(drift_began_at)


def export_to_store(result: RetrainingResult) -> RetrainingResult:
    """Export the candidate's bento to the bento store, when the operator named one (the
    ROLLFORWARD_BENTO_STORE_* environment), and say where in the result."""
    if not os.environ.get(ENV_STORE_ENDPOINT) or not result.version:
        return result
    store = StoreSettings()
    key = push(result.version, store.store(), store.prefix)
    return result.model_copy(update={"stored_at": f"s3://{store.bucket}/{key}"})


def acceptance_problems(
    holdout: EvaluationMetrics,
    recent: EvaluationMetrics,
    champion_recent: EvaluationMetrics | None,
    min_auc: float,
    tolerance: float,
) -> list[str]:
    """Why a candidate must not be promoted; empty when it may. Pure."""
    problems = []
    if holdout.auc is None or holdout.auc < min_auc:
        problems.append(f"holdout AUC {holdout.auc} is below {min_auc}")
    if recent.auc is None or recent.auc < min_auc:
        problems.append(f"AUC on the most recent data {recent.auc} is below {min_auc}")
    if (
        champion_recent is not None
        and champion_recent.auc is not None
        and recent.auc is not None
        and recent.auc < champion_recent.auc - tolerance
    ):
        problems.append(
            f"AUC on recent data {recent.auc} is worse than the champion's "
            f"{champion_recent.auc} by more than {tolerance}"
        )
    return problems


def _champion_recent(champion: str, model: TrainedModel) -> EvaluationMetrics | None:
    """The champion's quality on the candidate's recent rows; None when it cannot be loaded
    (no champion, an image rather than a bento, not in the bento store): the comparison is then
    skipped, and the operator's own gate sees `championRecent` missing."""
    if ":" not in champion:
        return None
    try:
        stored = bentoml.models.get(_champion_model(champion))
    except (bentoml.exceptions.BentoMLException, BuildError, StoreError) as error:
        print(f"champion {champion} not comparable, skipped: {error}", file=sys.stderr)
        return None
    threshold = stored.info.metadata.get("threshold", DEFAULT_THRESHOLD)
    if not isinstance(threshold, int | float):
        threshold = DEFAULT_THRESHOLD
    return evaluate(bentoml.sklearn.load_model(stored), model.recent, threshold)


def _champion_model(champion: str) -> str:
    """The champion bento's model tag. A Job's pod starts with an empty BentoML store, so
    when the operator named a bento store the champion is fetched from it first; without
    it `notWorseThanChampion` could never be checked on a real cluster."""
    try:
        return model_tag_of_bento(champion)
    except bentoml.exceptions.NotFound:
        if not os.environ.get(ENV_STORE_ENDPOINT):
            raise
    store = StoreSettings()
    pull(champion, store.store(), store.prefix)
    return model_tag_of_bento(champion)


def _since(settings: RetrainSettings, data: pd.DataFrame) -> datetime | None:
    if settings.window_days is None:
        return settings.since
    window_start = data["signup_at"].max() - timedelta(days=settings.window_days)
    start: datetime = window_start.floor("s").to_pydatetime()
    return max(start, settings.since) if settings.since else start


def _fail(reason: str, path: Path, trained_at: datetime) -> int:
    result = RetrainingResult(version="", accepted=False, reasons=[reason], trained_at=trained_at)
    _write(result, path)
    print(reason, file=sys.stderr)
    return 1


def _fallback_path(flags: dict[str, Any]) -> Path:
    configured = flags.get("termination_message_path") or os.environ.get(
        ENV_TERMINATION_MESSAGE_PATH, DEFAULT_TERMINATION_MESSAGE_PATH
    )
    return Path(configured)


def _write(result: RetrainingResult, path: Path) -> None:
    message = result.to_termination_message()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(message)
    print(message)


def _parse(argv: Sequence[str] | None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m upsell.retrain", description=__doc__)
    parser.add_argument(
        "--source", choices=["generated", "logs"], help="synthetic data, or the prediction log"
    )
    parser.add_argument("--min-labelled", type=int, help="logs: fewest labelled records")
    parser.add_argument(
        "--since-drift",
        action="store_true",
        default=None,
        help=f"logs: start the window at the drift onset the operator names ({ENV_DRIFT_BEGAN_AT})",
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--since", help="ISO time; drop rows that signed up before it")
    parser.add_argument(
        "--window-days", type=float, help="keep only the last N days (logs: default 30)"
    )
    parser.add_argument("--champion", help="bento tag of the serving model")
    parser.add_argument("--min-auc", type=float)
    parser.add_argument("--tolerance", type=float)
    parser.add_argument("--algorithm", choices=["logistic", "gbm"], help="the classifier")
    parser.add_argument("--bento-tag", help="name:version of the bento (default: model's)")
    parser.add_argument(
        "--output",
        dest="termination_message_path",
        help="where to write the JSON result (default: termination log)",
    )
    return {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}


if __name__ == "__main__":
    sys.exit(main())
