"""Tax adapter for the sandbox regional engines (``sandbox/tax.py``): one dialect per region, one outage each.

Where a supply is taxed (README, "Tax and e-invoicing"): a US legal entity's invoices go to the US sales-tax
engine (by the ship-to state); otherwise the place of supply of services is the customer's country for a business
customer (one with a VAT number) and the seller's for a consumer (Art. 44/45 Directive 2006/112/EC; VATA 1994
s.7A), and the engine of that place computes: an EU member state the EU VAT engine, the United Kingdom the UK
engine; anywhere else the seller's own engine, which answers "outside the scope".
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat

from contracts.canonical import TaxCategory, TaxLine, plain_decimal
from runtime.downstream import Downstream, DownstreamProblem
from runtime.problems import BadRequest, FieldError, ProblemError, Unprocessable
from system_apis.money import from_minor, to_minor
from system_apis.tax.models import Buyer, Engine, TaxCalculation, TaxCalculationRequest
from system_apis.vendor_errors import vendor_problem

EU_MEMBER_STATES = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    }
)
# Countries outside the EU whose customers this firm bills (their supplies are outside the EU and UK VAT scope).
OTHER_COUNTRIES = frozenset({"GB", "US", "CH", "NO", "CA", "AU", "JP"})
# The engines' own country tables: a member state the EU engine has no rate for is refused here, named.
EU_ENGINE_COUNTRIES = frozenset({"AT", "BE", "DE", "DK", "ES", "FR", "IE", "IT", "LU", "NL", "PL", "PT", "SE"})
REGIONS: dict[Engine, str] = {"eu-vat": "eu", "us-sales-tax": "us", "uk-vat": "uk"}

EU_CATEGORIES: dict[str, TaxCategory] = {
    "S": "standard",
    "AE": "reverse_charge",
    "O": "outside_scope",
    "E": "exempt",
    "Z": "zero_rated",
}
US_CATEGORIES: dict[str, TaxCategory] = {"SALES": "standard", "EXEMPT": "exempt"}
UK_CATEGORIES: dict[str, TaxCategory] = {
    "STANDARD": "standard",
    "REVERSE_CHARGE": "reverse_charge",
    "OUTSIDE_SCOPE": "outside_scope",
}
EU_FIELDS = {
    "customer.vatId": "/buyer/vat_number",
    "customer.countryCode": "/buyer/country",
    "supplier.countryCode": "/seller/country",
    "items": "/lines",
}
US_FIELDS = {"shipTo.region": "/buyer/region", "shipTo.country": "/buyer/country", "lines": "/lines"}
UK_FIELDS = {
    "/CustomerVatRegistration": "/buyer/vat_number",
    "/CustomerCountry": "/buyer/country",
    "/SupplierCountry": "/seller/country",
    "/Lines": "/lines",
}


def check_buyer(buyer: Buyer) -> None:
    """A country we know, a ship-to state for the US, and a VAT number with valid check digits of that country."""
    if buyer.country not in EU_MEMBER_STATES | OTHER_COUNTRIES:
        raise Unprocessable(
            f"no tax engine serves customers in {buyer.country!r}",
            slug="unsupported-country",
            errors=[FieldError(pointer="/buyer/country", detail="not a country this API taxes")],
        )
    if buyer.country == "US" and not buyer.region:
        raise BadRequest(
            "a US customer's ship-to state is required",
            slug="validation-failed",
            errors=[FieldError(pointer="/buyer/region", detail="required for US customers")],
        )
    if buyer.vat_number is None:
        return
    if buyer.country in EU_MEMBER_STATES:
        valid = eu_vat.is_valid(buyer.vat_number) and eu_vat.compact(buyer.vat_number)[:2] in (
            buyer.country,
            "EL" if buyer.country == "GR" else buyer.country,
        )
    elif buyer.country == "GB":
        valid = gb_vat.is_valid(buyer.vat_number)
    else:
        valid = False
    if not valid:
        raise BadRequest(
            f"{buyer.vat_number!r} is not a valid VAT number of {buyer.country}",
            slug="invalid-vat-number",
            errors=[
                FieldError(pointer="/buyer/vat_number", detail=f"not a valid {buyer.country} VAT number (check digits)")
            ],
        )


def engine_for(request: TaxCalculationRequest) -> Engine:
    seller, buyer = request.seller, request.buyer
    if seller.country == "US":
        if buyer.country != "US":
            raise Unprocessable(
                "a US legal entity's invoices to customers abroad are not computed",
                slug="unsupported-country",
                errors=[FieldError(pointer="/buyer/country", detail="the US engine taxes US sales")],
            )
        return "us-sales-tax"
    place = buyer.country if buyer.vat_number else seller.country
    if place in EU_MEMBER_STATES:
        if place not in EU_ENGINE_COUNTRIES:
            pointer = "/buyer/country" if place == buyer.country else "/seller/country"
            raise Unprocessable(
                f"the EU VAT engine has no rates for {place}",
                slug="unsupported-country",
                errors=[FieldError(pointer=pointer, detail=f"no VAT rates for {place}")],
            )
        return "eu-vat"
    if place == "GB":
        return "uk-vat"
    return "uk-vat" if seller.country == "GB" else "eu-vat"


class SandboxTax:
    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        self._vendors = {
            engine: Downstream(
                f"sandbox-tax-{region}", f"{base_url.rstrip('/')}/{region}", timeout_seconds=timeout_seconds
            )
            for engine, region in REGIONS.items()
        }

    async def aclose(self) -> None:
        for vendor in self._vendors.values():
            await vendor.aclose()

    async def calculate(self, request: TaxCalculationRequest) -> TaxCalculation:
        request.check()
        check_buyer(request.buyer)
        if request.currency != request.seller.currency:
            raise Unprocessable(
                f"tax is computed in the legal entity's currency {request.seller.currency}; the document is in "
                f"{request.currency}",
                slug="currency-mismatch",
                errors=[FieldError(pointer="/currency", detail=f"must be {request.seller.currency}")],
            )
        engine = engine_for(request)
        if engine == "eu-vat":
            return await self._eu(request)
        if engine == "us-sales-tax":
            return await self._us(request)
        return await self._uk(request)

    async def _call(
        self, engine: Engine, path: str, body: dict[str, Any], errors_of: Any, field_map: Mapping[str, str]
    ) -> dict[str, Any]:
        try:
            reply = await self._vendors[engine].request(
                "POST", path, json=body, allow_statuses=frozenset(range(400, 500))
            )
        except DownstreamProblem as exc:
            if exc.status in (502, 503, 504):
                raise ProblemError(
                    f"the {engine} engine is unavailable ({exc.detail}); try again later",
                    status=503,
                    slug="tax-service-unavailable",
                    title="Tax service unavailable",
                    engine=engine,
                    region=REGIONS[engine],
                    headers={"Retry-After": exc.headers.get("Retry-After", "30")},
                ) from exc
            raise
        decoded = msgspec.json.decode(reply.content) if reply.content else {}
        if reply.status_code >= 400:
            message, fields = errors_of(decoded if isinstance(decoded, dict) else {})
            raise vendor_problem(
                f"sandbox-tax-{REGIONS[engine]}", reply.status_code, message, fields, field_map, what="tax calculation"
            )
        return dict(decoded)

    async def _eu(self, request: TaxCalculationRequest) -> TaxCalculation:
        body: dict[str, Any] = {
            "documentRef": request.document_ref,
            "currency": request.currency,
            "supplier": {"countryCode": request.seller.country},
            "customer": {
                "countryCode": request.buyer.country,
                **({"vatId": request.buyer.vat_number} if request.buyer.vat_number else {}),
            },
            "items": [
                {"id": str(n + 1), "netAmount": format(line.amount, "f")} for n, line in enumerate(request.lines)
            ],
        }
        answer = await self._call(
            "eu-vat",
            "/v2/vat/quotes",
            body,
            lambda e: (str(e.get("message", "")), [(e.get("field"), str(e.get("message", "")))]),
            EU_FIELDS,
        )
        lines = [
            TaxLine(
                jurisdiction=answer["placeOfSupply"],
                category=EU_CATEGORIES[group["vatCategory"]],
                rate_percent=plain_decimal(Decimal(group["ratePct"])),
                taxable_amount=Decimal(group["taxableAmount"]),
                tax_amount=Decimal(group["vatAmount"]),
                exemption_reason=group.get("legalNote"),
            )
            for group in answer["breakdown"]
        ]
        return _calculation(request, "eu-vat", answer["placeOfSupply"], answer["quoteId"], lines)

    async def _us(self, request: TaxCalculationRequest) -> TaxCalculation:
        currency = request.currency
        body = {
            "docCode": request.document_ref,
            "currencyCode": currency,
            "shipTo": {"country": "US", "region": request.buyer.region},
            "lines": [
                {
                    "number": str(n + 1),
                    "amountCents": to_minor(line.amount, currency, f"/lines/{n}/amount"),
                    "taxCode": "PROFESSIONAL_SERVICES",
                }
                for n, line in enumerate(request.lines)
            ],
        }
        answer = await self._call(
            "us-sales-tax",
            "/api/transactions/calculate",
            body,
            lambda e: (
                str((e.get("error") or {}).get("message", "")),
                [((e.get("error") or {}).get("target"), str((e.get("error") or {}).get("message", "")))],
            ),
            US_FIELDS,
        )
        jurisdiction = f"US-{answer['jurisdiction']['state']}"
        lines = [
            TaxLine(
                jurisdiction=jurisdiction,
                category=US_CATEGORIES[group["taxType"]],
                rate_percent=plain_decimal(Decimal(group["rate"])),
                taxable_amount=from_minor(group["taxableCents"], currency),
                tax_amount=from_minor(group["taxCents"], currency),
                exemption_reason=group.get("exemptReason"),
            )
            for group in answer["summary"]
        ]
        return _calculation(request, "us-sales-tax", jurisdiction, answer["transactionId"], lines)

    async def _uk(self, request: TaxCalculationRequest) -> TaxCalculation:
        currency = request.currency
        body = {
            "SupplierCountry": request.seller.country,
            "CustomerCountry": request.buyer.country,
            **({"CustomerVatRegistration": request.buyer.vat_number} if request.buyer.vat_number else {}),
            "Lines": [
                {"LineRef": str(n + 1), "NetPence": to_minor(line.amount, currency, f"/lines/{n}/amount")}
                for n, line in enumerate(request.lines)
            ],
        }
        answer = await self._call(
            "uk-vat",
            "/vat/v1/calculations",
            body,
            lambda e: (str(e.get("Message", "")), [(e.get("Path"), str(e.get("Message", "")))]),
            UK_FIELDS,
        )
        lines = []
        for group in answer["VatLines"]:
            category = UK_CATEGORIES[group["RateCode"]]
            lines.append(
                TaxLine(
                    jurisdiction=request.buyer.country if category == "outside_scope" else "GB",
                    category=category,
                    rate_percent=plain_decimal(Decimal(group["RatePercent"])),
                    taxable_amount=from_minor(group["NetPence"], currency),
                    tax_amount=from_minor(group["VatPence"], currency),
                    exemption_reason=group.get("Notice"),
                )
            )
        return _calculation(request, "uk-vat", lines[0].jurisdiction, answer["CalculationReference"], lines)


def _calculation(
    request: TaxCalculationRequest, engine: Engine, jurisdiction: str, reference: str, lines: list[TaxLine]
) -> TaxCalculation:
    return TaxCalculation(
        document_ref=request.document_ref,
        jurisdiction=jurisdiction,
        engine=engine,
        reference=reference,
        currency=request.currency,
        taxable_amount=sum((line.taxable_amount for line in lines), Decimal(0)),
        tax_amount=sum((line.tax_amount for line in lines), Decimal(0)),
        tax_lines=lines,
    )
