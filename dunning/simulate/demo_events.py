"""What happens to one customer of the demo book: renewals, a failure, and what the customer does
about it. Appends scenario events to the book.

Whether a retry of the failed card gets through is not decided here: the what-if outcome model
answers it when the pipeline makes the retry (``dunning.whatif``), so it depends on when the
policy retries. What the customers do (update their card, pay some other way, cancel) is
decided here, at times that do not depend on the policy.
"""

from __future__ import annotations

import random
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dunning.simulate.scenario import (
    CardAutoUpdated,
    CardSpec,
    CardUpdated,
    DeclineSpec,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionCancelled,
)

if TYPE_CHECKING:
    from dunning.simulate.demo_book import Book

# decline, kind, weight
DECLINES: list[tuple[dict[str, str], str, int]] = [
    ({"decline_code": "insufficient_funds", "network_code": "51"}, "soft", 40),
    ({"decline_code": "card_velocity_exceeded", "network_code": "61"}, "soft", 4),
    ({"decline_code": "processing_error", "network_code": "96"}, "soft", 6),
    ({"decline_code": "withdrawal_count_limit_exceeded"}, "soft", 3),
    ({"decline_code": "do_not_honor", "network_code": "05"}, "weak", 12),
    ({"decline_code": "generic_decline", "network_code": "05"}, "weak", 12),
    ({"decline_code": "expired_card", "network_code": "54"}, "new_card", 8),
    ({"decline_code": "incorrect_cvc", "network_code": "N7"}, "new_card", 3),
    ({"decline_code": "lost_card", "network_code": "41"}, "hard", 3),
    ({"decline_code": "stolen_card", "network_code": "43"}, "hard", 2),
]
EXPIRED = ({"decline_code": "expired_card", "network_code": "54"}, "new_card", 1)
# Share of customers who update their card after a failure, by kind of decline: those told
# their card must change act more often (the "action required" email asks them to).
UPDATES = {"soft": 0.2, "weak": 0.25, "new_card": 0.45, "hard": 0.45}
GOOD_CARDS = ["4242424242424242", "5555555555554444"]
DECLINING_CARD = "4000000000000002"
TIMEOUTS = 0.02
FAILURE_RATE = 0.09  # of renewal charges; card-on-file renewals fail about 5-15 % of the time
CHURN = 0.015


@dataclass
class Customer:
    id: str
    subscription: str
    timezone: str
    amount: int
    interval: str
    renewal: datetime
    cards: list[dict[str, Any]]
    expiring: bool


def _daytime(at: datetime, tz: str, rng: random.Random) -> datetime:
    """``at`` moved into the customer's waking day: people update cards at 09:00-21:00."""
    local = at.astimezone(ZoneInfo(tz))
    if not 9 <= local.hour < 21:
        day = local.date() + timedelta(days=1 if local.hour >= 21 else 0)
        local = datetime(day.year, day.month, day.day, 9, tzinfo=ZoneInfo(tz))
        local += timedelta(minutes=rng.randrange(0, 11 * 60))
    return local.astimezone(UTC).replace(second=0, microsecond=0)


def _new_card(rng: random.Random, number: str | None = None) -> CardSpec:
    return CardSpec(
        number=number or rng.choice(GOOD_CARDS),
        exp_month=rng.randint(1, 12),
        exp_year=rng.randint(2028, 2032),
    )


def _update_card(book: Book, cu: Customer, at: datetime) -> datetime:
    rng = book.rng
    at = _daytime(at, cu.timezone, rng)
    if rng.random() < 0.06:  # a card the bank refuses first, the right one a little later
        book.events.append(_updated(cu, at, _new_card(rng, DECLINING_CARD)))
        at += timedelta(minutes=rng.randrange(10, 180))
    book.events.append(_updated(cu, at, _new_card(rng)))
    return at


def _updated(cu: Customer, at: datetime, card: CardSpec) -> CardUpdated:
    return CardUpdated(at=at, type="card_updated", customer=cu.id, card=card, remove_old=True)


def _lose_an_answer(rng: random.Random, card: dict[str, Any]) -> None:
    """Now and then the gateway's answer to the first retry is lost (and the charge went
    through or not); the outcome model answers the retries after it."""
    if rng.random() < TIMEOUTS:
        card["outcomes"] = [{"error": "timeout", "charged": rng.random() < 0.5}]


def _react(book: Book, cu: Customer, failed_at: datetime, kind: str) -> None:
    """What the customer does about the failure, whatever the retries do meanwhile."""
    rng = book.rng
    roll = rng.random()
    update_share = UPDATES[kind]
    if roll < update_share:
        _update_card(book, cu, failed_at + timedelta(days=rng.uniform(0.1, 8)))
    elif roll < update_share + 0.08:
        at = failed_at + timedelta(days=rng.uniform(1, 25))
        invoice = f"in_{cu.subscription}"
        book.events.append(PaymentSucceeded(at=at, type="payment_succeeded", invoice=invoice))
    elif roll < update_share + 0.15:
        at = failed_at + timedelta(days=rng.uniform(0.5, 12))
        book.events.append(
            SubscriptionCancelled(
                at=at, type="subscription_cancelled", subscription=cu.subscription
            )
        )


def _fail(book: Book, cu: Customer, at: datetime, row: tuple[dict[str, str], str, int]) -> None:
    rng = book.rng
    decline, kind, _ = row
    card = cu.cards[0]
    if card["network"] == "mastercard" and kind == "soft" and rng.random() < 0.25:
        decline = decline | {"network_advice_code": rng.choice(["02", "24", "25", "26"])}
    _lose_an_answer(rng, card)
    book.events.append(
        PaymentFailed(
            at=at,
            type="payment_failed",
            subscription=cu.subscription,
            invoice=f"in_{cu.subscription}",
            amount=cu.amount,
            decline=DeclineSpec.model_validate(decline),
        )
    )
    _react(book, cu, at, kind)


def _expiry_handled(book: Book, cu: Customer) -> datetime | None:
    """A card expiring soon: the customer replaces it after a reminder, an account updater
    refreshes it, or nothing happens and the renewal after the expiry fails."""
    rng, card = book.rng, cu.cards[0]
    roll = rng.random()
    if roll < 0.45:
        return _update_card(book, cu, book.start + timedelta(days=rng.uniform(1.5, 25)))
    if roll < 0.6:
        at = book.start + timedelta(days=rng.uniform(0, 25))
        book.events.append(
            CardAutoUpdated(
                at=at,
                type="card_auto_updated",
                payment_method=card["id"],
                exp_month=card["exp_month"],
                exp_year=card["exp_year"] + 3,
            )
        )
        return at
    return None


def plan_customer(book: Book, cu: Customer) -> None:
    """Renewals inside the window; at most one of them fails (a failed one stops renewals)."""
    rng, card = book.rng, cu.cards[0]
    period = timedelta(days=30 if cu.interval == "month" else 365)
    renewals = [cu.renewal + k * period for k in range(3)]
    renewals = [r for r in renewals if r < book.end - timedelta(hours=1)]
    fixed_at = _expiry_handled(book, cu) if cu.expiring else None
    last_day = monthrange(card["exp_year"], card["exp_month"])[1]
    expires = datetime(card["exp_year"], card["exp_month"], last_day, 23, 59, tzinfo=UTC)
    if rng.random() < CHURN:
        at = book.start + timedelta(days=rng.uniform(0, (book.end - book.start).days))
        book.events.append(
            SubscriptionCancelled(
                at=at, type="subscription_cancelled", subscription=cu.subscription
            )
        )
        renewals = [r for r in renewals if r < at]
    for at in renewals:
        if expires < at and (fixed_at is None or fixed_at > at):
            _fail(book, cu, at, EXPIRED)
            return
        if rng.random() < FAILURE_RATE:
            _fail(book, cu, at, rng.choices(DECLINES, weights=[d[-1] for d in DECLINES])[0])
            return
