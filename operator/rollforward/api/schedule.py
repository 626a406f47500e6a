"""Cron schedules of spec.retraining.schedule: standard five-field cron (croniter's reading),
checked in the operator by croniter and in the API server by a regular expression."""

from __future__ import annotations

from croniter import croniter

ALIASES = ("@hourly", "@daily", "@weekly", "@monthly")
"""The @-forms spec.retraining.schedule accepts besides five fields."""

_MINUTE = r"[0-5]?[0-9]"
_HOUR = r"(0?[0-9]|1[0-9]|2[0-3])"
_DAY = r"(0?[1-9]|[12][0-9]|3[01])"
_MONTH = r"(0?[1-9]|1[0-2]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_WEEKDAY = r"([0-7]|sun|mon|tue|wed|thu|fri|sat)"


def _field(value: str) -> str:
    """A comma list of `*`, `v` or `v-v`, each with an optional `/step`."""
    item = rf"([*]|{value}(-{value})?)(/[0-9]{{1,2}})?"
    return rf"{item}(,{item})*"


_SPACE = "[ \t]+"
SCHEDULE_PATTERN = (
    f"(?i)^(@(hourly|daily|weekly|monthly)|{_field(_MINUTE)}{_SPACE}{_field(_HOUR)}{_SPACE}"
    f"{_field(_DAY)}{_SPACE}{_field(_MONTH)}{_SPACE}{_field(_WEEKDAY)})$"
)
"""Five fields, each in its range (or a name), as a regular expression the API server can
check in CEL (RE2; no backslash, so no escaping in a CEL string). croniter decides the
rest (e.g. 31 February) in the operator."""


def is_valid(schedule: str) -> bool:
    fields = schedule.split()
    if schedule.strip() not in ALIASES and len(fields) != 5:
        return False
    return bool(croniter.is_valid(schedule))
