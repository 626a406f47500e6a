"""A sequential test of the candidate's error rate against the champion's. Pure.

The question: is the candidate's error rate more than `maxErrorRateIncrease` (delta) above
the champion's, i.e. can we reject H0: p_candidate <= p_champion + delta? The test is asked
again every few seconds on cumulative counts, and it must abort a healthy candidate at most
alpha of the time over the whole step, however often it is asked. Decisions a naive version
gets wrong:

- **Repeated looks.** A fixed-sample test (a z-test on the two ratios) checked every few
  seconds rejects a healthy candidate far more often than its alpha. This test is an
  e-process: a statistic whose chance of ever crossing 1/alpha under H0 is at most alpha
  (Ville's inequality), so any number of looks, at any times, keeps the guarantee.
- **The champion's rate is not known.** Plugging in the champion's observed rate turns noise
  in it into false aborts. The statistic is a mixture likelihood ratio, universal-inference
  style: the numerator mixes the likelihood of both variants' counts over independent
  Jeffreys priors Beta(1/2, 1/2); the denominator is the likelihood maximised over the whole
  null set {p_c <= p_0 + delta}. For any true (p_c, p_0) in H0, numerator / L(p_c, p_0) is a
  nonnegative martingale with mean 1 in the order the requests arrived, and the maximised
  denominator can only make the ratio smaller, so the crossing bound holds.
- **Only counts are needed.** The mixture likelihood depends on the counts alone, not on the
  order of the requests, so cumulative counts from Prometheus at any instant suffice.
- **Missing data is not evidence.** No request on either side, or counts that do not make
  sense, is Inconclusive, never Failed.
- **Close calls wait.** A clearly bad candidate (50% errors) crosses the bound after a handful
  of failures; a candidate barely above the tolerance needs many requests, and until then the
  verdict is Continue.

It assumes requests fail independently given each variant's rate: a burst of failures shared
by both variants (a common backend down) is evidence against neither, but a burst in the
candidate alone counts fully.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

PRIOR = 0.5
"""Both Beta prior parameters (Jeffreys): weight near 0 and 1, where error rates live."""
_SEARCH_STEPS = 40


class SequentialVerdict(StrEnum):
    """What one look at the counts says."""

    FAILED = "Failed"
    """The candidate's error rate is above the champion's plus the tolerance: abort now."""
    CONTINUE = "Continue"
    """Not conclusive yet: keep serving and look again."""
    INCONCLUSIVE = "Inconclusive"
    """No data to judge (no requests on one side, or counts that do not add up)."""


@dataclass(frozen=True)
class ErrorCounts:
    """Cumulative requests and failed requests of one variant since the step started."""

    requests: int
    errors: int

    @property
    def valid(self) -> bool:
        return 0 <= self.errors <= self.requests

    @property
    def rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class SequentialResult:
    verdict: SequentialVerdict
    log_evidence: float
    """log of the e-value; Failed once it reaches log(1/alpha)."""
    threshold: float
    """log(1/alpha)."""
    message: str


def _xlog(count: int, p: float) -> float:
    """count * log(p), with 0 * log(0) = 0 (a probability of 0 is fine for no events)."""
    if count == 0:
        return 0.0
    return count * math.log(p) if p > 0 else -math.inf


def _log_likelihood(counts: ErrorCounts, p: float) -> float:
    return _xlog(counts.errors, p) + _xlog(counts.requests - counts.errors, 1.0 - p)


def _log_mixture(counts: ErrorCounts) -> float:
    """log of the Beta(PRIOR, PRIOR) mixture of the Bernoulli likelihood of `counts`."""

    def log_beta(a: float, b: float) -> float:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    failures = counts.requests - counts.errors
    return log_beta(PRIOR + counts.errors, PRIOR + failures) - log_beta(PRIOR, PRIOR)


def _null_log_likelihood(candidate: ErrorCounts, champion: ErrorCounts, delta: float) -> float:
    """The log-likelihood maximised over H0, when the unconstrained maximum lies outside it:
    then the maximum is on the boundary p_c = p_0 + delta, where it is concave in p_0."""

    def on_boundary(p0: float) -> float:
        return _log_likelihood(candidate, p0 + delta) + _log_likelihood(champion, p0)

    low, high = 0.0, 1.0 - delta
    best = max(on_boundary(low), on_boundary(high))
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    at_left, at_right = on_boundary(left), on_boundary(right)
    for _ in range(_SEARCH_STEPS):
        if at_left < at_right:
            low, left, at_left = left, right, at_right
            right = low + ratio * (high - low)
            at_right = on_boundary(right)
        else:
            high, right, at_right = right, left, at_left
            left = high - ratio * (high - low)
            at_left = on_boundary(left)
    return max(best, at_left, at_right)


def error_rate_test(
    candidate: ErrorCounts, champion: ErrorCounts, max_increase: float, alpha: float
) -> SequentialResult:
    """One look at the cumulative counts of a step: Failed, Continue or Inconclusive."""
    threshold = math.log(1.0 / alpha)
    if (
        not (candidate.valid and champion.valid)
        or candidate.requests == 0
        or champion.requests == 0
    ):
        return SequentialResult(
            SequentialVerdict.INCONCLUSIVE,
            0.0,
            threshold,
            f"no requests to compare (candidate {candidate.requests}, champion "
            f"{champion.requests})",
        )
    rates = f"5xx {candidate.errors}/{candidate.requests} vs champion {champion.errors}/"
    rates += f"{champion.requests}"
    if candidate.rate <= champion.rate + max_increase or max_increase >= 1.0:
        # The unconstrained maximum is in H0: the e-value is at most 1.
        return SequentialResult(SequentialVerdict.CONTINUE, 0.0, threshold, rates)
    numerator = _log_mixture(candidate) + _log_mixture(champion)
    log_evidence = numerator - _null_log_likelihood(candidate, champion, max_increase)
    verdict = SequentialVerdict.FAILED if log_evidence >= threshold else SequentialVerdict.CONTINUE
    return SequentialResult(
        verdict,
        log_evidence,
        threshold,
        f"{rates}; evidence {math.exp(min(log_evidence, 700.0)):.3g} (aborts at {1.0 / alpha:.3g})",
    )


__all__ = ["ErrorCounts", "SequentialResult", "SequentialVerdict", "error_rate_test"]
