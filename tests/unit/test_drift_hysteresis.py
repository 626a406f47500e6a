"""Hysteresis: K consecutive breaches to drift, consecutive clean checks to recover."""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given
from hypothesis import strategies as st

from rollforward.api import DriftVerdict
from rollforward.drift.hysteresis import DriftTracking, HysteresisPolicy, next_state

DRIFT, CLEAN, UNKNOWN = DriftVerdict.DRIFT, DriftVerdict.NO_DRIFT, DriftVerdict.INCONCLUSIVE


def _run(
    outcomes: Iterable[DriftVerdict],
    policy: HysteresisPolicy | None = None,
    start: DriftTracking | None = None,
) -> list[DriftTracking]:
    state = start if start is not None else DriftTracking()
    states = []
    for outcome in outcomes:
        state = next_state(state, outcome, policy)
        states.append(state)
    return states


def test_drifted_needs_k_consecutive_breaches() -> None:
    policy = HysteresisPolicy(breaches_to_drift=3)
    states = _run([DRIFT, DRIFT, DRIFT], policy)
    assert [s.drifted for s in states] == [False, False, True]
    assert states[-1].breach_streak == 3


def test_a_clean_check_resets_the_breach_streak() -> None:
    states = _run([DRIFT, CLEAN, DRIFT, CLEAN, DRIFT], HysteresisPolicy(breaches_to_drift=2))
    assert not any(s.drifted for s in states)
    assert states[-1].breach_streak == 1


def test_inconclusive_neither_advances_nor_resets_a_streak() -> None:
    policy = HysteresisPolicy(breaches_to_drift=2)
    states = _run([DRIFT, UNKNOWN, UNKNOWN, DRIFT], policy)
    assert [s.drifted for s in states] == [False, False, False, True]
    assert [s.breach_streak for s in states] == [1, 1, 1, 2]
    assert [s.inconclusive_streak for s in states] == [0, 1, 2, 0]


def test_only_inconclusive_checks_never_drift() -> None:
    states = _run([UNKNOWN] * 50, HysteresisPolicy(breaches_to_drift=1))
    assert not any(s.drifted for s in states)
    assert states[-1].inconclusive_streak == 50
    assert states[-1].checks == 50


def test_recovery_needs_consecutive_clean_checks() -> None:
    policy = HysteresisPolicy(breaches_to_drift=2, clean_checks_to_recover=3)
    drifted = _run([DRIFT, DRIFT], policy)[-1]
    states = _run([CLEAN, CLEAN, DRIFT, CLEAN, UNKNOWN, CLEAN, CLEAN], policy, drifted)
    assert [s.drifted for s in states] == [True, True, True, True, True, True, False]


def test_an_outage_while_drifted_keeps_drifted() -> None:
    drifted = _run([DRIFT, DRIFT])[-1]
    states = _run([UNKNOWN] * 10, start=drifted)
    assert all(s.drifted for s in states)


def test_state_round_trips_through_camel_case_json() -> None:
    state = _run([DRIFT, DRIFT, UNKNOWN, CLEAN])[-1]
    document = state.model_dump(by_alias=True, exclude_none=True)
    assert document == {
        "drifted": True,
        "breachStreak": 0,
        "cleanStreak": 1,
        "inconclusiveStreak": 0,
        "checks": 4,
    }
    assert DriftTracking.model_validate(document) == state


def _reference_drifted(outcomes: list[DriftVerdict], k: int, recover: int) -> bool:
    """A literal reading of the rule: drop Inconclusive, then look at the runs."""
    conclusive = [o for o in outcomes if o is not UNKNOWN]
    drifted = False
    for end in range(1, len(conclusive) + 1):
        tail = conclusive[:end]
        if not drifted and tail[-k:] == [DRIFT] * k and len(tail) >= k:
            drifted = True
        elif drifted and tail[-recover:] == [CLEAN] * recover and len(tail) >= recover:
            drifted = False
    return drifted


@given(
    st.lists(st.sampled_from([DRIFT, CLEAN, UNKNOWN]), max_size=40),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=4),
)
def test_matches_a_literal_reading_of_the_rule(
    outcomes: list[DriftVerdict], k: int, recover: int
) -> None:
    policy = HysteresisPolicy(breaches_to_drift=k, clean_checks_to_recover=recover)
    final = _run(outcomes, policy)[-1] if outcomes else DriftTracking()
    assert final.drifted == _reference_drifted(outcomes, k, recover)
    assert final.checks == len(outcomes)
