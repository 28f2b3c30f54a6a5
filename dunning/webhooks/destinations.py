"""Where merchant webhooks may go: public addresses only, unless a network is allowed.

An endpoint URL is the merchant's to choose, and whoever registers one makes this service send
requests to it: pointed at ``127.0.0.1``, ``169.254.169.254`` (a cloud's metadata service) or an
internal host, the pipeline would probe the network it runs in. So an endpoint is refused when
its host is, or resolves to, an address that is not globally routable (loopback, private,
link-local, shared, reserved, multicast, unspecified) and lies in no network of
``DUNNING_ENDPOINTS__ALLOW_NETWORKS``; when its URL carries credentials (they would be stored and
shown in plain text; the signature authenticates the sender); and, in production, when it is not
https. The check runs when an endpoint is added, and again before every delivery on the address
the name resolves to then, which is the address the delivery connects to (DNS may change
between the two).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from config.settings import Env, Settings
from dunning.errors import UsageError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Names of this machine or its local network: refused even when they do not resolve here.
LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


class RefusedDestination(UsageError):
    """An endpoint URL this deployment does not send to; the message says why."""


@dataclass(frozen=True)
class Rules:
    """The networks allowed despite being internal, and whether only https is allowed."""

    allow: tuple[Network, ...] = ()
    https_only: bool = False


def endpoint_rules(settings: Settings) -> Rules:
    """The rules of these settings: ``DUNNING_ENDPOINTS__ALLOW_NETWORKS``; https only in
    production."""
    return Rules(tuple(settings.endpoints.allow_networks), settings.env is Env.production)


def parse(url: str, rules: Rules) -> SplitResult:
    """The URL's parts, refused when its form is not allowed (scheme, credentials, no host)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise RefusedDestination(f"endpoint URL {url!r} cannot be parsed") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedDestination(f"endpoint URL must be http(s)://host/…, not {url!r}")
    if rules.https_only and parts.scheme != "https":
        raise RefusedDestination("endpoint URLs must be https:// in production")
    if parts.username is not None or parts.password is not None:
        raise RefusedDestination(
            "endpoint URL must not carry credentials (user:password@); the signature "
            "authenticates each delivery"
        )
    return parts


def literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def internal(address: Address) -> bool:
    """Not a public unicast address (an IPv4-mapped IPv6 address is judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_address(address: Address, rules: Rules, host: str) -> None:
    if internal(address) and not any(address in net for net in rules.allow):
        shown = host if str(address) == host else f"{host} ({address})"
        raise RefusedDestination(
            f"endpoint host {shown} is an internal address (loopback, private, link-local or "
            "reserved); allow its network in DUNNING_ENDPOINTS__ALLOW_NETWORKS if that is meant"
        )


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to now (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def check_endpoint(url: str, rules: Rules) -> str:
    """Refuse ``url`` (:class:`RefusedDestination`) unless it may be registered; return it.

    A name that does not resolve yet is accepted (the delivery checks it again), unless it
    names the local machine or network.
    """
    parts = parse(url, rules)
    host = parts.hostname or ""
    address = literal(host)
    if address is not None:
        check_address(address, rules, host)
        return url
    addresses = resolve(host, default_port(parts))
    if not addresses and host.lower().rstrip(".").endswith(LOCAL_NAMES):
        raise RefusedDestination(f"endpoint host {host} names the local machine or network")
    if not addresses and "." not in host.strip("."):
        raise RefusedDestination(f"endpoint host {host} is not a public name")
    for resolved in addresses:
        check_address(resolved, rules, host)
    return url


def destination(url: str, rules: Rules) -> tuple[SplitResult, Address]:
    """Where a delivery to ``url`` connects now: its parts and one checked address.

    Every address the name resolves to must pass, so a name answering with a public and an
    internal address cannot steer some deliveries inside.
    """
    parts = parse(url, rules)
    host = parts.hostname or ""
    address = literal(host)
    addresses = [address] if address is not None else resolve(host, default_port(parts))
    if not addresses:
        raise RefusedDestination(f"endpoint host {host} does not resolve")
    for candidate in addresses:
        check_address(candidate, rules, host)
    return parts, addresses[0]
