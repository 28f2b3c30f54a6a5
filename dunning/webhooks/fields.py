"""Typed reads from decoded JSON that fail with :class:`MalformedEvent` naming the field path.

Provider payloads are hostile input: a missing key, a list where an object belongs or a bool
where an integer belongs must become a ``MalformedEvent``, never a ``KeyError``/``TypeError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dunning.webhooks.events import MAX_AMOUNT, MalformedEvent

MAX_REF_CHARS = 255
# Unix seconds from year 2000 to 2200: anything else is not a real event time.
_MIN_UNIX_S, _MAX_UNIX_S = 946_684_800, 7_258_118_400

# Brand names as the gateways spell them -> the network names the policy knows.
_NETWORKS = {
    "visa": "visa",
    "visa-electron": "visa",
    "visa_electron": "visa",
    "mastercard": "mastercard",
    "master": "mastercard",
    "maestro": "mastercard",
    "mastercard-debet": "mastercard",
    "amex": "amex",
    "american-express": "amex",
    "american express": "amex",
}


def network_name(brand: str | None) -> str:
    """``Visa``/``visa-electron`` -> ``visa``; unknown brands keep their lower-case name."""
    if not brand:
        return "unknown"
    key = brand.strip().lower()
    return _NETWORKS.get(key, key[:16] or "unknown")


class Reader:
    """A view of one JSON object that knows its path, for error messages."""

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise MalformedEvent(f"{path or 'payload'}: expected an object")
        self.data: Mapping[str, Any] = data
        self.path = path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def obj(self, key: str) -> Reader:
        return Reader(self._required(key), self._name(key))

    def opt_obj(self, key: str) -> Reader | None:
        value = self.data.get(key)
        return None if value is None else Reader(value, self._name(key))

    def seq(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise MalformedEvent(f"{self._name(key)}: expected a list")
        return value

    def text(self, key: str, *, numbers: bool = False) -> str:
        value = self.opt_text(key, numbers=numbers)
        if value is None:
            raise MalformedEvent(f"{self._name(key)}: missing")
        return value

    def opt_text(self, key: str, *, numbers: bool = False) -> str | None:
        """A string; with ``numbers``, an integer is read as its decimal text (Quickpay ids)."""
        value = self.data.get(key)
        if value is None:
            return None
        allowed = (str, int) if numbers else (str,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise MalformedEvent(f"{self._name(key)}: expected a string")
        text = str(value)
        if len(text) > MAX_REF_CHARS:
            raise MalformedEvent(f"{self._name(key)}: longer than {MAX_REF_CHARS} characters")
        return text or None

    def integer(self, key: str) -> int:
        value = self.opt_integer(key)
        if value is None:
            raise MalformedEvent(f"{self._name(key)}: missing")
        return value

    def opt_integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedEvent(f"{self._name(key)}: expected an integer")
        return value

    def amount(self, key: str) -> int:
        value = self.integer(key)
        if value < 0:
            raise MalformedEvent(f"{self._name(key)}: negative amount")
        if value > MAX_AMOUNT:
            raise MalformedEvent(f"{self._name(key)}: larger than {MAX_AMOUNT}")
        return value

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise MalformedEvent(f"{self._name(key)}: expected true or false")
        return value

    def currency(self, key: str) -> str:
        value = self.text(key)
        if len(value) != 3 or not value.isascii() or not value.isalpha():
            raise MalformedEvent(f"{self._name(key)}: not an ISO 4217 code")
        return value.upper()

    def opt_currency(self, key: str) -> str | None:
        return self.currency(key) if self.has(key) else None

    def ref(self, key: str) -> str:
        value = self.opt_ref(key)
        if value is None:
            raise MalformedEvent(f"{self._name(key)}: missing")
        return value

    def opt_ref(self, key: str) -> str | None:
        """An id, or an expanded object's ``id`` (Stripe's ``expand[]``)."""
        value = self.data.get(key)
        if isinstance(value, Mapping):
            return Reader(value, self._name(key)).text("id")
        return self.opt_text(key)

    def expanded(self, key: str) -> Reader | None:
        """The object under ``key`` when it was expanded; ``None`` for a bare id or nothing."""
        value = self.data.get(key)
        return Reader(value, self._name(key)) if isinstance(value, Mapping) else None

    def unix_time(self, key: str) -> datetime:
        value = self.opt_unix_time(key)
        if value is None:
            raise MalformedEvent(f"{self._name(key)}: missing")
        return value

    def opt_unix_time(self, key: str) -> datetime | None:
        value = self.opt_integer(key)
        if value is None:
            return None
        if not _MIN_UNIX_S <= value <= _MAX_UNIX_S:
            raise MalformedEvent(f"{self._name(key)}: not a plausible unix time")
        return datetime.fromtimestamp(value, UTC)

    def iso_time(self, key: str) -> datetime | None:
        value = self.opt_text(key)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            parsed = parsed.astimezone(UTC)
        except (ValueError, OverflowError):  # year 1 or 9999 with an offset overflows
            raise MalformedEvent(f"{self._name(key)}: not an ISO 8601 time") from None
        if not _MIN_UNIX_S <= parsed.timestamp() <= _MAX_UNIX_S:
            raise MalformedEvent(f"{self._name(key)}: not a plausible time")
        return parsed

    def _required(self, key: str) -> Any:
        value = self.data.get(key)
        if value is None:
            raise MalformedEvent(f"{self._name(key)}: missing")
        return value
