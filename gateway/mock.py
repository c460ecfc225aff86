"""``psgw contracts mock <layer>/<api>/v<N>``: a mock of one API version for app teams, built from its contract.

It answers every documented operation with the contract's own example, after checking the request exactly as
the gateway does: the same route matching (``CompiledContract``), the same ``validate`` policy, so a request the
gateway would refuse is refused here with the same problem (404/405/415/400 ``validation-error`` with one JSON
pointer per bad field). ``Prefer: code=<status>`` picks another documented response (``code=404`` for the
not-found example). Tokens are not checked: the mock stands in for the API, not for the gateway's sign-in.

Our own validator-backed server rather than Prism: Prism validates with its own JSON Schema reading and answers
its own error shape, so an app built against it would meet different refusals at the gateway.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import msgspec
import uvicorn

from contracts.toolchain.catalog import ContractLocation, locate_contract
from contracts.toolchain.example_requests import media_example
from contracts.toolchain.loader import ContractDocument, load_contract
from contracts.toolchain.operations import as_mapping, iter_operations, iter_responses
from contracts.toolchain.validation import CompiledContract
from policies.exchange import ApiTarget, Exchange
from policies.limits import read_body
from policies.validate import Validate, ValidateConfig
from runtime import correlation
from runtime.problems import PROBLEM_CONTENT_TYPE, ProblemError

MAX_BODY_BYTES = 1_048_576
_PREFER_CODE = re.compile(r"(?:^|[;,\s])code=(\d{3})(?:$|[;,\s])")


@dataclass(frozen=True, slots=True)
class MockResponse:
    status: int
    content_type: str | None
    body: bytes


def documented_responses(document: ContractDocument) -> dict[tuple[str, str], dict[int, MockResponse]]:
    """(METHOD, path template) -> status -> the response the contract documents (its example as the body)."""
    answers: dict[tuple[str, str], dict[int, MockResponse]] = {}
    for site in iter_operations(document):
        by_status: dict[int, MockResponse] = {}
        for response in iter_responses(document, site):
            if not response.status.isdigit():
                continue
            content = as_mapping(response.response.get("content"))
            if not content:
                by_status[int(response.status)] = MockResponse(int(response.status), None, b"")
                continue
            for content_type, media in content.items():
                found, example = media_example(document, as_mapping(media))
                if found:
                    by_status[int(response.status)] = MockResponse(
                        int(response.status), content_type, msgspec.json.encode(example)
                    )
                    break
        answers[(site.method.upper(), site.path)] = by_status
    return answers


class ContractMock:
    """An ASGI app serving one contract's examples at its server URL, validating requests like the gateway."""

    def __init__(self, path: Path) -> None:
        location = locate_contract(path.resolve())
        if location is None:
            raise ValueError(f"{path} is not laid out as contracts/<layer>/<api>/v<N>.yaml")
        self.location: ContractLocation = location
        document = load_contract(path)
        self.contract = CompiledContract.from_document(document)
        self.responses = documented_responses(document)
        self.target = ApiTarget(
            api_id=location.api_id,
            layer=location.layer,  # type: ignore[arg-type]
            version=location.major,
            base_path=location.base_path,
            upstream="mock",
            read_scopes=frozenset(),
            write_scopes=frozenset(),
        )
        self.validate = Validate(ValidateConfig(), self.contract)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        trace = correlation.from_headers(_header(scope, b"x-correlation-id"), None)
        ids = [(b"x-correlation-id", trace.correlation_id.encode())]
        path = scope["path"]
        try:
            answer = await self._answer(scope, receive, trace, path)
        except ProblemError as error:
            problem = error.to_problem(trace.correlation_id, path)
            extra = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
            answer = MockResponse(problem.status, PROBLEM_CONTENT_TYPE, problem.to_json())
            ids += extra
        headers = [*ids, (b"content-length", str(len(answer.body)).encode())]
        if answer.content_type is not None:
            headers.append((b"content-type", answer.content_type.encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _answer(self, scope: dict[str, Any], receive: Any, trace: Any, path: str) -> MockResponse:
        if not (path + "/").startswith(self.location.base_path + "/"):
            raise ProblemError(
                f"the mock serves {self.location.base_path} only", status=404, slug="no-such-api", reason="no_such_api"
            )
        exchange = Exchange(
            method=scope["method"],
            path=path,
            raw_query=scope.get("query_string", b""),
            headers=scope["headers"],
            client_addr="",
            trace=trace,
            api=self.target,
            receive=receive,
            started=time.perf_counter(),
            raw_path=scope.get("raw_path") or b"",
        )
        found = self.contract.match(exchange.method, path)
        if found is not None:
            exchange.operation, exchange.path_params = found
        exchange.body = await read_body(receive, MAX_BODY_BYTES, _header(scope, b"content-length"))
        exchange.body_read = True
        await self.validate.access(exchange)  # the gateway's own check: raises its problem
        operation = exchange.operation
        documented = self.responses[(operation.method, operation.path)]
        wanted = _PREFER_CODE.search(_header(scope, b"prefer") or "")
        if wanted is not None:
            status = int(wanted.group(1))
            if status not in documented:
                raise ProblemError(
                    f"{operation.method} {operation.path} documents no {status} example "
                    f"(it has {', '.join(map(str, sorted(documented)))})",
                    status=400,
                    slug="bad-request",
                )
            return documented[status]
        successes = sorted(status for status in documented if 200 <= status < 300)
        if not successes:
            raise ProblemError(
                f"{operation.method} {operation.path} documents no success response", status=501, slug="not-implemented"
            )
        return documented[successes[0]]


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


@click.command("mock")
@click.argument("api", metavar="LAYER/API/vN")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the mock listens on.")
@click.option("--port", default=4010, show_default=True, type=click.IntRange(1, 65535),
              help="Port the mock listens on.")
@click.pass_obj
def mock_command(root: Path, api: str, host: str, port: int) -> None:
    """Serve one API version's examples, validating requests as the gateway does (e.g. experience/mobile-time/v2)."""
    path = root / f"{api}.yaml"
    if locate_contract(path.resolve()) is None or not path.is_file():
        raise click.ClickException(f"no contract {api!r} under {root} (expected <layer>/<api>/v<N>)")
    app = ContractMock(path)
    click.echo(f"mock of {api} at http://{host}:{port}{app.location.base_path}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
