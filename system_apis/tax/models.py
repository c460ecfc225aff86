"""Payloads of the tax system API v1 (contracts/system/tax/v1.yaml)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar, Literal

import msgspec

from contracts.canonical import Currency, Money, TaxLine
from system_apis.checks import Checked, DecimalRange

Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Engine = Literal["eu-vat", "us-sales-tax", "uk-vat"]
# Amounts one invoice line may carry (the ERP's own bound on contract amounts).
LINE_AMOUNT = DecimalRange(-(Decimal(10) ** 12), maximum=Decimal(10) ** 12)


class Seller(Checked, kw_only=True):
    """The legal entity that invoices: its country and the currency it reports tax in."""

    legal_entity_id: Ref
    country: Country
    currency: Currency


class Buyer(Checked, kw_only=True):
    """The customer: its billing address decides where the supply is taxed; a VAT number makes it a business."""

    customer_id: Ref
    country: Country
    # ISO 3166-2 subdivision without the country (the US ship-to state); required for US customers.
    region: Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{0,3}$")] = ""
    vat_number: Annotated[str, msgspec.Meta(min_length=4, max_length=20)] | None = None


class TaxableLine(Checked, kw_only=True):
    ranges: ClassVar[dict[str, DecimalRange]] = {"amount": LINE_AMOUNT}

    amount: Money
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


class TaxCalculationRequest(Checked, kw_only=True):
    # The caller's reference for the document taxed (an invoice draft's key): echoed, never interpreted.
    document_ref: Ref
    currency: Currency
    seller: Seller
    buyer: Buyer
    lines: Annotated[list[TaxableLine], msgspec.Meta(min_length=1, max_length=1000)]


class TaxCalculation(msgspec.Struct, kw_only=True):
    """The tax of one document: where it is taxed, by which engine, the engine's reference and the breakdown."""

    document_ref: str
    jurisdiction: str
    engine: Engine
    reference: str
    currency: Currency
    taxable_amount: Money
    tax_amount: Money
    tax_lines: list[TaxLine]
