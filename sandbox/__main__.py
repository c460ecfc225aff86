"""Run one sandbox vendor system: ``python -m sandbox psa --port 8201 --data-dir .data``."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from sandbox import crm, erp, firm, hr, peppol, psa, tax
from sandbox.faults import FaultInjector
from sandbox.store import DocumentStore

SYSTEMS: dict[str, tuple[Callable[[DocumentStore, firm.Firm], None], Callable[[DocumentStore], Any]]] = {
    "psa": (psa.seed, psa.create_app),
    "erp": (erp.seed, erp.create_app),
    "hr": (hr.seed, hr.create_app),
    "crm": (crm.seed, crm.create_app),
    # Issue 19: the regional tax engines (one process, a fault plan per region) and the e-invoicing access point.
    "tax": (tax.seed, tax.create_app),
    "einvoice": (peppol.seed, peppol.create_app),
}


def build_app(system: str, data_dir: Path, today: dt.date | None = None, month_end_entries: int = 0) -> Any:
    seed, create = SYSTEMS[system]
    store = DocumentStore(data_dir / f"sandbox-{system}.sqlite3")
    if store.is_empty():
        store.transaction(seed, store, firm.with_month_end(firm.build(today), month_end_entries))
    return FaultInjector(create(store), system)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # A load scenario, not demo data: approved time for a month-end run (bench/month_end.py); every sandbox
    # builds the same story from it, only the PSA stores the time.
    month_end_entries = int(os.environ.get("PSGW_SANDBOX_MONTH_END_ENTRIES") or 0)
    app = build_app(args.system, args.data_dir, month_end_entries=month_end_entries)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
