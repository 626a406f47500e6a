"""Reading a traffic log back: per-user variant sequences and sticky violations (pure)."""

from __future__ import annotations

from devenv.traffic import TrafficRecord, sticky_violations, variant_sequences, variant_shares


def record(seq: int, user: str, variant: str | None) -> TrafficRecord:
    return TrafficRecord(
        seq=seq,
        sent_at="",
        elapsed=seq / 10,
        scenario="baseline",
        user_id=user,
        status=200 if variant else 0,
        variant=variant,
    )


LOG = [
    record(0, "a", "champion"),
    record(1, "b", "candidate"),
    record(2, "a", "candidate"),  # champion -> candidate: allowed (the canary grows)
    record(3, "b", None),  # unrouted (connection error): no evidence either way
    record(4, "b", "candidate"),
    record(5, "a", "champion"),  # candidate -> champion: a violation
    record(6, "a", "champion"),
    record(7, "c", "champion"),
]


def test_sequences_follow_sending_order_and_skip_unrouted_requests() -> None:
    assert variant_sequences(reversed(LOG)) == {
        "a": ["champion", "candidate", "champion", "champion"],
        "b": ["candidate", "candidate"],
        "c": ["champion"],
    }


def test_a_user_back_on_the_champion_is_reported_once() -> None:
    violations = sticky_violations(LOG, champion="champion")

    assert [(v.user_id, v.challenger, v.seq_on_challenger, v.seq_back_on_champion)
            for v in violations] == [("a", "candidate", 2, 5)]  # fmt: skip


def test_a_window_ending_at_rollback_excludes_the_return() -> None:
    assert sticky_violations(LOG, "champion", window=lambda r: r.seq < 5) == []


def test_shares_count_routed_requests_only() -> None:
    assert variant_shares(LOG) == {"candidate": 3 / 7, "champion": 4 / 7}
