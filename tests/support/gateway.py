"""Extra real processes for the policy tests: gateways with their own gateway.yaml routed to the session stack's
tiers, small servers (a flaky upstream, an OIDC issuer), and what a test needs to talk to them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway import config as gateway_config
from gateway.issuer import Issuer
from gateway.launcher import REPO_ROOT
from tests.support.stack import RunningStack

GATEWAY_TESTS = Path(__file__).resolve().parent.parent / "gateway"
"""Where the gateway tests keep their scripts (flaky upstream, OIDC issuer, OIDC provider)."""
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_config() -> dict[str, Any]:
    """The repo's gateway.yaml as data, to be adjusted by a test and written to its own file."""
    return yaml.safe_load((REPO_ROOT / "gateway.yaml").read_text())


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not healthy:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


class GatewayProcess:
    """One more real gateway (``python -m gateway``) in front of the session stack's tiers.

    It shares the stack's token issuer (URL and signing key files), since the tiers behind it verify tokens
    against that issuer's JWKS; its SQL state (audit log, admin changes) is its own, under ``data_dir``.
    """

    def __init__(self, stack: RunningStack, data_dir: Path, config: dict[str, Any], *,
                 env: dict[str, str] | None = None, own_issuer: bool = False, name: str = "gateway") -> None:
        self.stack = stack
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Its own issuer (key under data_dir, its own URL) only in front of upstreams that do not verify tokens.
        self.issuer_url = self.url if own_issuer else stack.url
        if not own_issuer:
            config = {**config, "issuer": {**config.get("issuer", {}), "signing_key_file": str(
                stack.stack.data_dir / "issuer" / "signing-key.pem")}}
        self.config_file = data_dir / f"{name}-{self.port}.yaml"
        self.log = data_dir / f"{name}-{self.port}.log"
        self.write_config(config)
        ports = stack.stack.ports
        self.env = {
            **os.environ, "PYTHONUNBUFFERED": "1",
            "PSGW_CONFIG_FILE": str(self.config_file), "PSGW_DATA_DIR": str(data_dir),
            "PSGW_GATEWAY_PORT": str(self.port), "PSGW_PORT": str(self.port), "PSGW_ISSUER_URL": self.issuer_url,
            "PSGW_SYSTEM_URL": f"http://127.0.0.1:{ports.system}",
            "PSGW_PROCESS_URL": f"http://127.0.0.1:{ports.process}",
            "PSGW_EXPERIENCE_URL": f"http://127.0.0.1:{ports.experience}",
            "PSGW_PAGES_URL": f"http://127.0.0.1:{ports.experience}",  # where the pages' sign-in comes back to
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self, config: dict[str, Any]) -> None:
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.replace(self.config_file)

    def start(self) -> GatewayProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "gateway"], env=self.env, cwd=REPO_ROOT,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_healthy(self.url, self.process, self.log)
        return self

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def issuer(self) -> Issuer:
        env = {**os.environ, "PSGW_ISSUER_URL": self.issuer_url}
        return Issuer(gateway_config.load(self.config_file, env).issuer, self.data_dir)

    def token(self, client_id: str, *, subject: str | None = None, scopes: list[str] | None = None) -> str:
        env = {**os.environ, "PSGW_ISSUER_URL": self.issuer_url}
        config = gateway_config.load(self.config_file, env)
        client = next(c for c in config.clients if c.id == client_id)
        return self.issuer().mint(client, scopes, subject=subject)[0]

    def client(self, client_id: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": "Bearer " + self.token(client_id, **kwargs)} if client_id else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)


class ServerProcess:
    def __init__(self, script: Path, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"{script.stem}-{self.port}.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, str(script), str(self.port), *args], cwd=REPO_ROOT,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_healthy(self.url, self.process, self.log)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin_headers(gateway: GatewayProcess | RunningStack) -> dict[str, str]:
    return {"Authorization": "Bearer " + gateway.token("security-admin")}
