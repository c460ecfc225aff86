"""``python -m system_apis.tryton init|serve|env --data-dir .data``: a local Tryton for the system tier.

- ``init`` installs the ``[tryton]`` extra when it is missing, creates the database (SQLite by default, or
  ``--database-uri postgresql://...``) with the psgateway module and its dependencies, the company and chart of
  accounts, fiscal years, the service user with its application key, and the demo firm;
- ``serve --port N`` runs the Tryton server on 127.0.0.1:N until stopped;
- ``env --port N`` prints the settings the system tier needs to use that server for all four systems.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from system_apis.tryton.server import (
    TrytonHome,
    TrytonSetupError,
    create_database,
    install_extra,
    load_demo,
    server_argv,
    tryton_installed,
)

SYSTEMS = ("psa", "erp", "hr", "crm")


def system_tier_env(home: TrytonHome, port: int) -> dict[str, str]:
    """PSGW_* settings that point every system API of the system tier at the Tryton server."""
    url = home.url(port)
    env: dict[str, str] = {}
    for system in SYSTEMS:
        env[f"PSGW_{system.upper()}_BACKEND"] = "tryton"
        env[f"PSGW_{system.upper()}_URL"] = url
    return env


@click.group()
def main() -> None:
    """A local Tryton (open-source ERP) as the system of record behind the system APIs."""


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".data"), show_default=True)
@click.option("--email", default="admin@northwind.example", show_default=True, help="the Tryton admin's email")
@click.option("--database-uri", default="", help="postgresql://user@host:port/ (default: SQLite in the data dir)")
def init(data_dir: Path, email: str, database_uri: str) -> None:
    """Create the Tryton database with the demo firm (replaces an existing one in the data dir)."""
    if not tryton_installed():
        click.echo("installing the [tryton] extra ...")
        install_extra()
    home = TrytonHome.of(data_dir, database_uri)
    try:
        click.echo(f"creating the Tryton database {home.database!r} in {home.root} ...")
        create_database(home, email)
        click.echo("loading the demo firm ...")
        load_demo(home)
    except TrytonSetupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"done: credentials in {home.credentials_file}")


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".data"), show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--database-uri", default="")
def serve(data_dir: Path, port: int, database_uri: str) -> None:
    """Run the Tryton server on 127.0.0.1:PORT (JSON-RPC at /psgateway/)."""
    home = TrytonHome.of(data_dir, database_uri)
    if not home.credentials_file.exists():
        raise click.ClickException(f"no Tryton database in {home.root}: run `python -m system_apis.tryton init`")
    argv = server_argv(home, port)
    env = home.env()
    sys.stdout.flush()
    os.execve(argv[0], argv, env)  # noqa: S606 - the server replaces this process; no shell involved


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".data"), show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
def env(data_dir: Path, port: int) -> None:
    """Print the system tier's settings for the Tryton server (shell export lines)."""
    for name, value in system_tier_env(TrytonHome.of(data_dir), port).items():
        click.echo(f"export {name}='{value}'")


if __name__ == "__main__":
    main()
