"""spec.experiment.onChallengerBetter: Promote, decision by decision (pure: no cluster, no
clock): which verdicts hand the challenger to the canary, when, and only once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fixtures.decision_inputs import T0, deployment
from rollforward.api import (
    ExperimentStatus,
    HistoryEntry,
    JobPhase,
    ModelDeployment,
    ModelDeploymentStatus,
    RetrainingStatus,
    RolloutStatus,
)
from rollforward.api import annotations as requests
from rollforward.kubectl.render import render_get
from rollforward.kubectl.style import Style
from rollforward.lifecycle import LifecycleInputs, LifecycleResult, advance, rollout_hash
from rollforward.lifecycle.canary import apply_verdict
from rollforward.lifecycle.challenger import trigger_id
from rollforward.lifecycle.progress import Progress
from rollforward.variants import served_variants

INITIAL = HistoryEntry(version="upsell:v1", trigger="initial", outcome="Serving", started_at=T0)


def _verdict(verdict: str = "ChallengerBetter", **changes: Any) -> ExperimentStatus:
    fields: dict[str, Any] = {
        "verdict": verdict,
        "metric": "outcomeRate",
        "champion": "champion",
        "challenger": "challenger",
        "champion_version": "upsell:v1",
        "challenger_version": "upsell:v1-gbm",
        "started_at": T0 - timedelta(days=2),
        "concluded_at": T0,
        "effect": 0.04,
        "lower": 0.01,
        "upper": 0.07,
        "confidence": 0.95,
    }
    return ExperimentStatus(**{**fields, **changes})


def _spec(on_better: str = "Promote", approval: str = "Automatic", image_only: bool = False) -> Any:
    def mutate(spec: dict[str, Any]) -> None:
        spec["quality"] = {"positiveLabel": "upgrade"}
        spec["experiment"] = {"onChallengerBetter": on_better}
        spec["rollout"]["approval"] = approval
        if image_only:
            spec["variants"][1] = {**spec["variants"][1], "image": "gbm:1"}
            del spec["variants"][1]["bento"]

    return mutate


def _md(
    experiment: ExperimentStatus | None = None,
    annotations: dict[str, str] | None = None,
    mutate: Any = None,
    **status: Any,
) -> ModelDeployment:
    current = ModelDeploymentStatus(
        history=[INITIAL], experiment=experiment or _verdict(), **status
    )
    return deployment(current, annotations=annotations, mutate=mutate or _spec())


def _step(md: ModelDeployment) -> LifecycleResult:
    return advance(md, LifecycleInputs(), T0)


def test_challenger_better_with_promote_opens_the_challengers_canary() -> None:
    outcome = _step(_md())
    rollout = outcome.status.rollout
    assert rollout is not None
    assert (rollout.candidate_version, rollout.step, rollout.promoting) == (
        "upsell:v1-gbm",
        0,
        False,
    )
    assert rollout.trigger_id == trigger_id(_verdict())
    entry = outcome.status.history[-1]
    assert (entry.version, entry.trigger, entry.trigger_id, entry.outcome) == (
        "upsell:v1-gbm",
        "experiment",
        rollout.trigger_id,
        "Canary",
    )
    assert entry.metrics == {"effect": 0.04, "lower": 0.01, "upper": 0.07}
    experiment = outcome.status.experiment
    assert experiment is not None and experiment.promotion_trigger_id == rollout.trigger_id
    assert [e.reason for e in outcome.events] == ["ChallengerHandedOver"]
    assert outcome.status.phase == "Canary"


@pytest.mark.parametrize("verdict", ["Running", "NoDifference", "ChampionBetter", "Inconclusive"])
def test_no_other_verdict_hands_the_challenger_over(verdict: str) -> None:
    outcome = _step(_md(_verdict(verdict)))
    assert outcome.status.rollout is None
    assert not outcome.events


def test_report_the_default_only_reports_the_verdict() -> None:
    outcome = _step(_md(mutate=_spec(on_better="Report")))
    assert outcome.status.rollout is None
    md = deployment(
        ModelDeploymentStatus(history=[INITIAL], experiment=_verdict()),
        mutate=lambda spec: spec.update(quality={"positiveLabel": "up"}, experiment={}),
    )
    assert md.spec.experiment is not None
    assert md.spec.experiment.on_challenger_better == "Report"
    assert _step(md).status.rollout is None


def _running_job() -> RetrainingStatus:
    return RetrainingStatus(
        trigger_id="t1",
        trigger="onDrift",
        job_name="upsell-retrain-t1-1",
        attempt=1,
        phase=JobPhase.RUNNING,
        started_at=T0,
    )


def _other_canary() -> RolloutStatus:
    return RolloutStatus(
        candidate_version="upsell:v2",
        trigger_id="t1",
        step_started_at=T0,
        spec_hash=rollout_hash(deployment(mutate=_spec())),
    )


def test_not_stable_the_hand_over_waits() -> None:
    retraining = _step(_md(retraining=_running_job()))
    assert retraining.status.rollout is None
    assert "ChallengerHandedOver" not in {e.reason for e in retraining.events}
    retry = _running_job().model_copy(
        update={"phase": JobPhase.FAILED, "next_attempt_at": T0 + timedelta(hours=1)}
    )
    assert _step(_md(retraining=retry)).status.rollout is None
    canary = _step(_md(rollout=_other_canary())).status.rollout
    assert canary is not None and canary.candidate_version == "upsell:v2"


def test_paused_the_hand_over_waits_and_starts_once_resumed() -> None:
    paused = _step(_md(annotations={requests.PAUSED: "true"}))
    assert paused.status.rollout is None
    assert _step(_md()).status.rollout is not None


def test_approval_manual_the_challenger_waits_for_it_like_a_retrained_candidate() -> None:
    md = _md(mutate=_spec(approval="Manual"))
    opened = _step(md).status.rollout
    assert opened is not None and not opened.promoting
    last = opened.model_copy(
        update={"step": 1, "candidate_ready": True, "step_started_at": T0 - timedelta(hours=1)}
    )
    md = md.model_copy(update={"status": md.status.model_copy(update={"rollout": last})})
    work = Progress(status=md.status)
    apply_verdict(md, last, [], T0, work)
    assert work.status.rollout is not None
    assert work.status.rollout.awaiting_approval and not work.status.rollout.promoting


def test_one_verdict_opens_one_canary_even_after_the_canary_ended() -> None:
    first = _step(_md())
    assert first.status.experiment is not None
    # The canary ended (promoted or rolled back); the verdict is still there.
    ended = first.status.model_copy(update={"rollout": None})
    again = advance(_md().model_copy(update={"status": ended}), LifecycleInputs(), T0)
    assert again.status.rollout is None
    assert not again.events


def test_a_lost_status_write_hands_over_under_the_same_trigger() -> None:
    """A restarted operator decides again from the same status: the same canary, never a
    second entry in history."""
    one, two = _step(_md()), _step(_md())
    assert one.status.rollout is not None and two.status.rollout is not None
    assert one.status.rollout.trigger_id == two.status.rollout.trigger_id
    assert one.status.history == two.status.history


def test_a_version_rolled_back_before_is_reported_once_and_never_canaried() -> None:
    outcome = _step(_md(failed_versions=["upsell:v1-gbm"]))
    assert outcome.status.rollout is None
    assert [e.reason for e in outcome.events] == ["ChallengerNotPromoted"]
    experiment = outcome.status.experiment
    assert experiment is not None and "never deployed again" in experiment.promotion_message
    again = advance(_md().model_copy(update={"status": outcome.status}), LifecycleInputs(), T0)
    assert again.status.rollout is None and not again.events


def test_an_image_only_challenger_is_not_canaried() -> None:
    outcome = _step(_md(mutate=_spec(image_only=True)))
    assert outcome.status.rollout is None
    assert [e.reason for e in outcome.events] == ["ChallengerNotPromoted"]


def test_the_promoted_challengers_arm_leaves_and_its_share_goes_to_the_champion() -> None:
    md = _md(champion="upsell:v1-gbm", champion_source="upsell:v1")
    served = served_variants(md.spec, md.status)
    assert [(v.name, v.version, v.weight) for v in served] == [("champion", "upsell:v1-gbm", 100)]


def test_git_naming_one_bento_for_both_arms_still_serves_both() -> None:
    """An A/A test in Git is not a promotion: both arms serve."""

    def same_bento(spec: dict[str, Any]) -> None:
        spec["variants"][1]["bento"] = "upsell:v1"

    md = deployment(ModelDeploymentStatus(), mutate=same_bento)
    served = served_variants(md.spec, md.status)
    assert [(v.name, v.weight) for v in served] == [("champion", 90), ("challenger", 10)]


def test_get_names_the_experiment_as_the_candidates_source() -> None:
    md = _md()
    handed = md.model_copy(update={"status": _step(md).status})
    screen = render_get(handed, T0, Style(False))
    assert "candidate upsell:v1-gbm (the experiment's challenger)" in screen
    assert "onChallengerBetter Promote: canary started (experiment-" in screen


def test_a_verdict_against_a_replaced_champion_is_never_acted_on() -> None:
    """A retrained candidate was promoted while the verdict waited: the verdict compared
    the challenger with a champion that no longer serves."""
    md = _md(champion="upsell:v2", champion_source="upsell:v1")
    outcome = _step(md)
    assert outcome.status.rollout is None
    assert not outcome.events
