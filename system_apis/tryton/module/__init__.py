"""The ``psgateway`` Tryton module: what the canonical model needs and Tryton 8.2 does not store.

Loaded by the Tryton server only (never by the gateway's tiers), through the ``trytond.modules`` entry point
that ``python -m system_apis.tryton`` writes into its data dir. Native Tryton records stay the records of
reference (parties, companies, employees and cost prices, project works, timesheet works and lines,
fiscal periods, invoices, opportunities); this module adds the approval workflow of timesheet lines and the
services-firm records Tryton has no model for (contracts with NTE and rate cards, staffing assignments,
exactly-once postings and their reversals), each a plain ``psgw.*`` model or a ``psgw_*`` field, and one method,
``account.invoice.psgw_credit``, that issues Tryton's own credit note for some lines of a posted invoice.
"""
