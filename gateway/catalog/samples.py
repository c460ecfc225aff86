"""Ready-to-run calls of an operation, in curl and in Python (httpx), built from the contract's own examples:
path and required query/header parameters from their examples, the body from the request body example."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from contracts.toolchain.loader import ContractDocument
from contracts.toolchain.operations import ParameterSite

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
TOKEN_VARIABLE = "PSGW_TOKEN"  # noqa: S105 (a variable name, not a secret): what README's tour exports and `psgw up` prints


class Samples(msgspec.Struct, frozen=True):
    path: str  # base path + template, parameters filled in from their examples
    curl: str
    python: str


def parameter_example(document: ContractDocument, parameter: ParameterSite) -> str | None:
    """A value for ``parameter``: its example, its schema's example, default or first enum value."""
    if "example" in parameter.parameter:
        return _text(parameter.parameter["example"])
    examples = parameter.parameter.get("examples")
    if isinstance(examples, Mapping) and examples:
        first, _ = document.try_dereference(next(iter(examples.values())), "")
        if isinstance(first, Mapping) and "value" in first:
            return _text(first["value"])
    schema, _ = document.try_dereference(parameter.parameter.get("schema"), "")
    schema = schema if isinstance(schema, Mapping) else {}
    for key in ("example", "default"):
        if key in schema:
            return _text(schema[key])
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return _text(schema["examples"][0])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _text(schema["enum"][0])
    return None


def build_samples(
    gateway_url: str,
    method: str,
    base_path: str,
    template: str,
    parameters: list[ParameterSite],
    document: ContractDocument,
    body_example: Any | None,
) -> Samples:
    values = {p.name: parameter_example(document, p) for p in parameters}
    path = base_path + _PLACEHOLDER.sub(
        lambda match: quote(values.get(match.group(1)) or "{" + match.group(1) + "}", safe=""), template
    )
    query = {p.name: values[p.name] for p in parameters if p.location == "query" and p.required and values[p.name]}
    headers = {
        p.name: values[p.name] or "..."
        for p in parameters
        if p.location == "header" and p.required and p.name.lower() != "authorization"
    }
    url = gateway_url.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")
    return Samples(
        path=path, curl=_curl(method, url, headers, body_example), python=_python(method, url, headers, body_example)
    )


def _curl(method: str, url: str, headers: dict[str, str], body: Any | None) -> str:
    lines = [f"curl -s -X {method} {shlex.quote(url)}", f'-H "Authorization: Bearer ${TOKEN_VARIABLE}"']
    lines += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items()]
    if body is not None:
        lines += ["-H 'Content-Type: application/json'", f"-d {shlex.quote(json.dumps(body, ensure_ascii=False))}"]
    return " \\\n  ".join(lines)


def _python(method: str, url: str, headers: dict[str, str], body: Any | None) -> str:
    header_items = [f'"Authorization": f"Bearer {{os.environ[{TOKEN_VARIABLE!r}]}}"']
    header_items += [f"{json.dumps(name)}: {json.dumps(value)}" for name, value in headers.items()]
    arguments = [json.dumps(url), "headers={" + ", ".join(header_items) + "}"]
    if body is not None:
        arguments.append("json=" + python_literal(body, 1))
    function = method.lower() if body is None or method in ("POST", "PUT", "PATCH") else "request"
    if function == "request":
        arguments.insert(0, json.dumps(method))
    call = f"httpx.{function}(\n    " + ",\n    ".join(arguments) + ",\n)"
    return (
        "import os\n\nimport httpx\n\n"
        f"response = {call}\n"
        'print(response.status_code, response.headers.get("content-type"))\n'
        "print(response.text)"
    )


def python_literal(value: Any, level: int = 0) -> str:
    """``value`` (JSON data) as Python source, indented by four spaces a level, as a person would write it."""
    pad, inner = "    " * level, "    " * (level + 1)
    if isinstance(value, dict) and value:
        items = [
            f"{inner}{json.dumps(key, ensure_ascii=False)}: {python_literal(item, level + 1)}"
            for key, item in value.items()
        ]
        return "{\n" + ",\n".join(items) + f",\n{pad}}}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(inner + python_literal(item, level + 1) for item in value) + f",\n{pad}]"
    if value is None or isinstance(value, bool):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
