"""Run one sandbox vendor system: ``python -m sandbox psa --port 8201 --data-dir .data``."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn

from sandbox import certinia, crm, dynamics365, erp, firm, hr, netsuite, peppol, psa, s4hana, tax
from sandbox.faults import FaultInjector
from sandbox.store import DocumentStore
from sandbox.vendor_http import AuthConfig, AuthDialect, LimitDialect, VendorAuth, VendorLimits, initial_limits

# Per system: seed, app, and (for the systems of record) how the vendor limits and authenticates its API calls.
SYSTEMS: dict[str, tuple[Callable[[DocumentStore, firm.Firm], None], Callable[[DocumentStore], Any],
                         LimitDialect | None, AuthDialect | None]] = {
    "psa": (psa.seed, psa.create_app, psa.LIMITS, psa.AUTH),
    "erp": (erp.seed, erp.create_app, erp.LIMITS, erp.AUTH),
    "hr": (hr.seed, hr.create_app, hr.LIMITS, hr.AUTH),
    "crm": (crm.seed, crm.create_app, crm.LIMITS, crm.AUTH),
    # Issue 19: the regional tax engines (one process, a fault plan per region) and the e-invoicing access point.
    "tax": (tax.seed, tax.create_app, None, None),
    "einvoice": (peppol.seed, peppol.create_app, None, None),
}
# Another vendor's dialect for a system (``--dialect``): the same firm behind that vendor's published API.
DIALECTS: dict[tuple[str, str], tuple[Callable[[DocumentStore, firm.Firm], None], Callable[[DocumentStore], Any],
                                      LimitDialect | None, AuthDialect | None]] = {
    ("erp", "netsuite"): (netsuite.seed, netsuite.create_app, netsuite.LIMITS, netsuite.AUTH),
    ("erp", "dynamics365"): (dynamics365.seed, dynamics365.create_app, dynamics365.LIMITS, dynamics365.AUTH),
    ("erp", "s4hana"): (s4hana.seed, s4hana.create_app, s4hana.LIMITS, s4hana.AUTH),
    ("psa", "certinia"): (certinia.seed, certinia.create_app, certinia.LIMITS, certinia.AUTH),
}


def build_app(system: str, data_dir: Path, today: dt.date | None = None, month_end_entries: int = 0,
              dialect: str = "sandbox") -> Any:
    seed, create, limits, auth = SYSTEMS[system] if dialect == "sandbox" else DIALECTS[(system, dialect)]
    store = DocumentStore(data_dir / f"sandbox-{system}.sqlite3")
    if store.is_empty():
        store.transaction(seed, store, firm.with_month_end(firm.build(today), month_end_entries))
    app = create(store)
    environ = dict(os.environ)
    if limits is not None:
        app = VendorLimits(app, limits, initial_limits(environ, limits))
    if auth is not None and "{tenant}" in auth.grant_path:  # a token endpoint per tenant (Entra ID)
        auth = replace(auth, grant_path=auth.grant_path.format(tenant=environ.get("PSGW_SANDBOX_TENANT_ID", "")))
    if auth is not None:
        # Authentication outside the limits: token requests do not spend the API budget (as at Salesforce).
        app = VendorAuth(app, auth, AuthConfig.from_environ(environ))
    return FaultInjector(app, system)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--dialect", default="sandbox",
                        choices=["sandbox", *sorted({name for _, name in DIALECTS})],
                        help="the vendor API to serve: the system's own sandbox dialect, or a vendor's (erp: netsuite, "
                             "dynamics365, s4hana; psa: certinia)")
    args = parser.parse_args()
    if args.dialect != "sandbox" and (args.system, args.dialect) not in DIALECTS:
        parser.error(f"{args.system} has no {args.dialect} dialect")
    logging.basicConfig(level=logging.WARNING)
    # A load scenario, not demo data: approved time for a month-end run (bench/month_end.py); every sandbox
    # builds the same story from it, only the PSA stores the time.
    month_end_entries = int(os.environ.get("PSGW_SANDBOX_MONTH_END_ENTRIES") or 0)
    app = build_app(args.system, args.data_dir, month_end_entries=month_end_entries, dialect=args.dialect)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
