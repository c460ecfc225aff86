"""psgw: run the stack, mint tokens, and (for security teams) inspect and change gateway policy."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click

from gateway import config as gateway_config
from gateway.issuer import Issuer
from gateway.launcher import REPO_ROOT, Ports, Stack

DEMO_CONSULTANT = "wrk_e1001"


def _mint(config_file: Path, data_dir: Path, client_id: str, subject: str | None, scopes: tuple[str, ...],
          ttl: int | None, issuer_url: str | None = None) -> str:
    env = dict(os.environ)
    if issuer_url:
        env["PSGW_ISSUER_URL"] = issuer_url
    config = gateway_config.load(config_file, env)
    client = next((c for c in config.clients if c.id == client_id), None)
    if client is None:
        raise click.ClickException(f"no client {client_id!r} in {config_file}; known: "
                                   + ", ".join(c.id for c in config.clients))
    if subject and not client.user_tokens:
        raise click.ClickException(f"client {client_id!r} may not carry user tokens (user_tokens: false)")
    not_granted = sorted(set(scopes) - set(client.scopes))
    if not_granted:
        raise click.ClickException(f"scope {not_granted[0]!r} is not granted to {client_id}")
    token, _ = Issuer(config.issuer, data_dir).mint(client, list(scopes) or None, subject=subject,
                                                     ttl_seconds=ttl)
    return token


@click.group()
def main() -> None:
    """psgateway: an API-led integration gateway for professional-services firms."""


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".data"), show_default=True,
              help="SQLite files, signing key and logs live here.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True),
              default=REPO_ROOT / "gateway.yaml", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True, help="The gateway's port.")
def up(data_dir: Path, config_file: Path, port: int) -> None:
    """Start sandboxes, the three tiers and the gateway as separate processes; Ctrl-C stops them all."""
    data_dir = data_dir.resolve()
    stack = Stack(data_dir=data_dir, ports=Ports(gateway=port), config_file=config_file.resolve())
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    click.echo(f"starting {', '.join(s.name for s in stack.specs())} (logs in {data_dir / 'logs'})")
    try:
        stack.start()
        stack.wait_ready(timeout=90)
        token = _mint(config_file, data_dir, "mobile-app", DEMO_CONSULTANT, (), 8 * 3600, stack.gateway_url)
        click.echo(f"""
psgateway is up.
  gateway       {stack.gateway_url}
  token issuer  {stack.gateway_url}/.well-known/openid-configuration
  demo user     {DEMO_CONSULTANT} (a consultant) via client mobile-app; token valid 8 hours:

export PSGW_TOKEN={token}

curl -s -H "Authorization: Bearer $PSGW_TOKEN" {stack.gateway_url}/experience/mobile-time/v1/me/assignments

Press Ctrl-C to stop everything.""")
        while True:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    click.echo(f"{name} exited with {process.returncode}; see {data_dir / 'logs' / name}.log",
                               err=True)
                    raise SystemExit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("\nstopping...")
    except (RuntimeError, TimeoutError) as exc:
        click.echo(f"start-up failed: {exc}", err=True)
        stack.stop()
        sys.exit(1)
    finally:
        stack.stop()
    click.echo("stopped.")


@main.command()
@click.argument("client_id")
@click.option("--subject", help="Mint a user token for this person (e.g. wrk_e1001) instead of the client.")
@click.option("--scope", "scopes", multiple=True, help="Narrow the token to these scopes (repeatable).")
@click.option("--ttl", type=int, help="Lifetime in seconds (default: the issuer's).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".data"), show_default=True)
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True),
              default=REPO_ROOT / "gateway.yaml", show_default=True)
def token(client_id: str, subject: str | None, scopes: tuple[str, ...], ttl: int | None, data_dir: Path,
          config_file: Path) -> None:
    """Print an access token for CLIENT_ID, signed with the local gateway's key."""
    click.echo(_mint(config_file, data_dir.resolve(), client_id, subject, scopes, ttl))


if __name__ == "__main__":
    main()
