"""The canary's measurements: the sequential error rate, maxFailedRequests, latency guard."""

from __future__ import annotations

from typing import Any

from fixtures.decision_inputs import analysis_inputs, deployment, per_variant
from rollforward.analysis import (
    AnalysisInputs,
    error_rate,
    failed_requests,
    interim_analysis,
    latency_p99,
)
from rollforward.api import ModelDeployment
from rollforward.prometheus import QueryResult


def limited(limit: int | None, min_requests: int = 50) -> ModelDeployment:
    def mutate(spec: dict[str, Any]) -> None:
        spec["rollout"]["analysis"]["maxFailedRequests"] = limit
        spec["rollout"]["analysis"]["minRequests"] = min_requests

    return deployment(mutate=mutate)


def counts(
    candidate: tuple[float, float], champion: tuple[float, float], **extra: Any
) -> AnalysisInputs:
    """(requests, errors) of each variant over the step."""
    base = analysis_inputs()
    return AnalysisInputs(
        requests=per_variant({"candidate": candidate[0], "champion": champion[0]}),
        errors=per_variant({"candidate": candidate[1], "champion": champion[1]}),
        latency_p99=base.latency_p99,
        predictions=base.predictions,
        baseline=base.baseline,
        **extra,
    )


class TestErrorRate:
    def test_a_clearly_bad_candidate_fails_before_min_requests(self) -> None:
        result = error_rate(limited(None), counts((10, 5), (30, 0)), "champion")
        assert result.outcome == "Failed"
        assert "5/10" in result.message

    def test_a_healthy_step_with_enough_requests_succeeds(self) -> None:
        result = error_rate(limited(None), counts((400, 2), (1200, 6)), "champion")
        assert result.outcome == "Successful"

    def test_too_few_requests_is_inconclusive(self) -> None:
        result = error_rate(limited(None), counts((10, 0), (30, 0)), "champion")
        assert result.outcome == "Inconclusive"

    def test_a_close_call_is_measured_again_not_failed(self) -> None:
        # 2.5% against 1% with a tolerance of 1 pt: above it, but not certainly.
        result = error_rate(limited(None), counts((200, 5), (600, 6)), "champion")
        assert result.outcome == "Inconclusive"
        assert "close call" in result.message

    def test_extrapolated_counts_are_rounded_and_never_exceed_requests(self) -> None:
        result = error_rate(limited(None), counts((60.4, 61.2), (180.2, 0.4)), "champion")
        assert result.outcome == "Failed"
        assert "60/60" in result.message

    def test_a_failed_query_is_inconclusive(self) -> None:
        down = analysis_inputs(error="timeout")
        assert error_rate(limited(None), down, "champion").outcome == "Inconclusive"


class TestMaxFailedRequests:
    def test_aborts_at_the_limit_whatever_the_statistics_say(self) -> None:
        # 10 failures in 100,000 requests: a better error rate than the champion's.
        inputs = counts((100_000, 10), (100_000, 50))
        assert error_rate(limited(10), inputs, "champion").outcome == "Successful"
        result = failed_requests(limited(10), inputs)
        assert result.outcome == "Failed"
        assert result.value == 10

    def test_below_the_limit_succeeds(self) -> None:
        assert failed_requests(limited(11), counts((100_000, 10), (100_000, 50))).outcome == (
            "Successful"
        )

    def test_counts_the_whole_canary_when_given(self) -> None:
        canary = {
            "canary_requests": per_variant({"candidate": 900, "champion": 900}),
            "canary_errors": per_variant({"candidate": 12, "champion": 0}),
        }
        result = failed_requests(limited(10), counts((100, 1), (100, 0), **canary))
        assert result.outcome == "Failed"
        assert result.value == 12

    def test_a_failed_query_is_inconclusive(self) -> None:
        canary = {"canary_requests": QueryResult(error="down"), "canary_errors": QueryResult()}
        result = failed_requests(limited(10), counts((100, 50), (100, 0), **canary))
        assert result.outcome == "Inconclusive"

    def test_latency_is_not_judged_during_a_step(self) -> None:
        names = {
            r.name for r in interim_analysis(limited(5), counts((100, 0), (100, 0)), "champion")
        }
        assert names == {"errorRate", "failedRequests"}

    def test_is_looked_at_only_when_set(self) -> None:
        inputs = counts((100, 0), (100, 0))
        assert "failedRequests" not in {
            r.name for r in interim_analysis(limited(None), inputs, "champion")
        }
        assert "failedRequests" in {
            r.name for r in interim_analysis(limited(5), inputs, "champion")
        }


def test_latency_of_a_handful_of_requests_is_inconclusive() -> None:
    slow_start = analysis_inputs(requests=10, candidate_p99=2.0)
    assert latency_p99(limited(None), slow_start, "champion").outcome == "Inconclusive"
    slow = analysis_inputs(requests=400, candidate_p99=2.0)
    assert latency_p99(limited(None), slow, "champion").outcome == "Failed"
