"""Stripe's HTTP API under one deadline per gateway call.

httpx bounds each phase of a request (connect, write, read, pool) separately, so a slow answer
could outlast the gateway's timeout several times over. Each request here runs on a private
event loop under :func:`asyncio.wait_for`: when the call's deadline passes, the request is
cancelled (its connection closed) and :class:`~dunning.errors.GatewayUnavailable` is raised.
A gateway call that makes several requests gives them one shared deadline. The API version is
pinned with the ``Stripe-Version`` header on every request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from dunning.errors import GatewayUnavailable, PermanentError
from dunning.gateways.cards import mask_pans

Form = dict[str, str]
# Extra time the caller waits for the loop to hand back a cancelled request.
_HANDBACK_S = 1.0


class StripeError(PermanentError):
    """Stripe refused a request for good (bad parameters, a bad key, a missing object)."""

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def refused(status: int, body: Mapping[str, Any]) -> StripeError:
    """The permanent error of a refused request, with Stripe's code and (masked) message."""
    error = body.get("error")
    code = error.get("code") if isinstance(error, Mapping) else None
    text = error.get("message") if isinstance(error, Mapping) else None
    # Stripe's messages never echo a full card number, but mask one anyway before logging.
    message = mask_pans(text if isinstance(text, str) and text else "no message")[:300]
    if status == 401:
        message += " (check DUNNING_STRIPE__API_KEY)"
    code = code if isinstance(code, str) else None
    return StripeError(
        f"stripe refused the request ({status}, {code}): {message}", status=status, code=code
    )


class StripeHttp:
    """One ``httpx.AsyncClient`` on a private event loop thread, started on first use."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str,
        api_version: str,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._base = api_base.rstrip("/")
        self.api_version = api_version
        self.timeout_s = timeout_s
        self._transport = transport
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None

    def deadline(self) -> float:
        """The monotonic time by which a gateway call starting now must have ended."""
        return time.monotonic() + self.timeout_s

    def _started(self) -> tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]:
        with self._lock:
            if self._loop is None or self._client is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="stripe-http", daemon=True)
                thread.start()
                self._client = httpx.AsyncClient(transport=self._transport)
                self._loop, self._thread = loop, thread
            return self._loop, self._client

    def close(self) -> None:
        """Close the client and stop the loop; a later call starts them again."""
        with self._lock:
            loop, client, thread = self._loop, self._client, self._thread
            self._loop = self._client = self._thread = None
        if loop is None or client is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()

    def call(
        self,
        method: str,
        path: str,
        form: Form | None = None,
        idempotency_key: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
        deadline: float,
    ) -> tuple[int, dict[str, Any]]:
        """One request, over by ``deadline``; the status and JSON body of Stripe's answer.

        No answer in time, a dropped connection, 409, 429 and 5xx raise ``GatewayUnavailable``.
        """
        what = f"stripe {method} {path}"
        left = deadline - time.monotonic()
        if left <= 0:
            raise GatewayUnavailable(f"{what} timed out before it was sent")
        headers = {"Authorization": f"Bearer {self._api_key}", "Stripe-Version": self.api_version}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        loop, client = self._started()
        request = client.request(
            method, self._base + path, data=form, params=params, headers=headers, timeout=left
        )
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(request, left), loop)
        try:
            response = future.result(timeout=left + _HANDBACK_S)
        except (TimeoutError, concurrent.futures.TimeoutError, httpx.TimeoutException) as exc:
            future.cancel()
            raise GatewayUnavailable(f"{what} timed out") from exc
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"{what} failed: {type(exc).__name__}") from exc
        return _answer(what, response)


def _answer(what: str, response: httpx.Response) -> tuple[int, dict[str, Any]]:
    status = response.status_code
    if status in (409, 429) or status >= 500:
        raise GatewayUnavailable(f"{what} answered {status}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GatewayUnavailable(f"{what} answered {status} without JSON")
    return status, body
