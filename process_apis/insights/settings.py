"""Settings of the insights figures (read once, when the process tier starts serving them)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec


class InsightsSettings(msgspec.Struct, kw_only=True):
    # Planning exchange rates (units of USD per unit of a currency) used only to state a project's cost in its
    # contract currency for the margin figure; no system of record publishes exchange rates yet.
    fx_rates_to_usd: dict[str, Decimal] = msgspec.field(default_factory=lambda: {
        "USD": Decimal("1"), "GBP": Decimal("1.27"), "EUR": Decimal("1.08")})
    # The day the planning rates above were set: shown beside every figure stated with them.
    fx_rates_as_of: dt.date = dt.date(2026, 1, 1)
