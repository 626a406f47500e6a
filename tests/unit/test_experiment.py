"""The A/B experiment's sequential test: verdicts, interval, missing data and A/A error rate."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from devenv.experiment_simulation import Traffic, false_winners, simulate
from rollforward.experiment import (
    ArmCounts,
    ExperimentCriteria,
    ExperimentVerdict,
    half_width,
    judge,
    log_mixture_ratio,
)

pytestmark = pytest.mark.unit

CRITERIA = ExperimentCriteria(min_effect=0.02, alpha=0.05)


def test_missing_counts_are_inconclusive_never_a_winner() -> None:
    for champion, challenger in [
        (None, ArmCounts(1000, 300)),
        (ArmCounts(1000, 300), None),
        (None, None),
        (ArmCounts(1000, 1200), ArmCounts(1000, 300)),
        (ArmCounts(1000, 300), ArmCounts(-1, 0)),
    ]:
        look = judge(champion, challenger, CRITERIA)
        assert look.verdict is ExperimentVerdict.INCONCLUSIVE
        assert look.effect is None and not look.final


def test_too_few_samples_keep_running_until_max_duration() -> None:
    champion, challenger = ArmCounts(99, 10), ArmCounts(99, 90)
    assert judge(champion, challenger, CRITERIA).verdict is ExperimentVerdict.RUNNING
    expired = judge(champion, challenger, CRITERIA, expired=True)
    assert expired.verdict is ExperimentVerdict.INCONCLUSIVE


def test_clear_lift_is_challenger_better_with_an_interval_around_it() -> None:
    look = judge(ArmCounts(20_000, 6_000), ArmCounts(20_000, 6_800), CRITERIA)
    assert look.verdict is ExperimentVerdict.CHALLENGER_BETTER
    assert look.effect == pytest.approx(0.04)
    assert look.lower is not None and look.upper is not None
    assert 0 < look.lower < 0.04 < look.upper
    assert look.log_evidence >= math.log(1 / CRITERIA.alpha)


def test_clear_drop_is_champion_better_and_direction_can_flip() -> None:
    champion, challenger = ArmCounts(20_000, 6_800), ArmCounts(20_000, 6_000)
    assert judge(champion, challenger, CRITERIA).verdict is ExperimentVerdict.CHAMPION_BETTER
    lower_wins = ExperimentCriteria(min_effect=0.02, alpha=0.05, higher_is_better=False)
    assert judge(champion, challenger, lower_wins).verdict is ExperimentVerdict.CHALLENGER_BETTER


def test_tight_interval_inside_min_effect_is_no_difference() -> None:
    look = judge(ArmCounts(200_000, 60_000), ArmCounts(200_000, 60_200), CRITERIA)
    assert look.verdict is ExperimentVerdict.NO_DIFFERENCE
    assert look.lower is not None and look.upper is not None
    assert look.lower > -0.02 and look.upper < 0.02


def test_wide_interval_keeps_running_then_ends_inconclusive() -> None:
    champion, challenger = ArmCounts(2_000, 600), ArmCounts(2_000, 620)
    assert judge(champion, challenger, CRITERIA).verdict is ExperimentVerdict.RUNNING
    expired = judge(champion, challenger, CRITERIA, expired=True)
    assert expired.verdict is ExperimentVerdict.INCONCLUSIVE


def test_interval_edge_is_where_the_evidence_reaches_one_over_alpha() -> None:
    variance, tau, alpha = 2e-5, 0.02, 0.05
    edge = half_width(variance, tau, alpha)
    assert log_mixture_ratio(edge, variance, tau) == pytest.approx(math.log(1 / alpha))


def test_no_positive_outcome_yet_does_not_look_infinitely_precise() -> None:
    look = judge(ArmCounts(100, 0), ArmCounts(100, 0), CRITERIA)
    assert look.verdict is ExperimentVerdict.RUNNING
    assert look.lower is not None and look.lower < -0.02


def test_aa_false_winner_share_is_at_most_alpha_when_looking_every_interval() -> None:
    # Given two identical variants at 30%, a 90/10 split and 50 looks per experiment,
    traffic = Traffic(champion_per_interval=900, challenger_per_interval=100, intervals=50)
    runs = 800
    # when every experiment is judged after every interval until it ends,
    verdicts, _ = simulate(7, runs, 0.30, 0.30, traffic, CRITERIA)
    # then the share that named a winner stays within alpha (binomial noise allowed for).
    limit = stats.binom.isf(1e-3, runs, CRITERIA.alpha)
    assert false_winners(verdicts) <= limit
    assert sum(verdicts.values()) == runs


def test_a_real_lift_is_found() -> None:
    traffic = Traffic(champion_per_interval=900, challenger_per_interval=100, intervals=200)
    verdicts, _ = simulate(11, 200, 0.30, 0.40, traffic, CRITERIA)
    assert verdicts[ExperimentVerdict.CHALLENGER_BETTER] >= 190
    assert verdicts[ExperimentVerdict.CHAMPION_BETTER] == 0
