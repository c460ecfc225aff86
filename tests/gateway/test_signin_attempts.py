"""Password guessing at the sign-in page: what an attacker gets (a wait, and no answer about the password while
it lasts) and what the person keeps (signing in from elsewhere; a success clears their count)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.gateway.signin_flow import CONSULTANT_USER, FINANCE_LEAD_USER, SignIn, password_of, submit
from tests.support.gateway import GatewayProcess, base_config, free_port
from tests.support.stack import RunningStack

PER_PERSON, PER_ADDRESS = 3, 6


def config_with(**attempts: object) -> dict[str, object]:
    config = base_config()
    limits = {"failures_per_person_and_address": PER_PERSON, "failures_per_address": PER_ADDRESS,
              "window_seconds": 600, **attempts}
    config["issuer"]["sign_in"]["attempts"] = limits
    return config


@pytest.fixture(scope="module")
def shared(module_gateways: Callable[..., GatewayProcess]) -> tuple[GatewayProcess, GatewayProcess]:
    """Two instances behind a trusted proxy (this host), counting in the same Redis."""
    config = config_with(trusted_proxies=["127.0.0.1/32"],
                         redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return module_gateways(config), module_gateways(config)


@pytest.fixture(scope="module")
def alone(module_gateways: Callable[..., GatewayProcess]) -> GatewayProcess:
    """No trusted proxy, and a Redis that does not answer: it counts in its own memory by the peer's address."""
    return module_gateways(config_with(redis_url=f"redis://127.0.0.1:{free_port()}/0"))


@pytest.fixture
def finance(stack: RunningStack) -> SignIn:
    return SignIn.of_page(stack, "finance-web", "/finance-ops/")


@pytest.fixture
def address() -> str:
    """A fresh client address (documentation range), so no other test's failures count here."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


@pytest.fixture
def http() -> Iterator[Callable[[GatewayProcess], httpx.Client]]:
    clients: list[httpx.Client] = []

    def client(gateway: GatewayProcess) -> httpx.Client:
        clients.append(httpx.Client(base_url=gateway.url, timeout=30.0, follow_redirects=False))
        return clients[-1]

    yield client
    for c in clients:
        c.close()


def sign_in(http: httpx.Client, flow: SignIn, username: str, password: str, address: str | None) -> httpx.Response:
    if address is not None:
        http.headers["X-Forwarded-For"] = f"198.51.100.7, {address}"  # the proxy appends the real client last
    return submit(http, flow.params(), username, password)


def refused_to_wait(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Too many failed sign-ins from here. Try again in" in response.text
    assert "code=" not in response.headers.get("location", "")
    wait = int(response.headers["Retry-After"])
    assert 0 < wait <= 600
    return wait


def test_guessing_a_password_makes_the_page_wait_and_the_right_password_gains_nothing_meanwhile(
    stack: RunningStack, shared: tuple[GatewayProcess, GatewayProcess], http: Callable[[GatewayProcess], httpx.Client],
    finance: SignIn, address: str,
) -> None:
    page = http(shared[0])
    for guess in range(PER_PERSON):
        assert sign_in(page, finance, FINANCE_LEAD_USER, f"guess-{guess}", address).status_code == 401
    # The right password now would tell the attacker it is right: it is not even checked.
    refused_to_wait(sign_in(page, finance, FINANCE_LEAD_USER, password_of(stack, FINANCE_LEAD_USER), address))
    # The person herself, from her own address, is not locked out.
    elsewhere = http(shared[0])
    response = sign_in(elsewhere, finance, FINANCE_LEAD_USER, password_of(stack, FINANCE_LEAD_USER),
                       f"2001:db8::1:{uuid.uuid4().hex[:4]}")
    assert response.status_code == 303 and "code=" in response.headers["location"], response.text


def test_the_count_is_shared_by_every_instance(
    shared: tuple[GatewayProcess, GatewayProcess], http: Callable[[GatewayProcess], httpx.Client],
    finance: SignIn, address: str,
) -> None:
    first, second = http(shared[0]), http(shared[1])
    assert sign_in(first, finance, CONSULTANT_USER, "wrong-1", address).status_code == 401
    assert sign_in(second, finance, CONSULTANT_USER, "wrong-2", address).status_code == 401
    assert sign_in(first, finance, CONSULTANT_USER, "wrong-3", address).status_code == 401
    refused_to_wait(sign_in(second, finance, CONSULTANT_USER, "wrong-4", address))


def test_one_address_trying_many_usernames_is_made_to_wait_too(
    shared: tuple[GatewayProcess, GatewayProcess], http: Callable[[GatewayProcess], httpx.Client],
    finance: SignIn, address: str,
) -> None:
    page = http(shared[0])
    for n in range(PER_ADDRESS):  # never more than PER_PERSON - 1 for one username
        assert sign_in(page, finance, f"nobody-{n}", "password", address).status_code == 401
    refused_to_wait(sign_in(page, finance, "someone-else", "password", address))


def test_a_successful_sign_in_clears_the_persons_count(
    stack: RunningStack, shared: tuple[GatewayProcess, GatewayProcess], http: Callable[[GatewayProcess], httpx.Client],
    finance: SignIn, address: str,
) -> None:
    page = http(shared[0])
    for guess in range(PER_PERSON - 1):
        assert sign_in(page, finance, FINANCE_LEAD_USER, f"typo-{guess}", address).status_code == 401
    assert sign_in(page, finance, FINANCE_LEAD_USER, password_of(stack, FINANCE_LEAD_USER), address).status_code == 303
    for guess in range(PER_PERSON - 1):
        assert sign_in(page, finance, FINANCE_LEAD_USER, f"typo-again-{guess}", address).status_code == 401


def test_a_forged_forwarded_for_does_not_reset_the_count_and_redis_down_still_counts(
    alone: GatewayProcess, http: Callable[[GatewayProcess], httpx.Client], finance: SignIn,
) -> None:
    page = http(alone)
    for guess in range(PER_PERSON):  # a new X-Forwarded-For each time: not trusted, so the peer's address counts
        response = sign_in(page, finance, CONSULTANT_USER, f"guess-{guess}", f"2001:db8::2:{guess}")
        assert response.status_code == 401, response.text
    refused_to_wait(sign_in(page, finance, CONSULTANT_USER, "guess-last", "2001:db8::2:ff"))
