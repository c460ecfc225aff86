"""Entry rules: what a time entry may say before it is written, each refusal pointing at the field to fix.

- hours: more than 0, at most 24 per entry;
- work date: inside the window the firm configures (``work_date_days_back`` .. ``work_date_days_ahead`` around
  today, UTC), so a typo in the year (9999) is refused instead of stored;
- a day: one worker's live entries on one date (every version not superseded, the entry being written counted
  once, at its new hours) add up to at most 24 hours.

Pure rules over facts gathered by the caller (the service reads the worker's day from the PSA).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from contracts.canonical import TimeEntry, decimal_text
from runtime.problems import FieldError

MAX_HOURS: Final = Decimal(24)
MAX_HOURS_PER_DAY: Final = Decimal(24)


def hours_errors(hours: Decimal | None, pointer: str) -> list[FieldError]:
    if hours is None or (hours.is_finite() and Decimal(0) < hours <= MAX_HOURS):
        return []
    return [FieldError(pointer=pointer, detail="hours must be more than 0 and at most 24")]


@dataclass(frozen=True)
class WorkDateWindow:
    """How far back and ahead of today a work date may be (read once from the settings)."""

    days_back: int
    days_ahead: int

    def errors(self, work_date: dt.date | None, pointer: str, today: dt.date) -> list[FieldError]:
        if work_date is None:
            return []
        earliest = today - dt.timedelta(days=self.days_back)
        latest = today + dt.timedelta(days=self.days_ahead)
        if earliest <= work_date <= latest:
            return []
        return [FieldError(pointer=pointer, detail=f"work_date must be from {earliest.isoformat()} to "
                                                   f"{latest.isoformat()} ({self.days_back} days back, "
                                                   f"{self.days_ahead} ahead)")]


def day_errors(others: Iterable[TimeEntry], hours: Decimal, pointer: str) -> list[FieldError]:
    """Refuse ``hours`` on a worker's day when, with the day's ``others`` (the worker's other entries that date,
    the entry itself left out), it would pass 24 hours."""
    logged = sum((e.hours for e in others if e.superseded_by_id is None), Decimal(0))
    if logged + hours <= MAX_HOURS_PER_DAY:
        return []
    room = max(MAX_HOURS_PER_DAY - logged, Decimal(0))
    return [FieldError(pointer=pointer, detail=f"a day holds at most 24 hours: {decimal_text(logged)} logged "
                                               f"already, {decimal_text(room)} left")]
