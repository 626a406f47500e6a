"""Hysteresis: from a sequence of check verdicts to the `Drifted` condition. Pure.

One significant check is weak evidence: at alpha 0.05, one check in twenty fires on noise.
`Drifted` therefore turns on only after `breachesToDrift` consecutive Drift verdicts, and
turns off only after `cleanChecksToRecover` consecutive NoDrift verdicts, so a single noisy
check can neither start a retraining nor cancel one.

Inconclusive neither advances nor resets a streak. Missing data is never evidence: a
Prometheus outage in the middle of a drift must not restart the count (that would let an
unreliable scrape hide drift forever), and it must not count as a breach or as a clean check
either (that would turn an outage into a decision). Consecutive Inconclusive checks are
counted separately, for `MonitoringAvailable`.

The state is four small integers and a boolean, so it lives in the resource's status and a
restarted operator resumes from it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rollforward.api.status import DriftTracking, DriftVerdict


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid"
    )


class HysteresisPolicy(_Frozen):
    """How many consecutive checks change the `Drifted` condition."""

    breaches_to_drift: int = Field(default=2, ge=1)
    """Consecutive Drift verdicts needed to set Drifted=True (K)."""
    clean_checks_to_recover: int = Field(default=2, ge=1)
    """Consecutive NoDrift verdicts needed to set Drifted=False again."""


def next_state(
    previous: DriftTracking,
    outcome: DriftVerdict,
    policy: HysteresisPolicy | None = None,
) -> DriftTracking:
    """The tracking state after one more check whose verdict is `outcome`."""
    rules = policy if policy is not None else HysteresisPolicy()
    checks = previous.checks + 1
    if outcome is DriftVerdict.INCONCLUSIVE:
        return previous.model_copy(
            update={"inconclusive_streak": previous.inconclusive_streak + 1, "checks": checks}
        )
    if outcome is DriftVerdict.DRIFT:
        breaches = previous.breach_streak + 1
        return previous.model_copy(
            update={
                "drifted": previous.drifted or breaches >= rules.breaches_to_drift,
                "breach_streak": breaches,
                "clean_streak": 0,
                "inconclusive_streak": 0,
                "checks": checks,
            }
        )
    clean = previous.clean_streak + 1
    return previous.model_copy(
        update={
            "drifted": previous.drifted and clean < rules.clean_checks_to_recover,
            "breach_streak": 0,
            "clean_streak": clean,
            "inconclusive_streak": 0,
            "checks": checks,
        }
    )


__all__ = ["DriftTracking", "HysteresisPolicy", "next_state"]
