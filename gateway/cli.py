"""psgw: run the stack, mint tokens, and (for security teams) inspect and change gateway policy.

Exit codes, the same for every command (and the contract tools'): 0 done, 1 a check found something
(``policy plan``: differences; ``contracts lint``/``diff``: errors, breaking changes), 2 the command could
not run (bad usage, gateway unreachable, credentials or change refused, no stack data dir).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx

from contracts.toolchain.cli import CommandFailure, contracts, echo_table
from gateway.launcher import REPO_ROOT, Ports, Stack
from gateway.mock import mock_command
from gateway.signin.people import demo_passwords

DEMO_CONSULTANT = "wrk_e1001"
EXIT_CODES = """\b
Exit codes:
  0  done (policy plan: in sync)
  1  a check found something (policy plan: differences; contracts lint/diff: errors, breaking changes)
  2  could not run (bad usage, gateway unreachable, credentials or change refused, no stack data dir)"""


def _mint(config_file: Path, data_dir: Path, client_id: str, subject: str | None, scopes: tuple[str, ...],
          ttl: int | None, issuer_url: str | None = None) -> str:
    # Imported here: the config model pulls in the contract toolchain, which the admin commands never need.
    from gateway import config as gateway_config
    from gateway.issuer import Issuer

    env = dict(os.environ)
    if issuer_url:
        env["PSGW_ISSUER_URL"] = issuer_url
    config = gateway_config.load(config_file, env)
    client = next((c for c in config.clients if c.id == client_id), None)
    if client is None:
        raise CommandFailure(f"no client {client_id!r} in {config_file}; known: "
                             + ", ".join(c.id for c in config.clients))
    if subject and not client.user_tokens:
        raise CommandFailure(f"client {client_id!r} may not carry user tokens (user_tokens: false)")
    not_granted = sorted(set(scopes) - set(client.scopes))
    if not_granted:
        raise CommandFailure(f"scope {not_granted[0]!r} is not granted to {client_id}")
    key_file = Path(config.issuer.signing_key_file)
    key_file = key_file if key_file.is_absolute() else data_dir / key_file
    if not key_file.is_file():
        # Minting with a fresh key would print a token the running gateway refuses.
        raise CommandFailure(f"no signing key at {key_file}: start the stack first (psgw up), or pass the --data-dir "
                             "of the running stack (psgw up's default is .data in the directory it was started from)")
    token, _ = Issuer(config.issuer, data_dir).mint(client, list(scopes) or None, subject=subject,
                                                     ttl_seconds=ttl)
    return token


@click.group(epilog=EXIT_CODES)
@click.version_option(package_name="psgateway", prog_name="psgw", message="%(prog)s %(version)s")
def main() -> None:
    """psgateway: an API-led integration gateway for professional-services firms."""


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".data"), show_default=True,
              help="SQLite files, signing key and logs live here.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True),
              default=REPO_ROOT / "gateway.yaml", show_default=True,
              help="The gateway's declared state: APIs, clients, policies.")
@click.option("--port", type=int, default=8080, show_default=True, help="The gateway's port.")
@click.option("--backend", type=click.Choice(["sandbox", "tryton"]), default="sandbox", show_default=True,
              help="The systems of record: the sandbox vendors, or a Tryton ERP (needs the [tryton] extra).")
@click.option("--erp-backend", type=click.Choice(["sandbox", "netsuite", "dynamics365", "s4hana"]), default=None,
              help="The ERP's API with --backend sandbox: the sandbox ERP's own dialect, NetSuite REST web services, "
                   "Dynamics 365 Finance OData or SAP S/4HANA Cloud OData v2 (the ERP sandbox imitates that vendor "
                   "and the system tier uses its connector). Default: PSGW_ERP_BACKEND, else sandbox.")
@click.option("--psa-backend", type=click.Choice(["sandbox", "certinia"]), default=None,
              help="The PSA's API with --backend sandbox: the sandbox PSA's own dialect, or Certinia PSA's objects on "
                   "Salesforce REST and SOQL (the PSA sandbox imitates Certinia and the system tier uses its Certinia "
                   "connector). Default: PSGW_PSA_BACKEND, else sandbox.")
@click.option("--try-it-demo/--no-try-it-demo", default=False, show_default=True,
              help="Turn on the catalog's try-it console in demo mode: it hands tokens of the app clients marked "
                   "try_it to anyone, for any person (a banner says so). Off unless asked: a stranger who reaches "
                   "the port could act as any demo person.")
def up(data_dir: Path, config_file: Path, port: int, backend: str, erp_backend: str | None,
       psa_backend: str | None, try_it_demo: bool) -> None:
    """Start sandboxes (or Tryton), the three tiers and the gateway as separate processes; Ctrl-C stops them."""
    data_dir = data_dir.resolve()
    if backend == "tryton" and psa_backend not in (None, "sandbox"):
        raise click.UsageError("--psa-backend chooses among the sandbox vendors; with --backend tryton the PSA is "
                               "Tryton")
    if backend == "tryton" and erp_backend not in (None, "sandbox"):
        raise click.UsageError("--erp-backend chooses among the sandbox vendors; with --backend tryton the ERP is "
                               "Tryton")
    if backend == "tryton" and not (data_dir / "tryton" / "credentials.json").exists():
        click.echo("first run on Tryton: creating its database and demo data (about a minute)...")
        created = subprocess.run([sys.executable, "-m", "system_apis.tryton", "init", "--data-dir", str(data_dir)],
                                 cwd=REPO_ROOT, check=False)
        if created.returncode != 0:
            raise CommandFailure("the Tryton database could not be created (see above)")
    demo_env = {"PSGW_TRY_IT_ENABLED": "true", "PSGW_TRY_IT_MODE": "demo"} if try_it_demo else {}
    if erp_backend is not None and backend == "sandbox":
        demo_env["PSGW_ERP_BACKEND"] = erp_backend
    if psa_backend is not None and backend == "sandbox":
        demo_env["PSGW_PSA_BACKEND"] = psa_backend
    stack = Stack(data_dir=data_dir, ports=Ports(gateway=port), config_file=config_file.resolve(), backend=backend,
                  extra_env=demo_env)

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    click.echo(f"starting {', '.join(s.name for s in stack.specs())} (logs in {data_dir / 'logs'})")
    gateway_log = data_dir / "logs" / "gateway.log"
    log_start = gateway_log.stat().st_size if gateway_log.exists() else 0
    failed = False
    try:
        stack.start()
        stack.wait_ready(timeout=90)
        # The gateway's loud start-up warnings (demo secrets in use) go to its log: repeat them here.
        for warning in _loud_warnings(gateway_log, log_start):
            click.secho(warning, err=True, fg="red", bold=True)
        token = _mint(config_file, data_dir, "mobile-app", DEMO_CONSULTANT, (), 8 * 3600, stack.gateway_url)
        click.echo(f"""
psgateway is up.
  gateway       {stack.gateway_url}
  API catalog   {stack.gateway_url}/catalog
  dashboards    {stack.url("experience")}/dashboards/
  finance ops   {stack.url("experience")}/finance-ops/
  token issuer  {stack.gateway_url}/.well-known/openid-configuration
  try-it        {"DEMO MODE: the catalog hands out demo tokens to anyone (--no-try-it-demo turns it off)"
                 if try_it_demo else "off (--try-it-demo turns on the catalog's demo tokens for anyone)"}
{_demo_people(data_dir)}
  demo user     {DEMO_CONSULTANT} (a consultant) via client mobile-app; token valid 8 hours:

export PSGW_TOKEN={token}

curl -s -H "Authorization: Bearer $PSGW_TOKEN" {stack.gateway_url}/experience/mobile-time/v1/me/assignments

Press Ctrl-C to stop everything.""")
        while True:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    click.echo(f"{name} exited with {process.returncode}; see {data_dir / 'logs' / name}.log",
                               err=True)
                    raise SystemExit(2)  # the finally clause below still stops the rest
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("\nstopping...")
    except (RuntimeError, TimeoutError) as exc:
        click.echo(f"start-up failed: {exc}", err=True)
        failed = True
    finally:
        # A second Ctrl-C (or SIGTERM) must not cut the clean-up short and orphan processes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        click.echo("stopped.")
    if failed:
        sys.exit(2)


def _loud_warnings(gateway_log: Path, offset: int) -> list[str]:
    """The gateway's ``!! ...`` start-up warnings written to its log since ``offset`` (this start's)."""
    try:
        with gateway_log.open("rb") as log_file:
            log_file.seek(offset)
            written = log_file.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in written.splitlines() if line.startswith("!! ")]


def _demo_people(data_dir: Path) -> str:
    """The pages' sign-in for the embedded demo's people, with the passwords the gateway generated for them."""
    people = demo_passwords(data_dir / "issuer")
    if not people:
        return "  sign in       no demo people (issuer.sign_in.people is empty)"
    listed = ", ".join(f"{username} / {password}" for username, password in people)
    return f"  sign in       the pages sign people in; demo people (username / password): {listed}"


@main.command()
@click.argument("client_id")
@click.option("--subject", help="Mint a user token for this person (e.g. wrk_e1001) instead of the client.")
@click.option("--scope", "scopes", multiple=True, help="Narrow the token to these scopes (repeatable).")
@click.option("--ttl", type=int, help="Lifetime in seconds (default: the issuer's).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".data"), show_default=True,
              help="The data dir of the running stack (psgw up --data-dir); its signing key signs the token.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True),
              default=REPO_ROOT / "gateway.yaml", show_default=True, help="The gateway.yaml the stack runs with.")
def token(client_id: str, subject: str | None, scopes: tuple[str, ...], ttl: int | None, data_dir: Path,
          config_file: Path) -> None:
    """Print an access token for CLIENT_ID, signed with the running stack's key (refuses without its data dir)."""
    click.echo(_mint(config_file, data_dir.resolve(), client_id, subject, scopes, ttl))



# --- security team: clients and policy on a running gateway (through the admin API) ----------------------

class AdminClient:
    """The admin API as the CLI uses it: a token from --token or the client_credentials of an admin client."""

    def __init__(self, gateway_url: str, token: str | None, client_id: str | None, client_secret: str | None) -> None:
        self.base = gateway_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=30.0)
        if not token:
            if not (client_id and client_secret):
                raise CommandFailure("give --token (PSGW_ADMIN_TOKEN) or --client-id and --client-secret "
                                     "(PSGW_ADMIN_CLIENT_ID, PSGW_ADMIN_CLIENT_SECRET) of an admin client")
            response = self._send("POST", "/oauth2/token", data={"grant_type": "client_credentials"},
                                  auth=(client_id, client_secret))
            if response.status_code != 200:
                raise CommandFailure(f"token request refused: {_problem_text(response)}")
            token = str(response.json()["access_token"])
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CommandFailure(f"cannot reach the gateway at {self.base} ({type(exc).__name__}): is it running? "
                                 "Start it with psgw up, or point --gateway / PSGW_GATEWAY_URL at it") from exc

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, "/admin/v1" + path, **kwargs)
        if response.status_code >= 400:
            raise CommandFailure(_problem_text(response))
        return response


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}: {response.text[:200]}"
    detail = body.get("detail") or body.get("title") or ""
    errors = "".join(f"\n  {e.get('location', '')} {e.get('pointer', '')}: {e.get('detail', '')}"
                     for e in body.get("errors") or [])
    return f"{response.status_code} {detail}{errors}"


def admin_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--gateway", "gateway_url", envvar="PSGW_GATEWAY_URL", default="http://127.0.0.1:8080",
                     show_default=True, help="The gateway to administer."),
        click.option("--token", envvar="PSGW_ADMIN_TOKEN", help="A bearer token with admin:read/admin:write."),
        click.option("--client-id", envvar="PSGW_ADMIN_CLIENT_ID", help="An admin client (layer admin)."),
        click.option("--client-secret", envvar="PSGW_ADMIN_CLIENT_SECRET", help="Its secret."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _admin(gateway_url: str, token: str | None, client_id: str | None, client_secret: str | None) -> AdminClient:
    return AdminClient(gateway_url, token, client_id, client_secret)


@main.group()
def clients() -> None:
    """List, create, rotate and revoke client credentials (secrets are shown once, only hashes are kept)."""


@clients.command("list")
@admin_options
def clients_list(gateway_url: str, token: str | None, client_id: str | None, client_secret: str | None) -> None:
    """Every client of the live state, with its layer, tier, scopes and status."""
    items = _admin(gateway_url, token, client_id, client_secret).call("GET", "/clients").json()["items"]
    echo_table(("CLIENT", "LAYER", "SLA TIER", "STATUS", "SOURCE", "SCOPES"),
               [(item["id"], item["layer"], item["sla_tier"], item["status"], item["source"], " ".join(item["scopes"]))
                for item in items])


@clients.command("create")
@click.argument("new_client_id")
@click.option("--name", default="", help="What the client is, for people reading the audit and the catalog.")
@click.option("--layer", type=click.Choice(["app", "experience", "process", "system", "admin"]), default="app",
              show_default=True, help="Who it is under the layer rule (apps call experience APIs).")
@click.option("--scope", "scopes", multiple=True, help="A scope to grant (repeatable).")
@click.option("--sla-tier", default="bronze", show_default=True,
              help="Its rate limits and quotas (gateway.yaml sla_tiers).")
@click.option("--allowed-layer", "allowed_layers", multiple=True,
              type=click.Choice(["system", "process", "experience"]),
              help="Narrow (or, for an app, name) the layers it may call (repeatable).")
@click.option("--user-tokens/--no-user-tokens", default=False, show_default=True,
              help="May it carry tokens on behalf of a person.")
@click.option("--issuer", "issuers", multiple=True,
              help="A trusted issuer whose tokens may name this client (repeatable; 'builtin': the gateway's own).")
@admin_options
def clients_create(new_client_id: str, name: str, layer: str, scopes: tuple[str, ...], sla_tier: str,
                   allowed_layers: tuple[str, ...], user_tokens: bool, issuers: tuple[str, ...], gateway_url: str,
                   token: str | None, client_id: str | None, client_secret: str | None) -> None:
    """Register a client; prints its secret once."""
    body = {"id": new_client_id, "name": name, "layer": layer, "scopes": list(scopes), "sla_tier": sla_tier,
            "allowed_layers": list(allowed_layers), "user_tokens": user_tokens, "issuers": list(issuers)}
    created = _admin(gateway_url, token, client_id, client_secret).call("POST", "/clients", json=body).json()
    click.echo(f"client {new_client_id} created; its secret (shown once, store it now):")
    click.echo(created["credentials"]["client_secret"])


@clients.command("rotate")
@click.argument("target_client_id")
@click.option("--api-key", is_flag=True, help="Issue an additional API key instead of a new secret.")
@admin_options
def clients_rotate(target_client_id: str, api_key: bool, gateway_url: str, token: str | None,
                   client_id: str | None, client_secret: str | None) -> None:
    """Replace a client's secret (tokens issued with the old one are refused from now on); prints it once."""
    admin = _admin(gateway_url, token, client_id, client_secret)
    if api_key:
        issued = admin.call("POST", f"/clients/{target_client_id}/api-keys").json()
        click.echo(f"API key {issued['api_key_id']} for {target_client_id} (shown once):")
        click.echo(issued["api_key"])
        return
    issued = admin.call("POST", f"/clients/{target_client_id}/secret").json()
    click.echo(f"new secret for {target_client_id} (shown once; the old one no longer works):")
    click.echo(issued["client_secret"])


@clients.command("revoke")
@click.argument("target_client_id")
@admin_options
def clients_revoke(target_client_id: str, gateway_url: str, token: str | None, client_id: str | None,
                   client_secret: str | None) -> None:
    """Revoke a client: its secret, API keys and every token it holds are refused from now on."""
    _admin(gateway_url, token, client_id, client_secret).call("POST", f"/clients/{target_client_id}/revoke")
    click.echo(f"client {target_client_id} revoked")


@clients.command("restore")
@click.argument("target_client_id")
@admin_options
def clients_restore(target_client_id: str, gateway_url: str, token: str | None, client_id: str | None,
                    client_secret: str | None) -> None:
    """Let a revoked client in again; tokens issued before its revocation stay refused."""
    _admin(gateway_url, token, client_id, client_secret).call("POST", f"/clients/{target_client_id}/restore")
    click.echo(f"client {target_client_id} restored (tokens issued before its revocation stay refused)")


@main.group()
def policy() -> None:
    """Compare, apply and export the gateway's declared state (decK-style)."""


def _print_changes(changes: list[dict[str, Any]]) -> None:
    symbols = {"add": "+", "remove": "-", "change": "~"}
    for change in changes:
        note = "  (credential; kept by apply)" if change.get("kept_by_apply") else ""
        click.echo(f"{symbols.get(change['action'], '?')} {change['kind']} {change['id']}{note}")
        for field, values in change.get("fields", {}).items():
            click.echo(f"    {field}: live {values.get('live')!r} -> file {values.get('file')!r}")


@policy.command("plan")
@admin_options
def policy_plan(gateway_url: str, token: str | None, client_id: str | None, client_secret: str | None) -> None:
    """What differs between the gateway's gateway.yaml and its live state (what `apply` would change).

    Exits 0 when in sync, 1 when there are differences, 2 when it could not run (handy in CI)."""
    result = _admin(gateway_url, token, client_id, client_secret).call("GET", "/policy/plan").json()
    if result["in_sync"]:
        click.echo("live state matches gateway.yaml")
        return
    _print_changes(result["changes"])
    sys.exit(1)


@policy.command("apply")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@admin_options
def policy_apply(yes: bool, gateway_url: str, token: str | None, client_id: str | None,
                 client_secret: str | None) -> None:
    """Re-read gateway.yaml and make the live state match it (credentials are kept)."""
    admin = _admin(gateway_url, token, client_id, client_secret)
    planned = admin.call("GET", "/policy/plan").json()
    pending = [c for c in planned["changes"] if not c.get("kept_by_apply")]
    if pending:
        _print_changes(pending)
        if not yes:
            click.confirm("apply these changes?", abort=True)
    result = admin.call("POST", "/policy/apply").json()
    click.echo(f"applied {len(result['changes'])} change(s)")


@policy.command("export")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
@click.option("--with-secrets", is_flag=True, help="Include secret and API-key hashes (needs admin:write).")
@admin_options
def policy_export(output: Path | None, with_secrets: bool, gateway_url: str, token: str | None,
                  client_id: str | None, client_secret: str | None) -> None:
    """The live state as a gateway.yaml document (without credential hashes unless --with-secrets)."""
    params = {"include_secrets": "true"} if with_secrets else {}
    text = _admin(gateway_url, token, client_id, client_secret).call("GET", "/policy/export", params=params).text
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}")


@policy.command("reload")
@admin_options
def policy_reload(gateway_url: str, token: str | None, client_id: str | None, client_secret: str | None) -> None:
    """Hot-reload gateway.yaml and refetch every issuer's JWKS (a bad file is refused; the old state keeps serving)."""
    result = _admin(gateway_url, token, client_id, client_secret).call("POST", "/reload").json()
    click.echo(f"reloaded; state version {result['version']}")


@main.group()
def issuer() -> None:
    """The built-in token issuer."""


@issuer.command("rotate-key")
@admin_options
def issuer_rotate_key(gateway_url: str, token: str | None, client_id: str | None, client_secret: str | None) -> None:
    """Sign with a new key; the old one stays in the JWKS until the tokens it signed have expired."""
    result = _admin(gateway_url, token, client_id, client_secret).call("POST", "/issuer/rotate-key").json()
    click.echo(f"signing with {result['kid']}; {result['previous_kid']} stays published until "
               f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(result['previous_published_until']))}")



contracts.add_command(mock_command)  # psgw contracts mock <layer>/<api>/v<N>: needs the gateway's validate policy
main.add_command(contracts)  # psgw contracts lint | diff | check-published | validate | list

if __name__ == "__main__":
    main()
