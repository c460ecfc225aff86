"""The revenue side of a project's margin: work done and not yet invoiced, at the value billing gives it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from contracts.canonical import Milestone, TimeEntry
from process_apis.billing.eligibility import Eligibility
from process_apis.insights.service import _unbilled_revenue

DAY = dt.date(2026, 10, 14)


def entry(entry_id: str, state: str, project_id: str = "prj_1") -> TimeEntry:
    return TimeEntry(id=entry_id, worker_id="wrk_e1001", project_id=project_id, work_date=DAY, hours=Decimal("8"),
                     state=state)  # type: ignore[arg-type]


def verdict(entry_id: str, amount: str | None, *reasons: str) -> Eligibility:
    return Eligibility(time_entry_id=entry_id, eligible=not reasons, reasons=reasons,  # type: ignore[arg-type]
                       amount=Decimal(amount) if amount else None, currency="USD")


def test_posted_time_counts_at_its_erp_amount_and_invoiced_time_not_again() -> None:
    costed = [entry("te_posted", "posted"), entry("te_invoiced", "invoiced")]
    postings = {"te_posted": Decimal("1400.00"), "te_invoiced": Decimal("1400.00")}

    assert _unbilled_revenue(costed, [], postings, []) == {"prj_1": Decimal("1400.00")}


def test_approved_time_counts_only_when_the_rules_would_post_it_now() -> None:
    costed = [entry("te_ok", "approved"), entry("te_over_cap", "approved"), entry("te_internal", "approved"),
              entry("te_queued", "approved"), entry("te_elsewhere", "approved", project_id="prj_2")]
    verdicts = [verdict("te_ok", "1400.00"), verdict("te_over_cap", "1400.00", "NTE_EXCEEDED"),
                verdict("te_internal", "1400.00", "NOT_BILLABLE"), verdict("te_queued", "350.00", "ALREADY_POSTED"),
                verdict("te_elsewhere", "700.00")]

    assert _unbilled_revenue(costed, verdicts, {}, []) == {"prj_1": Decimal("1750.00"), "prj_2": Decimal("700.00")}


def test_accepted_milestones_count_at_their_amount() -> None:
    milestone = Milestone(id="ms_1", project_id="prj_3", name="Phase 1 sign-off", amount=Decimal("20000.00"),
                          currency="GBP", due_date=DAY, state="accepted")

    assert _unbilled_revenue([], [], {}, [milestone]) == {"prj_3": Decimal("20000.00")}
