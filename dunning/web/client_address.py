"""The client's address as far as it can be trusted.

The connection's address is the client's unless it is one of the configured proxies
(``DUNNING_WEB__TRUSTED_PROXIES``). From a proxy, X-Forwarded-For is read from its right end
(the hop the proxy itself added) leftwards, past further trusted proxies, to the first address
no trusted proxy vouches beyond. Anything left of that was written by the client and is
ignored; so is the whole header from anyone else, whatever it says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: Address | None, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in proxies)


def client_address(request: Request, proxies: Sequence[Network]) -> str:
    """The address to count a request against (the rate limits, the logs)."""
    peer = request.client.host if request.client else "unknown"
    nearest = _address(peer)
    if not _trusted(nearest, proxies):
        return peer
    hops = [hop for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage: go no further than the last hop a proxy vouched for
            break
        nearest = address
        if not _trusted(address, proxies):
            break
    return str(nearest)
