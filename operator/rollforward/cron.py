"""The latest time a cron schedule fired (standard cron, through croniter). Pure.

Which schedules are valid is the API's (rollforward.api.schedule)."""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import CroniterError, croniter


def last_fire_time(
    schedule: str, now: datetime, horizon: timedelta = timedelta(days=62)
) -> datetime | None:
    """The latest minute at or before `now` that matches `schedule` (None past `horizon`,
    and None for a schedule croniter cannot read, so a bad one never fails a reconcile)."""
    after = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    try:
        fired: datetime = croniter(schedule, after).get_prev(datetime)
    except (CroniterError, ValueError, KeyError):
        return None
    return fired if fired >= now - horizon else None
