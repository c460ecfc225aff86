"""Checks a live response against its contract: the test fails if the app drifts from what it promised."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from contracts import CONTRACTS_DIR


@cache
def contract(api: str, version: int = 1) -> dict[str, Any]:
    return yaml.safe_load((CONTRACTS_DIR / api / f"v{version}.yaml").read_text())  # type: ignore[no-any-return]


def assert_matches_contract(api: str, method: str, template: str, response: httpx.Response,
                            version: int = 1) -> None:
    """``template`` is the contract's path, e.g. ``/projects/{project_id}``."""
    document = contract(api, version)
    operation = document["paths"][template][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {template} answered {status}, not in the contract"
    declared = operation["responses"][status]
    if "$ref" in declared:
        declared = document["components"]["responses"][declared["$ref"].rsplit("/", 1)[-1]]
    content = declared.get("content")
    if not content:
        return
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in content, f"{media_type} is not a declared media type of {method} {template} {status}"
    schema = content[media_type]["schema"]
    registry: Registry = Registry().with_resource("urn:contract", Resource.from_contents(
        {**document, "$schema": "https://json-schema.org/draft/2020-12/schema"}))
    if "$ref" in schema:
        schema = {"$ref": "urn:contract" + schema["$ref"]}
    validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.absolute_path))
    assert not errors, "response drifts from the contract:\n" + "\n".join(
        f"  /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10])
