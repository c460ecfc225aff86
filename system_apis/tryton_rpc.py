"""An async JSON-RPC client for a Tryton server, shared by the Tryton adapters of every system API.

The adapters are built as ``Adapter(url, timeout_seconds)`` like any backend, so the URL carries all there is
to know: ``http://<login>:<password>@<host>:<port>/<database>``. The client logs in with ``common.db.login``
(Tryton's JSON-RPC answers only to sessions: application keys open its REST and user-application routes, not
``/<db>/rpc/``), sends ``Authorization: Session ...`` and logs in again once when the session expires.

Every failure becomes the runtime's problem, naming ``tryton``: unreachable -> 503, no answer in time -> 504,
a server fault -> 502, a refusal by Tryton (``UserError``: validation, access, a state that forbids the
change) -> 422 with the canonical JSON pointer of the refused field when the adapter knows it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import msgspec

from runtime import cursors
from runtime.problems import FieldError, ProblemError, Unprocessable

VENDOR = "tryton"
# Tryton names a refused field by its label in quotes: 'A value is required for field "Date" in ...'.
_FIELD_IN_MESSAGE = re.compile(r'field "([^"]+)"')


class TrytonProblem(ProblemError):
    """A failure talking to Tryton (outage, timeout, fault), answered as the runtime's downstream problem."""


def encode(value: Any) -> Any:
    """Python values in Tryton's JSON dialect (``{"__class__": "date", ...}`` for dates and decimals)."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        return {"__class__": "datetime", "year": value.year, "month": value.month, "day": value.day,
                "hour": value.hour, "minute": value.minute, "second": value.second,
                "microsecond": value.microsecond}
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """Tryton's JSON dialect back to Python (datetimes are naive UTC in Tryton; they come back tz-aware)."""
    if isinstance(value, dict):
        kind = value.get("__class__")
        if kind == "Decimal":
            return Decimal(value["decimal"])
        if kind == "date":
            return dt.date(value["year"], value["month"], value["day"])
        if kind == "datetime":
            return dt.datetime(value["year"], value["month"], value["day"], value["hour"], value["minute"],
                               value["second"], value.get("microsecond", 0), tzinfo=dt.UTC)
        if kind == "timedelta":
            return dt.timedelta(seconds=value["seconds"])
        if kind == "bytes":
            return base64.b64decode(value["base64"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def refusal(message: str, description: str, field_map: Mapping[str, str]) -> Unprocessable:
    """Tryton's refusal as a 422, with the canonical pointer of the field when the label is one we map."""
    found = _FIELD_IN_MESSAGE.search(message)
    pointer = field_map.get(found[1], "") if found else ""
    detail = " ".join(part for part in (message, description) if part)
    return Unprocessable(f"{VENDOR} refused the request: {detail}", slug="validation-failed",
                         errors=[FieldError(pointer=pointer, detail=detail)], downstream=VENDOR)


class Connection(msgspec.Struct, frozen=True):
    base_url: str
    database: str
    login: str
    password: str

    @classmethod
    def parse(cls, url: str) -> Connection:
        parts = urlsplit(url)
        database = parts.path.strip("/")
        if parts.scheme not in ("http", "https") or not parts.hostname or not database or not parts.username:
            raise ValueError("a Tryton URL reads http://<login>:<password>@<host>:<port>/<database>")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        return cls(base_url=f"{parts.scheme}://{netloc}", database=unquote(database),
                   login=unquote(parts.username), password=unquote(parts.password or ""))


class TrytonRpc:
    """One pooled HTTP client and one Tryton session; safe to share between concurrent requests."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self.connection = Connection.parse(url)
        self._http = httpx.AsyncClient(base_url=self.connection.base_url, timeout=timeout_seconds,
                                       limits=httpx.Limits(max_connections=32, max_keepalive_connections=16))
        self._session: str | None = None
        self._context: dict[str, Any] = {}
        self._login_lock = asyncio.Lock()
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def context(self) -> dict[str, Any]:
        """The service user's preferences (company, language): every model call runs in them."""
        return dict(self._context)

    async def _post(self, method: str, params: Sequence[Any], session: str | None) -> httpx.Response:
        headers = {"Authorization": f"Session {session}"} if session else {}
        body = msgspec.json.encode({"id": next(self._ids), "method": method, "params": encode(list(params))})
        try:
            return await self._http.post(f"/{self.connection.database}/rpc/", content=body, headers={
                **headers, "Content-Type": "application/json"})
        except httpx.TimeoutException as exc:
            raise TrytonProblem(f"{VENDOR} did not answer in time", status=504, slug="downstream-timeout",
                                downstream=VENDOR) from exc
        except httpx.HTTPError as exc:
            raise TrytonProblem(f"{VENDOR} is unavailable ({type(exc).__name__})", status=503,
                                slug="downstream-unavailable", downstream=VENDOR) from exc

    async def _login(self, stale: str | None) -> str:
        async with self._login_lock:
            if self._session is not None and self._session != stale:
                return self._session  # another request logged in meanwhile
            c = self.connection
            response = await self._post("common.db.login", [c.login, {"password": c.password}, "en"], None)
            if response.status_code in (401, 403):
                raise TrytonProblem(f"{VENDOR} refused the service login of {c.login!r}", status=502,
                                    slug="downstream-error", downstream=VENDOR)
            result = self._result(response, "common.db.login", {})
            if not isinstance(result, list) or len(result) < 2:
                raise TrytonProblem(f"{VENDOR} refused the service login", status=502, slug="downstream-error",
                                    downstream=VENDOR)
            user_id, token = result[0], result[1]
            session = base64.b64encode(f"{c.login}:{user_id}:{token}".encode()).decode()
            preferences = self._result(await self._post("model.res.user.get_preferences", [True, {}], session),
                                       "get_preferences", {})
            self._context = {k: v for k, v in (preferences or {}).items()
                             if k in ("company", "companies", "language", "employee", "employees")}
            self._session = session
            return session

    def _result(self, response: httpx.Response, method: str, field_map: Mapping[str, str]) -> Any:
        if response.status_code == 429:
            raise TrytonProblem(f"{VENDOR} is rate limiting us", status=503, slug="downstream-unavailable",
                                downstream=VENDOR, headers={k: v for k, v in response.headers.items()
                                                            if k.lower() == "retry-after"})
        if response.status_code >= 400:
            raise TrytonProblem(f"{VENDOR} failed: {method} answered {response.status_code}", status=502,
                                slug="downstream-error", downstream=VENDOR)
        try:
            body = decode(msgspec.json.decode(response.content))
        except msgspec.DecodeError as exc:
            raise TrytonProblem(f"{VENDOR} failed: {method} answered no JSON", status=502,
                                slug="downstream-error", downstream=VENDOR) from exc
        error = body.get("error") if isinstance(body, dict) else None
        if error is None:
            return body.get("result") if isinstance(body, dict) else None
        kind = error[0] if isinstance(error, list) and error else None
        args = error[1] if isinstance(error, list) and len(error) > 1 else []
        if kind in ("UserError", "UserWarning"):
            parts = [str(a) for a in (args if isinstance(args, list) else [args]) if isinstance(a, str)]
            if kind == "UserWarning":
                parts = parts[1:]  # the warning's name comes first
            raise refusal(parts[0] if parts else "", " ".join(parts[1:2]), field_map)
        if kind == "ConcurrencyException":
            raise ProblemError(f"{VENDOR} refused a concurrent change; retry", status=409, slug="conflict",
                               downstream=VENDOR)
        raise TrytonProblem(f"{VENDOR} failed: {method}: {str(error)[:300]}", status=502, slug="downstream-error",
                            downstream=VENDOR)

    async def call(self, method: str, *params: Any, field_map: Mapping[str, str] | None = None) -> Any:
        """One JSON-RPC call; ``model.*`` methods get the service user's context appended."""
        session = self._session or await self._login(None)
        for attempt in range(2):
            args = [*params, self._context] if method.startswith("model.") else list(params)
            response = await self._post(method, args, session)
            if response.status_code in (401, 403) and attempt == 0:
                session = await self._login(session)  # the session expired: log in once more
                continue
            return self._result(response, method, field_map or {})
        raise TrytonProblem(f"{VENDOR} refused the service login", status=502, slug="downstream-error",
                            downstream=VENDOR)

    # the ModelStorage methods every adapter uses

    async def search_read(self, model: str, domain: list[Any], fields: Sequence[str], *, offset: int = 0,
                          limit: int | None = None, order: Sequence[tuple[str, str]] | None = None
                          ) -> list[dict[str, Any]]:
        rows = await self.call(f"model.{model}.search_read", domain, offset, limit,
                               [list(o) for o in order] if order else None, list(fields))
        return list(rows or [])

    async def read(self, model: str, ids: Sequence[int], fields: Sequence[str]) -> list[dict[str, Any]]:
        return list(await self.call(f"model.{model}.read", list(ids), list(fields)) or [])

    async def search_count(self, model: str, domain: list[Any]) -> int:
        return int(await self.call(f"model.{model}.search_count", domain))

    async def create(self, model: str, values: Sequence[Mapping[str, Any]], *,
                     field_map: Mapping[str, str] | None = None) -> list[int]:
        return list(await self.call(f"model.{model}.create", [dict(v) for v in values], field_map=field_map))

    async def write(self, model: str, ids: Sequence[int], values: Mapping[str, Any], *,
                    field_map: Mapping[str, str] | None = None) -> None:
        await self.call(f"model.{model}.write", list(ids), dict(values), field_map=field_map)

    async def delete(self, model: str, ids: Sequence[int]) -> None:
        await self.call(f"model.{model}.delete", list(ids))


class TrytonRecords:
    """What every Tryton adapter shares: the client, cursor pages over ``search_read``, look-ups by business key."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self.rpc = TrytonRpc(url, timeout_seconds)

    async def aclose(self) -> None:
        await self.rpc.aclose()

    async def page(self, model: str, domain: list[Any], fields: Sequence[str], cursor: str | None, limit: int,
                   order: Sequence[tuple[str, str]] = (("id", "ASC"),)) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a search; the cursor is bound to the search so it cannot be replayed on another."""
        bound = cursors.binding({"model": model, "domain": repr(domain)})
        state = cursors.decode(cursor, bound)
        offset = cursors.number(state, "offset", 0)
        size = cursors.number(state, "size", limit, minimum=1)  # the first page fixes the page size
        rows = await self.rpc.search_read(model, domain, fields, offset=offset, limit=size + 1, order=order)
        next_cursor = cursors.encode({"offset": offset + size, "size": size}, bound) if len(rows) > size else None
        return rows[:size], next_cursor

    async def first(self, model: str, domain: list[Any], fields: Sequence[str]) -> dict[str, Any] | None:
        rows = await self.rpc.search_read(model, domain, fields, limit=1, order=[("id", "ASC")])
        return rows[0] if rows else None

    async def id_of(self, model: str, domain: list[Any]) -> int | None:
        row = await self.first(model, domain, ["id"])
        return int(row["id"]) if row else None


def nested(row: Mapping[str, Any] | None, path: str) -> Any:
    """A value read through a dotted field (``party.code``): Tryton answers ``{"party.": {"code": ...}}``."""
    parts = path.split(".")
    current: Any = row
    for part in parts[:-1]:
        if not isinstance(current, Mapping):
            return None
        current = current.get(part + ".")
    return current.get(parts[-1]) if isinstance(current, Mapping) else None
