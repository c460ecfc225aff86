"""Days for tests that log time as the demo consultant.

A day holds at most 24 hours per worker, and every test of a session shares one stack: tests that pile hours on
one date would refuse each other. Each call hands out a day no other caller of this session gets, from tomorrow
on (no seeded time there) and inside the firm's window for work dates (60 days ahead).
"""

from __future__ import annotations

import datetime as dt
import itertools

_handed_out = itertools.count(1)
DAYS_AHEAD = 55


def a_day_of_its_own() -> dt.date:
    today = dt.datetime.now(dt.UTC).date()
    return today + dt.timedelta(days=1 + next(_handed_out) % DAYS_AHEAD)


def week_of(day: dt.date) -> dt.date:
    """The Monday the day's week starts on (the week a phone reads and submits)."""
    return day - dt.timedelta(days=day.weekday())


def this_monday() -> dt.date:
    """The Monday of the current week (UTC)."""
    return week_of(dt.datetime.now(dt.UTC).date())
