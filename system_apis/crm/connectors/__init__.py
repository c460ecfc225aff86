"""The CRM port: what the CRM system API needs from any CRM, in canonical terms.

Accounts are customers: an account's canonical id is the customer id (``cus_1001``), the one business key
for a customer across CRM and ERP.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from contracts.canonical import Contract, ContractStatus, Customer, Opportunity, OpportunityStage, Page, RateCard
from system_apis.crm.models import ChangedObject, RecordChange


class CrmConnector(Protocol):
    async def list_accounts(self, *, cursor: str | None, limit: int) -> Page[Customer]: ...

    async def get_account(self, account_id: str) -> Customer: ...

    async def list_opportunities(self, *, stage: OpportunityStage | None, cursor: str | None,
                                 limit: int) -> Page[Opportunity]: ...

    async def get_opportunity(self, opportunity_id: str) -> Opportunity: ...

    async def update_opportunity(self, opportunity_id: str, changes: dict[str, object]) -> Opportunity: ...

    async def list_contracts(self, *, account_id: str | None, status: ContractStatus | None, cursor: str | None,
                             limit: int) -> Page[Contract]: ...

    async def get_contract(self, contract_id: str) -> Contract:
        """The signed contract (statement of work) with its billing terms and schedule."""
        ...

    async def list_rate_cards(self, *, cursor: str | None, limit: int) -> Page[RateCard]: ...

    async def get_rate_card(self, rate_card_id: str) -> RateCard: ...

    async def changes(self, *, object_: ChangedObject, since: dt.datetime, cursor: str | None,
                      limit: int) -> Page[RecordChange]:
        """Records of one kind changed at or after ``since``, oldest change first (a change feed to poll)."""
        ...

    async def aclose(self) -> None: ...
