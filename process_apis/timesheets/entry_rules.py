"""Entry rules: what a time entry may say before it is written, each refusal pointing at the field to fix.

- hours: more than 0, at most 24 per entry, whole minutes in the steps the firm configures (``minute_granularity``);
- work date: inside the window the firm configures (``work_date_days_back`` .. ``work_date_days_ahead`` around
  today, UTC), so a typo in the year (9999) is refused instead of stored;
- a day: one worker's live entries on one date (every version not superseded, the entry being written counted
  once, at its new hours, open correction requests at the hours they would give) add up to at most 24 hours.

Pure rules over facts gathered by the caller (:mod:`process_apis.timesheets.days` reads the worker's day from the
PSA while it holds that day, so concurrent writes cannot both pass the rule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from contracts.canonical import TimeEntry, decimal_text, display_hours, whole_minutes
from runtime.problems import FieldError

MAX_HOURS: Final = Decimal(24)
MAX_MINUTES_PER_DAY: Final = 24 * 60


def hours_errors(hours: Decimal | None, pointer: str) -> list[FieldError]:
    if hours is None or (hours.is_finite() and Decimal(0) < hours <= MAX_HOURS):
        return []
    return [FieldError(pointer=pointer, detail="hours must be more than 0 and at most 24")]


@dataclass(frozen=True)
class MinuteGrid:
    """The minute granularity the firm configures (``minute_granularity``, 1 to 1440): every entry is a whole
    number of minutes in steps of ``step`` (15: 15, 30, 45 ... minutes)."""

    step: int = 1

    def errors(self, hours: Decimal | None, pointer: str) -> list[FieldError]:
        """Refuse hours out of (0, 24], or not whole minutes in steps of ``step``."""
        if hours is None:
            return []
        out_of_range = hours_errors(hours, pointer)
        if out_of_range:
            return out_of_range
        minutes = whole_minutes(hours)
        if minutes is not None and minutes % self.step == 0:
            return []
        return [FieldError(pointer=pointer, detail=f"time must be whole minutes in steps of {self.step}")]


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


def day_errors(others: Iterable[TimeEntry], hours: Decimal, pointer: str, *,
               pending: Mapping[str, Decimal] | None = None,
               claimed: Mapping[str, int] | None = None) -> list[FieldError]:
    """Refuse ``hours`` on a worker's day when, with the day's ``others`` (the worker's other entries that date,
    the entry itself left out), it would pass 24 hours.

    ``pending`` holds the hours that open correction requests would give entries on this date (by entry id): until
    a request is carried out its entry counts at the larger of its hours now and its corrected hours, and an entry
    a request moves to this date counts at its corrected hours, so an approved correction never overfills a day.
    ``claimed`` holds the minutes of writes in flight or just made (by entry id, or a key of their own for an
    entry not created yet), counted the same way: an entry and the claim that wrote it count once, at the larger."""
    # Summed in whole minutes: hours such as 10 minutes' (0.1666...7) would not add up exactly.
    held = {e.id: e.minutes or 0 for e in others if e.superseded_by_id is None}
    for entry_id, corrected in (pending or {}).items():
        held[entry_id] = max(held.get(entry_id, 0), minutes_of(corrected))
    for key, minutes in (claimed or {}).items():
        held[key] = max(held.get(key, 0), minutes)
    logged = sum(held.values())
    if logged + minutes_of(hours) <= MAX_MINUTES_PER_DAY:
        return []
    room = max(MAX_MINUTES_PER_DAY - logged, 0)
    return [FieldError(pointer=pointer, detail=f"a day holds at most 24 hours: {decimal_text(display_hours(logged))}"
                                               f" logged already, {decimal_text(display_hours(room))} left")]


def minutes_of(hours: Decimal) -> int:
    """Whole minutes of hours that passed :class:`MinuteGrid` (rounded for any that predate it)."""
    return int((hours * 60).to_integral_value(rounding=ROUND_HALF_EVEN))
