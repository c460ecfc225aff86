"""IP allow-lists for system APIs: only callers from listed networks reach them (defense in depth beside the
layer rule). Behind a load balancer, list it in ``trusted_proxies`` and the client address is taken from the
right-most ``X-Forwarded-For`` entry that is not one of them.
"""

from __future__ import annotations

import ipaddress

import msgspec

from policies.exchange import ApiTarget, Exchange, Layer
from policies.registry import BuildContext, PolicySpec
from runtime.problems import ProblemError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CACHE_MAX = 4096


class IpAllowConfig(msgspec.Struct, kw_only=True, frozen=True):
    layers: list[Layer] = msgspec.field(default_factory=lambda: ["system"])
    allow: list[str] = msgspec.field(default_factory=lambda: [
        "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])
    # Per API id, a list that replaces ``allow`` for that API.
    apis: dict[str, list[str]] = {}
    trusted_proxies: list[str] = []

    def __post_init__(self) -> None:
        for cidr in [*self.allow, *self.trusted_proxies, *(c for cs in self.apis.values() for c in cs)]:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"ip_allow: {cidr!r} is not a network: {exc}") from exc

    def selects(self, api: ApiTarget) -> bool:
        return api.layer in self.layers or api.api_id in self.apis


def networks(cidrs: list[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def client_address(peer: str, forwarded_for: str | None, proxies: tuple[Network, ...]) -> str:
    """The caller's address: the TCP peer, unless the peer is a trusted proxy; then the right-most
    ``X-Forwarded-For`` entry that is not one (each proxy appends the address it got the call from)."""
    if not proxies or not forwarded_for or not _within(peer, proxies):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _within(hop, proxies):
            return hop
    return peer


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


class IpNotAllowed(ProblemError):
    status = 403
    slug = "ip-not-allowed"
    title = "Forbidden"


class IpAllow:
    name = "ip_allow"

    def __init__(self, config: IpAllowConfig, api: ApiTarget) -> None:
        self.allow = networks(config.apis.get(api.api_id, config.allow))
        self.proxies = networks(config.trusted_proxies)
        self._decided: dict[str, bool] = {}

    def client_address(self, exchange: Exchange) -> str:
        if not self.proxies:
            return exchange.client_addr
        return client_address(exchange.client_addr, exchange.header(b"x-forwarded-for"), self.proxies)

    async def access(self, exchange: Exchange) -> None:
        address = self.client_address(exchange)
        allowed = self._decided.get(address)
        if allowed is None:
            allowed = _within(address, self.allow)
            if len(self._decided) >= _CACHE_MAX:
                self._decided.clear()
            self._decided[address] = allowed
        if not allowed:
            exchange.decisions[self.name] = "ip_not_allowed"
            raise IpNotAllowed(f"{address or 'this address'} may not call {exchange.api.base_path}",
                               reason="ip_not_allowed")
        exchange.decisions[self.name] = "ok"


def _build(config: IpAllowConfig, ctx: BuildContext) -> IpAllow | None:
    return IpAllow(config, ctx.api) if config.selects(ctx.api) else None


POLICY = PolicySpec(name="ip_allow", config=IpAllowConfig, priority=1900, build=_build, enabled_by_default=True,
                    summary="refuses callers outside the allowed networks (system APIs by default)")
