"""Shared building blocks of the API types: camelCase models and durations."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

# Go-style durations as Kubernetes users write them ("30s", "5m", "1h30m", "7d").
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN, max_length=32)]

# DNS-1123 label: what Kubernetes accepts as part of a child object's name.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=40)]

# An HTTP header name; it is rendered into router configuration, so it is kept strict.
HEADER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]*$"
HeaderName = Annotated[str, StringConstraints(pattern=HEADER_PATTERN, min_length=1, max_length=64)]


def parse_duration(text: str) -> timedelta:
    """Turn "1h30m" into a timedelta. Raises ValueError on anything else."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m, 7d)")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The inverse of parse_duration for whole seconds, used to print PromQL ranges."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {delta}")
    return f"{seconds}s"


class ApiModel(BaseModel):
    """Base of every API type: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )


class StatusModel(BaseModel):
    """Base of status types. Status is written by the operator only, so it tolerates
    fields it does not know (written by a newer operator) instead of failing on them."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
        frozen=True,
    )
