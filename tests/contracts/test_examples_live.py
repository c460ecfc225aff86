"""Every request example in every contract, sent to a live stack through the gateway, is answered as its contract says.

The examples are what an app team copies first; the mock answers them by construction, so only the live tiers
show whether they still work. One disposable stack (its own data dir, so nothing another test does moves it),
one pass in an order that creates before it reads and reads before it acts on a record: lists and creations
first, then reads of one record, then changes, then actions and deletions. An example that names a record
(``te_100001``) gets one of the same kind the stack has answered with so far (same prefix; the field's own name
first), because the examples were written for a demo dataset, not for this stack's. Each call goes out with a
token of the client the gateway lets call that layer, holding exactly the operation's scopes.

What counts as working: the status is 2xx and the body validates against the operation's declared response,
unless ``PRECONDITION_REFUSALS`` names the example with the documented refusal this stack gives and why.
Each example is its own test id (``<contract>::<operationId>::<example>``), so a broken one is named.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import pytest

from contracts import CONTRACTS_DIR
from contracts.toolchain.catalog import contract_files
from contracts.toolchain.example_requests import example_request
from contracts.toolchain.loader import ContractDocument, load_contract
from contracts.toolchain.operations import as_mapping, effective_parameters, iter_operations, request_body_of
from contracts.toolchain.validation import CompiledContract
from gateway.launcher import REPO_ROOT, Ports, Stack
from tests.support.stack import DEMO_CONSULTANT, DEMO_MANAGER, RunningStack, print_logs

FINANCE_LEAD = "wrk_e1003"
# Who may call each layer through the gateway (policies/authorize: no app reaches a process or system API),
# and who the person is for the experience APIs that act for one.
LAYER_CLIENTS = {"system": ("process-tier", None), "process": ("experience-tier", None)}
EXPERIENCE_CLIENTS = {
    "experience/mobile-time": ("mobile-app", DEMO_CONSULTANT),
    "experience/approvals": ("approvals-web", DEMO_MANAGER),
    "experience/dashboards": ("dashboard-web", DEMO_MANAGER),
    "experience/finance-ops": ("finance-web", FINANCE_LEAD),
}
# Examples this one pass cannot bring to 2xx, because the record they act on needs a state a single ordered pass
# does not reach (an invoice posted, a dead letter, a pending correction, an open exception) or the demo record
# they name has moved on. They still go to the live tiers and must get exactly this documented refusal, a valid
# problem+json, never a 500; a 2xx is fine too. (contract, operationId, example) -> (status, what is missing).
PRECONDITION_REFUSALS: dict[tuple[str, str, str], tuple[int, str]] = {
    ('system/erp/v1', 'updateContract', 'example'): (404, "unknown-id: no contract 'ctr_2101'"),
    ('system/erp/v1', 'upsertProjectDimension', 'example'):
        (409, 'dimension-conflict: the project already has another dimension, or the code belongs to another project'),
    ('system/erp/v1', 'voidInvoice', 'parameters'):
        (409, 'invalid-transition: a posted invoice cannot be voided (a credit note corrects it)'),
    ('system/erp/v1', 'creditInvoice', 'example'): (404, "unknown-id: no invoice 'inv_...'"),
    ('system/psa/v1', 'deleteTimeEntry', 'parameters'): (409, 'not-editable: a submitted time entry cannot be deleted'),
    ('system/psa/v1', 'updateTimeEntry', 'example'):
        (409, 'not-editable: a posted time entry cannot be edited; correct it instead'),
    ('system/psa/v1', 'transitionTimeEntry', 'example'):
        (409, 'invalid-transition: a posted time entry cannot become submitted'),
    ('system/psa/v1', 'transitionTimeEntries', 'example'): (400, 'validation-error: te_... appears twice in the batch'),
    ('process/billing/v1', 'evaluateEligibility', 'example'): (400, "unknown-id: no time entry 'te_...'"),
    ('process/events/v1', 'getDeadLetter', 'parameters'): (404, "unknown-id: no dead letter 'dl_...'"),
    ('process/events/v1', 'redriveDeadLetter', 'parameters'): (404, "unknown-id: no dead letter 'dl_...'"),
    ('process/events/v2', 'getDeadLetter', 'parameters'): (404, "unknown-id: no dead letter 'dl_...'"),
    ('process/events/v2', 'redriveDeadLetter', 'parameters'): (404, "unknown-id: no dead letter 'dl_...'"),
    ('process/exceptions/v1', 'retryException', 'example'):
        (409, 'invalid-transition: exception exc_... is resolved: nothing to retry'),
    ('process/expenses/v1', 'decideExpense', 'example'):
        (403, 'own-time: nobody approves or rejects their own expense'),
    ('process/invoicing/v1', 'getInvoice', 'parameters'): (404, "unknown-id: no invoice 'inv_...' was drafted here"),
    ('process/invoicing/v1', 'postInvoice', 'parameters'): (404, "unknown-id: no invoice 'inv_...' was drafted here"),
    ('process/invoicing/v1', 'getEInvoiceDocument', 'parameters'):
        (404, 'no-e-invoice: invoice inv_... has no e-invoice (it is rendered once the invoice is posted)'),
    ('process/invoicing/v1', 'voidInvoice', 'parameters'): (404, "unknown-id: no invoice 'inv_...' was drafted here"),
    ('process/provisioning/v1', 'resumeProvisioning', 'parameters'):
        (409, 'invalid-transition: provisioning prv_... is completed: nothing to resume'),
    ('process/timesheets/v1', 'deleteTimeEntry', 'parameters'):
        (409, 'not-editable: a approved time entry cannot be deleted'),
    ('process/timesheets/v1', 'updateTimeEntry', 'example'):
        (409, 'not-editable: a approved time entry cannot be edited; correct it instead'),
    ('process/timesheets/v1', 'requestCorrection', 'example'):
        (400, 'validation-error: the corrected entry breaks an entry rule'),
    ('process/timesheets/v1', 'getCorrection', 'parameters'): (404, "unknown-id: no correction 'cor_...'"),
    ('process/timesheets/v1', 'decideCorrection', 'example'): (404, "unknown-id: no correction 'cor_...'"),
    ('experience/approvals/v1', 'decideCorrectionRequest', 'example'): (404, "unknown-id: no correction 'cor_...'"),
    ('experience/approvals/v1', 'decideInboxExpense', 'example'):
        (409, 'invalid-transition: expense exp_... is held: only a submitted expense is decided'),
    ('experience/finance-ops/v1', 'getQueueItem', 'parameters'): (404, "unknown-id: no exception 'exc_...'"),
    ('experience/finance-ops/v1', 'assignQueueItem', 'example'): (404, "unknown-id: no exception 'exc_...'"),
    ('experience/finance-ops/v1', 'resolveQueueItem', 'example'): (404, "unknown-id: no exception 'exc_...'"),
    ('experience/finance-ops/v1', 'retryQueueItem', 'parameters'): (404, "unknown-id: no exception 'exc_...'"),
    ('experience/finance-ops/v1', 'getInvoice', 'parameters'):
        (404, "unknown-id: no invoice 'inv_...' was drafted here"),
    ('experience/finance-ops/v1', 'postInvoice', 'parameters'):
        (404, "unknown-id: no invoice 'inv_...' was drafted here"),
    ('experience/mobile-time/v1', 'deleteMyTimeEntry', 'parameters'):
        (409, 'not-editable: a approved time entry cannot be deleted'),
    ('experience/mobile-time/v1', 'updateMyTimeEntry', 'example'):
        (409, 'not-editable: a approved time entry cannot be edited; correct it instead'),
    ('experience/mobile-time/v2', 'deleteMyTimeEntry', 'parameters'):
        (409, 'not-editable: a approved time entry cannot be deleted'),
    ('experience/mobile-time/v2', 'updateMyTimeEntry', 'example'):
        (409, 'not-editable: a approved time entry cannot be edited; correct it instead'),
    ('experience/mobile-time/v2', 'requestMyCorrection', 'example'):
        (409, 'already-superseded: te_... was corrected already by te_...'),
    ('experience/mobile-time/v3', 'deleteMyTimeEntry', 'parameters'):
        (409, 'not-editable: a approved time entry cannot be deleted'),
    ('experience/mobile-time/v3', 'updateMyTimeEntry', 'example'):
        (409, 'not-editable: a approved time entry cannot be edited; correct it instead'),
    ('experience/mobile-time/v3', 'requestMyCorrection', 'example'):
        (409, 'already-superseded: te_... was corrected already by te_...'),
}

ID_KEY = re.compile(r"(^|_)id$")
IDS_KEY = re.compile(r"_ids$")
ID_VALUE = re.compile(r"^([a-z]+_)[A-Za-z0-9_.:-]+$")


@dataclass(frozen=True, slots=True)
class ExampleCase:
    contract: str  # system/psa/v1
    api_id: str
    layer: str
    operation_id: str
    method: str
    template: str
    example: str
    body: Any  # None: the operation takes no body (or documents none)
    has_body: bool
    content_type: str | None
    path_examples: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    scopes: list[str]

    @property
    def test_id(self) -> str:
        return f"{self.contract}::{self.operation_id}::{self.example}"

    @property
    def phase(self) -> int:
        """Create and list, then read one, then change, then act, then delete."""
        on_record = "{" in self.template
        if self.method in ("POST", "PUT") and not on_record:
            return 0
        if self.method == "GET":
            return 1 if not on_record else 2
        if self.method in ("PUT", "PATCH"):
            return 3
        return 5 if self.method == "DELETE" else 4


def _body_examples(document: ContractDocument, media: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if "example" in media:
        yield "example", media["example"]
    for name, raw in as_mapping(media.get("examples")).items():
        example, _ = document.try_dereference(raw, "")
        if isinstance(example, Mapping) and "value" in example:
            yield str(name), example["value"]


def _cases() -> list[ExampleCase]:
    cases: list[ExampleCase] = []
    for path, location in contract_files(CONTRACTS_DIR):
        document = load_contract(path)
        contract = str(path.relative_to(CONTRACTS_DIR).with_suffix(""))
        DOCUMENTS[contract] = document
        for site in iter_operations(document):
            built = example_request(document, site)
            path_examples = {}
            for parameter in effective_parameters(document, site):
                if parameter.location == "path":
                    segment = built.path.split("/")[site.path.split("/").index("{" + parameter.name + "}")]
                    path_examples[parameter.name] = segment
            security = site.operation.get("security") or document.content.get("security") or [{}]
            scopes = sorted({scope for requirement in security for values in requirement.values() for scope in values})
            bodies: list[tuple[str, Any, str | None]] = []
            found = request_body_of(document, site)
            if found is not None:
                for media_type, media in as_mapping(found[0].get("content")).items():
                    bodies.extend((name, value, media_type) for name, value in _body_examples(document, media))
            common: dict[str, Any] = dict(
                contract=contract, api_id=f"{location.layer}/{location.api}", layer=location.layer,
                operation_id=str(site.operation.get("operationId")), method=site.method.upper(),
                template=site.path, path_examples=path_examples, query=built.query, headers=built.headers,
                scopes=scopes,
            )
            if bodies:
                cases.extend(ExampleCase(example=name, body=value, has_body=True, content_type=media_type, **common)
                             for name, value, media_type in bodies)
            else:
                cases.append(ExampleCase(example="parameters", body=None, has_body=False, content_type=None, **common))
    return cases


DOCUMENTS: dict[str, ContractDocument] = {}
CASES = _cases()


def _names_what_a_system_lacks(value: Mapping[str, Any]) -> bool:
    """A reconciliation difference: its ids need not exist where an example sends them (a stray PSA expense names
    a process-tier expense that was never captured), so they are not ids the stack has."""
    kind = value.get("type")
    return isinstance(kind, str) and any(word in kind for word in ("missing_in", "_not_in_", "duplicated_in"))


@dataclass
class IdPool:
    """Ids the stack has answered with, newest last, by (field name, prefix) and by prefix alone."""

    by_field: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    by_prefix: dict[str, list[str]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def learn(self, value: Any, key: str = "") -> None:
        if isinstance(value, Mapping) and _names_what_a_system_lacks(value):
            return
        if isinstance(value, Mapping):
            for member, item in value.items():
                self.learn(item, str(member))
        elif isinstance(value, list):
            name = key[:-1] if IDS_KEY.search(key) else key
            for item in value:
                self.learn(item, name)
        elif isinstance(value, str) and ID_KEY.search(key) and (match := ID_VALUE.match(value)):
            self._add(self.by_field.setdefault((key, match.group(1)), []), value)
            self._add(self.by_prefix.setdefault(match.group(1), []), value)
            self.seen.add(value)

    @staticmethod
    def _add(values: list[str], value: str) -> None:
        if value in values:
            values.remove(value)
        values.append(value)

    def substitute(self, key: str, value: str) -> str:
        """The example's id when the stack has it, else the newest one of its kind, else the example's."""
        match = ID_VALUE.match(value)
        if value in self.seen or match is None:
            return value
        for candidates in (self.by_field.get((key, match.group(1))), self.by_prefix.get(match.group(1))):
            if candidates:
                return candidates[-1]
        return value

    def rewrite(self, value: Any, key: str = "") -> Any:
        if isinstance(value, Mapping):
            return {member: self.rewrite(item, str(member)) for member, item in value.items()}
        if isinstance(value, list):
            name = key[:-1] if IDS_KEY.search(key) else key
            rewritten = [self.rewrite(item, name) for item in value]
            if IDS_KEY.search(key) and len(set(map(str, rewritten))) < len(rewritten):
                return self._distinct(name, value)  # a batch names each record once
            return rewritten
        if isinstance(value, str) and ID_KEY.search(key):
            return self.substitute(key, value)
        return value

    def _distinct(self, key: str, values: list[Any]) -> list[Any]:
        chosen: list[Any] = []
        for value in values:
            match = ID_VALUE.match(value) if isinstance(value, str) else None
            kind = match.group(1) if match else ""
            pool = (self.by_field.get((key, kind)) or self.by_prefix.get(kind) or []) if match else []
            spare = [c for c in reversed(pool) if c not in chosen]
            chosen.append(value if value in self.seen or not spare else spare[0])
        return chosen


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    url: str
    issues: list[str]
    body: str


def _client_for(stack: RunningStack, case: ExampleCase, tokens: dict[tuple[str, ...], str]) -> dict[str, str]:
    client_id, subject = EXPERIENCE_CLIENTS.get(case.api_id) or LAYER_CLIENTS[case.layer]
    key = (client_id, subject or "", *case.scopes)
    if key not in tokens:
        tokens[key] = stack.token(client_id, subject=subject, scopes=case.scopes)
    return {"Authorization": f"Bearer {tokens[key]}"}


def _send(client: httpx.Client, stack: RunningStack, case: ExampleCase, pool: IdPool,
          contracts: dict[str, CompiledContract], tokens: dict[tuple[str, ...], str]) -> Outcome:
    compiled = contracts[case.contract]
    path = case.template
    for name, value in case.path_examples.items():
        path = path.replace("{" + name + "}", quote(pool.substitute(name, value), safe=""))
    url = compiled.base_path + path
    headers = {**case.headers, **_client_for(stack, case, tokens)}
    if "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = f"example-{uuid.uuid4().hex}"  # each example is a new request, not a replay
    content = None
    if case.has_body:
        headers["Content-Type"] = case.content_type or "application/json"
        content = msgspec.json.encode(pool.rewrite(case.body))
    response = client.request(case.method, url, params=case.query, headers=headers, content=content)
    match = compiled.match(case.method, url)
    assert match is not None, f"{case.test_id}: {url} does not route back to its own contract"
    issues = match.operation.validate_response(response.status_code, response.headers.get("content-type"),
                                                response.content)
    if 200 <= response.status_code < 300 and "json" in (response.headers.get("content-type") or ""):
        pool.learn(response.json())
    return Outcome(response.status_code, f"{case.method} {url}", [str(issue) for issue in issues],
                   response.text[:600])


def _seed_pool(client: httpx.Client, stack: RunningStack, pool: IdPool) -> None:
    """The demo people and projects, before anything is created, as the process tier finds them."""
    headers = {"Authorization": "Bearer " + stack.token("process-tier")}
    for url in ("/system/psa/v1/projects", "/system/hr/v1/workers"):
        response = client.get(url, headers=headers, params={"limit": 100})
        if response.status_code == 200:
            pool.learn(response.json())


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    data_dir: Path = tmp_path_factory.mktemp("psgw-examples")
    stack = Stack(data_dir=data_dir, ports=Ports.free(), config_file=REPO_ROOT / "gateway.yaml")
    stack.start()
    try:
        stack.wait_ready(timeout=120)
        running = RunningStack(stack)
        contracts = {name: CompiledContract(document) for name, document in DOCUMENTS.items()}
        pool, results = IdPool(), {}
        tokens: dict[tuple[str, ...], str] = {}
        started = time.monotonic()
        with httpx.Client(base_url=running.url, timeout=60.0) as client:
            _seed_pool(client, running, pool)
            for case in sorted(CASES, key=lambda c: (c.phase, ("system", "process", "experience").index(c.layer))):
                results[case.test_id] = _send(client, running, case, pool, contracts, tokens)
        print(f"{len(CASES)} examples sent in {time.monotonic() - started:.1f}s")
        yield results
    except BaseException:
        print_logs(data_dir, 3000)
        raise
    finally:
        stack.stop()


# The first test also waits for the stack to start and for the whole pass (measured: see the printed figure).
@pytest.mark.timeout(900)
@pytest.mark.parametrize("case", CASES, ids=[case.test_id for case in CASES])
def test_the_example_is_answered_as_its_contract_says(case: ExampleCase, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.test_id]
    expected, why = PRECONDITION_REFUSALS.get((case.contract, case.operation_id, case.example), (None, ""))

    assert outcome.status < 500, f"{outcome.url} -> {outcome.status}: {outcome.body}"
    assert outcome.issues == [], f"{outcome.url} -> {outcome.status} breaks the contract: {outcome.issues}"
    if not 200 <= outcome.status < 300:
        assert outcome.status == expected, f"{outcome.url} -> {outcome.status} ({why or 'not 2xx'}): {outcome.body}"

