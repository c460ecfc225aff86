"""E-invoices: a posted invoice as an EN 16931 document, in the format the customer's country expects.

- Germany and France: Factur-X / ZUGFeRD, profile EN 16931: a PDF with the CII XML embedded as ``factur-x.xml``,
  built by the ``factur-x`` library, which checks the XML against the Factur-X XSD it ships before embedding.
- Every other country: UBL 2.1 Invoice in the Peppol BIS Billing 3.0 profile, checked against the official UBL 2.1
  XSD (shipped by the same library) and against the subset of the EN 16931 and Peppol business rules listed in
  :data:`BIS_RULES` (the full Schematron needs an XSLT 2.0 processor, which is not installed).

One tax group per invoice (what the tax engines answer): every line carries that group's VAT category and rate.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import facturx
from lxml import etree
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from contracts.canonical import Customer, Invoice, InvoiceLine, LegalEntity, TaxCategory, TaxLine, decimal_text

DocumentFormat = Literal["factur-x", "peppol-bis-billing-3"]
FACTURX_COUNTRIES = frozenset({"DE", "FR"})
PEPPOL_BIS_BILLING = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
EN16931 = "urn:cen.eu:en16931:2017"
# UNCL 5305 VAT category codes.
CATEGORY_CODES: dict[TaxCategory, str] = {
    "standard": "S",
    "zero_rated": "Z",
    "exempt": "E",
    "reverse_charge": "AE",
    "outside_scope": "O",
}
NS_UBL = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NS_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NS_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
NS_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NS_QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
# A net price (BT-146) is stated to at most this many places; one that needs more is not stated (one unit at the
# line amount instead).
PRICE_PLACES = Decimal("0.000001")


class DocumentInvalid(Exception):
    """The rendered document breaks its schema or a business rule: never sent."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Parties:
    seller: LegalEntity
    buyer: Customer

    @property
    def buyer_country(self) -> str:
        if self.buyer.address is not None:
            return self.buyer.address.country
        return self.buyer.tax_jurisdiction[:2]


@dataclass(frozen=True)
class Document:
    format: DocumentFormat
    media_type: str
    content: bytes
    # What was checked, in words: the schema, and the business rules where they were checked here.
    validated_against: list[str]


def format_for(country: str) -> DocumentFormat:
    return "factur-x" if country in FACTURX_COUNTRIES else "peppol-bis-billing-3"


def render(invoice: Invoice, parties: Parties, contract_ref: str) -> Document:
    if len(invoice.tax_lines) != 1:
        raise DocumentInvalid([f"an e-invoice needs exactly one tax group, the invoice has {len(invoice.tax_lines)}"])
    if format_for(parties.buyer_country) == "factur-x":
        return _facturx(invoice, parties, contract_ref)
    return _peppol(invoice, parties, contract_ref)


def _amount(value: Decimal) -> str:
    return decimal_text(value.quantize(Decimal("0.01")))


def _unit(line: InvoiceLine) -> str:
    """UN/ECE Rec 20: hours for time, one (C62) for anything else."""
    return "HUR" if line.source_type == "time_entry" else "C62"


@dataclass(frozen=True)
class Priced:
    """A line as the document states it: quantity (BT-129) in ``unit`` (BT-130), net price (BT-146) per
    ``base`` units (BT-149; None is 1), so that quantity x price / base is the line amount (BT-131) exactly."""

    quantity: Decimal
    price: Decimal
    unit: str
    base: Decimal | None = None


def _exact_price(value: Decimal) -> Decimal | None:
    return value.normalize() if value == value.quantize(PRICE_PLACES) else None


def _priced(line: InvoiceLine) -> Priced:
    """The line's quantity and price whose product is its amount exactly (PEPPOL-EN16931-R120, checked here
    without its 0.02 slack). Time in whole minutes (issue 18) is stated from its minutes, never from hours
    rounded for display: in hours (HUR) where they are exact to the hundredth, else in minutes (MIN) priced per
    60 minutes (BT-149), at the line's hourly rate where minutes x rate / 60 is the amount, else at the hourly
    price the amount works out to (20 minutes booked at 61.33: 20 MIN x 183.99 / 60). Anything whose amount is
    not quantity x a price (a retainer's overage, time whose price has no exact decimal) is one unit (C62) at
    its amount."""
    if line.minutes and line.source_type == "time_entry":
        minutes = Decimal(line.minutes)
        hours = minutes / 60
        for price in (line.unit_price, _exact_price(line.amount * 60 / minutes)):
            if price is None or not price:
                continue
            if hours == hours.quantize(Decimal("0.01")) and hours * price == line.amount:
                return Priced(hours.normalize(), price.normalize(), "HUR")
            if minutes * price / 60 == line.amount:
                return Priced(minutes, price.normalize(), "MIN", Decimal(60))
    if line.quantity and (line.amount / line.quantity) * line.quantity == line.amount:
        price = _exact_price(line.amount / line.quantity)
        if price is not None:
            return Priced(line.quantity, price, _unit(line))
    return Priced(Decimal(1), line.amount, "C62")


def _issue_date(invoice: Invoice) -> dt.date:
    return invoice.issue_date or dt.datetime.now(dt.UTC).date()


# --- Factur-X (CII) ------------------------------------------------------------------------------------------------


def _el(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        node.text = text
    return node


def cii_xml(invoice: Invoice, parties: Parties, contract_ref: str) -> bytes:
    tax = invoice.tax_lines[0]
    category = CATEGORY_CODES[tax.category]
    root = etree.Element(
        f"{{{NS_RSM}}}CrossIndustryInvoice", nsmap={"rsm": NS_RSM, "ram": NS_RAM, "udt": NS_UDT, "qdt": NS_QDT}
    )
    context = _el(root, NS_RSM, "ExchangedDocumentContext")
    _el(_el(context, NS_RAM, "GuidelineSpecifiedDocumentContextParameter"), NS_RAM, "ID", EN16931)
    header = _el(root, NS_RSM, "ExchangedDocument")
    _el(header, NS_RAM, "ID", invoice.id)
    _el(header, NS_RAM, "TypeCode", "380")
    _el(
        _el(header, NS_RAM, "IssueDateTime"),
        NS_UDT,
        "DateTimeString",
        _issue_date(invoice).strftime("%Y%m%d"),
        format="102",
    )
    transaction = _el(root, NS_RSM, "SupplyChainTradeTransaction")
    for number, line in enumerate(invoice.lines, start=1):
        priced = _priced(line)
        item = _el(transaction, NS_RAM, "IncludedSupplyChainTradeLineItem")
        _el(_el(item, NS_RAM, "AssociatedDocumentLineDocument"), NS_RAM, "LineID", str(number))
        _el(_el(item, NS_RAM, "SpecifiedTradeProduct"), NS_RAM, "Name", line.description)
        agreement = _el(item, NS_RAM, "SpecifiedLineTradeAgreement")
        net_price = _el(agreement, NS_RAM, "NetPriceProductTradePrice")
        _el(net_price, NS_RAM, "ChargeAmount", decimal_text(priced.price))
        if priced.base is not None:
            _el(net_price, NS_RAM, "BasisQuantity", decimal_text(priced.base), unitCode=priced.unit)
        _el(
            _el(item, NS_RAM, "SpecifiedLineTradeDelivery"),
            NS_RAM,
            "BilledQuantity",
            decimal_text(priced.quantity),
            unitCode=priced.unit,
        )
        settlement = _el(item, NS_RAM, "SpecifiedLineTradeSettlement")
        line_tax = _el(settlement, NS_RAM, "ApplicableTradeTax")
        _el(line_tax, NS_RAM, "TypeCode", "VAT")
        _el(line_tax, NS_RAM, "CategoryCode", category)
        if category != "O":
            _el(line_tax, NS_RAM, "RateApplicablePercent", decimal_text(tax.rate_percent))
        _el(
            _el(settlement, NS_RAM, "SpecifiedTradeSettlementLineMonetarySummation"),
            NS_RAM,
            "LineTotalAmount",
            _amount(line.amount),
        )
    agreement = _el(transaction, NS_RAM, "ApplicableHeaderTradeAgreement")
    _el(agreement, NS_RAM, "BuyerReference", contract_ref)
    _cii_party(
        agreement, "SellerTradeParty", parties.seller.name, parties.seller.country, parties.seller.vat_number, None
    )
    _cii_party(
        agreement, "BuyerTradeParty", parties.buyer.name, parties.buyer_country, parties.buyer.vat_number, parties.buyer
    )
    _el(_el(agreement, NS_RAM, "ContractReferencedDocument"), NS_RAM, "IssuerAssignedID", contract_ref)
    _el(transaction, NS_RAM, "ApplicableHeaderTradeDelivery")
    settlement = _el(transaction, NS_RAM, "ApplicableHeaderTradeSettlement")
    _el(settlement, NS_RAM, "InvoiceCurrencyCode", invoice.currency)
    breakdown = _el(settlement, NS_RAM, "ApplicableTradeTax")
    _el(breakdown, NS_RAM, "CalculatedAmount", _amount(tax.tax_amount))
    _el(breakdown, NS_RAM, "TypeCode", "VAT")
    if tax.exemption_reason:
        _el(breakdown, NS_RAM, "ExemptionReason", tax.exemption_reason)
    _el(breakdown, NS_RAM, "BasisAmount", _amount(tax.taxable_amount))
    _el(breakdown, NS_RAM, "CategoryCode", category)
    if category != "O":
        _el(breakdown, NS_RAM, "RateApplicablePercent", decimal_text(tax.rate_percent))
    if invoice.period:
        _el(
            _el(settlement, NS_RAM, "SpecifiedTradePaymentTerms"),
            NS_RAM,
            "Description",
            f"Services of {invoice.period}",
        )
    totals = _el(settlement, NS_RAM, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(totals, NS_RAM, "LineTotalAmount", _amount(invoice.subtotal))
    _el(totals, NS_RAM, "TaxBasisTotalAmount", _amount(invoice.subtotal))
    _el(totals, NS_RAM, "TaxTotalAmount", _amount(invoice.tax), currencyID=invoice.currency)
    _el(totals, NS_RAM, "GrandTotalAmount", _amount(invoice.total))
    _el(totals, NS_RAM, "DuePayableAmount", _amount(invoice.total))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _cii_party(
    parent: etree._Element, tag: str, name: str, country: str, vat_number: str | None, customer: Customer | None
) -> None:
    party = _el(parent, NS_RAM, tag)
    _el(party, NS_RAM, "Name", name)
    address = _el(party, NS_RAM, "PostalTradeAddress")
    if customer is not None and customer.address is not None:
        if customer.address.postal_code:
            _el(address, NS_RAM, "PostcodeCode", customer.address.postal_code)
        if customer.address.line1:
            _el(address, NS_RAM, "LineOne", customer.address.line1)
        if customer.address.city:
            _el(address, NS_RAM, "CityName", customer.address.city)
    _el(address, NS_RAM, "CountryID", country)
    if vat_number:
        _el(_el(party, NS_RAM, "SpecifiedTaxRegistration"), NS_RAM, "ID", vat_number, schemeID="VA")


def _pdf(invoice: Invoice, parties: Parties) -> bytes:
    """The human-readable invoice: one page of text (Helvetica, not embedded)."""
    text = [
        f"Invoice {invoice.id}",
        f"{parties.seller.name} ({parties.seller.vat_number or parties.seller.country})",
        f"To: {parties.buyer.name} ({parties.buyer.vat_number or parties.buyer_country})",
        "",
    ]
    text += [f"{line.description}: {decimal_text(line.amount)} {invoice.currency}" for line in invoice.lines]
    text += [
        "",
        f"Net {decimal_text(invoice.subtotal)}  Tax {decimal_text(invoice.tax)}  "
        f"Total {decimal_text(invoice.total)} {invoice.currency}",
    ]
    text += [t.exemption_reason for t in invoice.tax_lines if t.exemption_reason]

    def escaped(value: str) -> str:
        ascii_only = value.encode("ascii", "replace").decode()
        return ascii_only.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    stream = DecodedStreamObject()
    stream.set_data(
        (
            "BT /F1 10 Tf 14 TL 50 800 Td " + " ".join(f"({escaped(line[:110])}) Tj T*" for line in text[:55]) + " ET"
        ).encode()
    )
    page[NameObject("/Contents")] = writer._add_object(stream)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _facturx(invoice: Invoice, parties: Parties, contract_ref: str) -> Document:
    xml = cii_xml(invoice, parties, contract_ref)
    try:  # check_xsd: the library validates against the Factur-X EN 16931 XSD it ships, refusing what breaks it
        pdf = facturx.generate_from_binary(
            _pdf(invoice, parties), xml, flavor="factur-x", level="en16931", check_xsd=True, lang="en-GB"
        )
    except Exception as exc:  # the library raises plain Exceptions for schema errors
        raise DocumentInvalid([f"Factur-X XSD: {exc}"]) from exc
    return Document(
        format="factur-x",
        media_type="application/pdf",
        content=bytes(pdf),
        validated_against=["Factur-X 1.0 EN 16931 XSD (CII D16B)"],
    )


# --- UBL 2.1, Peppol BIS Billing 3.0 -------------------------------------------------------------------------------


def ubl_xml(invoice: Invoice, parties: Parties, contract_ref: str) -> bytes:
    tax = invoice.tax_lines[0]
    root = etree.Element(f"{{{NS_UBL}}}Invoice", nsmap={None: NS_UBL, "cac": NS_CAC, "cbc": NS_CBC})
    _el(root, NS_CBC, "CustomizationID", PEPPOL_BIS_BILLING)
    _el(root, NS_CBC, "ProfileID", PEPPOL_PROFILE)
    _el(root, NS_CBC, "ID", invoice.id)
    _el(root, NS_CBC, "IssueDate", _issue_date(invoice).isoformat())
    _el(root, NS_CBC, "InvoiceTypeCode", "380")
    _el(root, NS_CBC, "DocumentCurrencyCode", invoice.currency)
    _el(root, NS_CBC, "BuyerReference", contract_ref)
    _el(_el(root, NS_CAC, "ContractDocumentReference"), NS_CBC, "ID", contract_ref)
    _ubl_party(
        _el(root, NS_CAC, "AccountingSupplierParty"),
        parties.seller.name,
        parties.seller.country,
        parties.seller.vat_number,
        parties.seller.einvoice_endpoint_id,
        None,
        tax_registration=parties.seller.tax_registration_id,
    )
    _ubl_party(
        _el(root, NS_CAC, "AccountingCustomerParty"),
        parties.buyer.name,
        parties.buyer_country,
        parties.buyer.vat_number,
        receiver_of(parties.buyer),
        parties.buyer,
    )
    total = _el(root, NS_CAC, "TaxTotal")
    _el(total, NS_CBC, "TaxAmount", _amount(invoice.tax), currencyID=invoice.currency)
    subtotal = _el(total, NS_CAC, "TaxSubtotal")
    _el(subtotal, NS_CBC, "TaxableAmount", _amount(tax.taxable_amount), currencyID=invoice.currency)
    _el(subtotal, NS_CBC, "TaxAmount", _amount(tax.tax_amount), currencyID=invoice.currency)
    _ubl_category(subtotal, "TaxCategory", tax)
    money = _el(root, NS_CAC, "LegalMonetaryTotal")
    _el(money, NS_CBC, "LineExtensionAmount", _amount(invoice.subtotal), currencyID=invoice.currency)
    _el(money, NS_CBC, "TaxExclusiveAmount", _amount(invoice.subtotal), currencyID=invoice.currency)
    _el(money, NS_CBC, "TaxInclusiveAmount", _amount(invoice.total), currencyID=invoice.currency)
    _el(money, NS_CBC, "PayableAmount", _amount(invoice.total), currencyID=invoice.currency)
    for number, line in enumerate(invoice.lines, start=1):
        priced = _priced(line)
        node = _el(root, NS_CAC, "InvoiceLine")
        _el(node, NS_CBC, "ID", str(number))
        _el(node, NS_CBC, "InvoicedQuantity", decimal_text(priced.quantity), unitCode=priced.unit)
        _el(node, NS_CBC, "LineExtensionAmount", _amount(line.amount), currencyID=invoice.currency)
        item = _el(node, NS_CAC, "Item")
        _el(item, NS_CBC, "Name", line.description[:200])
        _ubl_category(item, "ClassifiedTaxCategory", tax, line_level=True)
        price = _el(node, NS_CAC, "Price")
        _el(price, NS_CBC, "PriceAmount", decimal_text(priced.price), currencyID=invoice.currency)
        if priced.base is not None:
            _el(price, NS_CBC, "BaseQuantity", decimal_text(priced.base), unitCode=priced.unit)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def receiver_of(customer: Customer) -> str | None:
    return customer.einvoice_endpoint_id


def _ubl_category(parent: etree._Element, tag: str, tax: TaxLine, line_level: bool = False) -> None:
    category = CATEGORY_CODES[tax.category]
    node = _el(parent, NS_CAC, tag)
    _el(node, NS_CBC, "ID", category)
    if category != "O":
        _el(node, NS_CBC, "Percent", decimal_text(tax.rate_percent))
    if tax.exemption_reason and not line_level:
        _el(node, NS_CBC, "TaxExemptionReason", tax.exemption_reason)
    _el(_el(node, NS_CAC, "TaxScheme"), NS_CBC, "ID", "VAT")


def _ubl_party(
    parent: etree._Element,
    name: str,
    country: str,
    vat_number: str | None,
    endpoint: str | None,
    customer: Customer | None,
    tax_registration: str | None = None,
) -> None:
    party = _el(parent, NS_CAC, "Party")
    if endpoint:
        scheme, _, identifier = endpoint.partition(":")
        _el(party, NS_CBC, "EndpointID", identifier, schemeID=scheme)
    address = _el(party, NS_CAC, "PostalAddress")
    if customer is not None and customer.address is not None:
        for tag, value in (
            ("StreetName", customer.address.line1),
            ("CityName", customer.address.city),
            ("PostalZone", customer.address.postal_code),
            ("CountrySubentity", customer.address.region),
        ):
            if value:
                _el(address, NS_CBC, tag, value)
    _el(_el(address, NS_CAC, "Country"), NS_CBC, "IdentificationCode", country)
    if vat_number:
        scheme = _el(party, NS_CAC, "PartyTaxScheme")
        _el(scheme, NS_CBC, "CompanyID", vat_number)
        _el(_el(scheme, NS_CAC, "TaxScheme"), NS_CBC, "ID", "VAT")
    elif tax_registration:  # BT-32, the seller's tax registration: Peppol marks it with a TaxScheme other than VAT
        scheme = _el(party, NS_CAC, "PartyTaxScheme")
        _el(scheme, NS_CBC, "CompanyID", tax_registration)
        _el(_el(scheme, NS_CAC, "TaxScheme"), NS_CBC, "ID", "TAX")
    _el(_el(party, NS_CAC, "PartyLegalEntity"), NS_CBC, "RegistrationName", name)


def _text(root: etree._Element, path: str) -> list[str]:
    return [str(node.text or "") for node in root.iterfind(path, {"cac": NS_CAC, "cbc": NS_CBC})]


def _sum(root: etree._Element, path: str) -> Decimal:
    return sum((Decimal(value) for value in _text(root, path)), Decimal(0))


# The business rules checked on every UBL document, by their EN 16931 / Peppol identifiers.
BIS_RULES: dict[str, tuple[str, Callable[[etree._Element], bool]]] = {
    "PEPPOL-EN16931-R001": (
        "business process (ProfileID) present",
        lambda r: _text(r, "cbc:ProfileID") == [PEPPOL_PROFILE],
    ),
    "PEPPOL-EN16931-R003": (
        "buyer reference or order reference present",
        lambda r: bool(_text(r, "cbc:BuyerReference") or _text(r, "cac:OrderReference/cbc:ID")),
    ),
    "PEPPOL-EN16931-R004": (
        "CustomizationID is Peppol BIS Billing 3.0",
        lambda r: _text(r, "cbc:CustomizationID") == [PEPPOL_BIS_BILLING],
    ),
    "PEPPOL-EN16931-R010": (
        "buyer electronic address (EndpointID) present",
        lambda r: bool(_text(r, "cac:AccountingCustomerParty/cac:Party/cbc:EndpointID")),
    ),
    "PEPPOL-EN16931-R020": (
        "seller electronic address (EndpointID) present",
        lambda r: bool(_text(r, "cac:AccountingSupplierParty/cac:Party/cbc:EndpointID")),
    ),
    "BR-09": (
        "seller country code present",
        lambda r: bool(
            _text(r, "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode")
        ),
    ),
    "BR-11": (
        "buyer country code present",
        lambda r: bool(
            _text(r, "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode")
        ),
    ),
    "BR-CO-10": (
        "sum of line net amounts = LineExtensionAmount",
        lambda r: (
            _sum(r, "cac:InvoiceLine/cbc:LineExtensionAmount")
            == _sum(r, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount")
        ),
    ),
    "BR-CO-14": (
        "invoice VAT total = sum of VAT category amounts",
        lambda r: _sum(r, "cac:TaxTotal/cbc:TaxAmount") == _sum(r, "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount"),
    ),
    "BR-CO-15": (
        "TaxInclusiveAmount = TaxExclusiveAmount + VAT total",
        lambda r: (
            _sum(r, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount")
            == _sum(r, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount") + _sum(r, "cac:TaxTotal/cbc:TaxAmount")
        ),
    ),
    "PEPPOL-EN16931-R120": (
        "line net amount = invoiced quantity x (net price / price base quantity), here exactly",
        lambda r: all(
            Decimal(line.findtext(f"{{{NS_CBC}}}LineExtensionAmount") or "0")
            == Decimal(line.findtext(f"{{{NS_CBC}}}InvoicedQuantity") or "0")
            * Decimal(line.findtext(f"{{{NS_CAC}}}Price/{{{NS_CBC}}}PriceAmount") or "0")
            / Decimal(line.findtext(f"{{{NS_CAC}}}Price/{{{NS_CBC}}}BaseQuantity") or "1")
            for line in r.iterfind(f"{{{NS_CAC}}}InvoiceLine")
        ),
    ),
    "BR-CO-17": (
        "VAT category amount = taxable amount x rate, rounded to 2 decimals",
        lambda r: all(
            Decimal(s.findtext(f"{{{NS_CBC}}}TaxAmount") or "0")
            == (
                Decimal(s.findtext(f"{{{NS_CBC}}}TaxableAmount") or "0")
                * Decimal(s.findtext(f"{{{NS_CAC}}}TaxCategory/{{{NS_CBC}}}Percent") or "0")
                / 100
            ).quantize(Decimal("0.01"))
            for s in r.iterfind(f"{{{NS_CAC}}}TaxTotal/{{{NS_CAC}}}TaxSubtotal")
        ),
    ),
    "BR-AE-02": (
        "reverse charge: seller and buyer VAT identifiers present",
        lambda r: (
            "AE" not in _text(r, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID")
            or (
                bool(_text(r, "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"))
                and bool(_text(r, "cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"))
            )
        ),
    ),
    "BR-S-02": (
        "standard rated: seller VAT identifier or tax registration present",
        lambda r: (
            "S" not in _text(r, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID")
            or bool(_text(r, "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"))
        ),
    ),
    "BR-E-10": (
        "exempt or reverse charge: exemption reason present",
        lambda r: all(
            c.findtext(f"{{{NS_CBC}}}TaxExemptionReason")
            for c in r.iterfind(f"{{{NS_CAC}}}TaxTotal/{{{NS_CAC}}}TaxSubtotal/{{{NS_CAC}}}TaxCategory")
            if c.findtext(f"{{{NS_CBC}}}ID") in ("E", "AE")
        ),
    ),
}


def check_bis_rules(xml: bytes) -> list[str]:
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    return [f"{rule}: {description}" for rule, (description, holds) in BIS_RULES.items() if not holds(root)]


def _peppol(invoice: Invoice, parties: Parties, contract_ref: str) -> Document:
    xml = ubl_xml(invoice, parties, contract_ref)
    errors = []
    try:
        facturx.xml_check_xsd(xml, flavor="ubl-2.1-invoice")
    except Exception as exc:  # the library raises plain Exceptions for schema errors
        errors.append(f"UBL 2.1 XSD: {exc}")
    errors.extend(check_bis_rules(xml))
    if errors:
        raise DocumentInvalid(errors)
    return Document(
        format="peppol-bis-billing-3",
        media_type="application/xml",
        content=xml,
        validated_against=[
            "UBL 2.1 Invoice XSD (OASIS)",
            f"Peppol BIS Billing 3.0 rules {', '.join(sorted(BIS_RULES))}",
        ],
    )
