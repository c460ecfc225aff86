"""The time entry <-> weekly timecard mapping, for every day and every duration Certinia can keep exactly."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.problems import Unprocessable
from system_apis.psa.connectors.certinia import HOURS_FIELDS, CertiniaKeys, day_fields, timecard_from_vendor

DAYS = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


def keys() -> CertiniaKeys:
    found = CertiniaKeys()
    found.contacts.learn("E1001", "0038d0000000001AAA")
    found.projects.learn("PRJ-4001", "a3p8d0000000001AAA")
    found.timecards.learn("TC-100001", "a4z8d0000000001AAA")
    return found


def header(work_date: dt.date, minutes: int, notes: str, **more: object) -> dict[str, object]:
    return {
        "attributes": {"type": "pse__Timecard_Header__c"},
        "Id": "a4z8d0000000001AAA",
        "Name": "TC-100001",
        "pse__Resource__c": "0038d0000000001AAA",
        "pse__Project__c": "a3p8d0000000001AAA",
        "Project_Task__c": None,
        "pse__Status__c": "Saved",
        "pse__Billable__c": True,
        "Version__c": 1,
        **day_fields(work_date, minutes, notes),
        **more,
    }


@given(work_date=DAYS, minutes=st.integers(min_value=1, max_value=480).map(lambda n: n * 3), notes=st.text())
def test_one_entry_is_one_day_of_one_week_and_maps_back_unchanged(work_date: dt.date, minutes: int, notes: str) -> None:
    row = header(work_date, minutes, notes)
    start = dt.date.fromisoformat(str(row["pse__Start_Date__c"]))

    assert start.weekday() == 0 and start <= work_date <= start + dt.timedelta(days=6)
    assert [bool(row[f]) for f in HOURS_FIELDS].count(True) == 1
    entry = timecard_from_vendor(row, keys())
    assert (entry.work_date, entry.minutes, entry.notes, entry.state) == (work_date, minutes, notes, "draft")


@given(work_date=DAYS, minutes=st.integers(min_value=1, max_value=1440).filter(lambda n: n % 3))
def test_minutes_that_are_no_whole_hundredth_of_an_hour_are_refused(work_date: dt.date, minutes: int) -> None:
    with pytest.raises(Unprocessable) as refused:
        day_fields(work_date, minutes, "")
    assert refused.value.errors and refused.value.errors[0].pointer == "/hours"


@pytest.mark.parametrize(
    ("billed", "invoiced", "state"), [(False, False, "approved"), (True, False, "posted"), (True, True, "invoiced")]
)
def test_posted_and_invoiced_are_approved_timecards_billed_then_invoiced(
    billed: bool, invoiced: bool, state: str
) -> None:
    row = header(
        dt.date(2026, 12, 2),
        60,
        "",
        **{"pse__Status__c": "Approved", "pse__Billed__c": billed, "pse__Invoiced__c": invoiced},
    )
    assert timecard_from_vendor(row, keys()).state == state
