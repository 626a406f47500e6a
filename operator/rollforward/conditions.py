"""Kubernetes-style conditions: set one, keeping lastTransitionTime unless status flips."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from rollforward.api import Condition, ConditionType, Reason

ConditionStatus = Literal["True", "False", "Unknown"]

# The order conditions appear in status, so that a diff of status is stable.
_ORDER = [c.value for c in ConditionType]


def find_condition(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_.value), None)


def is_true(conditions: Sequence[Condition], type_: ConditionType) -> bool:
    found = find_condition(conditions, type_)
    return found is not None and found.status == "True"


def set_condition(
    conditions: Sequence[Condition],
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Return the conditions with `type_` set. Pure: the input is not changed."""
    previous = find_condition(conditions, type_)
    transition = (
        now if previous is None or previous.status != status else previous.last_transition_time
    )
    updated = Condition(
        type=type_.value,
        status=status,
        reason=reason.value,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    others = [c for c in conditions if c.type != type_.value]
    return sorted(
        [*others, updated], key=lambda c: _ORDER.index(c.type) if c.type in _ORDER else 99
    )
