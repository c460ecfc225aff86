"""The HR port: what the HR system API needs from any HCM system, in canonical terms (read-only)."""

from __future__ import annotations

from typing import Protocol

from contracts.canonical import BusinessUnit, CostCenter, Page, Role, Worker, WorkerStatus


class HrConnector(Protocol):
    async def list_workers(self, *, business_unit_id: str | None, status: WorkerStatus | None, role: str | None,
                           cursor: str | None, limit: int) -> Page[Worker]: ...

    async def get_worker(self, worker_id: str) -> Worker: ...

    async def list_roles(self, *, cursor: str | None, limit: int) -> Page[Role]: ...

    async def list_cost_centers(self, *, cursor: str | None, limit: int) -> Page[CostCenter]: ...

    async def list_business_units(self, *, cursor: str | None, limit: int) -> Page[BusinessUnit]: ...

    async def aclose(self) -> None: ...
