"""What the built-in issuer knows about people: the embedded demo's people, their roles, and the code lifetime.

Part of ``issuer`` in gateway.yaml (``issuer.sign_in``). A deployment with the firm's identity provider leaves
``people`` empty: its pages sign in at that provider (see the README, "Sign-in for people").
"""

from __future__ import annotations

import re

import msgspec

from gateway.signin.attempts import SignInAttemptsConfig

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class Person(msgspec.Struct, kw_only=True, frozen=True):
    """A person who signs in at the built-in issuer. Their password is generated into the data dir, never here."""

    username: str
    subject: str  # the token's ``sub``: the worker id the tiers act for
    name: str = ""
    roles: list[str] = []


class SignInConfig(msgspec.Struct, kw_only=True, frozen=True):
    # The embedded demo's people; their passwords are generated at the first start into
    # ``<data dir>/issuer/demo-passwords.txt`` (printed by ``psgw up``), stored as salted scrypt hashes.
    people: list[Person] = []
    # role -> the scopes it lets a person have. A person's token carries the scopes requested that both its
    # client is registered for and one of the person's roles grants; none in common: access_denied.
    roles: dict[str, list[str]] = {}
    # RFC 6749 section 4.1.2 recommends at most 10 minutes; a page redeems its code within a second.
    authorization_code_ttl_seconds: int = 60
    # How many wrong passwords the page takes from a person and an address before they must wait.
    attempts: SignInAttemptsConfig = SignInAttemptsConfig()

    def __post_init__(self) -> None:
        usernames = [p.username for p in self.people]
        if len(usernames) != len(set(usernames)):
            raise ValueError("issuer.sign_in.people: usernames must be unique")
        for person in self.people:
            if not _USERNAME.match(person.username):
                raise ValueError(f"issuer.sign_in.people: username {person.username!r} must be 1-64 of a-z 0-9 . _ -")
            unknown = sorted(set(person.roles) - set(self.roles))
            if unknown:
                raise ValueError(f"issuer.sign_in.people: {person.username} has unknown role {unknown[0]!r}")
        if not 5 <= self.authorization_code_ttl_seconds <= 600:
            raise ValueError("issuer.sign_in.authorization_code_ttl_seconds must be between 5 and 600")

    def scopes_of(self, person: Person) -> frozenset[str]:
        return frozenset(scope for role in person.roles for scope in self.roles.get(role, []))
