"""v1, v2 and v3 payloads to and from the neutral (process tier) terms. Representation only: no business rule.

v1 speaks decimal hours and a billable flag, exactly as the process tier does. v2 speaks whole minutes and a
work type: ``billable_delivery`` is billable work, ``non_billable_internal`` is not. v3 adds ``travel``: time
spent travelling for the project, claimed as billable and billed only where the contract's rate card prices
travel (the process tier's eligibility rule). v2's closed enum cannot name travel, so v2 shows a travel entry by
its billable flag (``billable_delivery``), and a work type sent through v2 is work. The canonical time entry
holds whole minutes (authoritative) and hours derived from them, so any minute from 1 to 1440 survives the round
trip exactly; the steps a firm allows (``minute_granularity``) are the process tier's entry rule.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from contracts.canonical import decimal_text, display_hours, hours_of_minutes
from experience_apis.mobile_time.models import (
    CorrectionRequestV2,
    DayTotalV1,
    DayTotalV2,
    EntryChanges,
    EntryChangesV1,
    MyCorrectionV2,
    MyEntry,
    MyEntryV1,
    MyWeek,
    MyWeekV1,
    NewEntry,
    NewEntryV1,
    ProjectTotalV1,
    ProjectTotalV2,
    SyncItemV1,
    SyncItemV2,
    SyncResponse,
    SyncResponseV1,
    SyncResult,
    SyncResultV1,
)
from experience_apis.mobile_time.service import SUBMITTABLE, MobileTime, SyncCommand, SyncOutcome, Week, item_problem
from experience_apis.process_calls import ProcessCorrection, ProcessTimeEntry
from runtime.downstream import DownstreamProblem
from runtime.problems import BadRequest, FieldError

MAX_HOURS: Final = Decimal(24)
MAX_MINUTES: Final = 24 * 60
# A work type in the process tier's terms: the billable flag and the activity.
WorkTypes = dict[str, dict[str, Any]]
WORK_TYPES: Final[WorkTypes] = {"billable_delivery": {"billable": True, "activity": "work"},
                                "non_billable_internal": {"billable": False, "activity": "work"}}
WORK_TYPES_V3: Final[WorkTypes] = {**WORK_TYPES, "travel": {"billable": True, "activity": "travel"}}


def _days(week: Week) -> list[dt.date]:
    return [week.week_start + dt.timedelta(days=offset) for offset in range(7)]


def _totals(week: Week) -> tuple[dict[dt.date, int], dict[str, int]]:
    """Minutes by day and by project (summed in minutes: hours such as 10 minutes' do not add up exactly)."""
    by_day: dict[dt.date, int] = defaultdict(int)
    by_project: dict[str, int] = defaultdict(int)
    for entry in week.entries:
        by_day[entry.work_date] += entry.whole_minutes
        by_project[entry.project_id] += entry.whole_minutes
    return by_day, by_project


def _bad(pointer: str, detail: str) -> BadRequest:
    return BadRequest(detail, slug="validation-error", errors=[FieldError(pointer=pointer, detail=detail)])


def _no_change(payload: dict[str, Any]) -> dict[str, Any]:
    if not payload:
        raise BadRequest("send at least one field to change", slug="validation-error",
                         errors=[FieldError(pointer="", detail="no field to change")])
    return payload


# -- v1 -----------------------------------------------------------------------------------------------------

def hours_of(text: str) -> Decimal | None:
    """Decimal hours from text, or None when it is not a number of hours in (0, 24]."""
    try:
        hours = Decimal(text)
    except InvalidOperation:
        return None
    return hours if hours.is_finite() and Decimal(0) < hours <= MAX_HOURS else None


def entry_v1(mobile: MobileTime, entry: ProcessTimeEntry) -> MyEntryV1:
    # v1 readers see hours to the hundredth (contracts.canonical.display_hours); the minutes stay exact inside.
    return MyEntryV1(time_entry_id=entry.id, client_ref=mobile.shown_ref(entry.client_ref), project_id=entry.project_id,
                     task_id=entry.task_id, work_date=entry.work_date, hours=display_hours(entry.whole_minutes),
                     billable=entry.billable,
                     notes=entry.notes, state=entry.state, rejection_reason=entry.rejection_reason)


def week_v1(mobile: MobileTime, week: Week) -> MyWeekV1:
    by_day, by_project = _totals(week)
    return MyWeekV1(
        week_start=week.week_start, week_end=week.week_end, entries=[entry_v1(mobile, e) for e in week.entries],
        # Totals are summed in minutes, then rounded once (not a sum of rounded hours).
        days=[DayTotalV1(work_date=day, hours=display_hours(by_day.get(day, 0))) for day in _days(week)],
        projects=[ProjectTotalV1(project_id=p, project_name=week.project_names.get(p), hours=display_hours(m))
                  for p, m in sorted(by_project.items())],
        total_hours=display_hours(sum(by_project.values())),
        submittable_entries=sum(1 for e in week.entries if e.state in SUBMITTABLE))


def new_entry_v1(body: NewEntryV1) -> dict[str, Any]:
    hours = hours_of(body.hours)
    if hours is None:
        raise _bad("/hours", "hours must be more than 0 and at most 24")
    return {"project_id": body.project_id, "task_id": body.task_id, "work_date": body.work_date.isoformat(),
            "hours": decimal_text(hours), "billable": body.billable, "notes": body.notes}


def changes_v1(body: EntryChangesV1) -> dict[str, Any]:
    payload = msgspec.to_builtins(body)
    payload = {k: v for k, v in payload.items() if v is not None}
    if "hours" in payload:
        hours = hours_of(payload["hours"])
        if hours is None:
            raise _bad("/hours", "hours must be more than 0 and at most 24")
        payload["hours"] = decimal_text(hours)
    return _no_change(payload)


def sync_command_v1(index: int, item: SyncItemV1) -> SyncCommand:
    fields: dict[str, Any] = {}
    at = f"/items/{index}"
    if item.op == "upsert":
        if item.hours is not None:
            hours = hours_of(item.hours)
            if hours is None:
                return SyncCommand(item.client_ref, item.op, problem=item_problem(
                    422, "hours must be a decimal number more than 0 and at most 24", f"{at}/hours"))
            fields["hours"] = decimal_text(hours)
        problem = _common_fields(item.work_date, item.notes, at, fields)
        if problem is not None:
            return SyncCommand(item.client_ref, item.op, problem=problem)
        for name in ("project_id", "task_id", "billable"):
            value = getattr(item, name)
            if value is not None:
                fields[name] = value
    return _sync_command(item, at, fields, (("project_id", "project_id"), ("work_date", "work_date"),
                                            ("hours", "hours")))


def sync_response_v1(mobile: MobileTime, outcomes: list[SyncOutcome]) -> SyncResponseV1:
    return SyncResponseV1(items=[SyncResultV1(
        client_ref=o.client_ref, status=o.status,  # type: ignore[arg-type]
        entry=entry_v1(mobile, o.entry) if o.entry is not None else None, problem=o.problem) for o in outcomes])


# -- v2 -----------------------------------------------------------------------------------------------------

def minutes_of(hours: Decimal) -> int:
    return int((hours * 60).to_integral_value(rounding=ROUND_HALF_EVEN))


def hours_from_minutes(minutes: int) -> str | None:
    """Decimal hours that name exactly these minutes (contracts.canonical.whole_minutes reads them back), or None
    out of 1 to 1440. The firm's minute granularity is the process tier's rule (it points at /minutes here)."""
    if not 1 <= minutes <= MAX_MINUTES:
        return None
    return decimal_text(hours_of_minutes(minutes))


def work_type_of(entry: ProcessTimeEntry, work_types: WorkTypes = WORK_TYPES) -> str:
    """The entry's work type among the version's: travel where the version names it, else by its billable flag."""
    if entry.activity == "travel" and "travel" in work_types:
        return "travel"
    return "billable_delivery" if entry.billable else "non_billable_internal"


def entry_minutes(mobile: MobileTime, entry: ProcessTimeEntry, work_types: WorkTypes = WORK_TYPES) -> MyEntry[Any]:
    """The entry as v2 (``WORK_TYPES``) or v3 (``WORK_TYPES_V3``) shows it."""
    return MyEntry(time_entry_id=entry.id, client_ref=mobile.shown_ref(entry.client_ref), project_id=entry.project_id,
                   task_id=entry.task_id, work_date=entry.work_date, minutes=entry.whole_minutes,
                   work_type=work_type_of(entry, work_types), notes=entry.notes, state=entry.state,
                   rejection_reason=entry.rejection_reason)


def week_minutes(mobile: MobileTime, week: Week, work_types: WorkTypes = WORK_TYPES) -> MyWeek[Any]:
    by_day, by_project = _totals(week)
    return MyWeek(
        week_start=week.week_start, week_end=week.week_end,
        entries=[entry_minutes(mobile, e, work_types) for e in week.entries],
        days=[DayTotalV2(work_date=day, minutes=by_day.get(day, 0)) for day in _days(week)],
        projects=[ProjectTotalV2(project_id=p, project_name=week.project_names.get(p), minutes=m)
                  for p, m in sorted(by_project.items())],
        total_minutes=sum(by_project.values()),
        submittable_entries=sum(1 for e in week.entries if e.state in SUBMITTABLE))


def sync_response_minutes(mobile: MobileTime, outcomes: list[SyncOutcome],
                          work_types: WorkTypes = WORK_TYPES) -> SyncResponse[Any]:
    return SyncResponse(items=[SyncResult(
        client_ref=o.client_ref, status=o.status,  # type: ignore[arg-type]
        entry=entry_minutes(mobile, o.entry, work_types) if o.entry is not None else None,
        problem=_item_problem_v2(o.problem)) for o in outcomes])


_MINUTES_DETAIL = f"minutes must be a whole number from 1 to {MAX_MINUTES}"


def new_entry_v2(body: NewEntry[Any], work_types: WorkTypes = WORK_TYPES) -> dict[str, Any]:
    hours = hours_from_minutes(body.minutes)
    if hours is None:
        raise _bad("/minutes", _MINUTES_DETAIL)
    return {"project_id": body.project_id, "task_id": body.task_id, "work_date": body.work_date.isoformat(),
            "hours": hours, **work_types[body.work_type], "notes": body.notes}


def changes_v2(body: EntryChanges[Any], work_types: WorkTypes = WORK_TYPES) -> dict[str, Any]:
    payload: dict[str, Any] = {k: v for k, v in msgspec.to_builtins(body).items() if v is not None}
    if "minutes" in payload:
        hours = hours_from_minutes(payload.pop("minutes"))
        if hours is None:
            raise _bad("/minutes", _MINUTES_DETAIL)
        payload["hours"] = hours
    if "work_type" in payload:
        payload.update(work_types[payload.pop("work_type")])
    return _no_change(payload)


def correction_v2(body: CorrectionRequestV2) -> dict[str, Any]:
    """The corrected values in the process tier's terms (decimal hours)."""
    fields: dict[str, Any] = {}
    if body.minutes is not None:
        hours = hours_from_minutes(body.minutes)
        if hours is None:
            raise _bad("/minutes", _MINUTES_DETAIL)
        fields["hours"] = hours
    if body.work_date is not None:
        fields["work_date"] = body.work_date.isoformat()
    if body.notes is not None:
        fields["notes"] = body.notes
    if not fields:
        raise BadRequest("a correction changes minutes, work_date or notes", slug="validation-error",
                         errors=[FieldError(pointer="", detail="no field to change")])
    return fields


def my_correction_v2(correction: ProcessCorrection) -> MyCorrectionV2:
    return MyCorrectionV2(
        correction_id=correction.id, time_entry_id=correction.time_entry_id,
        minutes=minutes_of(correction.hours) if correction.hours is not None else None,
        work_date=correction.work_date, notes=correction.notes, reason=correction.reason,
        state=correction.state,  # type: ignore[arg-type]
        new_time_entry_id=correction.new_time_entry_id)


def sync_command_v2(index: int, item: SyncItemV2, work_types: WorkTypes = WORK_TYPES) -> SyncCommand:
    fields: dict[str, Any] = {}
    at = f"/items/{index}"
    if item.op == "upsert":
        if item.minutes is not None:
            hours = hours_from_minutes(item.minutes)
            if hours is None:
                return SyncCommand(item.client_ref, item.op, problem=item_problem(422, _MINUTES_DETAIL,
                                                                                  f"{at}/minutes"))
            fields["hours"] = hours
        if item.work_type is not None:
            if item.work_type not in work_types:
                return SyncCommand(item.client_ref, item.op, problem=item_problem(
                    422, "work_type must be one of " + ", ".join(work_types), f"{at}/work_type"))
            fields.update(work_types[item.work_type])
        problem = _common_fields(item.work_date, item.notes, at, fields)
        if problem is not None:
            return SyncCommand(item.client_ref, item.op, problem=problem)
        for name in ("project_id", "task_id"):
            value = getattr(item, name)
            if value is not None:
                fields[name] = value
    return _sync_command(item, at, fields, (("project_id", "project_id"), ("work_date", "work_date"),
                                            ("minutes", "hours"), ("work_type", "billable")))


# Process fields -> the v2 fields that carry them, for pointers in refusals from the process tier.
_V2_FIELDS: Final = {"hours": "minutes", "billable": "work_type", "activity": "work_type"}


def _pointer_v2(pointer: str) -> str:
    head, _, name = pointer.rpartition("/")
    return f"{head}/{_V2_FIELDS[name]}" if name in _V2_FIELDS else pointer


def _item_problem_v2(problem: dict[str, Any] | None) -> dict[str, Any] | None:
    if not problem or not isinstance(problem.get("errors"), list):
        return problem
    return {**problem, "errors": [{**e, "pointer": _pointer_v2(str(e.get("pointer", "")))} if isinstance(e, dict)
                                  else e for e in problem["errors"]]}


@contextlib.contextmanager
def pointing_v2() -> Iterator[None]:
    """Refusals of the process tier name its fields (``/hours``); a v2 phone sent ``/minutes``."""
    try:
        yield
    except DownstreamProblem as exc:
        if exc.errors:
            exc.errors = [FieldError(pointer=_pointer_v2(e.pointer), detail=e.detail, location=e.location)
                          for e in exc.errors]
        raise


# -- both ---------------------------------------------------------------------------------------------------

def _common_fields(work_date: str | None, notes: str | None, at: str, fields: dict[str, Any]) -> dict[str, Any] | None:
    if work_date is not None:
        try:
            fields["work_date"] = dt.date.fromisoformat(work_date).isoformat()
        except ValueError:
            return item_problem(422, "work_date must be a date (YYYY-MM-DD)", f"{at}/work_date")
    if notes is not None:
        if len(notes) > 2000:
            return item_problem(422, "notes are at most 2000 characters", f"{at}/notes")
        fields["notes"] = notes
    return None


def _sync_command(item: SyncItemV1 | SyncItemV2, at: str, fields: dict[str, Any],
                  needed: tuple[tuple[str, str], ...]) -> SyncCommand:
    """What every version's sync item obeys once its values are read (``fields``, in the process tier's terms):
    a new entry has what ``needed`` names (the version's field, the process field it fills), a delete names its
    entry, and an entry keeps its project (a change of project is a new entry)."""
    if item.op == "upsert":
        if item.time_entry_id is None:
            missing = [shown for shown, key in needed if key not in fields]
            if missing:
                return SyncCommand(item.client_ref, item.op, problem=item_problem(
                    422, "a new entry needs " + ", ".join(missing), f"{at}/{missing[0]}"))
    elif item.time_entry_id is None:
        return SyncCommand(item.client_ref, item.op, problem=item_problem(
            422, "a delete names the time_entry_id", f"{at}/time_entry_id"))
    if item.time_entry_id is not None:
        fields.pop("project_id", None)
    return SyncCommand(item.client_ref, item.op, item.time_entry_id, fields)
