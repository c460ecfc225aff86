"""The PSA port: what the PSA system API needs from any PSA vendor. Adapters live beside it."""

from __future__ import annotations

from typing import Protocol

from contracts.canonical import Assignment, AssignmentStatus, Page, Project


class PsaConnector(Protocol):
    async def list_assignments(
        self,
        *,
        worker_id: str | None,
        project_id: str | None,
        status: AssignmentStatus | None,
        cursor: str | None,
        limit: int,
    ) -> Page[Assignment]: ...

    async def get_project(self, project_id: str) -> Project: ...

    async def aclose(self) -> None: ...
