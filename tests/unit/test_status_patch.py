"""The status patch is a JSON merge patch: applied as the API server applies it (objects merged
at every depth), it turns the old status into the new one, nested removals included."""

from __future__ import annotations

from typing import Any

from fixtures.fakes import merge_patch
from rollforward.reconcile import status_patch

OLD: dict[str, Any] = {
    "phase": "Stable",
    "experiment": {
        "verdict": "NoDifference",
        "championVersion": "upsell:v1",
        "concludedAt": "2026-12-01T03:00:00Z",
        "effect": -0.019,
        "looks": 9,
    },
    "history": [{"version": "upsell:v1"}],
    "rollout": {"step": 1},
}


def test_a_nested_field_that_became_none_is_nulled_not_kept() -> None:
    """A new experiment after a promotion: no concludedAt, no effect yet."""
    new = {
        "phase": "Stable",
        "experiment": {"verdict": "Running", "championVersion": "soom-upsell:new", "looks": 1},
        "history": [{"version": "upsell:v1"}, {"version": "soom-upsell:new"}],
    }
    patch = status_patch(OLD, new)
    assert patch["experiment"] == {
        "verdict": "Running",
        "championVersion": "soom-upsell:new",
        "concludedAt": None,
        "effect": None,
        "looks": 1,
    }
    assert patch["rollout"] is None and "phase" not in patch
    assert patch["history"] == new["history"]  # lists are replaced whole
    assert merge_patch(OLD, patch) == new


def test_an_unchanged_status_needs_no_patch_and_a_new_object_is_sent_whole() -> None:
    assert status_patch(OLD, OLD) == {}
    new = {**OLD, "quality": {"counts": [], "message": ""}}
    assert status_patch(OLD, new) == {"quality": {"counts": [], "message": ""}}
    assert merge_patch({}, status_patch({}, new)) == new
