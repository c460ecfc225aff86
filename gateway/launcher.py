"""The local stack as separate processes: sandboxes, the three tiers and the gateway.

One description of the topology, used by ``psgw up`` and by the test suite, so what the tests start is what a
user starts. Each process gets its own port, logs to ``<data_dir>/logs/<name>.log`` and is stopped with
SIGTERM (then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from joserfc.jwk import RSAKey

REPO_ROOT = Path(__file__).resolve().parent.parent
SANDBOX_SYSTEMS = ("psa", "erp", "hr", "crm")
# Sandboxes started whatever the backend: the regional tax engines and the e-invoicing access point (issue 19).
SERVICE_SANDBOXES = ("tax", "einvoice")
TIERS = ("system", "process", "experience")

# The embedded demo's tier secrets (see gateway.yaml); production sets its own through the environment.
DEMO_TIER_SECRETS = {"process": "demo-secret-process-tier", "experience": "demo-secret-experience-tier"}


def tryton_system_env(data_dir: Path, port: int) -> dict[str, str]:
    """The system tier's settings for Tryton, as `python -m system_apis.tryton env` prints them.

    Asked of the system tier's own command rather than imported: the gateway package does not import tiers.
    """
    printed = subprocess.run(
        [sys.executable, "-m", "system_apis.tryton", "env", "--data-dir", str(data_dir), "--port", str(port)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    env = {}
    for line in printed.splitlines():
        name, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            env[name.strip()] = shlex.split(value)[0] if value.strip() else ""
    return env


def vendor_credentials(data_dir: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Each sandbox vendor's integration credentials, generated in the data dir at first start and kept there:
    (env per sandbox, env for the system tier), so both sides hold the same ones and gateway.yaml holds none.

    HR, ERP and PSA: an OAuth 2.0 client id and secret. CRM (Salesforce JWT bearer flow): a consumer key, an
    integration user and an RSA key pair, the private half for the connector, the public half for the sandbox.
    """
    folder = data_dir / "vendor-credentials"
    stored = folder / "credentials.json"
    private_key, public_key = folder / "crm-jwt-private.pem", folder / "crm-jwt-public.pem"
    if not stored.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = RSAKey.generate_key(2048, private=True)
        _write_private(private_key, key.as_pem(private=True))
        _write_private(public_key, key.as_pem(private=False), mode=0o644)
        generated = {system: {"client_id": f"psgw-{system}-{secrets.token_hex(4)}",
                              "client_secret": secrets.token_urlsafe(32)} for system in ("psa", "erp", "hr")}
        generated["crm"] = {"client_id": secrets.token_urlsafe(24), "username": "integration@psgw.example"}
        _write_private(stored, json.dumps(generated, indent=2).encode())
    known = json.loads(stored.read_text())
    # NetSuite's M2M grant (erp_backend netsuite): a certificate key pair and the id NetSuite gives the mapping.
    erp_private, erp_public = folder / "erp-m2m-private.pem", folder / "erp-m2m-public.pem"
    if "certificate_id" not in known.get("erp", {"certificate_id": ""}) or not erp_private.exists():
        key = RSAKey.generate_key(2048, private=True)
        _write_private(erp_private, key.as_pem(private=True))
        _write_private(erp_public, key.as_pem(private=False), mode=0o644)
        known["erp"]["certificate_id"] = secrets.token_urlsafe(32)
        _write_private(stored, json.dumps(known, indent=2).encode())
    # Dynamics 365's token endpoint is per Microsoft Entra ID tenant (erp_backend dynamics365): a directory id.
    if "tenant_id" not in known.get("erp", {"tenant_id": ""}):
        known["erp"]["tenant_id"] = str(uuid.uuid4())
        _write_private(stored, json.dumps(known, indent=2).encode())
    sandboxes: dict[str, dict[str, str]] = {}
    system: dict[str, str] = {}
    for name, values in known.items():
        prefix = f"PSGW_{name.upper()}_"
        sandboxes[name] = {f"PSGW_SANDBOX_{key.upper()}": value for key, value in values.items()}
        system.update({prefix + key.upper(): value for key, value in values.items()})
    sandboxes["crm"]["PSGW_SANDBOX_JWT_PUBLIC_KEY_FILE"] = str(public_key)
    system["PSGW_CRM_PRIVATE_KEY_FILE"] = str(private_key)
    # Certinia PSA (psa_backend certinia) lives in the Salesforce org: the JWT bearer flow with the org's connected
    # app certificate and integration user; the PSA's client id is its consumer key.
    sandboxes["psa"].update({"PSGW_SANDBOX_USERNAME": known["crm"]["username"],
                             "PSGW_SANDBOX_JWT_PUBLIC_KEY_FILE": str(public_key)})
    system.update({"PSGW_PSA_USERNAME": known["crm"]["username"], "PSGW_PSA_PRIVATE_KEY_FILE": str(private_key)})
    if "erp" in sandboxes:
        sandboxes["erp"]["PSGW_SANDBOX_JWT_PUBLIC_KEY_FILE"] = str(erp_public)
        system["PSGW_ERP_PRIVATE_KEY_FILE"] = str(erp_private)
    return sandboxes, system


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


# Vendor APIs a sandbox can serve instead of its own dialect, chosen by the system's backend setting
# (PSGW_ERP_BACKEND=netsuite: the ERP sandbox speaks NetSuite REST and the system tier its connector; dynamics365:
# Dynamics 365 Finance OData v4; s4hana: SAP S/4HANA Cloud OData v2; PSGW_PSA_BACKEND=certinia: Certinia PSA on
# Salesforce).
SANDBOX_DIALECTS = {"erp": ("netsuite", "dynamics365", "s4hana"), "psa": ("certinia",)}


def sandbox_dialect(system: str, env: dict[str, str]) -> list[str]:
    backend = env.get(f"PSGW_{system.upper()}_BACKEND", "sandbox")
    return ["--dialect", backend] if backend in SANDBOX_DIALECTS.get(system, ()) else []


@dataclass(frozen=True)
class Ports:
    gateway: int = 8080
    system: int = 8101
    process: int = 8102
    experience: int = 8103
    sandboxes: dict[str, int] = field(default_factory=lambda: {"psa": 8201, "erp": 8202, "hr": 8203, "crm": 8204,
                                                               "tax": 8205, "einvoice": 8206})
    tryton: int = 8210

    @classmethod
    def free(cls) -> Ports:
        """Ports the OS says are free now (for tests running beside a developer's own stack)."""
        def one() -> int:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                return int(sock.getsockname()[1])
        return cls(gateway=one(), system=one(), process=one(), experience=one(), tryton=one(),
                   sandboxes={name: one() for name in (*SANDBOX_SYSTEMS, *SERVICE_SANDBOXES)})


@dataclass
class ServiceSpec:
    name: str
    argv: list[str]
    port: int
    env: dict[str, str]
    # Ready when this path answers 200; None: ready once it answers HTTP at all (a vendor with no health route).
    health_path: str | None = "/healthz"


@dataclass
class Stack:
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    config_file: Path = REPO_ROOT / "gateway.yaml"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Where the systems of record are: the sandbox vendors, or one Tryton server (system_apis.tryton).
    backend: str = "sandbox"
    # More instances of a process on ports of their own (see add_replicas); started and stopped like the rest.
    replicas: list[ServiceSpec] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.spec(name).port}"

    def specs(self) -> list[ServiceSpec]:
        python = sys.executable
        data = str(self.data_dir)
        base = {**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env}
        tier_common = {
            "PSGW_DATA_DIR": data,
            "PSGW_GATEWAY_URL": self.gateway_url,
            "PSGW_TOKEN_ISSUER": self.gateway_url,
        }
        if self.backend == "tryton":
            specs = [ServiceSpec("tryton", [python, "-m", "system_apis.tryton", "serve", "--data-dir", data, "--port",
                                            str(self.ports.tryton)], self.ports.tryton, base, health_path=None)]
            vendors = tryton_system_env(self.data_dir, self.ports.tryton)
        else:
            sandbox_env, vendor_env = vendor_credentials(self.data_dir)
            specs = [
                ServiceSpec(f"sandbox-{system}", [python, "-m", "sandbox", system, "--port",
                                                  str(self.ports.sandboxes[system]), "--data-dir", data,
                                                  *sandbox_dialect(system, base)],
                            self.ports.sandboxes[system], {**base, **sandbox_env[system]})
                for system in SANDBOX_SYSTEMS
            ]
            vendors = {f"PSGW_{s.upper()}_URL": f"http://127.0.0.1:{self.ports.sandboxes[s]}" for s in SANDBOX_SYSTEMS}
            vendors = {**vendor_env, **vendors}
        specs.extend(ServiceSpec(f"sandbox-{system}", [python, "-m", "sandbox", system, "--port",
                                                       str(self.ports.sandboxes[system]), "--data-dir", data],
                                 self.ports.sandboxes[system], base) for system in SERVICE_SANDBOXES)
        vendors.update({f"PSGW_{s.upper()}_URL": f"http://127.0.0.1:{self.ports.sandboxes[s]}"
                        for s in SERVICE_SANDBOXES})
        specs.append(ServiceSpec("system", [python, "-m", "system_apis"], self.ports.system, {
            **base, **tier_common, "PSGW_PORT": str(self.ports.system), **vendors,
        }))
        for tier in ("process", "experience"):
            specs.append(ServiceSpec(tier, [python, "-m", f"{tier}_apis"], getattr(self.ports, tier), {
                **base, **tier_common, "PSGW_PORT": str(getattr(self.ports, tier)),
                "PSGW_CLIENT_ID": f"{tier}-tier", "PSGW_CLIENT_SECRET": DEMO_TIER_SECRETS[tier],
            }))
        specs.append(ServiceSpec("gateway", [python, "-m", "gateway"], self.ports.gateway, {
            **base,
            "PSGW_CONFIG_FILE": str(self.config_file),
            "PSGW_DATA_DIR": data,
            "PSGW_GATEWAY_PORT": str(self.ports.gateway),
            "PSGW_ISSUER_URL": self.gateway_url,
            "PSGW_SYSTEM_URL": f"http://127.0.0.1:{self.ports.system}",
            "PSGW_PROCESS_URL": f"http://127.0.0.1:{self.ports.process}",
            "PSGW_EXPERIENCE_URL": f"http://127.0.0.1:{self.ports.experience}",
            # The dashboard page is served by the experience tier and calls the gateway from the browser.
            "PSGW_CORS_ORIGINS": f'["http://127.0.0.1:{self.ports.experience}"]',
            # Where people's browsers reach the pages: the sign-in sends them back there (exact redirect URIs).
            "PSGW_PAGES_URL": f"http://127.0.0.1:{self.ports.experience}",
        }))
        return specs + self.replicas

    def add_replicas(self, name: str, ports: list[int]) -> list[ServiceSpec]:
        """Instances ``<name>-1``, ``<name>-2``... of the gateway or a tier, one per port, with the same settings.

        For scale-out behind a load balancer: the stack's own port for ``name`` (what the other processes call)
        is then the balancer's, and only the replicas are started in place of ``name``.
        """
        base = self.spec(name)
        port_keys = ("PSGW_GATEWAY_PORT",) if name == "gateway" else ("PSGW_PORT",)
        added = []
        for index, port in enumerate(ports, start=1):
            env = {**base.env, **{key: str(port) for key in port_keys}}
            added.append(ServiceSpec(f"{name}-{index}", list(base.argv), port, env))
        self.replicas.extend(added)
        return added

    def spec(self, name: str) -> ServiceSpec:
        return next(s for s in self.specs() if s.name == name)

    def start(self, only: list[str] | None = None) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for spec in self.specs():
            if only is not None and spec.name not in only:
                continue
            log_file = (logs / f"{spec.name}.log").open("ab")
            self.processes[spec.name] = subprocess.Popen(
                spec.argv, env=spec.env, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches psgw, which stops children in order
            )
            log_file.close()

    def wait_ready(self, timeout: float = 60.0, only: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = [s for s in self.specs() if s.name in self.processes and (only is None or s.name in only)]
        with httpx.Client(timeout=1.0) as client:
            while pending:
                spec = pending[0]
                process = self.processes[spec.name]
                if process.poll() is not None:
                    raise RuntimeError(f"{spec.name} exited with {process.returncode}; see "
                                       f"{self.data_dir / 'logs' / (spec.name + '.log')}")
                try:
                    status = client.get(f"http://127.0.0.1:{spec.port}{spec.health_path or '/'}").status_code
                    if status == 200 or (spec.health_path is None and status < 500):
                        pending.pop(0)
                        continue
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{spec.name} did not become healthy within {timeout:g}s")
                time.sleep(0.1)

    def stop(self, name: str | None = None, grace_seconds: float = 10.0) -> None:
        names = [name] if name else list(reversed(self.processes))
        for each in names:
            process = self.processes.get(each)
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for each in names:
            process = self.processes.pop(each, None)
            if process is None:
                continue
            try:
                process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def kill(self, name: str) -> None:
        """Stop one process abruptly (SIGKILL), as a crash would."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(only=[name])
        self.wait_ready(only=[name])
