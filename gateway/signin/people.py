"""The embedded demo's people: passwords generated into the data dir at the first start, checked with scrypt.

``<data dir>/issuer/people.json`` keeps each username's salted scrypt hash (the same KDF as client secrets);
``<data dir>/issuer/demo-passwords.txt`` (mode 0600) keeps the passwords themselves for the person running the
demo, which ``psgw up`` prints. Nothing of either is in the repository. Several gateway processes may start at
once: the first to write wins and the others read what it wrote.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from pathlib import Path

from gateway.issuer import hash_secret, secret_matches
from gateway.signin.config import Person, SignInConfig

PEOPLE_FILE = "people.json"
PASSWORDS_FILE = "demo-passwords.txt"


def _create_exclusively(path: Path, data: bytes, mode: int) -> bool:
    """Write ``path`` only if it does not exist yet (atomically: a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def demo_passwords(issuer_dir: Path) -> list[tuple[str, str]]:
    """(username, password) of the demo people, as generated; empty when there are none."""
    path = issuer_dir / PASSWORDS_FILE
    if not path.exists():
        return []
    return [(u, p) for u, p in (line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)]


class People:
    def __init__(self, config: SignInConfig, issuer_dir: Path) -> None:
        self.config = config
        self.by_username = {p.username: p for p in config.people}
        self.hashes = self._load_or_create(issuer_dir)

    def _load_or_create(self, issuer_dir: Path) -> dict[str, str]:
        path = issuer_dir / PEOPLE_FILE
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = [p.username for p in self.config.people if p.username not in stored]
        if not missing:
            return stored
        # A person added to gateway.yaml since: everyone gets a fresh password, written in one go.
        issuer_dir.mkdir(parents=True, exist_ok=True)
        passwords = {p.username: secrets.token_urlsafe(12) for p in self.config.people}
        hashes = {u: hash_secret(pw) for u, pw in passwords.items()}
        listing = "".join(f"{u} {pw}\n" for u, pw in passwords.items()).encode()
        if path.exists():
            path.unlink()
        if _create_exclusively(path, json.dumps(hashes, indent=1).encode(), 0o600):
            (issuer_dir / PASSWORDS_FILE).unlink(missing_ok=True)
            _create_exclusively(issuer_dir / PASSWORDS_FILE, listing, 0o600)
            return hashes
        loaded: dict[str, str] = json.loads(path.read_text())  # another process was first
        return loaded

    def authenticate(self, username: str, password: str) -> Person | None:
        """The person, if the password is theirs. Costs one scrypt check, known username or not."""
        person = self.by_username.get(username)
        stored = self.hashes.get(username) if person is not None else None
        # An unknown username still pays for a check, so timing does not tell which usernames exist.
        matched = secret_matches(password, stored or _dummy_hash())
        return person if matched and stored is not None else None

    def scopes_of(self, person: Person) -> frozenset[str]:
        return self.config.scopes_of(person)


@functools.cache
def _dummy_hash() -> str:
    return hash_secret(secrets.token_urlsafe(16))
