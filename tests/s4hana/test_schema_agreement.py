"""The S/4HANA sandbox and the S/4HANA connector each hold the tenant's entity schema (the sandbox imports nothing of
psgateway): the two tables must be equal, and every seeded record read as an entity over the wire and written back
must come out as it went in, so the two sides cannot drift apart unnoticed."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from runtime.problems import ProblemError
from sandbox import firm, s4hana
from sandbox.erp import seed
from sandbox.store import DocumentStore
from system_apis.erp.connectors import s4hana as connector
from system_apis.vendor_auth import VendorCredentials


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DocumentStore:
    path: Path = tmp_path_factory.mktemp("s4-schema") / "erp.sqlite3"
    documents = DocumentStore(path)
    documents.transaction(seed, documents, firm.build())
    return documents


def wire(body: Any) -> Any:
    """Through JSON as the sandbox writes it and the connector reads it."""
    return json.loads(s4hana.json_text(body), parse_float=Decimal)


def clean(value: Any) -> Any:
    """Without nulls, empty objects and empty lists, at any depth (the wire leaves out what a record does not hold,
    and an expanded to-many navigation property with nothing in it is ``{"results": []}``)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def test_both_sides_hold_the_same_schema() -> None:
    assert connector.SCHEMAS == s4hana.SCHEMAS and connector.SERVICES == s4hana.SERVICES
    assert connector.LINES == s4hana.LINES and connector.ADDRESS == s4hana.ADDRESS
    assert connector.INVOICE_STATUS == s4hana.INVOICE_STATUS
    assert connector.UUID_KEYS == s4hana.UUID_KEYS and connector.CONSTANTS == s4hana.CONSTANTS
    assert {s: k for s, k in connector.IDENTITY.items() if k in ("SAP_UUID", "ProjectUUID")} == s4hana.UUID_KEYS


def _seeded(store: DocumentStore, entity_set: str) -> list[dict[str, Any]]:
    kind = s4hana.SCHEMAS[entity_set][0]
    if entity_set == "A_CreditMemoRequest":
        invoice = next(row for _, row in store.list("invoice", limit=1))
        _, memo = s4hana.erp.credit_invoice(
            store,
            invoice["internalId"],
            {"lines": [{k: v for k, v in invoice["lines"][0].items() if k != "lineNo"}]},
            None,
        )
        return [memo]
    return [row for _, row in store.list(kind, limit=50)]


@pytest.mark.parametrize("entity_set", sorted(s4hana.SCHEMAS))
def test_an_entity_reads_and_writes_back_as_it_is(store: DocumentStore, entity_set: str) -> None:
    rows = _seeded(store, entity_set)
    assert rows, f"no seeded {entity_set}"
    fields = s4hana.SCHEMAS[entity_set][2]
    for row in rows:
        expected = clean({k: v for k, v in row.items() if k in fields})
        if "customerId" in expected:  # the connector knows a customer by its business partner number
            expected["customerId"] = store.get("customer", str(row["customerId"]))["customerNumber"]  # type: ignore[index]
        entity = wire(s4hana.to_entity(store, entity_set, row, "http://tenant"))
        service = s4hana.SERVICES[entity_set]
        assert entity["__metadata"]["uri"].startswith(f"http://tenant/sap/opu/odata/sap/{service}/{entity_set}(")
        read = connector.from_odata(entity_set, entity)
        assert clean({k: v for k, v in read.items() if k in fields}) == expected
        if entity_set in s4hana.UUID_KEYS:  # the tenant's generated key is the record's id there
            assert s4hana.internal_of(entity_set, read["internalId"]) == row["internalId"]
        written = msgspec.json.decode(msgspec.json.encode(connector.to_odata(entity_set, read)))
        back = s4hana.from_entity(store, entity_set, written)
        assert clean(back) == clean({k: v for k, v in row.items() if k in fields})


def test_odata_v2_values_are_dates_in_milliseconds_and_decimals_as_strings(store: DocumentStore) -> None:
    posting = next(row for _, row in store.list("posting", limit=1))
    entity = s4hana.to_entity(store, "YY1_JournalPosting", posting)
    assert entity["PostingDate"].startswith("/Date(") and entity["PostingDate"].endswith(")/")
    assert isinstance(entity["AmountInTransactionCurrency"], str) and "." in entity["AmountInTransactionCurrency"]
    assert connector.sap_date("2026-10-01") == "/Date(1790812800000)/" == s4hana.sap_date("2026-10-01")
    assert connector.fiscal_period("Oct 2026") == "2026010" == s4hana.fiscal_period("Oct 2026")
    deferred = s4hana.to_entity(store, "A_BillingDocument", next(row for _, row in store.list("invoice", limit=1)),
                                expand=frozenset())
    assert set(deferred["to_Item"]) == {"__deferred"}
    assert "lines" not in connector.from_odata("A_BillingDocument", deferred)


@pytest.mark.parametrize(
    ("entity_set", "target", "path"),
    [
        ("YY1_JournalPosting", "PostingDate", "transactionDate"),
        ("A_BillingDocument", "to_Item(0)/NetAmount", "lines[0].amountMinor"),
        ("A_CreditMemoRequest", "to_Item(1)/RequestedQuantity", "lines[1].quantity"),
        ("A_BusinessPartner", "to_BusinessPartnerAddress", "billingAddress"),
        ("YY1_JournalPosting", None, None),
        ("YY1_JournalPosting", "NotAProperty", "NotAProperty"),
    ],
)
def test_an_error_target_is_the_engine_field_the_canonical_maps_know(
    entity_set: str, target: str | None, path: str | None
) -> None:
    assert connector.engine_path(entity_set, target) == path
    if path and "." in path:
        assert s4hana.property_path(entity_set, path) == target


def test_the_token_endpoint_is_the_tenants_or_the_one_configured() -> None:
    on_host = connector.SapClientCredentials(
        "s4hana", "https://my1.s4hana.cloud.sap/sap/bc/sec/oauth2/token",
        VendorCredentials(client_id="app", client_secret="s"), 5.0,
    )
    assert on_host.token_url == "https://my1.s4hana.cloud.sap/sap/bc/sec/oauth2/token"
    assert on_host._request() == {"data": {"grant_type": "client_credentials"}, "auth": ("app", "s")}
    other = "https://auth.example/oauth/token"
    configured = connector.SapClientCredentials(
        "s4hana", on_host.token_url, VendorCredentials(client_id="app", client_secret="s", token_url=other), 5.0
    )
    assert configured.token_url == other


@pytest.mark.parametrize("body", [None, [], {"d": []}, {"value": []}, {"error": "x"}])
def test_an_answer_that_is_no_v2_envelope_is_the_vendors_failure_not_ours(body: Any) -> None:
    with pytest.raises(ProblemError) as raised:
        connector.envelope(body)
    assert raised.value.status == 502 and raised.value.slug == "downstream-error"
