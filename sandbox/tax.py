"""Sandbox tax engines: three regional services, each in its own dialect, each with its own fault plan.

One process serves them under path prefixes, so one region can be down while the others answer
(``PUT /eu/_sandbox/faults {"outage_seconds": 60}`` takes the EU engine down only):

- ``/eu``: an EU VAT engine (imitates a VIES-checking VAT determination service). ``POST /v2/vat/quotes`` with
  amounts as decimal strings in major units, camelCase; errors ``{"errorCode", "field", "message"}``.
- ``/us``: a US sales-tax engine (imitates a transaction-calculation API). ``POST /api/transactions/calculate``
  with integer cents; errors ``{"error": {"code", "target", "message"}}``.
- ``/uk``: a UK VAT engine (imitates an HMRC-style calculator). ``POST /vat/v1/calculations`` with PascalCase
  fields and integer pence; errors ``{"Code", "Path", "Message"}``.

Every engine rounds once per tax group of a document, half-even, to the minor unit (README, "Tax and
e-invoicing"). Engines are stateless: the same request gets the same reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from litestar import Litestar, Request, post
from litestar.response import Response
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat

from sandbox.faults import FaultInjector
from sandbox.vendor_http import json_object

CENT = Decimal("0.01")
MAX_LINES = 1000

# Standard VAT rates of the member states this engine knows (per cent). Services in this repo are all standard
# rated: consulting has no reduced rate in any of them.
EU_STANDARD_RATES = {
    "AT": Decimal(20),
    "BE": Decimal(21),
    "DE": Decimal(19),
    "DK": Decimal(25),
    "ES": Decimal(21),
    "FR": Decimal(20),
    "IE": Decimal(23),
    "IT": Decimal(22),
    "LU": Decimal(17),
    "NL": Decimal(21),
    "PL": Decimal(23),
    "PT": Decimal(23),
    "SE": Decimal(25),
}
# The VAT number prefix of each member state (Greece writes EL).
EU_VAT_PREFIX = {country: country for country in EU_STANDARD_RATES}
REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)"
OUTSIDE_EU_NOTE = "Services to a customer outside the EU: not subject to EU VAT (Art. 44/59 Directive 2006/112/EC)"

# US states that tax professional (consulting) services at the state level, with the state rate (per cent):
# Hawaii's general excise tax (HRS 237-13), New Mexico's gross receipts tax (NMSA 7-9-4, 4.875 % since July
# 2024) and South Dakota's sales tax on services (SDCL 10-45-4, 4.2 % from July 2023). Every other state
# exempts professional services. State rates only: county and city add-ons are not computed.
US_SERVICE_TAX_STATES = {"HI": Decimal("4.0"), "NM": Decimal("4.875"), "SD": Decimal("4.2")}
US_STATES = frozenset(
    {
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
    }
)

UK_STANDARD_RATE = Decimal(20)
UK_REVERSE_CHARGE_NOTE = "Reverse charge: customer to account for VAT to HMRC (VATA 1994 s.8)"
UK_OUTSIDE_NOTE = "Outside the scope of UK VAT: place of supply is the customer's country (VATA 1994 s.7A)"


class EngineError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def _error_response(_request: Any, exc: EngineError) -> Response[Any]:
    return Response(exc.body, status_code=exc.status)


def reference(prefix: str, body: dict[str, Any]) -> str:
    return prefix + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16].upper()


def _decimal(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and abs(amount) < Decimal(10) ** 12 else None


def _half_even(amount: Decimal, unit: Decimal) -> Decimal:
    return amount.quantize(unit, ROUND_HALF_EVEN)


def _minor_total(
    lines: Any, field: str, no_lines: Callable[[], EngineError], bad_amount: Callable[[int], EngineError]
) -> int:
    """The sum of the lines' integer minor units (cents, pence), refused in the engine's own words."""
    if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_LINES:
        raise no_lines()
    total = 0
    for index, line in enumerate(lines):
        amount = line.get(field) if isinstance(line, dict) else None
        if not isinstance(amount, int) or isinstance(amount, bool) or abs(amount) >= 10**14:
            raise bad_amount(index)
        total += amount
    return total


# --- EU VAT ------------------------------------------------------------------------------------------------------


def _eu_error(code: str, field: str, message: str, status: int = 400) -> EngineError:
    return EngineError(status, {"errorCode": code, "field": field, "message": message})


def eu_quote(body: dict[str, Any]) -> dict[str, Any]:
    supplier, customer = body.get("supplier"), body.get("customer")
    if not isinstance(supplier, dict) or not isinstance(customer, dict):
        raise _eu_error(
            "MISSING_PARTY",
            "supplier" if not isinstance(supplier, dict) else "customer",
            "supplier and customer are required objects",
        )
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_LINES:
        raise _eu_error("INVALID_ITEMS", "items", f"1..{MAX_LINES} items are required")
    supplier_country, customer_country = supplier.get("countryCode"), customer.get("countryCode")
    if supplier_country not in EU_STANDARD_RATES and supplier_country != "GB":
        raise _eu_error("UNSUPPORTED_COUNTRY", "supplier.countryCode", f"no VAT rules for {supplier_country!r}")
    if not isinstance(customer_country, str) or len(customer_country) != 2:
        raise _eu_error("INVALID_COUNTRY", "customer.countryCode", "an ISO 3166 alpha-2 code is required")
    vat_id = customer.get("vatId")
    if vat_id is not None:
        if not isinstance(vat_id, str) or not eu_vat.is_valid(vat_id):
            raise _eu_error("INVALID_VAT_ID", "customer.vatId", f"{vat_id!r} is not a valid EU VAT number")
        if eu_vat.compact(vat_id)[:2] != EU_VAT_PREFIX.get(customer_country, customer_country):
            raise _eu_error("INVALID_VAT_ID", "customer.vatId", "the VAT number is not of the customer's country")
    net = Decimal(0)
    for index, item in enumerate(items):
        amount = _decimal(item.get("netAmount")) if isinstance(item, dict) else None
        if amount is None:
            raise _eu_error("INVALID_AMOUNT", f"items[{index}].netAmount", "a decimal string is required")
        net += amount
    business = vat_id is not None
    if customer_country == supplier_country and customer_country in EU_STANDARD_RATES:
        place, category, rate, note = customer_country, "S", EU_STANDARD_RATES[customer_country], None
    elif customer_country in EU_STANDARD_RATES and business:
        place, category, rate, note = customer_country, "AE", Decimal(0), REVERSE_CHARGE_NOTE
    elif customer_country in EU_STANDARD_RATES:  # a consumer in another member state: the supplier's VAT
        if supplier_country not in EU_STANDARD_RATES:
            raise _eu_error(
                "UNSUPPORTED_SUPPLY",
                "supplier.countryCode",
                "supplies to EU consumers from outside the EU are not computed (OSS)",
                422,
            )
        place, category, rate, note = supplier_country, "S", EU_STANDARD_RATES[supplier_country], None
    else:
        place, category, rate, note = customer_country, "O", Decimal(0), OUTSIDE_EU_NOTE
    vat = _half_even(net * rate / 100, CENT)
    group = {
        "vatCategory": category,
        "ratePct": str(rate),
        "taxableAmount": str(_half_even(net, CENT)),
        "vatAmount": str(vat),
        **({"legalNote": note} if note else {}),
    }
    return {"quoteId": reference("EUVAT-", body), "placeOfSupply": place, "breakdown": [group], "totalVat": str(vat)}


# --- US sales tax ------------------------------------------------------------------------------------------------


def _us_error(code: str, target: str, message: str) -> EngineError:
    return EngineError(400, {"error": {"code": code, "target": target, "message": message}})


def us_calculate(body: dict[str, Any]) -> dict[str, Any]:
    ship_to = body.get("shipTo")
    if not isinstance(ship_to, dict) or ship_to.get("country") != "US":
        raise _us_error("InvalidAddress", "shipTo.country", "only US ship-to addresses are taxed here")
    state = ship_to.get("region")
    if state not in US_STATES:
        raise _us_error("InvalidAddress", "shipTo.region", f"{state!r} is not a US state code")
    cents = _minor_total(
        body.get("lines"),
        "amountCents",
        lambda: _us_error("MissingLines", "lines", f"1..{MAX_LINES} lines are required"),
        lambda n: _us_error("InvalidAmount", f"lines[{n}].amountCents", "integer cents are required"),
    )
    rate = US_SERVICE_TAX_STATES.get(state)
    tax = int(_half_even(Decimal(cents) * (rate or 0) / 100, Decimal(1)))
    return {
        "transactionId": reference("ST-", body),
        "jurisdiction": {"country": "US", "state": state},
        "summary": [
            {
                "taxType": "SALES" if rate else "EXEMPT",
                "rate": str(rate or 0),
                "taxableCents": cents,
                "taxCents": tax,
                **({} if rate else {"exemptReason": f"professional services are not taxable in {state}"}),
            }
        ],
        "totalTaxCents": tax,
    }


# --- UK VAT ------------------------------------------------------------------------------------------------------


def _uk_error(code: str, path: str, message: str) -> EngineError:
    return EngineError(422, {"Code": code, "Path": path, "Message": message})


def uk_calculate(body: dict[str, Any]) -> dict[str, Any]:
    supplier, customer = body.get("SupplierCountry"), body.get("CustomerCountry")
    if not isinstance(supplier, str) or len(supplier) != 2:
        raise _uk_error("INVALID_COUNTRY", "/SupplierCountry", "an ISO country code is required")
    if not isinstance(customer, str) or len(customer) != 2:
        raise _uk_error("INVALID_COUNTRY", "/CustomerCountry", "an ISO country code is required")
    vrn = body.get("CustomerVatRegistration")
    if vrn is not None and (not isinstance(vrn, str) or (customer == "GB" and not gb_vat.is_valid(vrn))):
        raise _uk_error("INVALID_VRN", "/CustomerVatRegistration", f"{vrn!r} is not a valid UK VAT number")
    pence = _minor_total(
        body.get("Lines"),
        "NetPence",
        lambda: _uk_error("INVALID_LINES", "/Lines", f"1..{MAX_LINES} lines are required"),
        lambda n: _uk_error("INVALID_AMOUNT", f"/Lines/{n}/NetPence", "integer pence are required"),
    )
    business = vrn is not None
    if supplier == "GB" and (customer == "GB" or not business):
        code, rate, notice = "STANDARD", UK_STANDARD_RATE, None
    elif supplier == "GB":
        code, rate, notice = "OUTSIDE_SCOPE", Decimal(0), UK_OUTSIDE_NOTE
    elif customer == "GB" and business:  # B2B services from abroad: the UK customer self-accounts
        code, rate, notice = "REVERSE_CHARGE", Decimal(0), UK_REVERSE_CHARGE_NOTE
    else:
        raise _uk_error("NOT_UK_SUPPLY", "/CustomerCountry", "neither supplier nor business customer is in the UK")
    vat = int(_half_even(Decimal(pence) * rate / 100, Decimal(1)))
    return {
        "CalculationReference": reference("HMRC-CALC-", body),
        "VatLines": [
            {
                "RateCode": code,
                "RatePercent": str(rate),
                "NetPence": pence,
                "VatPence": vat,
                **({"Notice": notice} if notice else {}),
            }
        ],
        "TotalVatPence": vat,
    }


# --- the apps ----------------------------------------------------------------------------------------------------


def _engine(
    path: str, compute: Callable[[dict[str, Any]], dict[str, Any]], invalid: Callable[[str], EngineError]
) -> Litestar:
    @post(path, status_code=200)
    async def calculate(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return compute(await json_object(request, invalid))

    return Litestar([calculate], exception_handlers={EngineError: _error_response}, openapi_config=None)


class RegionalEngines:
    """ASGI: ``/<region>/...`` goes to that region's engine (behind its own fault injector), prefix removed."""

    def __init__(self) -> None:
        self.regions = {
            "eu": FaultInjector(_engine("/v2/vat/quotes", eu_quote, lambda m: _eu_error("MALFORMED", "", m)), "tax-eu"),
            "us": FaultInjector(
                _engine("/api/transactions/calculate", us_calculate, lambda m: _us_error("MalformedRequest", "", m)),
                "tax-us",
            ),
            "uk": FaultInjector(
                _engine("/vat/v1/calculations", uk_calculate, lambda m: _uk_error("MALFORMED", "/", m)), "tax-uk"
            ),
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            region, _, rest = scope["path"].lstrip("/").partition("/")
            app = self.regions.get(region)
            if app is not None:
                await app({**scope, "path": "/" + rest, "raw_path": ("/" + rest).encode()}, receive, send)
                return
            body = json.dumps({"error": "NO_SUCH_REGION", "regions": sorted(self.regions)}).encode()
            await send(
                {"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})


def create_app(_store: Any) -> RegionalEngines:
    return RegionalEngines()


def seed(_store: Any, _firm: Any) -> None:
    """The engines keep no records: nothing to seed."""
