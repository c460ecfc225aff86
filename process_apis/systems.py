"""The system APIs as the process tier calls them: typed, through the gateway, with this tier's identity.

One small class per system API. Reads return canonical Structs; writes send an Idempotency-Key whenever a
retry must not repeat the effect. Lists are followed across every page.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Generic, TypeVar

import msgspec

from contracts.canonical import (
    AccountingPeriod,
    Assignment,
    Contract,
    CreditNote,
    Customer,
    Expense,
    Invoice,
    LegalEntity,
    Milestone,
    Opportunity,
    Page,
    Posting,
    Project,
    ProjectDimension,
    RateCard,
    RevenueSchedule,
    Task,
    TimeEntry,
    Worker,
)
from runtime.downstream import Downstream, segment

T = TypeVar("T")

PSA = "/system/psa/v1"
ERP = "/system/erp/v1"
HR = "/system/hr/v1"
CRM = "/system/crm/v1"
TAX = "/system/tax/v1"
EINVOICE = "/system/einvoice/v1"
PAGE_LIMIT = 200
# Ids per batch read (``?ids=``), as the system APIs' contracts allow.
BATCH_IDS_MAX = 200
# How long reference data read here may be served again without asking (declared in the staffing contract).
REFERENCE_TTL_SECONDS = 30.0
# The PSA serves time entries in larger pages (a month end reads tens of thousands: fewer round trips).
TIME_ENTRY_PAGE_LIMIT = 1000


class BatchItemResult(msgspec.Struct, kw_only=True):
    source_id: str
    status: str  # created | existing | rejected
    posting: Posting | None = None
    problem: dict[str, Any] | None = None


class BatchResult(msgspec.Struct, kw_only=True):
    items: list[BatchItemResult]


class TransitionItemResult(msgspec.Struct, kw_only=True):
    time_entry_id: str
    status: str  # changed | unchanged | refused
    time_entry: TimeEntry | None = None
    problem: dict[str, Any] | None = None


class TransitionResult(msgspec.Struct, kw_only=True):
    items: list[TransitionItemResult]


class CrmAccount(msgspec.Struct, kw_only=True):
    """The CRM account as the system API shows it (a customer id plus what the ERP customer needs)."""

    id: str
    name: str
    billing_currency: str | None = None
    legal_entity_id: str | None = None
    tax_jurisdiction: str | None = None
    external_ids: dict[str, str] = {}


async def all_pages(gateway: Downstream, path: str, item_type: type[T],
                    params: Mapping[str, Any] | None = None, limit: int = PAGE_LIMIT,
                    headers: Mapping[str, str] | None = None) -> list[T]:
    """Every item of a paginated list (cursor after cursor)."""
    items: list[T] = []
    cursor: str | None = None
    while True:
        page = await gateway.get_json(path, Page[item_type],  # type: ignore[valid-type]
                                      params={**(params or {}), "cursor": cursor, "limit": limit}, headers=headers)
        items.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            return items


def _decode(response: Any, type_: type[T]) -> T:
    return msgspec.json.decode(response.content, type=type_)


class ReferenceCache(Generic[T]):
    """Reference data (projects, workers, rate cards) by id for a short, declared time: bounded, per process.

    What it holds is read with this tier's own identity and is firm-wide reference data, never one caller's
    data, so any caller may be answered from it; a write through this tier forgets the entry it changed."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()
        # Bumped by every forget: a read that started before a write must not cache what it read.
        self.generation = 0

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() >= entry[0]:
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: str, value: T, generation: int) -> None:
        """Cache ``value`` read while the cache was at ``generation``: dropped when a write came in between."""
        if self.ttl_seconds <= 0 or generation != self.generation:
            return
        self._entries[key] = (time.monotonic() + self.ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self.generation += 1
        self._entries.pop(key, None)


class Psa:
    def __init__(self, gateway: Downstream, reference_ttl_seconds: float = REFERENCE_TTL_SECONDS) -> None:
        self.gateway = gateway
        self.project_cache: ReferenceCache[Project] = ReferenceCache(reference_ttl_seconds)

    async def projects_by_id(self, project_ids: Iterable[str]) -> dict[str, Project]:
        """The projects of these ids that the PSA holds, by id: from the reference cache, the rest in batch reads
        (``?ids=``, one call per BATCH_IDS_MAX ids) rather than one call each."""
        found: dict[str, Project] = {}
        missing: list[str] = []
        for project_id in dict.fromkeys(project_ids):
            cached = self.project_cache.get(project_id)
            if cached is not None:
                found[project_id] = cached
            else:
                missing.append(project_id)
        for start in range(0, len(missing), BATCH_IDS_MAX):
            chunk = missing[start:start + BATCH_IDS_MAX]
            generation = self.project_cache.generation
            page = await self.gateway.get_json(f"{PSA}/projects", Page[Project], params={"ids": ",".join(chunk)})
            for project in page.items:
                self.project_cache.put(project.id, project, generation)
                found[project.id] = project
        return found

    async def time_entry(self, time_entry_id: str) -> TimeEntry:
        return await self.gateway.get_json(f"{PSA}/time-entries/{segment(time_entry_id)}", TimeEntry)

    async def time_entries(self, **filters: Any) -> list[TimeEntry]:
        return await all_pages(self.gateway, f"{PSA}/time-entries", TimeEntry, _params(filters),
                               limit=TIME_ENTRY_PAGE_LIMIT)

    async def create_time_entry(self, body: Mapping[str, Any], idempotency_key: str | None = None
                                ) -> tuple[int, TimeEntry]:
        response = await self.gateway.request("POST", f"{PSA}/time-entries", json=body,
                                              idempotency_key=idempotency_key)
        return response.status_code, _decode(response, TimeEntry)

    async def expenses(self, **filters: Any) -> list[Expense]:
        return await all_pages(self.gateway, f"{PSA}/expenses", Expense, _params(filters))

    async def create_expense(self, body: Mapping[str, Any], idempotency_key: str) -> Expense:
        response = await self.gateway.request("POST", f"{PSA}/expenses", json=body, idempotency_key=idempotency_key)
        return _decode(response, Expense)

    async def update_time_entry(self, time_entry_id: str, changes: Mapping[str, Any]) -> TimeEntry:
        response = await self.gateway.request("PATCH", f"{PSA}/time-entries/{segment(time_entry_id)}", json=changes)
        return _decode(response, TimeEntry)

    async def delete_time_entry(self, time_entry_id: str) -> None:
        await self.gateway.request("DELETE", f"{PSA}/time-entries/{segment(time_entry_id)}")

    async def correct_time_entry(self, time_entry_id: str, changes: Mapping[str, Any],
                                 idempotency_key: str) -> TimeEntry:
        """A new version superseding the entry (a draft); the same key answers the same version again."""
        response = await self.gateway.request("POST", f"{PSA}/time-entries/{segment(time_entry_id)}/corrections",
                                              json=changes, idempotency_key=idempotency_key)
        return _decode(response, TimeEntry)

    async def transition_time_entry(self, time_entry_id: str, to_state: str, *, actor_id: str | None = None,
                                    reason: str | None = None) -> TimeEntry:
        body: dict[str, Any] = {"to_state": to_state}
        if actor_id:
            body["actor_id"] = actor_id
        if reason:
            body["reason"] = reason
        response = await self.gateway.request("POST", f"{PSA}/time-entries/{segment(time_entry_id)}/transitions",
                                              json=body)
        return _decode(response, TimeEntry)

    async def transition_time_entries(self, items: list[Mapping[str, Any]]) -> TransitionResult:
        """Up to 500 state changes in one call, an outcome each. No Idempotency-Key: a repeat is harmless by
        itself (an entry in the state asked for answers ``unchanged``), and 500-item answers need not be stored."""
        response = await self.gateway.request("POST", f"{PSA}/time-entries/transitions", json={"items": items})
        return _decode(response, TransitionResult)

    async def project(self, project_id: str) -> Project:
        return await self.gateway.get_json(f"{PSA}/projects/{segment(project_id)}", Project)

    async def projects(self, **filters: Any) -> list[Project]:
        return await all_pages(self.gateway, f"{PSA}/projects", Project, _params(filters))

    async def create_project(self, body: Mapping[str, Any], idempotency_key: str) -> Project:
        response = await self.gateway.request("POST", f"{PSA}/projects", json=body, idempotency_key=idempotency_key)
        project = _decode(response, Project)
        self.project_cache.forget(project.id)
        return project

    async def update_project(self, project_id: str, changes: Mapping[str, Any]) -> Project:
        # Forgotten before and after: a failed or concurrent write must not leave the old project cached.
        self.project_cache.forget(project_id)
        try:
            response = await self.gateway.request("PATCH", f"{PSA}/projects/{segment(project_id)}", json=changes)
        finally:
            self.project_cache.forget(project_id)
        return _decode(response, Project)

    async def tasks(self, project_id: str) -> list[Task]:
        return await all_pages(self.gateway, f"{PSA}/projects/{segment(project_id)}/tasks", Task)

    async def create_task(self, project_id: str, body: Mapping[str, Any], idempotency_key: str) -> Task:
        response = await self.gateway.request("POST", f"{PSA}/projects/{segment(project_id)}/tasks", json=body,
                                              idempotency_key=idempotency_key)
        return _decode(response, Task)

    async def assignment_page(self, *, cursor: str | None, limit: int, **filters: Any) -> Page[Assignment]:
        """One page of assignments, for a caller that pages itself."""
        return await self.gateway.get_json(f"{PSA}/assignments", Page[Assignment],
                                           params={**_params(filters), "cursor": cursor, "limit": limit})

    async def assignments(self, **filters: Any) -> list[Assignment]:
        return await all_pages(self.gateway, f"{PSA}/assignments", Assignment, _params(filters))

    async def create_assignment(self, body: Mapping[str, Any], idempotency_key: str) -> Assignment:
        response = await self.gateway.request("POST", f"{PSA}/assignments", json=body,
                                              idempotency_key=idempotency_key)
        return _decode(response, Assignment)

    async def transition_assignment(self, assignment_id: str, to_status: str, idempotency_key: str) -> Assignment:
        response = await self.gateway.request("POST", f"{PSA}/assignments/{segment(assignment_id)}/transitions",
                                              json={"to_status": to_status}, idempotency_key=idempotency_key)
        return _decode(response, Assignment)

    async def milestone(self, milestone_id: str) -> Milestone:
        return await self.gateway.get_json(f"{PSA}/milestones/{segment(milestone_id)}", Milestone)

    async def milestones(self, **filters: Any) -> list[Milestone]:
        return await all_pages(self.gateway, f"{PSA}/milestones", Milestone, _params(filters))

    async def transition_milestone(self, milestone_id: str, to_state: str) -> Milestone:
        response = await self.gateway.request("POST", f"{PSA}/milestones/{segment(milestone_id)}/transitions",
                                              json={"to_state": to_state})
        return _decode(response, Milestone)


class Erp:
    def __init__(self, gateway: Downstream) -> None:
        self.gateway = gateway

    async def contract(self, contract_id: str) -> Contract:
        return await self.gateway.get_json(f"{ERP}/contracts/{segment(contract_id)}", Contract)

    async def contracts(self, **filters: Any) -> list[Contract]:
        return await all_pages(self.gateway, f"{ERP}/contracts", Contract, _params(filters))

    async def create_contract(self, body: Mapping[str, Any], idempotency_key: str) -> Contract:
        response = await self.gateway.request("POST", f"{ERP}/contracts", json=body, idempotency_key=idempotency_key)
        return _decode(response, Contract)

    async def update_contract(self, contract_id: str, changes: Mapping[str, Any],
                              idempotency_key: str | None = None) -> Contract:
        response = await self.gateway.request("PATCH", f"{ERP}/contracts/{segment(contract_id)}", json=changes,
                                              idempotency_key=idempotency_key)
        return _decode(response, Contract)

    async def customer(self, customer_id: str) -> Customer:
        return await self.gateway.get_json(f"{ERP}/customers/{segment(customer_id)}", Customer)

    async def create_customer(self, body: Mapping[str, Any], idempotency_key: str) -> Customer:
        response = await self.gateway.request("POST", f"{ERP}/customers", json=body, idempotency_key=idempotency_key)
        return _decode(response, Customer)

    async def legal_entities(self) -> list[LegalEntity]:
        return await all_pages(self.gateway, f"{ERP}/legal-entities", LegalEntity)

    async def accounting_periods(self, legal_entity_id: str | None = None) -> list[AccountingPeriod]:
        return await all_pages(self.gateway, f"{ERP}/accounting-periods", AccountingPeriod,
                               _params({"legal_entity_id": legal_entity_id}))

    async def postings(self, **filters: Any) -> list[Posting]:
        return await all_pages(self.gateway, f"{ERP}/postings", Posting, _params(filters))

    async def revenue_schedules(self, contract_id: str) -> list[RevenueSchedule]:
        return await all_pages(self.gateway, f"{ERP}/revenue-schedules", RevenueSchedule,
                               {"contract_id": contract_id})

    async def recognize(self, body: Mapping[str, Any], idempotency_key: str) -> RevenueSchedule:
        response = await self.gateway.request("POST", f"{ERP}/revenue-schedules", json=body,
                                              idempotency_key=idempotency_key)
        return _decode(response, RevenueSchedule)

    async def post(self, body: Mapping[str, Any], idempotency_key: str) -> Posting:
        response = await self.gateway.request("POST", f"{ERP}/postings", json=body, idempotency_key=idempotency_key)
        return _decode(response, Posting)

    async def credit(self, invoice_id: str, lines: list[Mapping[str, Any]], idempotency_key: str) -> CreditNote:
        response = await self.gateway.request("POST", f"{ERP}/invoices/{segment(invoice_id)}/credit-notes",
                                              json={"lines": lines}, idempotency_key=idempotency_key)
        return _decode(response, CreditNote)

    async def reverse(self, posting_id: str, on: dt.date, idempotency_key: str) -> Posting:
        response = await self.gateway.request("POST", f"{ERP}/postings/{segment(posting_id)}/reversals",
                                              json={"on": on.isoformat()}, idempotency_key=idempotency_key)
        return _decode(response, Posting)

    async def post_batch(self, items: list[Mapping[str, Any]], idempotency_key: str) -> BatchResult:
        response = await self.gateway.request("POST", f"{ERP}/postings/batch", json={"items": items},
                                              idempotency_key=idempotency_key)
        return _decode(response, BatchResult)

    async def project_dimensions(self, project_id: str) -> list[ProjectDimension]:
        return await all_pages(self.gateway, f"{ERP}/project-dimensions", ProjectDimension,
                               {"project_id": project_id})

    async def create_project_dimension(self, body: Mapping[str, Any], idempotency_key: str) -> ProjectDimension:
        response = await self.gateway.request("POST", f"{ERP}/project-dimensions", json=body,
                                              idempotency_key=idempotency_key)
        return _decode(response, ProjectDimension)

    async def create_invoice(self, body: Mapping[str, Any], idempotency_key: str) -> Invoice:
        response = await self.gateway.request("POST", f"{ERP}/invoices", json=body, idempotency_key=idempotency_key)
        return _decode(response, Invoice)

    async def post_invoice(self, invoice_id: str, idempotency_key: str) -> Invoice:
        response = await self.gateway.request("POST", f"{ERP}/invoices/{segment(invoice_id)}/post",
                                              idempotency_key=idempotency_key)
        return _decode(response, Invoice)

    async def void_invoice(self, invoice_id: str, idempotency_key: str) -> Invoice:
        response = await self.gateway.request("POST", f"{ERP}/invoices/{segment(invoice_id)}/void",
                                              idempotency_key=idempotency_key)
        return _decode(response, Invoice)

    async def invoice(self, invoice_id: str) -> Invoice:
        return await self.gateway.get_json(f"{ERP}/invoices/{segment(invoice_id)}", Invoice)

    async def invoices(self, **filters: Any) -> list[Invoice]:
        return await all_pages(self.gateway, f"{ERP}/invoices", Invoice, _params(filters))


class Hr:
    def __init__(self, gateway: Downstream) -> None:
        self.gateway = gateway

    async def worker(self, worker_id: str) -> Worker:
        return await self.gateway.get_json(f"{HR}/workers/{segment(worker_id)}", Worker)

    async def workers(self, *, fresh: bool = False, **filters: Any) -> list[Worker]:
        """HR's workers; ``fresh`` asks the gateway's response cache for HR's answer as it is now (and stores it),
        for a reader that must see a change as soon as HR has it (the HR change feed)."""
        return await all_pages(self.gateway, f"{HR}/workers", Worker, _params(filters),
                               headers={"Cache-Control": "no-cache"} if fresh else None)


class RecordChange(msgspec.Struct, kw_only=True):
    """One record of the CRM's change feed (contracts/system/crm/v1.yaml, GET /changes)."""

    object: str
    id: str
    modified_at: dt.datetime


class Crm:
    def __init__(self, gateway: Downstream) -> None:
        self.gateway = gateway

    async def changes(self, object_: str, since: dt.datetime) -> list[RecordChange]:
        """Every record of this kind changed at or after ``since``, oldest change first."""
        return await all_pages(self.gateway, f"{CRM}/changes", RecordChange,
                               {"object": object_, "since": since.isoformat()})

    async def opportunity(self, opportunity_id: str) -> Opportunity:
        return await self.gateway.get_json(f"{CRM}/opportunities/{segment(opportunity_id)}", Opportunity)

    async def opportunities(self, **filters: Any) -> list[Opportunity]:
        return await all_pages(self.gateway, f"{CRM}/opportunities", Opportunity, _params(filters))

    async def update_opportunity(self, opportunity_id: str, changes: Mapping[str, Any]) -> None:
        await self.gateway.request("PATCH", f"{CRM}/opportunities/{segment(opportunity_id)}", json=changes)

    async def account(self, account_id: str) -> CrmAccount:
        return await self.gateway.get_json(f"{CRM}/accounts/{segment(account_id)}", CrmAccount)

    async def rate_card(self, rate_card_id: str) -> RateCard:
        return await self.gateway.get_json(f"{CRM}/rate-cards/{segment(rate_card_id)}", RateCard)

    async def contract(self, contract_id: str) -> Contract:
        """The contract signed in the CRM, with the billing terms sold."""
        return await self.gateway.get_json(f"{CRM}/contracts/{segment(contract_id)}", Contract)


class Tax:
    def __init__(self, gateway: Downstream) -> None:
        self.gateway = gateway

    async def calculate(self, body: Mapping[str, Any], type_: type[T]) -> T:
        """A calculation changes nothing: repeating it is safe, so no Idempotency-Key."""
        return _decode(await self.gateway.request("POST", f"{TAX}/tax-calculations", json=body), type_)


class Einvoice:
    def __init__(self, gateway: Downstream) -> None:
        self.gateway = gateway

    async def deliver(self, body: Mapping[str, Any], type_: type[T]) -> T:
        """One network document per invoice, format and attempt (the access point dedupes on that reference)."""
        return _decode(await self.gateway.request("POST", f"{EINVOICE}/deliveries", json=body), type_)

    async def delivery(self, delivery_id: str, type_: type[T]) -> T:
        return await self.gateway.get_json(f"{EINVOICE}/deliveries/{segment(delivery_id)}", type_)


class Systems:
    """Every system API, sharing the one gateway downstream of this tier."""

    def __init__(self, gateway: Downstream) -> None:
        self.psa = Psa(gateway)
        self.erp = Erp(gateway)
        self.hr = Hr(gateway)
        self.crm = Crm(gateway)
        self.tax = Tax(gateway)
        self.einvoice = Einvoice(gateway)


def _params(filters: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if isinstance(value, dt.date | Decimal):
            value = str(value)
        clean[key] = value
    return clean
