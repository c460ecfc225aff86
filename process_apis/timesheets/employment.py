"""The employment rule for time entries: nobody logs time dated after their last day (HR's termination date).

The last day is the one the HR change feed (``process_apis/staffing/hr_feed.py``) last saw, read from this tier's
own table (one keyed SQL read, no call to HR on the write path). Time dated on or before the last day is untouched:
logged, approved and billed as any other. Hooked into :class:`process_apis.timesheets.service.TimesheetService` at
the three places a work date is set: ``create_entry``, an edit that moves an entry (``_changed``) and a new entry
in an offline batch (``_sync_one``).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import sqlalchemy as sa

from process_apis.store import hr_workers
from runtime.problems import FieldError, Unprocessable
from runtime.storage import Database

WORKER_TERMINATED: Final = "WORKER_TERMINATED"


class WorkerTerminated(Unprocessable):
    slug = "worker-terminated"


class Employment:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def refuse_after_last_day(self, worker_id: str, work_date: dt.date, pointer: str) -> None:
        """Raise :class:`WorkerTerminated` (422, reason code ``WORKER_TERMINATED``) for time after the last day."""
        async with self.db.read() as conn:
            last_day = (
                await conn.execute(sa.select(hr_workers.c.termination_date).where(hr_workers.c.worker_id == worker_id))
            ).scalar_one_or_none()
        if last_day is None or work_date <= last_day:
            return
        raise WorkerTerminated(
            f"worker {worker_id}'s last day was {last_day.isoformat()}: no time can be logged after it",
            errors=[FieldError(pointer=pointer, detail=f"a date on or before {last_day.isoformat()}")],
            reason_code=WORKER_TERMINATED,
            termination_date=last_day.isoformat(),
        )
