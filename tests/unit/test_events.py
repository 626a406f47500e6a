"""Which Events reach the API server: one per transition, repeats aggregated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rollforward.events import Action, Event, EventAggregator, EventKey, coalesce

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY: EventKey = ("ns", "upsell", "Warning", "NoData", "no samples")


def child(verb: str, kind: str, name: str, detail: str = "") -> Event:
    return Event("Normal", f"{verb}{kind}", f"{verb} {kind} {name}{detail}")


class TestCoalesce:
    def test_a_first_reconcile_posts_one_event_for_its_seven_children(self) -> None:
        events = [
            child("Created", "Deployment", "a-champion"),
            child("Created", "Service", "a-champion"),
            child("Created", "Deployment", "a-challenger"),
            child("Created", "Service", "a-challenger"),
            child("Created", "Deployment", "a-router"),
            child("Created", "Service", "a-router"),
            child("Created", "ConfigMap", "a-router", " (split champion=90 challenger=10)"),
        ]
        [merged] = coalesce(events)
        assert merged.reason == "CreatedChildren"
        assert merged.message == (
            "Created Deployment a-champion, a-challenger, a-router; "
            "Service a-champion, a-challenger, a-router; "
            "ConfigMap a-router (split champion=90 challenger=10)"
        )

    def test_one_write_keeps_its_own_reason_and_message(self) -> None:
        event = child("Updated", "ConfigMap", "a-router", " (split champion=100)")
        assert coalesce([event]) == [event]

    def test_writes_of_one_kind_keep_the_kind(self) -> None:
        [merged] = coalesce([child("Deleted", "Job", "j1"), child("Deleted", "Job", "j2")])
        assert (merged.reason, merged.message) == ("DeletedJob", "Deleted Job j1, j2")

    def test_verbs_stay_apart_and_other_events_pass_unchanged(self) -> None:
        drift = Event("Warning", "DriftDetected", "Drifted: psi 0.4")
        events = [child("Created", "Deployment", "c"), drift, child("Deleted", "Service", "s")]
        out = coalesce(events)
        assert [e.reason for e in out] == ["CreatedDeployment", "DeletedService", "DriftDetected"]
        assert coalesce([drift]) == [drift]


class TestAggregator:
    def test_the_first_occurrence_is_created(self) -> None:
        decision = EventAggregator().decide(KEY, T0)
        assert (decision.action, decision.count) == (Action.CREATE, 1)

    def test_repeats_within_the_quiet_period_are_only_counted(self) -> None:
        events = EventAggregator(quiet_seconds=300)
        events.decide(KEY, T0)
        events.created(KEY, "upsell.1")
        repeats = [events.decide(KEY, T0 + timedelta(seconds=30 * i)) for i in range(1, 10)]
        assert {d.action for d in repeats} == {Action.SKIP}
        assert repeats[-1].count == 10

    def test_a_later_repeat_patches_the_count_of_the_same_event(self) -> None:
        events = EventAggregator(quiet_seconds=300)
        events.decide(KEY, T0)
        events.created(KEY, "upsell.1")
        events.decide(KEY, T0 + timedelta(seconds=60))
        later = events.decide(KEY, T0 + timedelta(seconds=301))
        assert (later.action, later.name, later.count, later.first) == (
            Action.PATCH,
            "upsell.1",
            3,
            T0,
        )
        # The quiet period starts again from that patch.
        assert events.decide(KEY, T0 + timedelta(seconds=400)).action is Action.SKIP

    def test_another_message_or_object_is_another_event(self) -> None:
        events = EventAggregator()
        events.decide(KEY, T0)
        events.created(KEY, "upsell.1")
        other_message: EventKey = ("ns", "upsell", "Warning", "NoData", "unreachable")
        other_object: EventKey = ("ns", "churn", "Warning", "NoData", "no samples")
        assert events.decide(other_message, T0).action is Action.CREATE
        assert events.decide(other_object, T0).action is Action.CREATE

    def test_a_failed_create_is_tried_again(self) -> None:
        events = EventAggregator()
        events.decide(KEY, T0)
        events.created(KEY, None)
        assert events.decide(KEY, T0 + timedelta(seconds=1)).action is Action.CREATE

    def test_old_entries_are_forgotten_and_the_size_is_bounded(self) -> None:
        events = EventAggregator(forget_seconds=3600, limit=3)
        events.decide(KEY, T0)
        events.created(KEY, "upsell.1")
        assert events.decide(KEY, T0 + timedelta(hours=2)).action is Action.CREATE
        for i in range(10):
            events.decide(("ns", f"m{i}", "Normal", "R", "x"), T0 + timedelta(hours=2))
        assert len(events) <= 3
