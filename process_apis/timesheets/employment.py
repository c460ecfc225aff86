"""The employment rule for time entries: nobody logs time dated after their last day (HR's termination date).

The last day is the one the HR change feed (``process_apis/staffing/hr_feed.py``) last saw, kept in this tier's own
table. The write path does not read that table per write: it keeps a copy of every worker's last day in memory,
read whole in one statement. A change this process's feed commits goes into the copy as it commits (before the
feed's event can be relayed, so whoever saw ``worker.terminated`` is refused); the feed reads the copy again after
each turn, and a check reads it again first when it is older than ``max_age_seconds`` (a change written by another
replica's feed counts within that long). Time dated on or before the last
day is untouched: logged, approved and billed as any other. Hooked into
:class:`process_apis.timesheets.service.TimesheetService` at the three places a work date is set:
``create_entry``, an edit that moves an entry (``_changed``) and a new entry in an offline batch (``_sync_one``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from typing import Final

from process_apis.staffing.queries import last_days
from runtime.problems import FieldError, Unprocessable
from runtime.storage import Database

WORKER_TERMINATED: Final = "WORKER_TERMINATED"
# How old the copy of the last days may be when a write is checked against it (the feed of this process renews it
# every turn, HR's own turn being 5 s; this bounds the lag of a change another replica's feed recorded).
LAST_DAYS_MAX_AGE_SECONDS: Final = 1.0


class WorkerTerminated(Unprocessable):
    slug = "worker-terminated"


class Employment:
    def __init__(self, db: Database, *, max_age_seconds: float = LAST_DAYS_MAX_AGE_SECONDS) -> None:
        self.db = db
        self.max_age = max_age_seconds
        self._last_days: dict[str, dt.date] = {}
        self._read_at = -math.inf  # monotonic start of the read the copy came from
        self._reading: asyncio.Task[None] | None = None
        # Last days this process committed since, by worker: (monotonic moment, last day); they outrank a read
        # begun before them.
        self._recorded: dict[str, tuple[float, dt.date | None]] = {}

    def record(self, worker_id: str, last_day: dt.date | None) -> None:
        """The worker's last day as this process just committed it (``None``: no longer terminated)."""
        self._recorded[worker_id] = (time.monotonic(), last_day)

    async def reload(self) -> None:
        """Read every worker's last day again (the feed calls it once its turn has committed)."""
        read_at = time.monotonic()
        async with self.db.read() as conn:
            found = await last_days(conn)
        if read_at >= self._read_at:  # a read begun later may have landed first: the later one stands
            self._last_days = found
            self._read_at = read_at
            # What was committed before this read began, the read has.
            self._recorded = {w: recorded for w, recorded in self._recorded.items() if recorded[0] >= read_at}

    async def last_day(self, worker_id: str) -> dt.date | None:
        if time.monotonic() - self._read_at >= self.max_age:
            # Checks arriving while the copy is renewed wait for that one read instead of each reading.
            if self._reading is None or self._reading.done():
                self._reading = asyncio.create_task(self.reload())
            await asyncio.shield(self._reading)
        recorded = self._recorded.get(worker_id)
        return recorded[1] if recorded is not None else self._last_days.get(worker_id)

    async def refuse_after_last_day(self, worker_id: str, work_date: dt.date, pointer: str) -> None:
        """Raise :class:`WorkerTerminated` (422, reason code ``WORKER_TERMINATED``) for time after the last day."""
        last_day = await self.last_day(worker_id)
        if last_day is None or work_date <= last_day:
            return
        raise WorkerTerminated(
            f"worker {worker_id}'s last day was {last_day.isoformat()}: no time can be logged after it",
            errors=[FieldError(pointer=pointer, detail=f"a date on or before {last_day.isoformat()}")],
            reason_code=WORKER_TERMINATED,
            termination_date=last_day.isoformat(),
        )
