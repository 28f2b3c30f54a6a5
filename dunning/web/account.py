"""What a card-update link opens: the checked link and the customer's account as the page shows it.

A link is honoured when its signature and expiry hold, its card generation is still the
customer's, and the customer still has a subscription that is not cancelled (customers are
told they can change their card while the subscription is still recurring:
docs/customer-promises.md #9).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from dunning.bootstrap import Container

if TYPE_CHECKING:
    from sqlalchemy import Connection, RowMapping
from dunning.links import LinkClaims, LinkInvalid, verify_link_token
from dunning.store import accounts, rows
from dunning.store.tables import customers, payment_methods

GoneReason = Literal["expired", "used", "tampered", "cancelled"]
# The subscription a page is about: the one that most needs the customer.
_URGENCY = {"suspended": 0, "past_due": 1, "active": 2}


class LinkGone(Exception):
    """The link cannot be used; the page says why in the customer's language when known."""

    def __init__(self, reason: GoneReason, locale: str | None = None) -> None:
        super().__init__(f"link is {reason}")
        self.reason: GoneReason = reason
        self.locale = locale


@dataclass(frozen=True)
class Account:
    customer: RowMapping
    subscription: RowMapping
    card: RowMapping | None
    due: tuple[tuple[int, str], ...]  # (amount in minor units, currency), one per currency

    @property
    def customer_id(self) -> str:
        return str(self.customer["id"])

    @property
    def locale(self) -> str:
        return str(self.customer["locale"] or "en")

    @property
    def suspended(self) -> bool:
        return bool(self.subscription["status"] == "suspended")

    @property
    def owes(self) -> bool:
        return any(amount > 0 for amount, _ in self.due)


def check_link(c: Container, token: str, now: datetime) -> LinkClaims:
    """Signature and expiry only; ``tampered`` covers a malformed token too."""
    try:
        return verify_link_token(c.settings.link_secret, token, now=now)
    except LinkInvalid as exc:
        raise LinkGone("expired" if exc.reason == "expired" else "tampered") from None


def open_link(c: Container, token: str, now: datetime, *, current: bool = True) -> Account:
    """The account a link opens; raises :class:`LinkGone`.

    ``current=False`` skips the card-generation check: the result page after a card change
    still opens, while the form itself is gone.
    """
    claims = check_link(c, token, now)
    with c.engine.connect() as conn:
        customer = rows.find(conn, customers, claims.customer_id)
        if customer is None:
            raise LinkGone("tampered")
        locale = customer["locale"]
        if current and not claims.is_current(int(customer["card_generation"])):
            raise LinkGone("used", locale)
        account = load_account(conn, customer)
    if account is None:
        raise LinkGone("cancelled", locale)
    return account


def load_account(conn: Connection, customer: RowMapping) -> Account | None:
    """The customer's most urgent live subscription, card and amount due; ``None`` if none."""
    customer_id = str(customer["id"])
    live = sorted(
        accounts.live_subscriptions(conn, customer_id),
        key=lambda s: (_URGENCY.get(s["status"], 3), s["created_at"]),
    )
    if not live:
        return None
    sub = live[0]
    card = rows.find(conn, payment_methods, sub["payment_method_id"] or "")
    if card is None or card["status"] != "active":
        card = accounts.default_card(conn, customer_id)
    return Account(customer, sub, card, accounts.owed_by_currency(conn, customer_id))


def chargeable_card(account: Account) -> RowMapping | None:
    """The current card when it can still be charged (a token, nothing blocking it)."""
    card = account.card
    if card is None or not card["token"] or card["blocked_reason"]:
        return None
    return card
