"""The NetSuite sandbox and the NetSuite connector each hold the tenant's record schema (the sandbox imports nothing
of psgateway): every seeded record read the three ways the connector reads (record GET, SuiteQL row) and written
back must come out as it went in, so the two schemas cannot drift apart unnoticed."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sandbox import firm, netsuite
from sandbox.erp import seed
from sandbox.store import DocumentStore
from system_apis.erp.connectors import netsuite as connector

BASE = "http://netsuite.test"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DocumentStore:
    path: Path = tmp_path_factory.mktemp("netsuite-schema") / "erp.sqlite3"
    documents = DocumentStore(path)
    documents.transaction(seed, documents, firm.build())
    return documents


def wire(body: Any) -> Any:
    """Through JSON as the sandbox writes it and the connector reads it (amounts as exact numbers)."""
    return json.loads(netsuite.json_text(body), parse_float=Decimal)


def subsidiaries(store: DocumentStore) -> dict[str, str]:
    return {str(row["internalId"]): row["subsidiaryCode"] for _, row in store.list("subsidiary", limit=10)}


@pytest.mark.parametrize("record_type", sorted(netsuite.SCHEMAS))
def test_a_record_reads_and_writes_back_as_it_is(store: DocumentStore, record_type: str) -> None:
    kind, _ = netsuite.SCHEMAS[record_type]
    rows = [row for _, row in store.list(kind, limit=50)]
    if record_type == "creditMemo":
        invoice = next(row for _, row in store.list("invoice", limit=1))
        _, memo = netsuite.erp.credit_invoice(store, invoice["internalId"], {"lines": [
            {k: v for k, v in invoice["lines"][0].items() if k != "lineNo"}]}, None)
        rows = [memo]
    assert rows, f"no seeded {kind}"
    names = subsidiaries(store)
    ids = {code: ident for ident, code in names.items()}
    for row in rows:
        read = connector.from_netsuite(record_type, wire(netsuite.to_record(store, record_type, row, BASE)), names)
        expected = {k: v for k, v in row.items() if v is not None}
        assert {k: v for k, v in read.items() if v is not None} == expected
        written = msgspec.json.Decoder(float_hook=Decimal).decode(
            msgspec.json.encode(connector.to_netsuite(record_type, row, ids)))
        back = netsuite.from_record(store, record_type, written)
        assert {k: v for k, v in back.items() if v is not None} == {k: v for k, v in expected.items()
                                                                   if k != "internalId"}


@pytest.mark.parametrize("record_type", sorted(netsuite.SCHEMAS))
def test_a_suiteql_row_reads_as_the_record_without_its_sublists(store: DocumentStore, record_type: str) -> None:
    table, *condition = connector.TABLES.get(record_type, (record_type.lower(),))
    query = f"SELECT * FROM {table}" + (f" WHERE {condition[0]}" if condition else "")
    page = netsuite.suiteql(store, query, 0, 20, BASE)
    kind, schema = netsuite.SCHEMAS[record_type]
    sublists = {field for field, (_, conversion) in schema.fields.items() if conversion.startswith("sublist:")}
    for item in wire(page)["items"]:
        read = connector.from_netsuite(record_type, item, subsidiaries(store))
        row = store.get(kind, str(read["internalId"]))
        assert row is not None
        assert read == {k: v for k, v in row.items() if v is not None and k not in sublists}
