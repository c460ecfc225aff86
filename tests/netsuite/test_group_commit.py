"""The sandbox vendors' document store (``sandbox/store.py``) commits writes in groups, as a database server does:
the writes that arrive together share one commit, a refused one undoes only itself, and none is answered before its
group is committed, so a 2xx from a vendor sandbox means the record is stored (another connection reads it as soon
as the answer is in). Through NetSuite's record service, which books a posting per request, as a month end does."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from sandbox import firm, netsuite
from sandbox.erp import seed
from sandbox.store import DocumentStore


def stored_ids(path: Path, kind: str) -> list[str]:
    """What another connection reads: only committed writes."""
    with sqlite3.connect(path) as other:
        return sorted(row[0] for row in other.execute("SELECT id FROM documents WHERE kind = ?", (kind,)))


def test_writes_arriving_together_commit_once_and_a_refused_one_undoes_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = DocumentStore(path)

    def write(doc_id: str, refuse: bool) -> str:
        store.put("thing", doc_id, {"id": doc_id})
        if refuse:  # after writing: the savepoint must take the write back
            raise ValueError("refused")
        return doc_id

    async def together() -> tuple[list[Any], int]:
        before = store.commits
        answers = await asyncio.gather(
            *(store.call(store.transaction, write, str(n), n == 2) for n in range(5)), return_exceptions=True
        )
        return answers, store.commits - before

    answers, commits = asyncio.run(together())
    assert commits == 1
    assert isinstance(answers[2], ValueError) and [a for n, a in enumerate(answers) if n != 2] == ["0", "1", "3", "4"]
    assert stored_ids(path, "thing") == ["0", "1", "3", "4"]


def posting_record(store: DocumentStore, source: str) -> dict[str, Any]:
    """A new posting as NetSuite's record service takes it (a seeded one's terms, today, another source)."""
    _, seeded = store.list("posting", limit=1)[0]
    engine = {k: v for k, v in seeded.items() if k not in ("internalId", "postingNumber", "postingStatus", "postedAt")}
    engine.update(sourceDocumentId=source, transactionDate=dt.date.today().isoformat())
    record = netsuite.to_record(store, "customrecord_psg_posting", {"internalId": 0, **engine}, "")
    return {k: v for k, v in record.items() if k not in ("links", "id")}


def test_concurrent_postings_are_stored_when_answered_and_a_duplicate_is_refused_alone(tmp_path: Path) -> None:
    path = tmp_path / "erp.sqlite3"
    store = DocumentStore(path)
    store.transaction(seed, store, firm.build())
    before = set(stored_ids(path, "posting"))
    bodies = [posting_record(store, f"GROUP-{n}") for n in range(8)] + [posting_record(store, "GROUP-3")]

    async def post_all() -> tuple[list[httpx.Response], int]:
        transport = httpx.ASGITransport(app=netsuite.create_app(store))
        async with httpx.AsyncClient(transport=transport, base_url="http://tenant") as client:
            commits = store.commits
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"{netsuite.RECORD}/customrecord_psg_posting",
                        content=netsuite.json_text(body),  # amounts as NetSuite writes them, exact decimals
                        headers={"Content-Type": "application/json"},
                    )
                    for body in bodies
                )
            )
            return list(answers), store.commits - commits

    answers, commits = asyncio.run(post_all())
    created = [a for a in answers if a.status_code == 204]
    refused = [a for a in answers if a.status_code != 204]
    assert len(created) == 8 and len(refused) == 1
    assert refused[0].status_code == 400 and refused[0].json()["o:errorDetails"][0]["o:errorCode"] == "DUP_RCRD"
    assert commits < len(bodies)  # grouped: not one commit per request
    new = set(stored_ids(path, "posting")) - before
    assert new == {a.headers["location"].rsplit("/", 1)[1] for a in created}
