"""A Dynamics 365 ``$batch`` (multipart, each posting its own change set, as the connector sends it) is committed
once, as its requests were run (each alone, in order, in a savepoint of its own, so a refused request undoes only
itself), and before the batch is answered: every 2xx line is stored when the answer arrives, nothing of a refused
line is. Straight against the sandbox's app (``sandbox/dynamics365.py``)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from sandbox import dynamics365, firm
from sandbox.erp import seed
from sandbox.netsuite import json_text
from sandbox.store import DocumentStore
from system_apis.erp.connectors.odata_batch import decode_batch, encode_batch


def test_a_batch_commits_once_before_its_answer_and_a_refused_line_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "erp.sqlite3"
    store = DocumentStore(path)
    store.transaction(seed, store, firm.build())
    with TestClient(dynamics365.create_app(store)) as d365:
        seeded = json.loads(  # amounts as exact decimals, as the service writes them
            d365.get("/data/LedgerJournalLines", params={"cross-company": "true", "$top": "1"}).text,
            parse_float=Decimal,
        )["value"][0]
        line: dict[str, Any] = {
            k: v
            for k, v in seeded.items()
            if k not in ("Voucher", "PSGPostingStatus", "PSGPostedDateTime", "PSGReversesVoucher")
        }
        line["TransDate"] = f"{dt.date.today().isoformat()}T12:00:00Z"
        sources = [f"BATCH-{n}" for n in range(6)] + ["BATCH-2", "BATCH-6"]  # the 7th posts BATCH-2 again
        requests = [
            ("POST", "LedgerJournalLines", json_text({**line, "Document": source}).encode()) for source in sources
        ]
        commits = store.commits
        answer = d365.post(
            "/data/$batch",
            content=encode_batch(requests, "batch_1", "changeset_1"),
            headers={"Prefer": "odata.continue-on-error", "Content-Type": "multipart/mixed; boundary=batch_1"},
        )
        assert answer.status_code == 200 and store.commits == commits + 1
        statuses = [status for status, _ in decode_batch(answer.headers["content-type"], answer.content)]
    assert statuses == [201] * 6 + [400, 201]
    with sqlite3.connect(path) as other:  # what is committed, read by another connection
        booked = [
            row[0]
            for row in other.execute(
                "SELECT json_extract(body, '$.sourceDocumentId') FROM documents WHERE kind = 'posting'"
                " AND json_extract(body, '$.sourceDocumentId') LIKE 'BATCH-%'"
            )
        ]
    assert sorted(booked) == [f"BATCH-{n}" for n in range(7)]
