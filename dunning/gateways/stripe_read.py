"""Reading a merchant's Stripe account: list pages and single objects, over httpx.

The gateway (:mod:`dunning.gateways.stripe`) charges; this client only reads, with the same
settings (``stripe.api_key``, ``stripe.api_base``, the gateway time-out). Lists are paged the
way Stripe pages them: up to 100 objects, newest first, the next page ``starting_after`` the
last id while ``has_more`` is true. Timeouts, dropped connections, 429 and 5xx raise
:class:`~dunning.errors.GatewayUnavailable` (try again later); a refused request (a bad key, a
bad parameter) raises :class:`StripeReadError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from dunning.errors import ConfigError, GatewayUnavailable, PermanentError
from dunning.gateways.cards import mask_pans

if TYPE_CHECKING:
    from config.settings import Settings

DEFAULT_API_BASE = "https://api.stripe.com"
PAGE_LIMIT = 100  # Stripe's largest page


class StripeReadError(PermanentError):
    """Stripe refused a read for good (a bad key, a bad parameter, a missing object)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Page:
    """One page of a list: its objects, newest first, and whether more follow."""

    data: list[dict[str, Any]]
    has_more: bool

    @property
    def last_id(self) -> str | None:
        last = self.data[-1].get("id") if self.data else None
        return last if isinstance(last, str) and last else None


class StripeReader:
    """Read-only access to Stripe's API; one ``httpx.Client`` for every call."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        timeout_s: float,
        api_version: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError("reading Stripe needs an API key: set DUNNING_STRIPE__API_KEY")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        if api_version:
            self._headers["Stripe-Version"] = api_version
        self._base = api_base.rstrip("/")
        self._timeout_s = timeout_s
        self._client = client or httpx.Client(timeout=timeout_s)
        self._owns_client = client is None

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeReader:
        """Built from ``stripe.api_key``, ``stripe.api_base`` (and ``stripe.api_version`` when
        the settings have one) and the gateway time-out."""
        key = settings.stripe.api_key
        if key is None or not key.get_secret_value():
            raise ConfigError("reading Stripe needs an API key: set DUNNING_STRIPE__API_KEY")
        version = getattr(settings.stripe, "api_version", None)
        return cls(
            key.get_secret_value(),
            api_base=settings.stripe.api_base,
            timeout_s=settings.timing.gateway_timeout_s,
            api_version=version if isinstance(version, str) else None,
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> StripeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def page(
        self,
        path: str,
        *,
        after: str | None = None,
        params: Mapping[str, str] | None = None,
        expand: Sequence[str] = (),
        limit: int = PAGE_LIMIT,
    ) -> Page:
        """One page of the list at ``path`` (``/v1/customers``), after the object ``after``."""
        query: list[tuple[str, str | int]] = [("limit", limit), *(params or {}).items()]
        query += [("expand[]", field) for field in expand]
        if after:
            query.append(("starting_after", after))
        body = self._get(path, query)
        data = body.get("data")
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise GatewayUnavailable(f"stripe GET {path} answered without a list of objects")
        return Page(data, body.get("has_more") is True)

    def retrieve(self, path: str, object_id: str, *, expand: Sequence[str] = ()) -> dict[str, Any]:
        """One object, such as ``retrieve("/v1/customers", "cus_…")``."""
        url = f"{path}/{quote(object_id, safe='')}"
        return self._get(url, [("expand[]", field) for field in expand])

    def _get(self, path: str, query: Sequence[tuple[str, str | int]]) -> dict[str, Any]:
        try:
            response = self._client.get(
                self._base + path,
                params=tuple(query),
                headers=self._headers,
                timeout=self._timeout_s,
            )
        except httpx.TimeoutException as exc:
            raise GatewayUnavailable(f"stripe GET {path} timed out") from exc
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"stripe GET {path} failed: {type(exc).__name__}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise GatewayUnavailable(f"stripe GET {path} answered {status}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GatewayUnavailable(f"stripe GET {path} answered {status} without JSON")
        if status != 200:
            raise _refused(path, status, body)
        return body


def _refused(path: str, status: int, body: Mapping[str, Any]) -> StripeReadError:
    error = body.get("error")
    message = error.get("message") if isinstance(error, Mapping) else None
    text = mask_pans(message if isinstance(message, str) else "no message")[:300]
    if status == 401:
        text += " (check DUNNING_STRIPE__API_KEY)"
    return StripeReadError(f"stripe refused GET {path} ({status}): {text}", status=status)
