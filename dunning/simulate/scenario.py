"""The scenario format of ``docs/scenario-format.md``, validated; unknown keys and bad values are
refused with the path that names them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from dunning.errors import UsageError
from dunning.simulate.references import reference_problems


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (for example 2026-01-01T00:00:00Z)")
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


Aware = Annotated[datetime, AfterValidator(_aware)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeclineSpec(Strict):
    decline_code: str
    network_code: str | None = None
    advice_code: Literal["do_not_try_again", "confirm_card_data", "try_again_later"] | None = None
    network_advice_code: str | None = None


class ErrorSpec(Strict):
    error: Literal["timeout", "unavailable"]
    charged: bool = False


Outcome = Literal["succeeded"] | DeclineSpec | ErrorSpec


class PaymentMethodSpec(Strict):
    id: str
    network: Literal["visa", "mastercard", "amex", "unknown"] = "visa"
    last4: Annotated[str, Field(pattern=r"^\d{4}$")]
    exp_month: Annotated[int, Field(ge=1, le=12)]
    exp_year: Annotated[int, Field(ge=2000, le=2100)]
    default: bool = False
    outcomes: list[Outcome] | None = None


class SubscriptionSpec(Strict):
    id: str
    plan: str
    amount: Annotated[int, Field(ge=0)]
    currency: Currency
    interval: Literal["month", "year"] = "month"
    payment_method: str | None = None
    status: Literal["active", "past_due", "suspended", "cancelled"] = "active"
    last_payment_at: Aware | None = None
    current_period_end: Aware | None = None


class CustomerSpec(Strict):
    id: str
    email: str
    name: str = ""
    locale: str = "en"
    timezone: Annotated[str, AfterValidator(_zone)] = "UTC"
    billing_emails: list[str] = Field(default_factory=list)
    payment_methods: list[PaymentMethodSpec] = Field(default_factory=list)
    subscriptions: list[SubscriptionSpec] = Field(default_factory=list)

    @field_validator("payment_methods")
    @classmethod
    def _one_default(cls, cards: list[PaymentMethodSpec]) -> list[PaymentMethodSpec]:
        if sum(card.default for card in cards) > 1:
            raise ValueError("at most one payment method may be the default")
        return cards


class CardSpec(Strict):
    number: str
    exp_month: Annotated[int, Field(ge=1, le=12)]
    exp_year: Annotated[int, Field(ge=2000, le=2100)]
    cvc: str | None = None  # accepted like a form field and dropped at once


class PaymentFailed(Strict):
    at: Aware
    type: Literal["payment_failed"]
    subscription: str
    invoice: str
    amount: Annotated[int, Field(ge=0)]
    decline: DeclineSpec | None = None


class CardUpdated(Strict):
    at: Aware
    type: Literal["card_updated"]
    customer: str
    card: CardSpec
    remove_old: bool = False


class PaymentSucceeded(Strict):
    at: Aware
    type: Literal["payment_succeeded"]
    invoice: str


class SubscriptionCancelled(Strict):
    at: Aware
    type: Literal["subscription_cancelled"]
    subscription: str


class CardAutoUpdated(Strict):
    at: Aware
    type: Literal["card_auto_updated"]
    payment_method: str
    exp_month: Annotated[int, Field(ge=1, le=12)]
    exp_year: Annotated[int, Field(ge=2000, le=2100)]


Event = Annotated[
    PaymentFailed | CardUpdated | PaymentSucceeded | SubscriptionCancelled | CardAutoUpdated,
    Field(discriminator="type"),
]


class Scenario(Strict):
    start: Aware
    days: Annotated[int, Field(ge=1, le=3660)]
    policy: dict[str, Any] = Field(default_factory=dict)
    customers: list[CustomerSpec] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_scenario(data: Any) -> Scenario:
    """Validate a scenario and its references; raise :class:`UsageError` naming every bad key
    and every id that names nothing."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        lines = [f"{_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()[:20]]
        raise UsageError("bad scenario:\n  " + "\n  ".join(lines)) from None
    problems = reference_problems(scenario)
    if problems:
        raise UsageError("bad scenario:\n  " + "\n  ".join(problems[:20]))
    return scenario


def load_scenario(path: Path) -> Scenario:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read scenario {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_scenario(data)
