"""S/4HANA postings in bulk as one OData v2 ``$batch`` (multipart/mixed, each posting its own change set): the
bytes the connector sends, the sandbox's change sets each all or nothing with the batch committed once, the CSRF
token checked on the batch, and a batch sent twice posting each source exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from sandbox import firm, s4hana
from sandbox.erp import seed
from sandbox.store import DocumentStore
from system_apis.erp.connectors import s4hana as connector
from system_apis.erp.connectors.odata_batch import boundary_of, http_response, split_parts
from system_apis.erp.connectors.s4hana import S4HanaErp, to_odata
from system_apis.erp.connectors.sandbox import posting_to_vendor
from system_apis.erp.models import PostingCreate, PostingFilter
from tests.s4hana.test_s4hana_wire import credentials, sandbox
from tests.support.stack import RunningStack

TODAY = dt.datetime.now(dt.UTC).date()
SERVICE = "/sap/opu/odata/sap/YY1_JOURNALPOSTING_CDS"


def item(source: str, **changes: Any) -> PostingCreate:
    fields: dict[str, Any] = {
        "source_type": "time_entry",
        "source_id": source,
        "project_id": "prj_4001",
        "contract_id": "ctr_2001",
        "legal_entity_id": "le_us",
        "work_date": TODAY,
        "quantity": Decimal("1"),
        "amount": Decimal("175.00"),
        "currency": "USD",
    }
    return PostingCreate(**{**fields, **changes})


def fresh_source() -> str:
    return f"te_{uuid.uuid4().int % 10**9 + 10**9}"


def entity(posting: PostingCreate) -> bytes:
    return msgspec.json.encode(to_odata("YY1_JournalPosting", posting_to_vendor(posting)))


def test_the_batch_on_the_wire_is_one_csrf_protected_multipart_post_each_posting_its_own_change_set(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [item(fresh_source()), item(fresh_source())]
    monkeypatch.setattr(connector.uuid, "uuid4", lambda: uuid.UUID(int=0xB47C4))  # the boundaries
    sent: list[tuple[str, str, dict[str, str], bytes | None]] = []

    async def post() -> list[Any]:
        erp = S4HanaErp(sandbox(stack), 10.0, credentials=credentials(stack))
        original = erp._vendor.request

        async def recorded(method: str, path: str, **kwargs: Any) -> Any:
            sent.append((method, path, dict(kwargs.get("headers") or {}), kwargs.get("content")))
            return await original(method, path, **kwargs)

        erp._vendor.request = recorded  # type: ignore[method-assign]
        try:
            return await erp.create_postings(items)
        finally:
            await erp.aclose()

    outcomes = asyncio.run(post())
    assert [o.status for o in outcomes] == ["created", "created"]
    assert [(m, p) for m, p, _, _ in sent] == [("GET", f"{SERVICE}/"), ("POST", f"{SERVICE}/$batch")]
    assert sent[0][2]["x-csrf-token"] == "Fetch"
    _, _, headers, content = sent[1]
    token = uuid.UUID(int=0xB47C4).hex
    assert headers["Content-Type"] == f"multipart/mixed; boundary=batch_{token}"
    assert headers["Accept"] == "multipart/mixed" and headers["DataServiceVersion"] == "2.0"
    assert headers["x-csrf-token"] and headers["x-csrf-token"] != "Fetch"
    assert headers["Cookie"].startswith(f"{s4hana.SESSION_COOKIE}=")
    parts = b"".join(
        b"--batch_%s\r\n"
        b"Content-Type: multipart/mixed; boundary=changeset_%s\r\n"
        b"\r\n"
        b"--changeset_%s\r\n"
        b"Content-Type: application/http\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: %d\r\n"
        b"\r\n"
        b"POST YY1_JournalPosting HTTP/1.1\r\n"
        b"Accept: application/json\r\n"
        b"Content-Type: application/json\r\n"
        b"\r\n"
        b"%s\r\n"
        b"--changeset_%s--\r\n" % (token.encode(), token.encode(), token.encode(), n, entity(p), token.encode())
        for n, p in enumerate(items, 1)
    )
    assert content == parts + b"--batch_%s--\r\n" % token.encode()


def answered(content_type: str, body: bytes) -> list[list[tuple[int, bytes]]]:
    """A batch answer as the responses of each part: a change set's together, or the one that stands for it."""
    parts = []
    for kind, content in split_parts(body, boundary_of(content_type)):
        inner = split_parts(content, boundary_of(kind)) if kind.startswith("multipart/mixed") else [(kind, content)]
        parts.append([http_response(response) for _, response in inner])
    return parts


def test_each_change_set_is_all_or_nothing_the_batch_commits_once_and_wants_the_csrf_token(tmp_path: Path) -> None:
    path = tmp_path / "erp.sqlite3"
    store = DocumentStore(path)
    store.transaction(seed, store, firm.build())
    a, b, c, d = (f"BATCH-{n}" for n in "ABCD")

    def post(source: str, number: int) -> bytes:
        fields = {
            **to_odata("YY1_JournalPosting", posting_to_vendor(item(fresh_source()))),
            "DocumentReferenceID": source,
        }
        body = msgspec.json.encode(fields)
        return (
            b"--cs%d\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: %s\r\n\r\n"
            b"POST YY1_JournalPosting HTTP/1.1\r\nAccept: application/json\r\nContent-Type: application/json\r\n\r\n"
            b"%s\r\n" % (number // 10, str(number).encode(), body)
        )

    def changeset(number: int, *requests: bytes) -> bytes:
        head = b"--b\r\nContent-Type: multipart/mixed; boundary=cs%d\r\n\r\n" % number
        return head + b"".join(requests) + b"--cs%d--\r\n" % number

    read = (
        b"--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b"GET YY1_JournalPosting?$filter=DocumentReferenceID%20eq%20'BATCH-A'&$top=1 HTTP/1.1\r\n"
        b"Accept: application/json\r\n\r\n\r\n"
    )
    content = (
        changeset(1, post(a, 10), post(b, 11))  # both
        + changeset(2, post(c, 20), post(a, 21))  # A again: the whole change set refused, C not stored
        + changeset(3, post(d, 30))  # after a failed change set the batch goes on
        + read  # and reads what the first change set wrote
        + b"--b--\r\n"
    )
    headers = {"Content-Type": "multipart/mixed; boundary=b", "Accept": "multipart/mixed"}
    with TestClient(s4hana.create_app(store)) as s4:
        refused = s4.post(f"{SERVICE}/$batch", content=content, headers=headers)
        assert refused.status_code == 403 and refused.headers["x-csrf-token"] == "Required"
        fetched = s4.get(f"{SERVICE}/", headers={"x-csrf-token": "Fetch", "Accept": "application/json"})
        commits = store.commits
        answer = s4.post(
            f"{SERVICE}/$batch", content=content, headers={**headers, "x-csrf-token": fetched.headers["x-csrf-token"]}
        )
        assert answer.status_code == 202 and store.commits == commits + 1
        parts = answered(answer.headers["content-type"], answer.content)
    assert [[status for status, _ in responses] for responses in parts] == [[201, 201], [400], [201], [200]]
    assert json.loads(parts[1][0][1])["error"]["code"].startswith("ZPSG/DUPLICATE")
    assert json.loads(parts[3][0][1])["d"]["results"][0]["DocumentReferenceID"] == a
    with sqlite3.connect(path) as other:  # what is committed, read by another connection
        booked = sorted(
            row[0]
            for row in other.execute(
                "SELECT json_extract(body, '$.sourceDocumentId') FROM documents WHERE kind = 'posting'"
                " AND json_extract(body, '$.sourceDocumentId') LIKE 'BATCH-%'"
            )
        )
    assert booked == [a, b, d]


def test_the_same_batch_sent_twice_posts_each_source_once_and_reports_a_refused_line_per_source(
    stack: RunningStack,
) -> None:
    sources = [fresh_source() for _ in range(4)]
    items = [item(s) for s in sources] + [item(fresh_source(), legal_entity_id="le_zz")]

    async def twice() -> tuple[list[Any], list[Any], dict[str, list[str]]]:
        erp = S4HanaErp(sandbox(stack), 10.0, credentials=credentials(stack))
        try:
            first = await erp.create_postings(items)
            second = await erp.create_postings(items)
            held = {}
            for source in sources:
                page = await erp.list_postings(PostingFilter(source_id=source), cursor=None, limit=10)
                held[source] = [p.id for p in page.items]
            return first, second, held
        finally:
            await erp.aclose()

    first, second, held = asyncio.run(twice())
    assert [o.status for o in first] == ["created"] * 4 + ["rejected"]
    assert [o.status for o in second] == ["existing"] * 4 + ["rejected"]
    assert [o.source_id for o in first] == [i.source_id for i in items]
    assert [o.posting.id for o in first[:4]] == [o.posting.id for o in second[:4]]
    assert all(held[s] == [o.posting.id] for s, o in zip(sources, first, strict=False))
    assert first[4].problem and first[4].problem["status"] in (400, 409, 422)
