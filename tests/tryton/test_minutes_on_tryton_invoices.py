"""Time in minutes on a Tryton invoice: what finance relies on is that the invoice Tryton books bills exactly the
postings it names (invoice lines = the net postings they bill), however few minutes an entry has.

Tryton computes an invoice line's amount itself (quantity x unit price, rounded to the currency), so an hour
figure rounded for the reader (20 minutes shown as 0.33) must never be what Tryton multiplies.
"""

from __future__ import annotations

from decimal import Decimal

import httpx

from tests.support.days import this_monday
from tests.support.flows import ERP, all_items, log_and_approve, ok, postings_settled, wait_for
from tests.support.tryton import TrytonLook, post_invoice

DRAFTS = "/process/invoicing/v1/invoice-drafts"
INVOICES = "/process/invoicing/v1/invoices"
CONTRACT = "ctr_2002"


def test_a_tryton_invoice_bills_exactly_the_postings_of_entries_in_odd_minutes(
    experience: httpx.Client, system: httpx.Client, rpc: TrytonLook
) -> None:
    day = this_monday()
    period = f"{day:%Y-%m}"
    # A contract of its own (ctr_2001 is the planning-to-cash test's): time and materials without an NTE.
    project = ok(system.get("/system/psa/v1/projects/prj_4002"))
    worker = next(
        a["worker_id"]
        for a in ok(system.get("/system/psa/v1/assignments", params={"project_id": project["id"], "limit": 50}))[
            "items"
        ]
        if a["worker_id"] != project["manager_id"]
    )
    entry_ids = []
    for hours in ("0.3333333333333333333333333333", "0.8333333333333333333333333333"):  # 20 and 50 minutes
        settlement = log_and_approve(
            experience, system, worker_id=worker, project_id=project["id"], work_date=day, hours=hours
        )
        assert settlement["disposition"] == "queued_for_posting", settlement
        entry_ids.append(settlement["time_entry_id"])
    wait_for("the minutes posted", lambda: postings_settled(experience, entry_ids))
    posted = {
        p["source_id"]: p
        for p in ok(
            system.get(
                f"{ERP}/postings",
                params={
                    "contract_id": CONTRACT,
                    "from_date": day.isoformat(),
                    "to_date": day.isoformat(),
                    "limit": 200,
                },
            )
        )["items"]
    }
    assert [posted[e]["minutes"] for e in entry_ids] == [20, 50]

    draft = ok(experience.post(DRAFTS, json={"contract_id": CONTRACT, "period": period}), 200, 201)
    if not set(entry_ids) <= set(draft["time_entry_ids"]):  # drafted before these were posted: draft again
        ok(experience.post(f"{INVOICES}/{draft['id']}/voidings"))
        draft = ok(experience.post(DRAFTS, json={"contract_id": CONTRACT, "period": period}), 201)
    assert set(entry_ids) <= set(draft["time_entry_ids"])

    vendor_id = int(draft["invoice"]["external_ids"]["erp"])
    (invoice,) = rpc.read("account.invoice", [vendor_id], ["untaxed_amount"])
    booked = rpc.search_read(
        "account.invoice.line",
        [("invoice", "=", vendor_id)],
        ["psgw_source_refs", "psgw_source_type", "amount", "quantity"],
    )
    postings: dict[str, Decimal] = {}
    for p in all_items(system, f"{ERP}/postings", contract_id=CONTRACT, from_date=f"{period}-01"):
        if p["source_type"] == "time_entry":  # a reversal nets its original out
            postings[p["source_id"]] = postings.get(p["source_id"], Decimal(0)) + Decimal(p["amount"])
    lines = draft["invoice"]["lines"]
    for line in lines:  # what invoicing drafted: each time line the sum of its postings
        if line["source_type"] == "time_entry":
            assert Decimal(line["amount"]) == sum((postings[s] for s in line["source_ids"]), Decimal(0))
    # What Tryton books is what was drafted: the same total and, per source, the same money.
    assert (
        invoice["untaxed_amount"]
        == Decimal(draft["invoice"]["subtotal"])
        == sum((Decimal(line["amount"]) for line in lines), Decimal(0))
    ), (booked, lines)
    ours = [
        b
        for b in booked
        if {f"TC-{system.get(f'/system/psa/v1/time-entries/{e}').json()['external_ids']['psa']}" for e in entry_ids}
        & set((b["psgw_source_refs"] or "").split())
    ]
    assert ours and all(b["amount"] == b["amount"].quantize(Decimal("0.01")) for b in ours)
    read_back = ok(system.get(f"{ERP}/invoices/{draft['id']}"))
    assert read_back["subtotal"] == draft["invoice"]["subtotal"]
    minutes = {
        s: line.get("minutes")
        for line in read_back["lines"]
        if line["source_type"] == "time_entry"
        for s in line["source_ids"]
    }
    assert minutes[entry_ids[0]] is not None  # the minutes come back from Tryton, not an hour figure only

    assert post_invoice(experience, draft["id"])["invoice"]["subtotal"] == draft["invoice"]["subtotal"]
