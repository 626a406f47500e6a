"""Retraining schedules: standard cron through croniter, in the API and in the trigger."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from rollforward.api.schedule import SCHEDULE_PATTERN, is_valid
from rollforward.cron import last_fire_time

NOW = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    "schedule",
    ["0 3 * * *", "@daily", "*/15 2-5 1,15 jan-mar mon-fri", "0 0 * * 7", "0 0 * * MON"],
)
def test_valid_schedules_pass_both_checks(schedule: str) -> None:
    assert is_valid(schedule)
    assert re.match(SCHEDULE_PATTERN, schedule)


@pytest.mark.parametrize(
    "schedule", ["61 * * * *", "0 24 * * *", "0 0 32 * *", "0 0 * 13 *", "0 0 * * 8", "* * * *"]
)
def test_out_of_range_or_short_schedules_fail_both_checks(schedule: str) -> None:
    assert not is_valid(schedule)
    assert not re.match(SCHEDULE_PATTERN, schedule)


def test_the_latest_fire_is_at_or_before_now() -> None:
    assert last_fire_time("0 12 * * *", NOW) == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert last_fire_time("0 3 * * *", NOW) == datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def test_day_of_month_or_day_of_week_as_standard_cron() -> None:
    # The 1st of the month OR a Monday: the latest is Monday the 23rd, not a day that is both.
    fired = last_fire_time("0 0 1 * mon", NOW)
    assert fired == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def test_a_schedule_that_never_fires_within_the_horizon_is_none() -> None:
    assert last_fire_time("0 0 31 2 *", NOW) is None
    assert last_fire_time("0 0 1 1 *", NOW, horizon=timedelta(days=30)) is None


def test_an_unreadable_schedule_is_none_not_an_error() -> None:
    assert last_fire_time("61 * * * *", NOW) is None
