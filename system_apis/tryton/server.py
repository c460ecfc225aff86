"""A local Tryton for the system tier: its files under ``<data_dir>/tryton``, its database, its server process.

Layout of ``<data_dir>/tryton``: ``trytond.conf`` (generated), ``<database>.sqlite`` (SQLite by default),
``modules/`` (a ``trytond.modules`` entry point naming :mod:`system_apis.tryton.module`, put on the server's
PYTHONPATH so Tryton finds the ``psgateway`` module without touching site-packages), ``credentials.json``
(the service user, its password and its application key) and ``filestore/``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATABASE = "psgateway"
SERVICE_LOGIN = "psgateway"
MODULE = "psgateway"
ENTRY_POINT_DIST = "psgateway_tryton_module-8.2.0.dist-info"


class TrytonSetupError(RuntimeError):
    """A step of the Tryton setup failed; the message says which and where its output is."""


@dataclass(frozen=True)
class TrytonHome:
    root: Path
    database: str = DATABASE
    database_uri: str = ""  # empty: SQLite under root; or postgresql://user@host:port/

    @classmethod
    def of(cls, data_dir: Path, database_uri: str = "") -> TrytonHome:
        return cls(root=data_dir.resolve() / "tryton", database_uri=database_uri)

    @property
    def config_file(self) -> Path:
        return self.root / "trytond.conf"

    @property
    def sqlite_file(self) -> Path:
        return self.root / f"{self.database}.sqlite"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"

    @property
    def modules_path(self) -> Path:
        return self.root / "modules"

    def credentials(self) -> dict[str, str]:
        data: dict[str, str] = json.loads(self.credentials_file.read_text())
        return data

    def url(self, port: int) -> str:
        """The URL the system tier's Tryton adapters take (``<system>_url``)."""
        creds = self.credentials()
        return f"http://{creds['login']}:{creds['password']}@127.0.0.1:{port}/{self.database}"

    def write_config(self, port: int | None = None) -> None:
        """trytond.conf for this home; the server listens on loopback only."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "filestore").mkdir(exist_ok=True)
        uri = self.database_uri or "sqlite://"
        lines = ["[database]", f"uri = {uri}", f"path = {self.root}", "list = False", "",
                 "[web]", f"listen = 127.0.0.1:{port or 8000}", "",
                 "[session]", "timeout = 86400", "max_attempt = 50", ""]
        self.config_file.write_text("\n".join(lines))
        self._write_entry_point()

    def _write_entry_point(self) -> None:
        dist = self.modules_path / ENTRY_POINT_DIST
        dist.mkdir(parents=True, exist_ok=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: psgateway-tryton-module\nVersion: 8.2.0\n")
        (dist / "entry_points.txt").write_text(f"[trytond.modules]\n{MODULE} = system_apis.tryton.module\n")

    def env(self) -> dict[str, str]:
        """The environment of trytond processes: our module on the path, our config."""
        path = [str(self.modules_path), str(REPO_ROOT)]
        if os.environ.get("PYTHONPATH"):
            path.append(os.environ["PYTHONPATH"])
        return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "TRYTOND_CONFIG": str(self.config_file),
                "PYTHONUNBUFFERED": "1"}


def tryton_installed() -> bool:
    return importlib.util.find_spec("trytond") is not None and importlib.util.find_spec(
        "trytond.modules.sale_opportunity") is not None


def install_extra() -> None:
    """Install the ``[tryton]`` dependency group of pyproject.toml into this interpreter's environment."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        requirements = tomllib.load(file)["project"]["optional-dependencies"]["tryton"]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *requirements], check=True)


def executable(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    if found.exists():
        return str(found)
    located = shutil.which(name)
    if located is None:
        raise TrytonSetupError(f"{name} is not installed: run `python -m system_apis.tryton init`")
    return located


def run_step(home: TrytonHome, what: str, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
    log = home.root / "setup.log"
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(argv, env={**home.env(), **(extra_env or {})}, stdout=out, stderr=subprocess.STDOUT,
                              cwd=REPO_ROOT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise TrytonSetupError(f"{what} failed (exit {done.returncode}); see {log}:\n{tail}")


def create_database(home: TrytonHome, admin_email: str) -> None:
    """An empty Tryton database with the psgateway module and everything it depends on activated."""
    home.write_config()
    if not home.database_uri:
        home.sqlite_file.unlink(missing_ok=True)
        home.sqlite_file.touch()  # trytond-admin opens the SQLite file; it must exist first
    password_file = home.root / "admin.pass"
    password_file.write_text(os.urandom(16).hex())
    password_file.chmod(0o600)
    argv = [executable("trytond-admin"), "-c", str(home.config_file), "-d", home.database, "--all",
            "--email", admin_email, "-u", MODULE, "--activate-dependencies"]
    # The admin's password is read from TRYTONPASSFILE (never prompted); psgateway logs in as its own user.
    run_step(home, "trytond-admin", argv, {"TRYTONPASSFILE": str(password_file)})


def load_demo(home: TrytonHome) -> None:
    run_step(home, "loading the demo firm", [sys.executable, "-m", "system_apis.tryton.demo",
                                             str(home.config_file), home.database, str(home.credentials_file)])


def copy_home(source: TrytonHome, target: TrytonHome) -> None:
    """A working copy of a built (SQLite) home: the template database, credentials, fresh config."""
    target.root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source.sqlite_file, target.sqlite_file)
    shutil.copyfile(source.credentials_file, target.credentials_file)
    target.write_config()


def server_argv(home: TrytonHome, port: int) -> list[str]:
    home.write_config(port)
    return [executable("trytond"), "-c", str(home.config_file), "-d", home.database]
