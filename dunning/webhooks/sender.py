"""The :class:`~dunning.ports.WebhookSender` adapter: POSTs to the merchant's endpoints with
httpx over one reused client, no redirects followed.

Each delivery resolves the endpoint's name, checks every address it gets
(:mod:`dunning.webhooks.destinations`) and connects to the checked address itself, with the
name in the ``Host`` header and in TLS (SNI and the certificate check): a name that resolves
to a public address for the check cannot answer with an internal one for the connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import httpx

from dunning.errors import TransientError
from dunning.webhooks.destinations import RefusedDestination, Rules, destination

DELIVERY_TIMEOUT_S = 10.0


class HttpWebhookSender:
    def __init__(self, *, rules: Rules, timeout_s: float = DELIVERY_TIMEOUT_S) -> None:
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._rules = rules

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            parts, address = destination(url, self._rules)
        except RefusedDestination as exc:
            raise TransientError(f"not sent: {exc}") from exc
        host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        netloc = f"{host}:{parts.port}" if parts.port else host
        extensions: dict[str, Any] = {}
        if parts.scheme == "https":
            extensions["sni_hostname"] = parts.hostname
        try:
            return self._client.post(
                parts._replace(netloc=netloc).geturl(),
                content=body,
                headers={**headers, "host": parts.netloc},
                extensions=extensions,
            ).status_code
        except httpx.HTTPError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
