"""psgw as a person at a terminal meets it: a version, help for every option, header rows, readable failures
with the documented exit codes (0 done, 1 a check found something, 2 could not run), never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
from click.testing import CliRunner

from gateway.cli import main
from gateway.launcher import REPO_ROOT
from tests.support.stack import DEMO_CONSULTANT, RunningStack

ADMIN = {"PSGW_ADMIN_CLIENT_ID": "security-admin", "PSGW_ADMIN_CLIENT_SECRET": "demo-secret-security-admin"}


def psgw(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command, as a shell runs it."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "psgw"), *args],
        cwd=cwd,
        env={"PATH": "", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once the socket is closed


def every_command(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("psgw 0.1")


def test_every_option_of_every_command_says_what_it_is_for() -> None:
    silent = [
        f"psgw {' '.join(path)} {param.opts[0]}"
        for path, command in every_command(main)
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert not silent


def test_help_documents_the_exit_codes() -> None:
    text = CliRunner().invoke(main, ["--help"]).output
    assert "Exit codes:" in text
    assert "1  a check found something (policy plan: differences" in text
    assert "2  could not run" in text


def test_a_gateway_that_is_down_is_a_readable_message_and_exit_2() -> None:
    url = closed_port_url()
    for command in (["clients", "list"], ["policy", "plan"], ["issuer", "rotate-key"]):
        result = psgw(*command, "--gateway", url, env=ADMIN)
        assert result.returncode == 2, (command, result.stderr)
        assert f"cannot reach the gateway at {url}" in result.stderr and "psgw up" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


def test_clients_list_has_a_header_row(stack: RunningStack) -> None:
    result = psgw("clients", "list", "--gateway", stack.url, env=ADMIN)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["CLIENT", "LAYER", "SLA", "TIER", "STATUS", "SOURCE", "SCOPES"]
    mobile = next(row for row in rows if row.startswith("mobile-app "))
    assert mobile.index(" app ") + 1 == header.index("LAYER")  # values sit under their heading


def test_token_refuses_to_run_without_the_stacks_data_dir(tmp_path: Path) -> None:
    result = psgw("token", "mobile-app", "--subject", DEMO_CONSULTANT, cwd=tmp_path)
    assert result.returncode == 2
    assert "no signing key" in result.stderr and "psgw up" in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no stray key left behind


def test_token_from_the_stacks_data_dir_is_accepted(stack: RunningStack, tmp_path: Path) -> None:
    result = psgw(
        "token",
        "mobile-app",
        "--subject",
        DEMO_CONSULTANT,
        "--data-dir",
        str(stack.stack.data_dir),
        cwd=tmp_path,
        env={"PSGW_ISSUER_URL": stack.url},
    )
    assert result.returncode == 0, result.stderr
    answer = httpx.get(
        f"{stack.url}/experience/mobile-time/v2/me/assignments",
        headers={"Authorization": f"Bearer {result.stdout.strip()}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
