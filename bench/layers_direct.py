"""The one-process baseline of bench/layers.py: the mobile user's calls answered by calling the vendor directly.

What a monolith would do for ``GET /experience/mobile-time/v2/me/assignments`` and ``POST .../me/time-entries``:
verify the bearer token (the same verifier and app factory the tiers use), read or write the sandbox PSA through
the same connector the system tier uses (same mapping, same outbound client), keep projects as briefly as the
process tier does (same cache, same TTL), shape the same payload. No gateway, no process or system tier: the
difference between this and the three tiers is the layer tax.

    PSGW_PORT=... PSGW_PSA_URL=http://127.0.0.1:8201 PSGW_GATEWAY_URL=http://127.0.0.1:8080 \
        .venv/bin/python -m bench.layers_direct
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter, RequestBody

from contracts.canonical import Project
from experience_apis.etags import respond_with_etag
from experience_apis.mobile_time import shapes
from experience_apis.mobile_time.models import MyAssignment, MyAssignments, NewEntryV2
from experience_apis.people import worker_of
from process_apis.systems import REFERENCE_TTL_SECONDS, ReferenceCache
from runtime.app import create_tier_app
from runtime.guards import require_scopes
from runtime.serve import serve
from runtime.settings import TierSettings, load_settings
from runtime.tokens import Principal
from system_apis.psa.connectors.sandbox import SandboxPsa
from system_apis.psa.models import TimeEntryCreate
from system_apis.vendor_auth import VendorCredentials

ROUTES = "/experience/mobile-time/v2"


async def projects_by_id(state: State, project_ids: set[str]) -> dict[str, Project]:
    """Projects kept as briefly as the process tier keeps them, so both paths answer with the same freshness."""
    cache: ReferenceCache[Project] = state.projects
    found = {pid: p for pid in project_ids if (p := cache.get(pid)) is not None}
    missing = sorted(project_ids - found.keys())
    generation = cache.generation
    for project in await asyncio.gather(*(state.psa.get_project(pid) for pid in missing)):
        cache.put(project.id, project, generation)
        found[project.id] = project
    return found


@get(f"{ROUTES}/me/assignments")
async def my_assignments(request: Request[Any, Any, Any], state: State, principal: NamedDependency[Principal],
                         cursor: FromQuery[str | None] = None,
                         limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50) -> Response[bytes]:
    require_scopes(principal, "time:read")
    psa: SandboxPsa = state.psa
    page = await psa.list_assignments(worker_id=worker_of(principal), project_id=None, status=None, cursor=cursor,
                                      limit=limit)
    projects = await projects_by_id(state, {a.project_id for a in page.items})
    payload = MyAssignments(
        items=[
            MyAssignment(
                assignment_id=a.id, project_id=a.project_id, project_name=projects[a.project_id].name, role=a.role,
                planned_hours_per_week=a.planned_hours_per_week, start_date=a.start_date, end_date=a.end_date,
                can_log_time=a.status == "confirmed" and projects[a.project_id].status == "active",
            )
            for a in page.items
        ],
        next_cursor=page.next_cursor,
    )
    return respond_with_etag(request, payload)


@post(f"{ROUTES}/me/time-entries")
async def create_entry(state: State, principal: NamedDependency[Principal],
                       data: RequestBody[NewEntryV2]) -> Response[dict[str, Any]]:
    require_scopes(principal, "time:write")
    worker_id = worker_of(principal)
    fields = shapes.new_entry_v2(data)
    client_ref = f"{worker_id}:{data.client_ref}" if data.client_ref else None
    entry, created = await state.psa.create_time_entry(msgspec.convert(
        {**fields, "worker_id": worker_id, "client_ref": client_ref}, TimeEntryCreate, strict=False))
    return Response({"time_entry_id": entry.id, "state": entry.state}, status_code=201 if created else 200)


def create_app(settings: TierSettings, psa_url: str) -> Litestar:
    async def start(state: State) -> None:
        credentials = VendorCredentials(client_id=os.environ.get("PSGW_PSA_CLIENT_ID", ""),
                                        client_secret=os.environ.get("PSGW_PSA_CLIENT_SECRET", ""))
        state.psa = SandboxPsa(psa_url, settings.outbound_timeout_seconds, credentials=credentials)
        state.projects = ReferenceCache(REFERENCE_TTL_SECONDS)

    async def stop(state: State) -> None:
        await state.psa.aclose()

    return create_tier_app(service="direct-baseline", settings=settings, route_handlers=[my_assignments, create_entry],
                           on_startup=[start], on_shutdown=[stop], scopes_from_contracts=False)


def main() -> None:
    settings = load_settings(TierSettings)
    serve(create_app(settings, os.environ["PSGW_PSA_URL"]), host=settings.host, port=settings.port,
          service="direct-baseline", log_level="WARNING")


if __name__ == "__main__":
    main()
