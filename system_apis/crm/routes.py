"""CRM system API v1 routes. Contract: contracts/system/crm/v1.yaml."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import Controller, Response, get, patch
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, RequestBody

from contracts.canonical import Contract, ContractStatus, Customer, Opportunity, OpportunityStage, Page, RateCard
from runtime.idempotency import respond
from runtime.params import IdempotencyKey, Limit
from runtime.problems import BadRequest, FieldError
from runtime.tokens import Principal
from system_apis.crm.connectors import CrmConnector
from system_apis.crm.models import ChangedObject, OpportunityPatch, RecordChange


def connector(state: State) -> CrmConnector:
    return state.crm


class CrmV1(Controller):
    path = "/system/crm/v1"

    @get("/accounts", operation_id="listAccounts")
    async def list_accounts(self, state: State, cursor: FromQuery[str | None] = None,
                            limit: Limit = 50) -> Page[Customer]:
        return await connector(state).list_accounts(cursor=cursor, limit=limit)

    @get("/accounts/{account_id:str}", operation_id="getAccount")
    async def get_account(self, state: State, account_id: FromPath[str]) -> Customer:
        return await connector(state).get_account(account_id)

    @get("/opportunities", operation_id="listOpportunities")
    async def list_opportunities(self, state: State, stage: FromQuery[OpportunityStage | None] = None,
                                 cursor: FromQuery[str | None] = None, limit: Limit = 50) -> Page[Opportunity]:
        return await connector(state).list_opportunities(stage=stage, cursor=cursor, limit=limit)

    @get("/opportunities/{opportunity_id:str}", operation_id="getOpportunity")
    async def get_opportunity(self, state: State, opportunity_id: FromPath[str]) -> Opportunity:
        return await connector(state).get_opportunity(opportunity_id)

    @patch("/opportunities/{opportunity_id:str}", operation_id="updateOpportunity")
    async def update_opportunity(self, state: State, principal: NamedDependency[Principal],
                                 opportunity_id: FromPath[str],
                                 data: RequestBody[OpportunityPatch],
                                 idempotency_key: IdempotencyKey = None) -> Response[bytes]:
        data.check()

        async def action() -> tuple[int, Opportunity]:
            return 200, await connector(state).update_opportunity(opportunity_id, data.changes())
        return await respond(state.idempotency, client_id=principal.client_id, operation="updateOpportunity",
                             key=idempotency_key, path_params={"opportunity_id": opportunity_id}, body=data,
                             action=action)

    @get("/contracts", operation_id="listSignedContracts")
    async def list_contracts(self, state: State, account_id: FromQuery[str | None] = None,
                             status: FromQuery[ContractStatus | None] = None, cursor: FromQuery[str | None] = None,
                             limit: Limit = 50) -> Page[Contract]:
        return await connector(state).list_contracts(account_id=account_id, status=status, cursor=cursor,
                                                     limit=limit)

    @get("/contracts/{contract_id:str}", operation_id="getSignedContract")
    async def get_contract(self, state: State, contract_id: FromPath[str]) -> Contract:
        return await connector(state).get_contract(contract_id)

    @get("/rate-cards", operation_id="listRateCards")
    async def list_rate_cards(self, state: State, cursor: FromQuery[str | None] = None,
                              limit: Limit = 50) -> Page[RateCard]:
        return await connector(state).list_rate_cards(cursor=cursor, limit=limit)

    @get("/rate-cards/{rate_card_id:str}", operation_id="getRateCard")
    async def get_rate_card(self, state: State, rate_card_id: FromPath[str]) -> RateCard:
        return await connector(state).get_rate_card(rate_card_id)

    @get("/changes", operation_id="listRecordChanges")
    async def list_changes(self, state: State,
                           object_: Annotated[ChangedObject, QueryParameter(name="object")],
                           since: FromQuery[dt.datetime], cursor: FromQuery[str | None] = None,
                           limit: Limit = 50) -> Page[RecordChange]:
        if since.tzinfo is None:
            raise BadRequest("since needs an offset (Z for UTC)", slug="validation-error",
                             errors=[FieldError(pointer="/since", detail="a date-time with an offset",
                                                location="query")])
        return await connector(state).changes(object_=object_, since=since, cursor=cursor, limit=limit)
