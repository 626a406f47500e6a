"""The sequential error-rate test: its stopping rule, alpha under repeated looks, Inconclusive."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from rollforward.sequential import ErrorCounts, SequentialVerdict, error_rate_test

ALPHA = 0.05
DELTA = 0.01
TOLERATED_FAILURE = 1e-3

Z_ALPHA = float(stats.norm.isf(ALPHA))
Look = Callable[[ErrorCounts, ErrorCounts], bool]
"""Whether one look at (candidate, champion) counts aborts."""


def sequential(candidate: ErrorCounts, champion: ErrorCounts) -> bool:
    return error_rate_test(candidate, champion, DELTA, ALPHA).verdict is SequentialVerdict.FAILED


def naive_z_test(candidate: ErrorCounts, champion: ErrorCounts) -> bool:
    """A one-sided fixed-sample z-test of p_c - p_0 > delta: valid for one look only."""
    variance = candidate.rate * (1 - candidate.rate) / candidate.requests
    variance += champion.rate * (1 - champion.rate) / champion.requests
    if variance <= 0:
        return False
    z = (candidate.rate - champion.rate - DELTA) / math.sqrt(variance)
    return z > Z_ALPHA


def _abort_limit(canaries: int) -> int:
    """The most aborts consistent with a false-abort rate of at most alpha: a Binomial(n,
    alpha) count exceeds it with probability 1e-3. Seeds are fixed, so this is deterministic."""
    return int(stats.binom.isf(TOLERATED_FAILURE, canaries, ALPHA))


def aborted_canaries(
    look: Look,
    canaries: int,
    p_candidate: float,
    p_champion: float,
    candidate_requests: int,
    requests_per_look: int,
    seed: int,
) -> int:
    """Canaries (of `canaries`) aborted at any look. The champion serves three requests per
    candidate request (the demo's 25% step); a look every `requests_per_look` candidate
    requests."""
    rng = random.Random(seed)
    aborted = 0
    for _ in range(canaries):
        e_c = n_0 = e_0 = 0
        for n_c in range(1, candidate_requests + 1):
            e_c += rng.random() < p_candidate
            for _ in range(3):
                n_0 += 1
                e_0 += rng.random() < p_champion
            if n_c % requests_per_look == 0 and look(ErrorCounts(n_c, e_c), ErrorCounts(n_0, e_0)):
                aborted += 1
                break
    return aborted


class TestStoppingRule:
    def test_fails_exactly_when_the_evidence_reaches_one_over_alpha(self) -> None:
        for errors in range(0, 30):
            result = error_rate_test(ErrorCounts(60, errors), ErrorCounts(180, 1), DELTA, ALPHA)
            assert result.threshold == pytest.approx(math.log(1 / ALPHA))
            crossed = result.log_evidence >= result.threshold
            assert (result.verdict is SequentialVerdict.FAILED) == crossed, errors

    def test_a_candidate_no_worse_than_the_tolerance_never_fails(self) -> None:
        result = error_rate_test(ErrorCounts(1000, 20), ErrorCounts(3000, 30), DELTA, ALPHA)
        assert result.verdict is SequentialVerdict.CONTINUE
        assert result.log_evidence <= 0

    def test_a_half_failing_candidate_stops_after_a_few_failures(self) -> None:
        rng = random.Random(7)
        failures_at_abort = []
        for _ in range(200):
            n_c = e_c = 0
            while True:
                n_c += 1
                e_c += rng.random() < 0.5
                if sequential(ErrorCounts(n_c, e_c), ErrorCounts(3 * n_c, 0)):
                    failures_at_abort.append(e_c)
                    break
        failures_at_abort.sort()
        assert failures_at_abort[len(failures_at_abort) // 2] <= 5
        assert failures_at_abort[-1] <= 10

    def test_a_close_call_needs_more_evidence_than_a_clear_failure(self) -> None:
        clear = error_rate_test(ErrorCounts(40, 20), ErrorCounts(120, 0), DELTA, ALPHA)
        close = error_rate_test(ErrorCounts(40, 1), ErrorCounts(120, 0), DELTA, ALPHA)
        assert clear.verdict is SequentialVerdict.FAILED
        assert close.verdict is SequentialVerdict.CONTINUE

    def test_more_data_at_the_same_rates_is_more_evidence(self) -> None:
        evidence = [
            error_rate_test(ErrorCounts(n, n // 10), ErrorCounts(3 * n, 0), DELTA, ALPHA)
            for n in (20, 40, 80, 160)
        ]
        logs = [e.log_evidence for e in evidence]
        assert logs == sorted(logs)
        assert evidence[-1].verdict is SequentialVerdict.FAILED


class TestInconclusive:
    @pytest.mark.parametrize(
        ("candidate", "champion"),
        [
            (ErrorCounts(0, 0), ErrorCounts(100, 0)),
            (ErrorCounts(100, 90), ErrorCounts(0, 0)),
            (ErrorCounts(10, 11), ErrorCounts(100, 0)),
            (ErrorCounts(10, 5), ErrorCounts(100, -1)),
        ],
    )
    def test_missing_or_impossible_counts_are_inconclusive(
        self, candidate: ErrorCounts, champion: ErrorCounts
    ) -> None:
        result = error_rate_test(candidate, champion, DELTA, ALPHA)
        assert result.verdict is SequentialVerdict.INCONCLUSIVE

    @given(
        errors=st.integers(0, 10_000),
        champion_requests=st.integers(0, 10_000),
        champion_errors=st.integers(0, 10_000),
    )
    def test_no_candidate_request_never_aborts(
        self, errors: int, champion_requests: int, champion_errors: int
    ) -> None:
        champion = ErrorCounts(champion_requests, champion_errors)
        for candidate in (ErrorCounts(0, 0), ErrorCounts(0, errors)):
            verdict = error_rate_test(candidate, champion, DELTA, ALPHA).verdict
            assert verdict is not SequentialVerdict.FAILED

    @given(requests=st.integers(1, 100_000), errors=st.integers(0, 100_000))
    def test_no_champion_request_never_aborts(self, requests: int, errors: int) -> None:
        candidate = ErrorCounts(requests, min(errors, requests))
        verdict = error_rate_test(candidate, ErrorCounts(0, 0), DELTA, ALPHA).verdict
        assert verdict is SequentialVerdict.INCONCLUSIVE


class TestAlphaUnderRepeatedLooks:
    """Healthy candidates, looked at again and again: aborts stay within alpha."""

    CANARIES = 300

    @pytest.mark.parametrize(
        ("p_candidate", "p_champion"),
        [(0.01, 0.01), (0.03, 0.02), (0.15, 0.14)],
        ids=["equal", "at-the-tolerance", "at-the-tolerance-high"],
    )
    def test_false_aborts_of_a_step_checked_every_few_seconds(
        self, p_candidate: float, p_champion: float
    ) -> None:
        # 6 candidate requests/s (25 req/s at 25%), checked every 5 s for two minutes.
        aborted = aborted_canaries(sequential, self.CANARIES, p_candidate, p_champion, 720, 30, 11)
        assert aborted <= _abort_limit(self.CANARIES)

    def test_looking_after_every_request_does_not_inflate_false_aborts(self) -> None:
        every = aborted_canaries(sequential, self.CANARIES, 0.03, 0.02, 300, 1, 12)
        assert every <= _abort_limit(self.CANARIES)

    def test_the_simulation_sees_inflation_when_there_is_some(self) -> None:
        """The control: a fixed-sample z-test looked at after every request aborts healthy
        candidates far more often than alpha, and this simulation shows it."""
        every = aborted_canaries(naive_z_test, self.CANARIES, 0.03, 0.02, 300, 1, 12)
        assert every > _abort_limit(self.CANARIES)

    def test_a_bad_candidate_is_caught_by_the_same_looks(self) -> None:
        aborted = aborted_canaries(sequential, 100, 0.2, 0.01, 720, 30, 13)
        assert aborted >= 95
