"""CRM system API v1 routes. Contract: contracts/system/crm/v1.yaml."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, patch
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from contracts.canonical import Contract, ContractStatus, Customer, Opportunity, OpportunityStage, Page, RateCard
from runtime.app import require_scopes
from runtime.tokens import Principal
from system_apis.crm.connectors import CrmConnector
from system_apis.crm.models import OpportunityPatch
from system_apis.idempotency import IdempotencyKey, respond

Limit = Annotated[int, QueryParameter(ge=1, le=200)]


def connector(state: State) -> CrmConnector:
    return state.crm


class CrmV1(Controller):
    path = "/system/crm/v1"

    @get("/accounts", operation_id="listAccounts")
    async def list_accounts(self, state: State, principal: NamedDependency[Principal],
                            cursor: FromQuery[str | None] = None,
                            limit: Limit = 50) -> Page[Customer]:
        require_scopes(principal, "crm:read")
        return await connector(state).list_accounts(cursor=cursor, limit=limit)

    @get("/accounts/{account_id:str}", operation_id="getAccount")
    async def get_account(self, state: State, principal: NamedDependency[Principal],
                          account_id: FromPath[str]) -> Customer:
        require_scopes(principal, "crm:read")
        return await connector(state).get_account(account_id)

    @get("/opportunities", operation_id="listOpportunities")
    async def list_opportunities(self, state: State, principal: NamedDependency[Principal],
                                 stage: FromQuery[OpportunityStage | None] = None,
                                 cursor: FromQuery[str | None] = None, limit: Limit = 50) -> Page[Opportunity]:
        require_scopes(principal, "crm:read")
        return await connector(state).list_opportunities(stage=stage, cursor=cursor, limit=limit)

    @get("/opportunities/{opportunity_id:str}", operation_id="getOpportunity")
    async def get_opportunity(self, state: State, principal: NamedDependency[Principal],
                              opportunity_id: FromPath[str]) -> Opportunity:
        require_scopes(principal, "crm:read")
        return await connector(state).get_opportunity(opportunity_id)

    @patch("/opportunities/{opportunity_id:str}", operation_id="updateOpportunity")
    async def update_opportunity(self, state: State, principal: NamedDependency[Principal],
                                 opportunity_id: FromPath[str],
                                 data: RequestBody[OpportunityPatch],
                                 idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        require_scopes(principal, "crm:write")
        data.check()

        async def action() -> tuple[int, Opportunity]:
            return 200, await connector(state).update_opportunity(opportunity_id, data.changes())
        return await respond(state.idempotency, client_id=principal.client_id, operation="updateOpportunity",
                             key=idempotency_key, path_params={"opportunity_id": opportunity_id}, body=data,
                             action=action)

    @get("/contracts", operation_id="listSignedContracts")
    async def list_contracts(self, state: State, principal: NamedDependency[Principal],
                             account_id: FromQuery[str | None] = None,
                             status: FromQuery[ContractStatus | None] = None, cursor: FromQuery[str | None] = None,
                             limit: Limit = 50) -> Page[Contract]:
        require_scopes(principal, "crm:read")
        return await connector(state).list_contracts(account_id=account_id, status=status, cursor=cursor,
                                                     limit=limit)

    @get("/contracts/{contract_id:str}", operation_id="getSignedContract")
    async def get_contract(self, state: State, principal: NamedDependency[Principal],
                           contract_id: FromPath[str]) -> Contract:
        require_scopes(principal, "crm:read")
        return await connector(state).get_contract(contract_id)

    @get("/rate-cards", operation_id="listRateCards")
    async def list_rate_cards(self, state: State, principal: NamedDependency[Principal],
                              cursor: FromQuery[str | None] = None,
                              limit: Limit = 50) -> Page[RateCard]:
        require_scopes(principal, "crm:read")
        return await connector(state).list_rate_cards(cursor=cursor, limit=limit)

    @get("/rate-cards/{rate_card_id:str}", operation_id="getRateCard")
    async def get_rate_card(self, state: State, principal: NamedDependency[Principal],
                            rate_card_id: FromPath[str]) -> RateCard:
        require_scopes(principal, "crm:read")
        return await connector(state).get_rate_card(rate_card_id)
