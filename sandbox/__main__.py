"""Run one sandbox vendor system: ``python -m sandbox psa --port 8201 --data-dir .data``."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from sandbox import crm, erp, firm, hr, psa
from sandbox.faults import FaultInjector
from sandbox.store import DocumentStore

SYSTEMS: dict[str, tuple[Callable[[DocumentStore, firm.Firm], None], Callable[[DocumentStore], Any]]] = {
    "psa": (psa.seed, psa.create_app),
    "erp": (erp.seed, erp.create_app),
    "hr": (hr.seed, hr.create_app),
    "crm": (crm.seed, crm.create_app),
}


def build_app(system: str, data_dir: Path, today: dt.date | None = None) -> Any:
    seed, create = SYSTEMS[system]
    store = DocumentStore(data_dir / f"sandbox-{system}.sqlite3")
    if store.is_empty():
        store.transaction(seed, store, firm.build(today))
    return FaultInjector(create(store), system)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build_app(args.system, args.data_dir)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
