"""The :class:`~dunning.ports.WebhookSender` adapter: POSTs to the merchant's endpoints with
httpx over one reused client, no redirects followed."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from dunning.errors import TransientError

DELIVERY_TIMEOUT_S = 10.0


class HttpWebhookSender:
    def __init__(self, *, timeout_s: float = DELIVERY_TIMEOUT_S) -> None:
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            return self._client.post(url, content=body, headers=dict(headers)).status_code
        except httpx.HTTPError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
