"""``psgw contracts ...``: lint, diff, validate and list contracts, guard published versions in CI, and run the
ecosystem's linters (Spectral, Redocly) over them.

Exit codes: 0 fine, 1 the check failed (lint errors, breaking changes, invalid documents), 2 the command
could not run (unreadable file, unknown git revision).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
import msgspec

from contracts import CONTRACTS_DIR
from contracts.toolchain.asyncapi import (
    EVENTS_ASYNCAPI,
    AsyncApiLoadError,
    check_asyncapi,
    emitted_event_types,
    load_asyncapi,
    message_names,
)
from contracts.toolchain.catalog import discover_contracts
from contracts.toolchain.clients import DEFAULT_OUTPUT_DIR, ClientGenerationError, generate_clients
from contracts.toolchain.diff import (
    ChangeSeverity,
    build_changelog,
    diff_documents,
    is_breaking,
    render_markdown,
    render_text,
)
from contracts.toolchain.ecosystem.lint import ecosystem_findings
from contracts.toolchain.ecosystem.node_tools import DEFAULT_CACHE_DIR, NodeToolsError, ensure_node_tools
from contracts.toolchain.git_source import GitSourceError, load_contract_at_revision, parse_git_reference
from contracts.toolchain.lint import expand_contract_paths, has_errors, lint_file
from contracts.toolchain.loader import ContractDocument, ContractLoadError, load_contract
from contracts.toolchain.published import check_published
from contracts.toolchain.spec_validity import check_openapi


class CommandFailure(click.ClickException):
    """The command could not do its job (as opposed to finding problems): exit code 2."""

    exit_code = 2


def _display(path: Path) -> str:
    """Paths relative to the working directory when they are under it: short, clickable output."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _targets(paths: Sequence[Path], root: Path) -> list[Path]:
    return expand_contract_paths(list(paths) or [root])


def _load_source(spec: str) -> ContractDocument:
    """A file path, or ``git:<revision>:<path>`` for the file as it was at that revision."""
    try:
        reference = parse_git_reference(spec)
        if reference is not None:
            return load_contract_at_revision(reference)
        path = Path(spec)
        if not path.is_file():
            raise CommandFailure(f"no such contract file: {spec}")
        return load_contract(path, _display(path))
    except (GitSourceError, ContractLoadError) as error:
        raise CommandFailure(str(error)) from error


def echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Rows under a header row, in columns as wide as their widest cell."""
    table = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _echo_json(value: object) -> None:
    click.echo(msgspec.json.encode(value).decode())


@click.group(name="contracts")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=CONTRACTS_DIR,
    show_default="the contracts package",
    help="Directory laid out as <layer>/<api>/v<N>.yaml.",
)
@click.pass_context
def contracts(context: click.Context, root: Path) -> None:
    """Lint, diff, validate and list the API contracts."""
    context.obj = root


@contracts.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Text for people, JSON for tools.")
@click.pass_obj
def lint_command(root: Path, paths: tuple[Path, ...], output_format: str) -> None:
    """Check contracts against the house ruleset (all contracts under --root by default)."""
    files = _targets(paths, root)
    findings = [finding for path in files for finding in lint_file(path, _display(path))]
    if output_format == "json":
        _echo_json(findings)
    else:
        for finding in findings:
            click.echo(finding.format_text())
        counts = {severity: sum(1 for f in findings if f.severity == severity) for severity in ("error", "warning")}
        click.echo(f"{counts['error']} error(s), {counts['warning']} warning(s) in {len(files)} file(s)", err=True)
    if has_errors(findings):
        raise SystemExit(1)


@contracts.command("ecosystem-lint")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CACHE_DIR,
    show_default=".cache/node-tools",
    help="Where the pinned npm tools are installed (once).",
)
@click.pass_obj
def ecosystem_lint_command(root: Path, paths: tuple[Path, ...], cache_dir: Path) -> None:
    """Spectral (spectral:oas) and Redocly (recommended) over contracts; exit 1 on any error or warning."""
    files = _targets(paths, root)
    try:
        findings = ecosystem_findings(ensure_node_tools(cache_dir), files)
    except NodeToolsError as error:
        raise CommandFailure(str(error)) from error
    for finding in findings:
        click.echo(finding.format_text())
    click.echo(f"{len(findings)} finding(s) from Spectral and Redocly in {len(files)} file(s)", err=True)
    if findings:
        raise SystemExit(1)


@contracts.command("clients")
@click.option(
    "--output",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUTPUT_DIR,
    show_default="build/clients",
    help="Where python/<package> and typescript/<layer>/<api>/v<N>.ts go.",
)
@click.option("--api", "apis", multiple=True, metavar="LAYER/API/vN", help="Only this contract (repeatable).")
@click.option("--python/--no-python", default=True, show_default=True, help="Python packages (openapi-python-client).")
@click.option(
    "--typescript/--no-typescript",
    default=True,
    show_default=True,
    help="TypeScript types (openapi-typescript, from npm into .cache/node-tools).",
)
@click.pass_obj
def clients_command(root: Path, output_dir: Path, apis: tuple[str, ...], python: bool, typescript: bool) -> None:
    """Generate a typed Python client package and TypeScript types for every contract (or --api ones)."""
    try:
        generated = generate_clients(root, output_dir, apis=apis, python=python, typescript=typescript)
    except (ClientGenerationError, NodeToolsError) as error:
        raise CommandFailure(str(error)) from error
    for client in generated:
        made = [str(p) for p in (client.python_package, client.typescript_types) if p is not None]
        click.echo(f"{client.api}: {', '.join(made)}")


@contracts.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Text: one line per change; markdown: the changelog; JSON for tools.",
)
def diff_command(old: str, new: str, output_format: str) -> None:
    """Changes from OLD to NEW (files, or git:<revision>:<path>); exit 1 when any is breaking."""
    old_document, new_document = _load_source(old), _load_source(new)
    changes = diff_documents(old_document, new_document)
    if output_format == "json":
        _echo_json(
            {
                "old": old_document.source,
                "new": new_document.source,
                "breaking": is_breaking(changes),
                "changes": changes,
            }
        )
    elif output_format == "markdown":
        click.echo(render_markdown(build_changelog(old_document, new_document, changes)), nl=False)
    else:
        click.echo(render_text(changes), nl=False)
        counts = {severity: sum(1 for c in changes if c.severity is severity) for severity in ChangeSeverity}
        summary = ", ".join(f"{count} {severity.value}" for severity, count in counts.items())
        click.echo(f"{old_document.source} -> {new_document.source}: {summary}", err=True)
    if is_breaking(changes):
        raise SystemExit(1)


@contracts.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.pass_obj
def validate_command(root: Path, paths: tuple[Path, ...]) -> None:
    """Check that contracts are valid OpenAPI 3.1 documents (all under --root by default)."""
    invalid = False
    for path in _targets(paths, root):
        source = _display(path)
        try:
            document = load_contract(path, source)
        except ContractLoadError as error:
            click.echo(f"{error.source}:{error.line}:{error.column}: {error.message}")
            invalid = True
            continue
        problems = check_openapi(document)
        for problem in problems:
            position = document.position_of(problem.pointer)
            click.echo(f"{source}:{position.line}:{position.column}: {problem.message}")
        if not problems:
            click.echo(f"{source}: valid OpenAPI 3.1")
        invalid = invalid or bool(problems)
    if invalid:
        raise SystemExit(1)


@contracts.command("asyncapi")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=EVENTS_ASYNCAPI)
@click.option(
    "--emitters",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    multiple=True,
    help="A package whose record_event(s) calls must each use a documented event type.",
)
def asyncapi_command(path: Path, emitters: tuple[Path, ...]) -> None:
    """Check an AsyncAPI 3.0 event contract (the process events by default), and that emitted types are in it."""
    source = _display(path)
    try:
        document = load_asyncapi(path)
    except AsyncApiLoadError as error:
        raise CommandFailure(str(error)) from error
    problems = [f"{source}: {p.pointer or '/'}: {p.message}" for p in check_asyncapi(document)]
    documented = message_names(document)
    for package in emitters:
        for event_type, sites in sorted(emitted_event_types(package).items()):
            if event_type not in documented:
                problems.extend(
                    f"{site}: event type {event_type!r} is emitted but not documented in {source}" for site in sites
                )
    for problem in problems:
        click.echo(problem)
    if problems:
        raise SystemExit(1)
    click.echo(f"{source}: valid AsyncAPI 3.0, {len(documented)} event types")


@contracts.command("list")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Text for people, JSON for tools.")
@click.pass_obj
def list_command(root: Path, output_format: str) -> None:
    """The catalog: every API version found under --root."""
    try:
        versions = discover_contracts(root)
    except ContractLoadError as error:
        raise CommandFailure(str(error)) from error
    if output_format == "json":
        _echo_json(versions)
        return
    echo_table(
        ("API", "MAJOR", "VERSION", "LIFECYCLE", "SUNSET", "BASE PATH"),
        [(v.api_id, f"v{v.major}", v.contract_version, v.lifecycle, v.sunset or "-", v.base_path) for v in versions],
    )


@contracts.command("check-published")
@click.option("--base", required=True, help="The git revision whose contracts are published (e.g. origin/main).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Text for people, JSON for tools.")
@click.pass_obj
def check_published_command(root: Path, base: str, output_format: str) -> None:
    """Fail when a contract published at --base (OpenAPI or AsyncAPI) changed in a breaking way or was deleted
    before retirement."""
    try:
        results = check_published(base, root)
    except (GitSourceError, ValueError) as error:
        raise CommandFailure(str(error)) from error
    if output_format == "json":
        _echo_json(results)
    else:
        for result in results:
            marker = "FAIL" if result.failed else "ok"
            click.echo(f"{marker} {result.path}: {result.detail}")
            for change in result.changes:
                if result.failed and change.severity is ChangeSeverity.BREAKING:
                    click.echo(f"    {change.format_text()}")
    if any(result.failed for result in results):
        raise SystemExit(1)
