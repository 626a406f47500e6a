"""Claims make a label count once per prediction across processes; the decision is pure."""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from devenv.bento import metric_value, parse_metrics
from rollforward.serving import contract
from rollforward.serving.feedback_claims import (
    Claim,
    ClaimResult,
    FeedbackClaims,
    FeedbackDecision,
    UnverifiedReason,
    claim_key,
    decide,
)
from rollforward.serving.instrumentation import Instrumentation
from rollforward.serving.metrics import MetricIdentity, ServingMetrics
from rollforward.serving.objectstore.client import Presence, StoreError
from rollforward.serving.settings import ServingSettings

KEY = "a-feedback-key-of-enough-length"
LABELS = ("stay", "upgrade")


class SharedBucket:
    """An in-memory bucket with S3's conditional create; `broken` makes every call fail."""

    def __init__(self, honours_condition: bool = True) -> None:
        self.objects: dict[str, bytes] = {}
        self.honours_condition = honours_condition
        self.broken = False
        self.calls = 0

    def create(self, key: str, data: bytes) -> bool:
        self.calls += 1
        if self.broken:
            raise StoreError(Presence.UNREACHABLE, "timed out")
        if key in self.objects and self.honours_condition:
            return False
        self.objects[key] = data
        return True

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CLAIMED = Claim(ClaimResult.CLAIMED)
TAKEN = Claim(ClaimResult.TAKEN)
UNSETTLED = Claim(ClaimResult.UNVERIFIED, UnverifiedReason.STORE_ERROR)


@pytest.mark.parametrize(
    ("first_here", "claim", "decision"),
    [
        (True, CLAIMED, FeedbackDecision.COUNT),
        (True, TAKEN, FeedbackDecision.DUPLICATE),
        (True, UNSETTLED, FeedbackDecision.COUNT_UNVERIFIED),
        (False, None, FeedbackDecision.DUPLICATE),
        (False, CLAIMED, FeedbackDecision.DUPLICATE),
    ],
)
def test_the_decision_counts_only_a_first_label(
    first_here: bool, claim: Claim | None, decision: FeedbackDecision
) -> None:
    assert decide(first_here, claim) is decision


def test_the_key_depends_on_the_id_alone_and_is_partitioned_by_the_prediction_day() -> None:
    issued = int(datetime(2026, 3, 4, 23, 59, tzinfo=UTC).timestamp())

    key = claim_key("/logs/", "soom-upsell", "abc.upgrade.xyz.1.mac", issued)

    assert key.startswith("logs/soom-upsell/feedback-claims/date=2026-03-04/")
    assert key == claim_key("logs", "soom-upsell", "abc.upgrade.xyz.1.mac", issued)
    assert key != claim_key("logs", "soom-upsell", "abd.upgrade.xyz.1.mac", issued)
    assert "/" not in key.rsplit("/", 1)[1] and len(key.rsplit("/", 1)[1]) == 32


def test_the_first_claim_wins_and_every_later_one_anywhere_is_taken() -> None:
    bucket = SharedBucket()
    replica_a = FeedbackClaims(bucket, "logs", "m")
    replica_b = FeedbackClaims(bucket, "logs", "m")

    assert replica_a.claim("id-1", 0, "stay").result is ClaimResult.CLAIMED
    assert replica_b.claim("id-1", 0, "stay").result is ClaimResult.TAKEN
    assert replica_a.claim("id-1", 0, "upgrade").result is ClaimResult.TAKEN
    assert replica_b.claim("id-2", 0, "stay").result is ClaimResult.CLAIMED
    # Two markers and no probe left behind.
    assert len(bucket.objects) == 2


def test_a_store_error_falls_back_and_skips_the_store_until_the_back_off_ends() -> None:
    bucket, clock = SharedBucket(), Clock()
    claims = FeedbackClaims(bucket, "logs", "m", backoff_seconds=30, clock=clock)
    assert claims.claim("id-0", 0, "stay").result is ClaimResult.CLAIMED
    bucket.broken = True

    failed = claims.claim("id-1", 0, "stay")
    calls = bucket.calls
    skipped = claims.claim("id-2", 0, "stay")

    assert failed.reason is UnverifiedReason.STORE_ERROR and "timed out" in failed.detail
    assert skipped.reason is UnverifiedReason.BACKING_OFF and bucket.calls == calls
    bucket.broken = False
    clock.now += 31
    assert claims.claim("id-2", 0, "stay").result is ClaimResult.CLAIMED


def test_a_store_that_ignores_the_condition_is_never_trusted() -> None:
    bucket = SharedBucket(honours_condition=False)
    claims = FeedbackClaims(bucket, "logs", "m")

    first = claims.claim("id-1", 0, "stay")
    second = claims.claim("id-1", 0, "stay")

    assert first.reason is second.reason is UnverifiedReason.UNSUPPORTED
    assert "If-None-Match" in first.detail and not second.detail  # logged once
    assert not bucket.objects  # the probe cleaned up; no marker was written


class ProbesMeetBucket(SharedBucket):
    """Holds each first probe create until two have happened: two threads probe at once."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(2, timeout=5)

    def create(self, key: str, data: bytes) -> bool:
        created = super().create(key, data)
        if "/probe/" in key and created:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait()
        return created


def test_two_threads_probing_at_once_both_trust_the_store() -> None:
    claims = FeedbackClaims(ProbesMeetBucket(), "logs", "m")
    results: dict[str, Claim] = {}

    def claim(prediction_id: str) -> None:
        results[prediction_id] = claims.claim(prediction_id, 0, "stay")

    threads = [threading.Thread(target=claim, args=(f"id-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert {r.result for r in results.values()} == {ClaimResult.CLAIMED}


def _replica(registry: CollectorRegistry, claims: FeedbackClaims | None) -> Instrumentation:
    settings = ServingSettings(model="soom", version="v2", variant="champion", feedback_secret=KEY)
    return Instrumentation(
        settings,
        LABELS,
        "upgrade",
        {},
        metrics=ServingMetrics(MetricIdentity("soom", "v2", "champion"), registry),
        logger=logging.getLogger("test.claims"),
        claims=claims,
    )


def _count(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return metric_value(parse_metrics(generate_latest(registry).decode()), name, **labels)


def test_a_label_resent_to_another_replica_counts_once_and_is_a_duplicate_there() -> None:
    bucket = SharedBucket()
    registries = [CollectorRegistry(), CollectorRegistry()]
    a, b = (_replica(r, FeedbackClaims(bucket, "logs", "soom")) for r in registries)
    prediction_id = a.record_prediction("upgrade", 0.9, {})
    label = {"predictionId": prediction_id, "label": "stay"}

    first, resent = a.record_feedback(label), b.record_feedback(label)

    assert first.accepted and not resent.accepted and "duplicate_feedback" in resent.reason
    outcomes = [_count(r, contract.OUTCOMES_TOTAL, label="stay") for r in registries]
    assert outcomes == [1, 0]
    assert _count(registries[1], contract.INPUT_ANOMALIES_TOTAL, kind="duplicate_feedback") == 1


def test_without_a_store_a_label_counts_per_process_and_says_so() -> None:
    registry = CollectorRegistry()
    replica = _replica(registry, None)
    prediction_id = replica.record_prediction("upgrade", 0.9, {})
    label = {"predictionId": prediction_id, "label": "upgrade"}

    assert replica.record_feedback(label).accepted
    assert not replica.record_feedback(label).accepted  # the per-process fast path

    assert _count(registry, contract.OUTCOMES_TOTAL, label="upgrade") == 1
    assert _count(registry, contract.FEEDBACK_UNVERIFIED_TOTAL, reason="no_store") == 1


def test_a_broken_store_never_fails_the_label_and_counts_it_unverified() -> None:
    bucket = SharedBucket()
    bucket.broken = True
    registry = CollectorRegistry()
    replica = _replica(registry, FeedbackClaims(bucket, "logs", "soom"))
    ids = [replica.record_prediction("upgrade", 0.9, {}) for _ in range(2)]

    verdicts = [replica.record_feedback({"predictionId": i, "label": "stay"}) for i in ids]

    assert all(v.accepted for v in verdicts)
    assert _count(registry, contract.OUTCOMES_TOTAL, label="stay") == 2
    assert _count(registry, contract.FEEDBACK_UNVERIFIED_TOTAL, reason="store_error") == 1
    assert _count(registry, contract.FEEDBACK_UNVERIFIED_TOTAL, reason="backing_off") == 1
