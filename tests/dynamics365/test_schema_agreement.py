"""The Dynamics 365 sandbox and the Dynamics 365 connector each hold the tenant's entity schema (the sandbox imports
nothing of psgateway): the two tables must be equal, and every seeded record read as an entity over the wire and
written back must come out as it went in, so the two sides cannot drift apart unnoticed."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sandbox import dynamics365, firm
from sandbox.erp import seed
from sandbox.netsuite import json_text
from sandbox.store import DocumentStore
from system_apis.erp.connectors import dynamics365 as connector
from system_apis.vendor_auth import VendorCredentials


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DocumentStore:
    path: Path = tmp_path_factory.mktemp("d365-schema") / "erp.sqlite3"
    documents = DocumentStore(path)
    documents.transaction(seed, documents, firm.build())
    return documents


def wire(body: Any) -> Any:
    """Through JSON as the sandbox writes it and the connector reads it (amounts as exact numbers)."""
    return json.loads(json_text(body), parse_float=Decimal)


def clean(value: Any) -> Any:
    """Without nulls and empty objects, at any depth (the wire leaves out what a record does not hold)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def test_both_sides_hold_the_same_schema() -> None:
    assert connector.SCHEMAS == dynamics365.SCHEMAS
    assert connector.LINES == dynamics365.LINES and connector.ADDRESS == dynamics365.ADDRESS
    assert connector.PERIOD_STATUS == dynamics365.PERIOD_STATUS
    assert connector.INVOICE_STATUS == dynamics365.INVOICE_STATUS


def _seeded(store: DocumentStore, entity_set: str) -> list[dict[str, Any]]:
    kind = dynamics365.SCHEMAS[entity_set][0]
    if entity_set == "PSGCreditNotes":
        invoice = next(row for _, row in store.list("invoice", limit=1))
        _, memo = dynamics365.erp.credit_invoice(
            store,
            invoice["internalId"],
            {"lines": [{k: v for k, v in invoice["lines"][0].items() if k != "lineNo"}]},
            None,
        )
        return [memo]
    return [row for _, row in store.list(kind, limit=50)]


@pytest.mark.parametrize("entity_set", sorted(dynamics365.SCHEMAS))
def test_an_entity_reads_and_writes_back_as_it_is(store: DocumentStore, entity_set: str) -> None:
    rows = _seeded(store, entity_set)
    assert rows, f"no seeded {entity_set}"
    fields = dynamics365.SCHEMAS[entity_set][2]
    for row in rows:
        expected = clean({k: v for k, v in row.items() if k in fields})
        if "customerId" in expected:  # the connector knows a customer by its account
            expected["customerId"] = store.get("customer", str(row["customerId"]))["customerNumber"]  # type: ignore[index]
        read = connector.from_odata(entity_set, wire(dynamics365.to_entity(store, entity_set, row)))
        assert clean({k: v for k, v in read.items() if k in fields}) == expected
        written = msgspec.json.Decoder(float_hook=Decimal).decode(
            msgspec.json.encode(connector.to_odata(entity_set, read))
        )
        back = dynamics365.from_entity(store, entity_set, written)
        assert clean(back) == clean({k: v for k, v in row.items() if k in fields})


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("TransDate", "transactionDate"),
        ("FreeTextInvoiceLines[0]/TransactionCurrencyAmount", "lines[0].amountMinor"),
        ("AddressCity", "billingAddress"),
        (None, None),
        ("NotAProperty", "NotAProperty"),
    ],
)
def test_an_error_target_is_the_engine_field_the_canonical_maps_know(target: str | None, path: str | None) -> None:
    entity_set = (
        "CustomersV3"
        if target == "AddressCity"
        else ("FreeTextInvoiceHeaders" if target and target.startswith("FreeText") else "LedgerJournalLines")
    )
    assert connector.engine_path(entity_set, target) == path
    if path and "." in path:
        assert dynamics365.property_path(entity_set, path) == target


def test_the_token_endpoint_is_the_tenants_or_the_one_configured() -> None:
    template = "https://contoso.operations.dynamics.com/{tenant}/oauth2/v2.0/token"
    on_host = connector.EntraClientCredentials(
        "dynamics365", template, VendorCredentials(client_id="app", client_secret="s", tenant_id="tenant-1"), 5.0
    )
    assert on_host.token_url == "https://contoso.operations.dynamics.com/tenant-1/oauth2/v2.0/token"
    assert on_host._request()["data"]["scope"] == "https://contoso.operations.dynamics.com/.default"
    entra = "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token"
    real = connector.EntraClientCredentials(
        "dynamics365",
        template,
        VendorCredentials(client_id="app", client_secret="s", tenant_id="tenant-1", token_url=entra),
        5.0,
    )
    assert real.token_url == entra
    assert real._request()["data"] == {
        "grant_type": "client_credentials",
        "client_id": "app",
        "client_secret": "s",
        "scope": "https://contoso.operations.dynamics.com/.default",
    }
