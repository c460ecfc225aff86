"""The generated Python clients are a product: generated from today's contracts (``psgw contracts clients``),
imported, and driven through the planning-to-cash flow against the live stack. A breaking change in one of
these contracts (a renamed field, a removed operation, a changed type) breaks this test before a consumer.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from contracts.toolchain.clients import generate_clients
from tests.support.days import a_day_of_its_own, week_of
from tests.support.stack import DEMO_CONSULTANT, RunningStack

APIS = (
    "experience/mobile-time/v2",
    "experience/approvals/v1",
    "experience/finance-ops/v1",
    "system/psa/v1",
    "system/erp/v1",
)
DEMO_MANAGER = "wrk_e1002"  # manages prj_4001
FINANCE_LEAD = "wrk_e1003"


class Clients:
    """Import ``<package>.<module>`` from the generated packages, and build an authenticated client."""

    def __init__(self, stack: RunningStack, python_dir: Path) -> None:
        self.stack = stack
        self.python_dir = python_dir

    def module(self, api: str, name: str) -> ModuleType:
        package = "psgw_" + api.replace("/", "_").replace("-", "_")
        return importlib.import_module(f"{package}.{name}")

    def client(self, api: str, client_id: str, subject: str | None = None) -> Any:
        token = self.stack.token(client_id, subject=subject)
        server = "/" + api  # the contract's server URL: /<layer>/<api>/v<N>
        return self.module(api, "client").AuthenticatedClient(
            base_url=self.stack.url + server, token=token, raise_on_unexpected_status=True
        )


@pytest.fixture(scope="session")
def generated(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    output = tmp_path_factory.mktemp("clients")
    generate_clients(output_dir=output, apis=APIS, typescript=False)
    sys.path.insert(0, str(output / "python"))
    try:
        yield Clients(stack, output / "python")
    finally:
        sys.path.remove(str(output / "python"))


def answered(response: Any, status: int) -> Any:
    """The parsed body of a generated call's detailed response, after checking its status."""
    assert response.status_code == status, f"{response.status_code}: {response.content!r}"
    return response.parsed


def test_planning_to_cash_through_the_generated_clients(generated: Clients) -> None:
    mobile, approvals, finance = APIS[0], APIS[1], APIS[2]
    psa, erp = APIS[3], APIS[4]
    day = a_day_of_its_own()

    # The consultant logs two hours on the phone (v2: minutes and a work type) and submits the week.
    phone = generated.client(mobile, "mobile-app", DEMO_CONSULTANT)
    new_entry = generated.module(mobile, "models").NewEntryV2(
        project_id="prj_4001",
        work_date=day,
        minutes=120,
        work_type=generated.module(mobile, "models").NewEntryV2WorkType("billable_delivery"),
        client_ref="client-" + uuid.uuid4().hex[:12],
    )
    entry = answered(
        generated.module(mobile, "api.time_entries.create_my_time_entry").sync_detailed(client=phone, body=new_entry),
        201,
    )
    submission = answered(
        generated.module(mobile, "api.weeks.submit_my_week").sync_detailed(week_of(day), client=phone), 200
    )
    assert entry.time_entry_id in {item.time_entry_id for item in submission.items}

    # The project manager approves it in the inbox; the process tier queues it for posting.
    inbox = generated.client(approvals, "dashboard-web", DEMO_MANAGER)
    models = generated.module(approvals, "models")
    decision = answered(
        generated.module(approvals, "api.decisions.decide_submitted_entry").sync_detailed(
            entry.time_entry_id,
            client=inbox,
            idempotency_key="approve-" + entry.time_entry_id,
            body=models.SingleDecisionRequest(decision=models.SingleDecisionRequestDecision("approve")),
        ),
        200,
    )
    [item] = decision.items
    assert (item.time_entry_id, item.result) == (entry.time_entry_id, "approved")
    assert item.billing.disposition == "queued_for_posting", item.billing

    # The posting reaches the ERP exactly once, and the PSA shows the entry posted.
    process = generated.client(psa, "process-tier")
    get_entry = generated.module(psa, "api.time_entries.get_time_entry")
    deadline = time.monotonic() + 30
    while answered(get_entry.sync_detailed(entry.time_entry_id, client=process), 200).state != "posted":
        assert time.monotonic() < deadline, "the approved entry was not posted within 30 s"
        time.sleep(0.2)
    postings = answered(
        generated.module(erp, "api.postings.list_postings").sync_detailed(
            client=generated.client(erp, "process-tier"), source_id=entry.time_entry_id
        ),
        200,
    )
    assert len(postings.items) == 1

    # Finance drafts the month's invoice for the project's contract, with the entry on it, and posts it.
    contract_id = answered(
        generated.module(psa, "api.projects.get_project").sync_detailed("prj_4001", client=process), 200
    ).contract_id
    lead = generated.client(finance, "finance-web", FINANCE_LEAD)
    finance_models = generated.module(finance, "models")
    draft = generated.module(finance, "api.invoicing.draft_invoice").sync_detailed(
        client=lead, body=finance_models.DraftRequest(contract_id=contract_id, period=day.strftime("%Y-%m"))
    )
    invoice = answered(draft, 201 if draft.status_code == 201 else 200)
    assert entry.time_entry_id in invoice.time_entry_ids
    posted = answered(
        generated.module(finance, "api.invoicing.post_invoice").sync_detailed(invoice.id, client=lead), 200
    )
    assert (posted.id, posted.state) == (invoice.id, "posted")
    assert posted.invoice.lines and posted.updated_at >= invoice.created_at - dt.timedelta(seconds=1)
