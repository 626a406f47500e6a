"""The experiment's half of the state machine: a ChallengerBetter verdict with
`onChallengerBetter: Promote` opens a canary for the challenger's version. Pure.

It opens status.rollout exactly as the acceptance gate does for a retrained candidate, so
everything after that (candidate Deployment, steps, analysis, approval, promotion, rollback)
is lifecycle.canary's, unchanged. What a naive version gets wrong:

- **Twice for one verdict.** The canary's trigger id derives from the experiment (its arms'
  versions and start), and it is written into status.experiment in the same status write
  that opens the canary; a verdict that already names a trigger never opens another one, so
  a restarted operator, or the end of the canary, never starts it again.
- **A loop after a rollback.** A rolled-back version lands in status.failed_versions, which
  is never deployed again; a later ChallengerBetter verdict for it is reported, not promoted.
  The concluded experiment itself stays as it is until a version changes (as any verdict).
- **Racing the other work.** It waits until the ModelDeployment is stable: no retraining Job
  running or waiting for its retry, no canary (held or not), not paused. A verdict against a
  champion that was replaced meanwhile (a retrained candidate promoted) is stale: never acted
  on; the experiment restarts on the new champion.
- **The challenger served twice.** After the promotion the champion runs the challenger's
  version; rollforward.variants then retires the challenger arm (its share goes to the
  champion) until Git names a new challenger or champion.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from rollforward.api import (
    EventReason,
    ExperimentStatus,
    HistoryEntry,
    HistoryOutcome,
    ModelDeployment,
    OnChallengerBetter,
    RolloutStatus,
)
from rollforward.experiment import ExperimentVerdict
from rollforward.lifecycle.canary import rollout_hash
from rollforward.lifecycle.progress import Progress, is_paused
from rollforward.lifecycle.retraining import busy
from rollforward.retraining import with_history
from rollforward.variants import champion_version

TRIGGER = "experiment"
"""status.history's trigger of a candidate that came from the experiment."""


def trigger_id(experiment: ExperimentStatus) -> str:
    """Deterministic per verdict: the same experiment always hands over under the same id."""
    key = "|".join(
        (
            experiment.champion_version,
            experiment.challenger_version,
            experiment.started_at.isoformat(),
        )
    )
    return f"experiment-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def due(deployment: ModelDeployment, work: Progress) -> ExperimentStatus | None:
    """The experiment whose verdict must be handed over now, or None: a ChallengerBetter
    verdict not handed over yet, with Promote, on a stable, unpaused ModelDeployment."""
    spec, experiment = deployment.spec.experiment, work.status.experiment
    if spec is None or spec.on_challenger_better is not OnChallengerBetter.PROMOTE:
        return None
    if experiment is None or experiment.verdict != ExperimentVerdict.CHALLENGER_BETTER:
        return None
    if experiment.promotion_trigger_id or experiment.promotion_message:
        return None
    if work.status.rollout is not None or busy(work.status.retraining):
        return None
    if experiment.champion_version != champion_version(deployment.spec, work.status):
        # Judged against a champion that no longer serves (a retrained candidate was
        # promoted meanwhile): stale evidence; the experiment restarts on the new one.
        return None
    return None if is_paused(deployment) else experiment


def _refusal(deployment: ModelDeployment, experiment: ExperimentStatus, work: Progress) -> str:
    """Why this verdict's challenger cannot be the candidate, or ""."""
    version = experiment.challenger_version
    variant = next((v for v in deployment.spec.variants if v.name == experiment.challenger), None)
    if not version or variant is None:
        return f"the challenger {experiment.challenger} no longer serves"
    if variant.bento is None:
        return f"the challenger {experiment.challenger} has no bento to canary (image only)"
    if version in work.status.failed_versions:
        return f"{version} was rolled back or rejected before, and is never deployed again"
    return ""


def maybe_hand_over(deployment: ModelDeployment, now: datetime, work: Progress) -> None:
    """Open the challenger's canary if its verdict is due (see `due`); otherwise nothing."""
    experiment = due(deployment, work)
    if experiment is None:
        return
    refused = _refusal(deployment, experiment, work)
    if refused:
        noted = experiment.model_copy(update={"promotion_message": refused})
        work.update(experiment=noted)
        work.event("Warning", EventReason.CHALLENGER_NOT_PROMOTED, refused)
        return
    _open_canary(deployment, experiment, now, work)


def _open_canary(
    deployment: ModelDeployment, experiment: ExperimentStatus, now: datetime, work: Progress
) -> None:
    trigger, version = trigger_id(experiment), experiment.challenger_version
    metrics = {
        name: value
        for name, value in (
            ("effect", experiment.effect),
            ("lower", experiment.lower),
            ("upper", experiment.upper),
        )
        if value is not None
    }
    entry = HistoryEntry(
        version=version,
        trigger=TRIGGER,
        trigger_id=trigger,
        outcome=HistoryOutcome.CANARY,
        metrics=metrics,
        message=f"ChallengerBetter against {experiment.champion_version}; canary started",
        started_at=now,
    )
    work.update(
        rollout=RolloutStatus(
            candidate_version=version,
            trigger_id=trigger,
            step=0,
            step_started_at=now,
            spec_hash=rollout_hash(deployment),
        ),
        experiment=experiment.model_copy(update={"promotion_trigger_id": trigger}),
        history=with_history(work.status, entry),
        last_rollback="",
    )
    work.event(
        "Normal",
        EventReason.CHALLENGER_HANDED_OVER,
        f"ChallengerBetter: {experiment.challenger} ({version}) is the candidate; canary starts",
    )
