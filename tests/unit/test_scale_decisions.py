"""The pure parts of serving many resources: the watch-fed cache, the debounced queue, and
shard ownership."""

from __future__ import annotations

from typing import Any

import pytest

from rollforward.cache import ObjectCache
from rollforward.sharding import Shard, shard_of
from rollforward.workqueue import DebounceQueue

pytestmark = pytest.mark.unit

OWNER = "rollforward.io/model-deployment"


def child(name: str, version: int, owner: str = "upsell", **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": str(version),
            "labels": {OWNER: owner},
            "managedFields": [{"manager": "rollforward"}],
            **extra,
        }
    }


class TestCache:
    def test_children_are_found_by_owner_without_managed_fields(self) -> None:
        cache = ObjectCache()
        cache.upsert("Deployment", child("upsell-champion", 5))
        cache.upsert("Service", child("upsell-champion", 6))
        cache.upsert("Deployment", child("churn-champion", 7, owner="churn"))
        found = cache.children("ns", "upsell", ("Deployment", "ConfigMap"))
        assert list(found) == [("Deployment", "upsell-champion")]
        assert "managedFields" not in found[("Deployment", "upsell-champion")]["metadata"]

    def test_an_older_copy_never_replaces_our_own_newer_write(self) -> None:
        cache = ObjectCache()
        assert cache.upsert("Deployment", child("a", 10))  # our apply's answer
        assert not cache.upsert("Deployment", child("a", 9))  # the watch, late
        assert not cache.upsert("Deployment", child("a", 10))  # the echo is no news
        assert cache.upsert("Deployment", child("a", 11))
        stored = cache.get("Deployment", "ns", "a")
        assert stored is not None and stored["metadata"]["resourceVersion"] == "11"

    def test_a_read_is_a_copy_no_reconcile_can_change_the_cache_through(self) -> None:
        cache = ObjectCache()
        cache.upsert("Deployment", child("a", 10, annotations={"hash": "1"}))
        read = cache.get("Deployment", "ns", "a")
        assert read is not None
        read["metadata"]["annotations"]["hash"] = "2"
        again = cache.get("Deployment", "ns", "a")
        assert again is not None and again["metadata"]["annotations"] == {"hash": "1"}
        found = cache.children("ns", "upsell", ("Deployment",))
        assert found[("Deployment", "a")] == again and found[("Deployment", "a")] is not again

    def test_a_relist_removes_what_a_broken_watch_missed_and_names_the_owners(self) -> None:
        cache = ObjectCache()
        cache.upsert("Deployment", child("upsell-champion", 5))
        cache.upsert("Deployment", child("churn-champion", 6, owner="churn"))
        cache.upsert("Deployment", child("fraud-champion", 30, owner="fraud"))
        # The list (at version 20) lost churn's child, changed upsell's, and was taken
        # before fraud's child was created.
        changed = cache.replace("Deployment", [child("upsell-champion", 15)], "20")
        assert changed == {("ns", "upsell"), ("ns", "churn")}
        assert cache.children("ns", "churn", ("Deployment",)) == {}
        assert cache.get("Deployment", "ns", "fraud-champion") is not None

    def test_a_relist_of_one_namespace_leaves_the_others(self) -> None:
        cache = ObjectCache()
        other = child("x", 5)
        other["metadata"]["namespace"] = "elsewhere"
        cache.upsert("Deployment", other)
        assert cache.replace("Deployment", [], "20", namespace="ns") == set()
        assert len(cache) == 1

    def test_a_model_deployment_is_its_own_owner_in_a_relist(self) -> None:
        cache = ObjectCache()
        cache.upsert("ModelDeployment", {"metadata": {"name": "gone", "namespace": "ns"}})
        assert cache.replace("ModelDeployment", [], "20") == {("ns", "gone")}
        assert cache.keys("ModelDeployment") == []


class TestDebounceQueue:
    def test_a_burst_of_child_events_is_one_reconcile_due_from_its_first_event(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        for at in (0.0, 0.1, 0.2, 0.4):
            queue.add("a", at)
        assert len(queue) == 1
        assert queue.take(0.49) is None
        assert queue.take(0.5) == "a"
        assert queue.take(10.0) is None

    def test_a_change_of_a_quiet_resource_is_due_at_once(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        queue.add("a", 3.0, leading=True)
        assert queue.take(3.0) == "a"

    def test_the_children_answering_a_leading_reconcile_are_one_trailing_one(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        queue.add("a", 0.0, leading=True)
        assert queue.take(0.0) == "a"
        for at in (0.05, 0.1, 0.2):  # the echoes of its writes, during the reconcile
            queue.add("a", at)
        queue.done("a", 0.3)
        queue.add("a", 0.4)  # and just after it
        assert len(queue) == 1
        assert queue.take(0.79) is None
        assert queue.take(0.8) == "a"  # gathered: `delay` after the reconcile ended
        queue.done("a", 0.9)
        assert queue.take(100.0) is None

    def test_a_change_just_after_a_reconcile_waits_for_the_debounce(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        queue.add("a", 0.0, leading=True)
        assert queue.take(0.0) == "a"
        queue.done("a", 1.0)
        for at in (1.1, 1.2, 1.45):  # a steady stream cannot postpone it
            queue.add("a", at, leading=True)
        assert queue.take(1.49) is None and queue.take(1.5) == "a"

    def test_a_change_after_the_debounce_is_due_at_once_again(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        queue.add("a", 0.0, leading=True)
        assert queue.take(0.0) == "a"
        queue.done("a", 1.0)
        queue.add("a", 1.5, leading=True)
        assert queue.take(1.5) == "a"

    def test_a_change_brings_a_waiting_child_burst_forward(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        queue.add("a", 0.0)
        queue.add("a", 0.1, leading=True)
        assert len(queue) == 1 and queue.take(0.1) == "a"

    def test_a_flood_on_one_key_does_not_push_back_the_others(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        queue.add("flooded", 0.0)
        for i in range(100):
            queue.add(f"other-{i}", 0.01 * i)
            queue.add("flooded", 0.01 * i)  # keeps its place, gains no second one
        served = []
        while (key := queue.take(100.0)) is not None:
            served.append(key)
            queue.done(key, 100.0)
        assert served == ["flooded", *(f"other-{i}" for i in range(100))]

    def test_an_event_during_a_reconcile_runs_it_once_more_afterwards(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        queue.add("a", 0.0)
        assert queue.take(1.0) == "a"
        queue.add("a", 1.1)
        queue.add("a", 1.2)
        assert queue.take(5.0) is None  # never two reconciles of one key at once
        queue.done("a", 2.0)
        assert queue.take(2.4) is None and queue.take(2.5) == "a"

    def test_without_a_debounce_an_event_during_a_reconcile_is_due_when_it_ends(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.0)
        queue.add("a", 0.0, leading=True)
        assert queue.take(0.0) == "a"
        queue.add("a", 0.1)
        queue.done("a", 0.2)
        assert queue.take(0.2) == "a"

    def test_an_earlier_need_wins_over_a_later_one(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        queue.add("a", 0.0, delay=30.0)  # a resync spread over its period
        queue.add("a", 1.0)  # a fresh event
        assert queue.take(1.5) == "a"

    def test_a_look_scheduled_ahead_is_not_brought_forward_by_the_debounce(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.5)
        queue.add("a", 0.0, delay=30.0)
        assert queue.take(29.9) is None and queue.take(30.0) == "a"

    def test_a_forgotten_key_is_not_served(self) -> None:
        queue: DebounceQueue[str] = DebounceQueue(delay=0.0)
        queue.add("a", 0.0)
        queue.forget("a")
        assert queue.take(1.0) is None and queue.next_due() is None


class TestShards:
    KEYS = [(f"ns-{i % 7}", f"model-{i}") for i in range(1000)]

    def test_two_shards_are_disjoint_and_complete(self) -> None:
        shards = [Shard.parse("0/2"), Shard.parse("1/2")]
        owners = [[s for s in shards if s.owns(ns, name)] for ns, name in self.KEYS]
        assert all(len(found) == 1 for found in owners)
        per_shard = [sum(1 for found in owners if found[0] is s) for s in shards]
        assert min(per_shard) > 400  # a hash, not a skew

    def test_the_owner_is_the_same_in_every_process(self) -> None:
        # SHA-256 of namespace/name, not the per-process salted hash(): pinned values that
        # every replica (and every restart of one) computes alike.
        assert [shard_of("default", f"m{i}", 2) for i in range(8)] == [1, 1, 1, 0, 1, 0, 1, 1]

    def test_one_shard_owns_everything(self) -> None:
        assert all(Shard.parse("0/1").owns(ns, name) for ns, name in self.KEYS)

    @pytest.mark.parametrize("text", ["2/2", "1", "-1/2", "a/b", "0/0"])
    def test_a_malformed_shard_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError):
            Shard.parse(text)
