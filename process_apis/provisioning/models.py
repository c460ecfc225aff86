"""Payloads of the provisioning process API v1 (contracts/process/provisioning/v1.yaml)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from contracts.canonical import Instant, Opportunity

StepName = Literal["validate", "erp_customer", "erp_contract", "psa_project", "erp_project_dimension",
                   "staffing_demand", "crm_link"]
STEP_NAMES: tuple[StepName, ...] = ("validate", "erp_customer", "erp_contract", "psa_project",
                                    "erp_project_dimension", "staffing_demand", "crm_link")
StepState = Literal["pending", "running", "done", "failed", "compensated"]
ProvisioningState = Literal["pending", "running", "completed", "failed", "rejected", "compensated"]


class StartRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    opportunity_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Step(msgspec.Struct, kw_only=True):
    name: StepName
    state: StepState = "pending"
    attempts: int = 0
    started_at: Instant | None = None
    finished_at: Instant | None = None
    resource_ids: dict[str, Any] = {}
    error: dict[str, Any] | None = None


class Resources(msgspec.Struct, kw_only=True):
    customer_id: str | None = None
    contract_id: str | None = None
    project_id: str | None = None
    task_ids: list[str] = []
    project_dimension_id: str | None = None
    assignment_id: str | None = None


class Provisioning(msgspec.Struct, kw_only=True):
    """The status resource: each step's state, what was created, and the error that stopped it, if any."""

    id: str
    opportunity_id: str
    state: ProvisioningState
    steps: list[Step]
    resources: Resources
    error: dict[str, Any] | None
    exception_id: str | None = None
    runs: int
    created_at: Instant
    updated_at: Instant


class WonOpportunity(Opportunity, kw_only=True):
    """The CRM opportunity, with the project it was provisioned as (when the CRM knows one)."""

    provisioned_project_id: str | None = None


class FeedMark(msgspec.Struct, kw_only=True):
    """Where the tier is in one CRM change feed: the latest change handled and the records handled at it."""

    object: Literal["opportunity", "contract"]
    mark: Instant
    seen_at_mark: list[str]


class FeedState(msgspec.Struct, kw_only=True):
    marks: list[FeedMark]


class FeedPoll(msgspec.Struct, kw_only=True):
    """One turn of the feed, run on request: how many changed records it handled, and where the feed is now."""

    handled: int
    marks: list[FeedMark]
