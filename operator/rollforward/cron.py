"""The latest time a five-field cron schedule fired. Pure, standard library only."""

from __future__ import annotations

from datetime import datetime, timedelta

_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


def _field_values(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, last = body.split("-")
            start, end = int(first), int(last)
        else:
            start = end = int(body)
            if step_text:
                end = high
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(f"cron field {text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def parse_schedule(schedule: str) -> list[set[int]]:
    """minute, hour, day of month, month, day of week (0 = Sunday)."""
    fields = _ALIASES.get(schedule.strip(), schedule).split()
    if len(fields) != 5:
        raise ValueError(f"cron schedule {schedule!r} needs five fields")
    return [_field_values(f, low, high) for f, (low, high) in zip(fields, _RANGES, strict=True)]


def last_fire_time(
    schedule: str, now: datetime, horizon: timedelta = timedelta(days=62)
) -> datetime | None:
    """The latest minute at or before `now` that matches `schedule` (None past `horizon`)."""
    minutes, hours, days, months, weekdays = parse_schedule(schedule)
    moment = now.replace(second=0, microsecond=0)
    oldest = now - horizon
    while moment >= oldest:
        # Python's weekday() is Monday=0; cron's is Sunday=0.
        if (
            moment.month in months
            and moment.day in days
            and (moment.weekday() + 1) % 7 in weekdays
            and moment.hour in hours
        ):
            if moment.minute in minutes:
                return moment
            moment -= timedelta(minutes=1)
        else:
            moment = moment.replace(minute=0) - timedelta(minutes=1)
    return None
