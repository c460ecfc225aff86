"""The world the ledger model test acts on: its own contracts and projects, and the ledger invariants.

Each example of tests/process/test_ledger_model.py provisions fresh contracts (one per billing model it drives)
through the ERP and PSA system APIs, so examples never share invoices, postings or milestones. What the system
APIs have no operation for is done the way a user of the vendor would do it in the vendor's own screens: the
harness writes the sandbox's own documents (an accountant closing a period in the ERP, a delivery lead adding a
milestone in the PSA). The invariants read only the systems of record (ERP and PSA, through the system APIs)
and the process tier's outbox (to know when asynchronous work has settled).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.support.flows import ERP, PSA, all_items, ok

PROCESS = "/process"
SETTLE_SECONDS = 90.0
CORRECTION_GRACE_SECONDS = 30.0
BILLED_STATES = ("posted", "paid")  # an ERP invoice in these states has billed its lines
OUTSTANDING = ("queued", "in_erp")  # outbox rows the dispatcher still has to finish


class LedgerViolation(AssertionError):
    """A money invariant does not hold; the message names the invariant and what was seen."""


def minutes_of(item: dict[str, Any]) -> Decimal:
    """Time in minutes, the authoritative unit (issue 18): an entry's, a posting's or an invoice line's ``minutes``,
    else (written before minutes were kept, or by an ERP that keeps hours only) its hours x 60."""
    if item.get("minutes") is not None:
        return Decimal(item["minutes"])
    return Decimal(item["hours"] if "hours" in item else item["quantity"]) * 60


def violation(invariant: int, what: str) -> LedgerViolation:
    return LedgerViolation(f"invariant {invariant} broken: {what}")


@dataclass(frozen=True)
class ContractSpec:
    """One contract an example provisions: the knobs that matter to billing."""

    key: str
    billing_model: str
    currency: str
    legal_entity_id: str
    customer_id: str
    value: Decimal  # the contract's total value (set as its NTE on an ERP without a separate value)
    manager_id: str
    rate_card_id: str | None = None
    instalment: Decimal | None = None  # a fixed fee: billed in each period of the term
    logs_time: bool = False  # time and materials: a worker is assigned and logs time
    milestones: tuple[Decimal, ...] = ()


# A small world that still reaches every money rule: NTE caps (8 h x 175 = 1400, the value is 3000), a USD rate
# card on a GBP contract (the currency bug), a fixed fee worth two periods, two milestones.
SPECS = (
    ContractSpec("tm_usd", "time_and_materials", "USD", "le_us", "cus_1001", Decimal("3000"), "wrk_e1007",
                 rate_card_id="rc_usd", logs_time=True),
    ContractSpec("tm_gbp", "time_and_materials", "GBP", "le_uk", "cus_1004", Decimal("3000"), "wrk_e1008",
                 rate_card_id="rc_usd", logs_time=True),
    ContractSpec("fixed_eur", "fixed_fee", "EUR", "le_de", "cus_1007", Decimal("2000"), "wrk_e1009",
                 instalment=Decimal("1000")),
    ContractSpec("milestone_gbp", "milestone", "GBP", "le_uk", "cus_1005", Decimal("4000"), "wrk_e1008",
                 milestones=(Decimal("1500"), Decimal("2500"))),
)
TIME_CONTRACTS = tuple(s.key for s in SPECS if s.logs_time)
# Who logs the time: the demo firm's consultants (one rate, 175 USD, so a sequence means the same money whoever
# logs it), in turns, so that hundreds of examples do not fill one worker's day past 24 hours (an entry rule).
WORKERS = ("wrk_e1001", *(f"wrk_e{n}" for n in range(1021, 1033)))
PAIRS = 14  # pairs of days a period offers (days 1 to 28: in every month)


def month(today: dt.date, back: int) -> str:
    index = today.year * 12 + today.month - 1 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def bounds(period: str) -> tuple[dt.date, dt.date]:
    year, mon = int(period[:4]), int(period[5:])
    return dt.date(year, mon, 1), dt.date(year, mon, calendar.monthrange(year, mon)[1])


@dataclass
class Contract:
    spec: ContractSpec
    id: str
    project_id: str
    task_id: str | None
    worker_id: str | None
    milestone_ids: list[str]
    rate_card_currency: str | None


@dataclass
class Chain:
    """One logical time entry and its versions (a correction appends one); the last is the current version."""

    contract: str
    worker_id: str
    manager_id: str
    versions: list[str]


@dataclass
class Seen:
    """What one look at the systems of record found."""

    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)  # contract key -> ERP contract
    postings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # contract key -> ERP postings
    invoices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # contract key -> ERP invoices
    credits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # invoice id -> its ERP credit notes
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # time entry id -> PSA entry
    held: set[str] = field(default_factory=set)  # entries with an open exception (a billing hold, a posting)


class VendorDocuments:
    """The sandbox vendors' own documents, for what their APIs do not offer (what a user does in their UI)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    @contextmanager
    def _store(self, system: str) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.data_dir / f"sandbox-{system}.sqlite3", timeout=30, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def set_period_status(self, legal_entity_id: str, period: str, status: str) -> None:
        """The ERP's accountant opens or closes a period (the ERP API only reads periods)."""
        name = dt.date(int(period[:4]), int(period[5:]), 1).strftime("%b %Y")
        code = legal_entity_id.replace("le_", "LE-").upper()
        with self._store("erp") as conn:
            row = conn.execute(
                "SELECT id, body FROM documents WHERE kind = 'period' AND json_extract(body, '$.subsidiaryCode') = ?"
                " AND json_extract(body, '$.periodName') = ?", (code, name)).fetchone()
            assert row is not None, f"the sandbox ERP has no period {name} for {code}"
            body = json.loads(row[1])
            body["status"] = status.upper()
            conn.execute("UPDATE documents SET body = ? WHERE kind = 'period' AND id = ?", (json.dumps(body), row[0]))

    def add_milestone(self, project_psa_id: int, name: str, amount: Decimal, currency: str, due: dt.date,
                      accepted_on: dt.date | None = None) -> str:
        """A delivery lead adds a completed milestone to a project in the PSA (the PSA API only moves them); with
        ``accepted_on``, one the customer accepted on that day."""
        with self._store("psa") as conn:
            conn.execute("BEGIN IMMEDIATE")
            top = conn.execute("SELECT COALESCE(MAX(CAST(id AS INTEGER)), 0) FROM documents WHERE kind = 'milestone'"
                               ).fetchone()[0]
            milestone_id = max(int(top) + 1, 990001)
            body = {"milestoneId": milestone_id, "milestoneNumber": f"MS-{milestone_id}", "projectId": project_psa_id,
                    "name": name, "amount": str(amount), "currency": currency, "dueDate": due.isoformat(),
                    "status": "Accepted" if accepted_on else "Complete",
                    "acceptedOn": accepted_on.isoformat() if accepted_on else None}
            conn.execute("INSERT INTO documents (kind, id, seq, body) VALUES ('milestone', ?, (SELECT COALESCE("
                         "MAX(seq), 0) + 1 FROM documents WHERE kind = 'milestone'), ?)",
                         (str(milestone_id), json.dumps(body)))
            conn.execute("COMMIT")
        return f"ms_{milestone_id}"


class World:
    """One example's contracts, entries and drafts, and the checks of the ledger invariants against them."""

    def __init__(self, system: httpx.Client, process: httpx.Client, vendors: VendorDocuments,
                 today: dt.date, turn: int) -> None:
        self.system = system  # the process tier's identity: reads (and the few writes) on the system APIs
        self.process = process  # the experience tier's identity: how the process APIs are called
        self.vendors = vendors
        self.periods = [month(today, 2), month(today, 1), month(today, 0)]  # P0 outside the term, P1-P2 inside
        self.term = (bounds(self.periods[1])[0], bounds(self.periods[2])[1])
        self.contracts: dict[str, Contract] = {}
        self.chains: list[Chain] = []
        self.drafts: list[tuple[str, str]] = []  # (contract key, invoice id) of every draft made
        self.closed_contracts: set[str] = set()
        self.closed_periods: set[tuple[str, str]] = set()
        self.approvals: set[str] = set()  # approvals that may still be ``recorded`` (applied later)
        self.corrections: list[tuple[Chain, str]] = []  # (the chain, the correction request's id)
        self.expenses: list[tuple[str, str]] = []  # (contract key, expense id) of every billable expense approved
        self.turn = turn  # this example's number: whose turn it is to log time, and on which days
        self.pairs = [0, 0, 0]  # per period, which pair of days this example logs time on (choose_days)

    # -- provisioning ------------------------------------------------------------------------------------------

    def provision(self) -> None:
        tag = uuid.uuid4().hex[:8]
        start, end = self.term
        first = bounds(self.periods[0])[0]
        for spec in SPECS:
            contract = ok(self.system.post(f"{ERP}/contracts", json={
                "customer_id": spec.customer_id, "legal_entity_id": spec.legal_entity_id,
                "name": f"Ledger model {spec.key} {tag}", "currency": spec.currency,
                "billing_model": spec.billing_model, "total_value": str(spec.value),
                "nte_amount": str(spec.value) if spec.logs_time else None, "start_date": start.isoformat(),
                "end_date": end.isoformat(), "status": "active", "rate_card_id": spec.rate_card_id,
                "billing_profile": {
                    "invoice_frequency": "milestone" if spec.billing_model == "milestone" else "monthly"},
                "billing_schedule": {"lines": [
                    {"line_no": index + 1, "amount": str(spec.instalment), "period": period}
                    for index, period in enumerate(self.periods[1:]) if spec.instalment]},
            }), 201)
            project = ok(self.system.post(f"{PSA}/projects", json={
                "name": f"Ledger model {spec.key} {tag}", "contract_id": contract["id"],
                "customer_id": spec.customer_id, "legal_entity_id": spec.legal_entity_id,
                "billing_model": spec.billing_model, "status": "active", "manager_id": spec.manager_id,
                "start_date": start.isoformat(), "end_date": end.isoformat()}), 201)
            ok(self.system.post(f"{ERP}/project-dimensions", json={
                "project_id": project["id"], "legal_entity_id": spec.legal_entity_id,
                "code": "P-" + project["id"].removeprefix("prj_").upper()}), 201)
            task_id = worker_id = None
            if spec.logs_time:
                slot = 2 * self.turn + TIME_CONTRACTS.index(spec.key)
                worker_id = WORKERS[slot % len(WORKERS)]
                role = ok(self.system.get(f"/system/hr/v1/workers/{worker_id}"))["role"]
                task_id = ok(self.system.post(f"{PSA}/projects/{project['id']}/tasks",
                                              json={"name": "Delivery", "billable": True}), 201)["id"]
                # Assigned from before the term: time outside it is held for the term, not for the assignment.
                ok(self.system.post(f"{PSA}/assignments", json={
                    "worker_id": worker_id, "project_id": project["id"], "role": role,
                    "planned_hours_per_week": "40", "start_date": first.isoformat(), "status": "confirmed"}), 201)
            milestone_ids = [
                self.vendors.add_milestone(int(project["external_ids"]["psa"]), f"Phase {index + 1} {tag}", amount,
                                           spec.currency, start + dt.timedelta(days=9 + index))
                for index, amount in enumerate(spec.milestones)]
            card = None
            if spec.rate_card_id:
                card = ok(self.system.get(f"/system/crm/v1/rate-cards/{spec.rate_card_id}"))["currency"]
            self.contracts[spec.key] = Contract(spec, contract["id"], project["id"], task_id, worker_id, milestone_ids,
                                                card)
        self.choose_days()

    def choose_days(self) -> None:
        """This example's pair of days in each period: the first pair, from its turn's on, on which none of its
        consultants has time yet. The demo firm's own time fills some of their days (several assignments a day),
        and a full day refuses what the example logs there (a 4xx): the example would test nothing, and a replayed
        sequence would find no entry to go on with."""
        workers = sorted({c.worker_id for c in self.contracts.values() if c.worker_id})
        start = (2 * self.turn // len(WORKERS)) % PAIRS
        for index, period in enumerate(self.periods):
            first, last = bounds(period)
            taken = {e["work_date"] for worker_id in workers for e in all_items(
                self.system, f"{PSA}/time-entries", worker_id=worker_id, from_date=first.isoformat(),
                to_date=last.isoformat())}
            pairs = [(start + n) % PAIRS for n in range(PAIRS)]
            self.pairs[index] = next(
                (k for k in pairs if taken.isdisjoint({(first + dt.timedelta(days=2 * k + d)).isoformat()
                                                        for d in (0, 1)})), start)

    def work_date(self, period_index: int, day: int) -> dt.date:
        """Day ``day`` (0 or 1) of this example's pair of days in the period (:meth:`choose_days`)."""
        return bounds(self.periods[period_index])[0] + dt.timedelta(days=2 * self.pairs[period_index] + day)

    # -- settling asynchronous work ------------------------------------------------------------------------------

    def outstanding(self) -> list[str]:
        """Asynchronous work not finished yet: outbox rows, approvals still recorded, invoice flow-back jobs."""
        waiting = []
        for contract in self.contracts.values():
            rows = all_items(self.process, f"{PROCESS}/billing/v1/postings", project_id=contract.project_id)
            waiting += [f"posting of {r['time_entry_id']} ({r['state']})" for r in rows if r["state"] in OUTSTANDING]
        for approval_id in sorted(self.approvals):
            approval = ok(self.process.get(f"{PROCESS}/timesheets/v1/approvals/{approval_id}"))
            if approval["state"] == "recorded":
                waiting.append(f"approval {approval_id}")
            else:
                self.approvals.discard(approval_id)
        for _, correction_id in self.corrections:
            correction = ok(self.process.get(f"{PROCESS}/timesheets/v1/corrections/{correction_id}"))
            if correction["state"] == "approved":  # decided, not carried out yet
                waiting.append(f"correction {correction_id}")
        for _, expense_id in self.expenses:
            expense = ok(self.process.get(f"{PROCESS}/expenses/v1/expenses/{expense_id}"))
            if expense["state"] == "approved" and not all_items(  # its ERP posting is queued, or was refused
                    self.process, f"{PROCESS}/exceptions/v1/exceptions", state="open",
                    source_id=f"expense-posting:{expense_id}"):  # (a closed period): in the exception queue
                waiting.append(f"posting of expense {expense_id}")
        for _, invoice_id in self.drafts:
            response = self.process.get(f"{PROCESS}/invoicing/v1/invoices/{invoice_id}")
            if response.status_code == 410:  # voided: nothing more happens to it
                continue
            draft = ok(response)
            jobs = ((draft.get("flow_back") or {}).get("jobs")) or {}
            if draft["state"] == "posted" and jobs.get("pending"):  # done and failed are both final
                waiting.append(f"flow-back of {invoice_id}: {jobs}")
        return waiting

    def settle(self, wait: Callable[[float], None] = time.sleep) -> None:
        """Poll until the asynchronous work is done; a deadline turns a stuck outbox into a failure."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            waiting = self.outstanding()
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise violation(1, f"asynchronous work not done {SETTLE_SECONDS:.0f}s after the ERP is back: "
                                   f"{waiting[:5]}")
            wait(0.25)

    # -- reading the systems of record ----------------------------------------------------------------------------

    def look(self) -> Seen:
        seen = Seen()
        for key, contract in self.contracts.items():
            seen.contracts[key] = ok(self.system.get(f"{ERP}/contracts/{contract.id}"))
            seen.postings[key] = all_items(self.system, f"{ERP}/postings", contract_id=contract.id)
            seen.invoices[key] = all_items(self.system, f"{ERP}/invoices", contract_id=contract.id)
            for invoice in seen.invoices[key]:
                if invoice["state"] in BILLED_STATES:
                    seen.credits[invoice["id"]] = all_items(self.system, f"{ERP}/credit-notes",
                                                            invoice_id=invoice["id"])
            if contract.task_id:
                for entry in all_items(self.system, f"{PSA}/time-entries", project_id=contract.project_id):
                    seen.entries[entry["id"]] = entry
                seen.held |= {item["source_id"] for item in all_items(
                    self.process, f"{PROCESS}/exceptions/v1/exceptions", project_id=contract.project_id,
                    state="open")}
        for chain in self.chains:  # the PSA says which version is current: follow its supersession links
            versions = chain.versions[:1]
            while (following := seen.entries[versions[-1]].get("superseded_by_id")) in seen.entries:
                versions.append(following)
            chain.versions = versions
        return seen

    # -- the invariants -------------------------------------------------------------------------------------------

    def check(self, settled: bool) -> Seen:
        """Check every invariant; ``settled`` False (the ERP is down) accepts work still in flight."""
        deadline = time.monotonic() + CORRECTION_GRACE_SECONDS
        while True:
            seen = self.look()
            try:
                self.check_posted_hours(seen, settled)
                self.check_milestones_billed_once(seen)
                self.check_expenses_billed_once(seen)
                self.check_contract_limits(seen)
                self.check_currency(seen)
                self.check_lines_equal_postings(seen, settled)
                return seen
            except LedgerViolation:
                # A correction's reversal and credit note are booked by outboxes no API shows (after the new
                # posting, with backoff after an outage): with a correction made, the ledger gets a grace to net out.
                if not (settled and self.corrections) or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    @staticmethod
    def _net(postings: list[dict[str, Any]]) -> tuple[dict[str, Decimal], dict[str, Decimal], dict[str, int]]:
        hours: dict[str, Decimal] = defaultdict(Decimal)
        amounts: dict[str, Decimal] = defaultdict(Decimal)
        positive: dict[str, int] = defaultdict(int)
        for posting in postings:
            if posting["source_type"] != "time_entry":
                continue
            source = posting["source_id"]  # a reversal names the same source, negative: the sum is the net
            hours[source] += minutes_of(posting)
            amounts[source] += Decimal(posting["amount"])
            positive[source] += Decimal(posting["quantity"]) > 0
        return hours, amounts, positive

    def check_posted_hours(self, seen: Seen, settled: bool) -> None:
        """1. Net posted hours per time entry = its current version's hours (0 if rejected)."""
        hours: dict[str, Decimal] = defaultdict(Decimal)
        for key in TIME_CONTRACTS:
            by_source, _, positive = self._net(seen.postings[key])
            for source, count in positive.items():
                if count > 1:
                    raise violation(1, f"time entry {source} has {count} postings in the ERP (exactly once)")
            for source, value in by_source.items():
                hours[source] += value
        for chain in self.chains:
            current = seen.entries[chain.versions[-1]]
            net = sum((hours[v] for v in chain.versions), Decimal(0))
            history = [(v, seen.entries[v]["state"], seen.entries[v]["hours"], str(hours[v])) for v in chain.versions]
            if current["state"] in ("posted", "invoiced"):
                if net != minutes_of(current):
                    raise violation(1, f"net posted minutes {net} != current version's {minutes_of(current)} "
                                       f"(versions: id, PSA state, hours, posted hours: {history})")
                continue
            # Not posted (draft, submitted, approved and held or waiting, rejected): nothing may stay posted,
            # except the previous version's posting while its correction is not carried out yet.
            earlier = [minutes_of(seen.entries[v]) for v in chain.versions[:-1]
                       if seen.entries[v]["state"] in ("posted", "invoiced")]
            allowed = {Decimal(0), *earlier[-1:]}
            if not settled and current["state"] == "approved":
                allowed.add(minutes_of(current))  # in the ERP already, the PSA not told yet
            if net not in allowed:
                raise violation(1, f"net posted minutes {net}, expected one of {sorted(allowed)} for a current "
                                   f"version in state {current['state']} (versions: {history})")
            if settled and current["state"] == "approved" and current["billable"] \
                    and chain.versions[-1] not in seen.held:
                raise violation(1, f"approved {current['hours']} h neither posted nor held: lost (versions: "
                                   f"{history})")

    def check_milestones_billed_once(self, seen: Seen) -> None:
        """2. Each milestone billed at most once."""
        for key, invoices in seen.invoices.items():
            billed: dict[str, list[str]] = defaultdict(list)
            for invoice in invoices:
                if invoice["state"] not in BILLED_STATES:
                    continue
                for line in invoice["lines"]:
                    if line["source_type"] == "milestone":
                        billed.update({s: [*billed[s], invoice["id"]] for s in line["source_ids"]})
                for credit in seen.credits.get(invoice["id"], []):  # a credit note takes a billing back
                    for line in credit["lines"]:
                        if line["source_type"] == "milestone":
                            billed.update({s: billed[s][:-1] for s in line["source_ids"]})
            for milestone_id, on in billed.items():
                if len(on) > 1:
                    raise violation(2, f"milestone {milestone_id} of {key} billed {len(on)} times: invoices {on}")

    def check_expenses_billed_once(self, seen: Seen) -> None:
        """2. Each expense billed at most once."""
        for key, invoices in seen.invoices.items():
            billed: dict[str, list[str]] = defaultdict(list)
            for invoice in invoices:
                if invoice["state"] in BILLED_STATES:
                    for line in invoice["lines"]:
                        if line["source_type"] == "expense":
                            for source in line["source_ids"]:
                                billed[source].append(invoice["id"])
            for expense_id, on in billed.items():
                if len(on) > 1:
                    raise violation(2, f"expense {expense_id} of {key} billed {len(on)} times: invoices {on}")

    def check_draft_refusal(self, key: str, period: str, problem: dict[str, Any]) -> None:
        """3. The contract's own terms fit its value here (instalments and milestones add up to it, posted time is
        capped by the NTE, which is the value): drafting is never refused for the value, whatever expenses were
        billed before; an expense the value has no room for is held, not the contract's own billing."""
        if problem.get("reason") == "CONTRACT_VALUE_EXCEEDED":
            expenses = [e for k, e in self.expenses if k == key]
            raise violation(3, f"drafting {key} for {period} refused for the value ({problem.get('detail')}): the "
                               f"contract's own billing fits it, its expenses {expenses} took the room")

    def check_contract_limits(self, seen: Seen) -> None:
        """3. Per contract: cumulative billed <= value; nothing billed outside the term or on a closed contract."""
        for key, invoices in seen.invoices.items():
            contract = seen.contracts[key]
            value = Decimal(contract["total_value"])
            billed = [i for i in invoices if i["state"] in BILLED_STATES]
            total = sum((Decimal(i["subtotal"]) - sum((Decimal(c["subtotal"]) for c in seen.credits.get(i["id"], [])),
                                                      Decimal(0)) for i in billed), Decimal(0))
            if total > value:
                raise violation(3, f"{key} billed {total} {contract['currency']} over its value {value}: "
                                   f"{[(i['id'], i.get('period'), i['subtotal']) for i in billed]}")
            start = dt.date.fromisoformat(contract["start_date"])
            end = dt.date.fromisoformat(contract["end_date"]) if contract.get("end_date") else dt.date.max
            for invoice in billed:
                if invoice.get("period"):
                    first, last = bounds(invoice["period"])
                    if last < start or first > end:
                        raise violation(3, f"{key} billed {invoice['subtotal']} for {invoice['period']}, outside "
                                           f"its term {start}..{end} (invoice {invoice['id']})")
                for line in invoice["lines"]:
                    for source in line["source_ids"] if line["source_type"] == "time_entry" else []:
                        entry = seen.entries.get(source)
                        if entry and not start <= dt.date.fromisoformat(entry["work_date"]) <= end:
                            raise violation(3, f"{key} billed time of {entry['work_date']} outside its term "
                                               f"{start}..{end} (entry {source}, invoice {invoice['id']})")

    def check_currency(self, seen: Seen) -> None:
        """4. Every invoice in one currency, the contract's (and every amount it bills priced in it)."""
        for key, invoices in seen.invoices.items():
            currency = seen.contracts[key]["currency"]
            for invoice in invoices:
                if invoice["currency"] != currency:
                    raise violation(4, f"invoice {invoice['id']} of {key} is in {invoice['currency']}, "
                                       f"the contract in {currency}")
            card = self.contracts[key].rate_card_currency
            for posting in seen.postings[key]:
                if posting["currency"] != currency:
                    raise violation(4, f"posting {posting['id']} of {key} in {posting['currency']}, the contract in "
                                       f"{currency}")
                if posting["source_type"] == "time_entry" and card and card != currency \
                        and Decimal(posting["amount"]) != 0:
                    raise violation(4, f"posting {posting['id']} of {key} prices {posting['quantity']} h at a "
                                       f"{card} rate card and calls it {posting['amount']} {currency}")

    def check_lines_equal_postings(self, seen: Seen, settled: bool) -> None:
        """5. Invoice lines = the net postings they bill (and no version billed beyond its chain's hours).

        Drafts bill nothing yet: a draft is checked when it is posted. While the ERP is down, a corrected entry's
        reversal and credit note may be on their way: its lines are checked once the ERP is back."""
        billed_hours: dict[str, Decimal] = defaultdict(Decimal)
        in_flight = set() if settled else {v for c in self.chains if len(c.versions) > 1 for v in c.versions}
        for key in TIME_CONTRACTS:
            hours, amounts, _ = self._net(seen.postings[key])
            for invoice in seen.invoices[key]:
                if invoice["state"] not in BILLED_STATES:
                    continue
                credited_amount: dict[str, Decimal] = defaultdict(Decimal)
                credited_hours: dict[str, Decimal] = defaultdict(Decimal)
                for credit in seen.credits.get(invoice["id"], []):
                    for line in credit["lines"]:
                        if line["source_type"] == "time_entry":
                            for source in line["source_ids"]:  # credited in full: one source per credited line
                                credited_amount[source] += Decimal(line["amount"])
                                credited_hours[source] += minutes_of(line)
                for line in invoice["lines"]:
                    if line["source_type"] != "time_entry":
                        continue
                    sources = line["source_ids"]
                    if in_flight.intersection(sources):
                        continue
                    posted = sum((amounts[s] for s in sources), Decimal(0))
                    quantity = sum((hours[s] for s in sources), Decimal(0))
                    left = (Decimal(line["amount"]) - sum((credited_amount[s] for s in sources), Decimal(0)),
                            minutes_of(line) - sum((credited_hours[s] for s in sources), Decimal(0)))
                    if left != (posted, quantity):
                        raise violation(5, f"invoice {invoice['id']} ({invoice['state']}) line bills "
                                           f"{minutes_of(line)} min / {line['amount']} for {sources} (credited "
                                           f"since: {minutes_of(line) - left[1]} min / "
                                           f"{Decimal(line['amount']) - left[0]}); their net postings are "
                                           f"{quantity} min / {posted}")
                    for source in sources:
                        billed_hours[source] += hours[source]
        for chain in self.chains:
            if in_flight.intersection(chain.versions):
                continue
            billed = sum((billed_hours[v] for v in chain.versions), Decimal(0))
            current = seen.entries[chain.versions[-1]]
            live = current["state"] in ("approved", "posted", "invoiced")
            ceiling = minutes_of(current) if live else Decimal(0)
            if billed > ceiling:
                raise violation(5, f"{billed} min billed for an entry whose current version has {ceiling} min "
                                   f"({current['state']}); versions {chain.versions}")

    def unbilled_late_time(self, seen: Seen) -> dict[str, str]:
        """Posted time not on any issued invoice although its period's invoice was posted: time entry -> period."""
        late: dict[str, str] = {}
        for key in TIME_CONTRACTS:
            issued = [i for i in seen.invoices[key] if i["state"] in BILLED_STATES]
            periods = {i.get("period") for i in issued}
            billed = {s for i in issued for line in i["lines"] if line["source_type"] == "time_entry"
                      for s in line["source_ids"]}
            start = dt.date.fromisoformat(seen.contracts[key]["start_date"])
            for chain in self.chains:
                entry = seen.entries[chain.versions[-1]]
                period = entry["work_date"][:7]
                if chain.contract == key and entry["state"] == "posted" and entry["billable"] \
                        and period in periods and entry["id"] not in billed \
                        and dt.date.fromisoformat(entry["work_date"]) >= start:
                    late[entry["id"]] = period
        return late

    def check_reconciliation(self, seen: Seen, report: dict[str, Any]) -> None:
        """5. Reconciliation reports no unexplained difference: none on a consistent ledger (a difference it
        reports carries the action to take), and the money still to bill (late time) is reported."""
        differences = [d for p in [*report["projects"], *report.get("contracts", [])] for d in p["differences"]]
        unexplained = [d for d in differences if not d.get("action")]
        if unexplained:
            raise violation(5, f"reconciliation reports {len(unexplained)} difference(s) on a consistent ledger: "
                               f"{[(d['type'], d.get('time_entry_id'), d.get('detail')) for d in unexplained[:5]]}")
        named = {d.get("time_entry_id") for d in differences}
        silent = {entry: period for entry, period in self.unbilled_late_time(seen).items() if entry not in named}
        if silent:
            raise violation(5, f"posted time left off its period's posted invoice, and reconciliation is silent: "
                               f"{silent}")
        named_expenses = {d.get("expense_id") for d in differences}
        dropped = {e: period for e, period in self.unbilled_expenses(seen).items() if e not in named_expenses}
        if dropped:
            raise violation(5, f"posted billable expenses on no issued invoice although their period's invoice is "
                               f"issued, and reconciliation is silent: {dropped}")

    def unbilled_expenses(self, seen: Seen) -> dict[str, str]:
        """Posted billable expenses on no issued invoice although their period has one: expense -> period."""
        left: dict[str, str] = {}
        for key, expense_id in self.expenses:
            issued = [i for i in seen.invoices[key] if i["state"] in BILLED_STATES]
            billed = {s for i in issued for line in i["lines"] if line["source_type"] == "expense"
                      for s in line["source_ids"]}
            expense = ok(self.process.get(f"{PROCESS}/expenses/v1/expenses/{expense_id}"))
            period = expense["expense_date"][:7]
            if expense["state"] == "posted" and period in {i.get("period") for i in issued} \
                    and expense_id not in billed:
                left[expense_id] = period
        return left
