"""A worker's availability over a span of days: capacity from HR less leave and time after the last day, against
the hours their confirmed assignments plan (the planned baseline staffing and utilisation read).

Working days are Monday to Friday; a day holds a fifth of the weekly capacity (HR's scheduled weekly hours) and a
fifth of each confirmed assignment's planned weekly hours while the assignment runs. A day of leave, or after the
worker's last day, holds no capacity and plans nothing: an assignment does not book a person who is away.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Final

from contracts.canonical import Assignment, Worker, plain_decimal
from process_apis.staffing.models import WorkerAvailability
from process_apis.systems import Systems
from runtime.downstream import found_or_none
from runtime.problems import BadRequest, FieldError, NotFound

MAX_SPAN_DAYS: Final = 366
WORKING_DAYS_PER_WEEK: Final = Decimal(5)
HUNDRED: Final = Decimal(100)


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def availability(worker: Worker, assignments: list[Assignment], first: dt.date, last: dt.date) -> WorkerAvailability:
    """The pure figure over ``first`` .. ``last`` (both inclusive)."""
    per_day = worker.capacity_hours_per_week / WORKING_DAYS_PER_WEEK
    working = [day for day in _days(first, last) if day.weekday() < 5]
    away = {day for leave in worker.leaves for day in _days(max(leave.first_day, first), min(leave.last_day, last))}
    employed = [day for day in working if worker.termination_date is None or day <= worker.termination_date]
    present = [day for day in employed if day not in away]
    planned = sum(
        (
            a.planned_hours_per_week / WORKING_DAYS_PER_WEEK
            for a in assignments
            if a.status == "confirmed"
            for day in present
            if a.start_date <= day and (a.end_date is None or day <= a.end_date)
        ),
        Decimal(0),
    )
    capacity = per_day * len(employed)
    available = per_day * len(present)
    return WorkerAvailability(
        worker_id=worker.id,
        from_date=first,
        to_date=last,
        capacity_hours=plain_decimal(capacity),
        leave_hours=plain_decimal(capacity - available),
        available_hours=plain_decimal(available),
        planned_hours=plain_decimal(planned),
        planned_utilization=plain_decimal((planned * HUNDRED / available).quantize(Decimal("0.1")))
        if available
        else None,
        leave_days=sorted(day for day in employed if day in away),
        termination_date=worker.termination_date,
    )


async def worker_availability(systems: Systems, worker_id: str, first: dt.date, last: dt.date) -> WorkerAvailability:
    if last < first or (last - first).days >= MAX_SPAN_DAYS:
        raise BadRequest(
            f"from_date .. to_date is 1 to {MAX_SPAN_DAYS} days",
            slug="validation-error",
            errors=[
                FieldError(
                    pointer="/to_date",
                    location="query",
                    detail=f"a date from from_date, at most {MAX_SPAN_DAYS - 1} days on",
                )
            ],
        )
    worker = await found_or_none(systems.hr.worker(worker_id))
    if worker is None:
        raise NotFound(f"no worker {worker_id!r}", slug="unknown-id")
    assignments = await systems.psa.assignments(worker_id=worker.id, status="confirmed")
    return availability(worker, assignments, first, last)
