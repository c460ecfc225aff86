"""CRM adapter over Tryton: accounts are parties, opportunities are ``sale.opportunity``.

What maps natively: an account is a customer ``party.party`` (code C-1001, the same record the ERP adapter
answers: one Tryton is both); an opportunity is a ``sale.opportunity`` (number OPP-3001, party, description,
amount, currency, ``end_date`` as the expected close) whose state gives the stage (lead -> prospecting,
opportunity -> qualification/proposal/negotiation by the psgateway sub-stage, converted/won -> closed_won,
lost/cancelled -> closed_lost). What Tryton lacks is kept by the psgateway Tryton module: the engagement terms
on the opportunity (billing model, rate card, NTE, engagement dates, signed contract), the values that flow
back (provisioned project, invoice status), rate cards by role (``psgw.rate_card``) and contracts
(``psgw.contract``, shared with the ERP adapter). A stage change through this API only moves between the open
sub-stages; winning or losing a deal is Tryton's own workflow (its buttons), refused here with 409.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from contracts.canonical import (
    Contract,
    ContractStatus,
    Customer,
    Opportunity,
    OpportunityStage,
    Page,
    RateCard,
    RateCardLine,
)
from runtime.problems import Conflict, NotFound
from system_apis.crm.models import ChangedObject, RecordChange
from system_apis.erp.connectors.tryton import CONTRACT_FIELDS, CUSTOMER_FIELDS, contracts_from_rows, customer_from_row
from system_apis.ids import is_canonical, reference, to_business_key, to_canonical
from system_apis.tryton_rpc import TrytonRecords, nested

OPPORTUNITY_FIELDS = ["number", "party.code", "party.name", "description", "amount", "currency.code", "end_date",
                      "state", "company.party.code", "psgw_stage", "psgw_billing_model", "psgw_rate_card.code",
                      "psgw_nte_amount", "psgw_engagement_start", "psgw_engagement_end", "psgw_signed_contract_ref",
                      "psgw_provisioned_project", "psgw_invoice_status"]
OPEN_STAGES = ("qualification", "proposal", "negotiation")
# The change feed: per canonical kind, the Tryton model and its business-key field.
FEED: dict[ChangedObject, tuple[str, str]] = {"opportunity": ("sale.opportunity", "number"),
                                              "contract": ("psgw.contract", "number")}
OPPORTUNITY_LABELS = {"Amount": "/amount", "End Date": "/close_date"}


def stage_of(row: dict[str, Any]) -> OpportunityStage:
    state = row["state"]
    if state == "lead":
        return "prospecting"
    if state == "opportunity":
        return row.get("psgw_stage") or "qualification"
    return "closed_won" if state in ("converted", "won") else "closed_lost"


def opportunity_from_row(row: dict[str, Any]) -> Opportunity:
    def money(value: Any) -> Decimal | None:
        return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else None

    card = nested(row, "psgw_rate_card.code")
    return Opportunity(
        id=to_canonical("opportunity", row["number"]), external_ids={"crm": str(row["id"])},
        account_id=to_canonical("customer", nested(row, "party.code") or ""),
        account_name=nested(row, "party.name") or "", name=row.get("description") or row["number"],
        stage=stage_of(row), amount=money(row.get("amount")) or Decimal("0.00"),
        currency=nested(row, "currency.code") or "", close_date=row.get("end_date"),
        billing_model=row.get("psgw_billing_model"),
        legal_entity_id=to_canonical("legal_entity", code) if (code := nested(row, "company.party.code")) else None,
        rate_card_id=to_canonical("rate_card", card) if card else None,
        start_date=row.get("psgw_engagement_start"), end_date=row.get("psgw_engagement_end"),
        nte_amount=money(row.get("psgw_nte_amount")),
        signed_contract_ref=to_canonical("contract", ref) if (ref := row.get("psgw_signed_contract_ref")) else None,
        provisioned_project_id=row.get("psgw_provisioned_project"), invoice_status=row.get("psgw_invoice_status"),
    )


class TrytonCrm(TrytonRecords):
    async def list_accounts(self, *, cursor: str | None, limit: int) -> Page[Customer]:
        rows, next_cursor = await self.page("party.party", [("psgw_currency", "!=", None)], CUSTOMER_FIELDS, cursor,
                                            limit)
        return Page(items=[customer_from_row(r, "crm") for r in rows], next_cursor=next_cursor)

    async def get_account(self, account_id: str) -> Customer:
        row = await self.first("party.party", [("code", "=", to_business_key("customer", account_id)),
                                               ("psgw_currency", "!=", None)], CUSTOMER_FIELDS)
        if row is None:
            raise NotFound(f"no account {account_id!r}", slug="unknown-id")
        return customer_from_row(row, "crm")

    async def list_opportunities(self, *, stage: OpportunityStage | None, cursor: str | None,
                                 limit: int) -> Page[Opportunity]:
        domain: list[Any] = []
        if stage == "prospecting":
            domain.append(("state", "=", "lead"))
        elif stage == "qualification":
            domain += [("state", "=", "opportunity"), ["OR", ("psgw_stage", "=", None),
                                                       ("psgw_stage", "=", "qualification")]]
        elif stage in ("proposal", "negotiation"):
            domain += [("state", "=", "opportunity"), ("psgw_stage", "=", stage)]
        elif stage == "closed_won":
            domain.append(("state", "in", ["converted", "won"]))
        elif stage == "closed_lost":
            domain.append(("state", "in", ["lost", "cancelled"]))
        rows, next_cursor = await self.page("sale.opportunity", domain, OPPORTUNITY_FIELDS, cursor, limit)
        return Page(items=[opportunity_from_row(r) for r in rows], next_cursor=next_cursor)

    async def _opportunity_row(self, opportunity_id: str) -> dict[str, Any]:
        row = await self.first("sale.opportunity", [("number", "=", to_business_key("opportunity", opportunity_id))],
                               OPPORTUNITY_FIELDS)
        if row is None:
            raise NotFound(f"no opportunity {opportunity_id!r}", slug="unknown-id")
        return row

    async def get_opportunity(self, opportunity_id: str) -> Opportunity:
        return opportunity_from_row(await self._opportunity_row(opportunity_id))

    async def update_opportunity(self, opportunity_id: str, changes: dict[str, object]) -> Opportunity:
        row = await self._opportunity_row(opportunity_id)
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "stage" and value != stage_of(row):
                if row["state"] != "opportunity" or value not in OPEN_STAGES:
                    raise Conflict(f"a {stage_of(row)} opportunity becomes {value} through Tryton's own workflow",
                                   slug="invalid-transition", from_state=stage_of(row), to_state=value)
                values["psgw_stage"] = value
            elif name == "provisioned_project_id":
                values["psgw_provisioned_project"] = None if value is None else reference(
                    "project", str(value), "/provisioned_project_id") and str(value)
            elif name == "invoice_status":
                values["psgw_invoice_status"] = value
            elif name == "close_date":
                values["end_date"] = value
            elif name == "amount":
                values["amount"] = value
            elif name == "signed_contract_ref":
                values["psgw_signed_contract_ref"] = None if value is None else reference(
                    "contract", str(value), "/signed_contract_ref")
        if values:
            await self.rpc.write("sale.opportunity", [row["id"]], values, field_map=OPPORTUNITY_LABELS)
        return opportunity_from_row((await self.rpc.read("sale.opportunity", [row["id"]], OPPORTUNITY_FIELDS))[0])

    async def list_contracts(self, *, account_id: str | None, status: ContractStatus | None, cursor: str | None,
                             limit: int) -> Page[Contract]:
        domain: list[Any] = []
        if status is not None:
            domain.append(("state", "=", status))
        if account_id is not None:
            if not is_canonical("customer", account_id):
                return Page(items=[])
            domain.append(("party.code", "=", to_business_key("customer", account_id)))
        rows, next_cursor = await self.page("psgw.contract", domain, CONTRACT_FIELDS, cursor, limit)
        return Page(items=await contracts_from_rows(self, rows, "crm"), next_cursor=next_cursor)

    async def get_contract(self, contract_id: str) -> Contract:
        if not is_canonical("contract", contract_id):
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        row = await self.first("psgw.contract", [("number", "=", to_business_key("contract", contract_id))],
                               CONTRACT_FIELDS)
        if row is None:
            raise NotFound(f"no contract {contract_id!r}", slug="unknown-id")
        return (await contracts_from_rows(self, [row], "crm"))[0]

    async def _rate_cards(self, rows: list[dict[str, Any]]) -> list[RateCard]:
        line_ids = [i for r in rows for i in r.get("lines") or []]
        lines = await self.rpc.read("psgw.rate_card.line", line_ids, ["card", "role", "hourly_rate", "valid_from",
                                                                     "valid_to"]) if line_ids else []
        return [RateCard(id=to_canonical("rate_card", r["code"]), external_ids={"crm": str(r["id"])}, name=r["name"],
                         currency=nested(r, "currency.code") or "", lines=[
                             RateCardLine(role=line["role"],
                                          hourly_rate=Decimal(str(line["hourly_rate"])).quantize(Decimal("0.01")),
                                          valid_from=line["valid_from"], valid_to=line.get("valid_to"))
                             for line in sorted(lines, key=lambda x: (x["role"], x["valid_from"]))
                             if line["card"] == r["id"]]) for r in rows]

    async def list_rate_cards(self, *, cursor: str | None, limit: int) -> Page[RateCard]:
        rows, next_cursor = await self.page("psgw.rate_card", [], ["code", "name", "currency.code", "lines"], cursor,
                                            limit)
        return Page(items=await self._rate_cards(rows), next_cursor=next_cursor)

    async def get_rate_card(self, rate_card_id: str) -> RateCard:
        row = await self.first("psgw.rate_card", [("code", "=", to_business_key("rate_card", rate_card_id))],
                               ["code", "name", "currency.code", "lines"])
        if row is None:
            raise NotFound(f"no rate card {rate_card_id!r}", slug="unknown-id")
        return (await self._rate_cards([row]))[0]

    async def changes(self, *, object_: ChangedObject, since: dt.datetime, cursor: str | None,
                      limit: int) -> Page[RecordChange]:
        """Tryton stamps every record with ``create_date`` and, once written, ``write_date`` (naive UTC)."""
        model, key_field = FEED[object_]
        domain: list[Any] = ["OR", ("write_date", ">=", since),
                             [("write_date", "=", None), ("create_date", ">=", since)]]
        rows, next_cursor = await self.page(model, domain, [key_field, "write_date", "create_date"], cursor, limit)
        return Page(items=[RecordChange(object=object_, id=to_canonical(object_, row[key_field]),
                                        modified_at=row.get("write_date") or row["create_date"]) for row in rows],
                    next_cursor=next_cursor)
