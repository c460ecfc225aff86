"""Every problem ``type`` psgateway can emit, read from the code and the contracts themselves (not from the
catalog's list), so a new slug anywhere shows up here before it reaches a client as a dead link."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from contracts import CONTRACTS_DIR
from gateway.launcher import REPO_ROOT
from runtime.problems import PROBLEM_TYPE_BASE

CODE_DIRS = ("gateway", "runtime", "policies", "process_apis", "experience_apis", "system_apis", "sandbox")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_OAUTH2_ERROR = re.compile(r"^[a-z]+(?:_[a-z]+)*$")
# gateway/control.py answers token endpoint errors as problems typed oauth2-<error>: its own (oauth_error calls,
# found below) and whatever RFC 6749 section 5.2 error the token server behind it names.
OAUTH2_TOKEN_ERRORS = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
)


def emitted_problem_slugs() -> dict[str, str]:
    """slug -> where it was found (file:line), for every slug in code and contracts."""
    found: dict[str, str] = {}
    for directory in CODE_DIRS:
        for path in sorted((REPO_ROOT / directory).rglob("*.py")):
            for slug, line in _slugs_in_code(path):
                found.setdefault(slug, f"{path.relative_to(REPO_ROOT)}:{line}")
    for path in sorted(CONTRACTS_DIR.rglob("*.yaml")):
        for slug in _slugs_in_data(yaml.safe_load(path.read_text())):
            found.setdefault(slug, str(path.relative_to(REPO_ROOT)))
    for error in OAUTH2_TOKEN_ERRORS:
        found.setdefault(oauth2_slug(error), "gateway/control.py (RFC 6749 token errors)")
    return found


def _slugs_in_code(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        # slug="x" in a call, slug = "x" as a class attribute or variable, and {"...": "x"} mapped into slug
        if isinstance(node, ast.keyword) and node.arg == "slug":
            yield from _strings(node.value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id if isinstance(t, ast.Name) else getattr(t, "attr", "") for t in targets}
            if names & {"slug", "default_slug"} and node.value is not None:
                yield from _strings(node.value)
            if "_DEFAULT_SLUGS" in names and isinstance(node.value, ast.Dict):
                for value in node.value.values:
                    if isinstance(value, ast.Tuple) and value.elts:
                        yield from _strings(value.elts[0])
        elif isinstance(node, ast.Constant) and str(node.value).startswith(PROBLEM_TYPE_BASE):
            slug = node.value[len(PROBLEM_TYPE_BASE) :]
            if _SLUG.match(slug):
                yield slug, node.lineno
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "problem_type" and node.args:
            yield from _strings(node.args[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "oauth_error" and len(node.args) > 1:
            for error, line in _strings(node.args[1], pattern=_OAUTH2_ERROR):
                yield oauth2_slug(error), line


def oauth2_slug(error: str) -> str:
    return "oauth2-" + error.replace("_", "-")


def _strings(node: ast.AST | None, pattern: re.Pattern[str] = _SLUG) -> Iterator[tuple[str, int]]:
    """String constants an expression can evaluate to: a literal, either arm of a conditional, a dict's values,
    a dict lookup with a default."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.match(node.value):
        yield node.value, node.lineno
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body, pattern)
        yield from _strings(node.orelse, pattern)
    elif isinstance(node, ast.BoolOp | ast.Dict):
        for value in node.values:
            yield from _strings(value, pattern)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        yield from _strings(node.func.value, pattern)
        for argument in node.args[1:]:
            yield from _strings(argument, pattern)


def _slugs_in_data(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _slugs_in_data(value)
    elif isinstance(node, list):
        for value in node:
            yield from _slugs_in_data(value)
    elif isinstance(node, str):
        for match in re.finditer(re.escape(PROBLEM_TYPE_BASE) + r"([a-z0-9]+(?:-[a-z0-9]+)*)", node):
            yield match.group(1)
