"""Replacing a customer's card: verify, make default, attach, remove the old one, charge what
is owed at once (through :func:`dunning.services.charging.charge`, like every charge),
reactivate when paid, confirm by email. The web page and the simulation both call
:func:`replace_card`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from dunning.errors import NotFound, PermanentError
from dunning.gateways.base import CardToken, Decline
from dunning.model import CardStatus, Initiator, SubscriptionStatus
from dunning.ports import Pipeline
from dunning.services import notify, outbound
from dunning.services.audit import audit_row, record_many
from dunning.services.charging import ChargeOrder, charge
from dunning.services.gateway_calls import gateway_refs
from dunning.store import rows
from dunning.store.cards import active_cards
from dunning.store.invoices import owed_by
from dunning.store.tables import customers, invoices, payment_methods, subscriptions
from dunning.store.uow import after_commit, transaction

log = logging.getLogger(__name__)
# How long a card-updated email waits for the charge it may be folded into; if the process
# stops in between, it is sent when this runs out.
CONFIRMATION_HOLD = timedelta(minutes=10)


class CardDeclined(PermanentError):
    """The new card failed verification; nothing was changed."""

    def __init__(
        self,
        decline: Decline | None,
        *,
        requires_action: bool = False,
        action_ref: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        code = decline.decline_code if decline else "declined"
        super().__init__(f"the card was declined at verification ({code})")
        self.decline = decline
        self.requires_action = requires_action
        # What the customer's browser confirms (3-D Secure): the gateway's intent, its secret.
        self.action_ref = action_ref
        self.client_secret = client_secret


@dataclass
class ReplaceResult:
    payment_method_id: str
    charged: dict[str, str] = field(default_factory=dict)  # invoice -> succeeded/declined/...
    reactivated: list[str] = field(default_factory=list)


def replace_card(
    c: Pipeline,
    customer_id: str,
    card: CardToken,
    *,
    remove_old: bool,
    now: datetime,
    gateway: str | None = None,
    payment_method_id: str | None = None,
    verified: bool = False,
) -> ReplaceResult:
    """Verify ``card`` (unless the caller read a verification from the gateway itself:
    ``verified``, a 3-D Secure challenge the gateway says succeeded) and make it the
    customer's card; charge what is owed at once."""
    if not verified:
        _verify(c, customer_id, card)
    pm_id = payment_method_id or "pm_" + uuid.uuid4().hex[:16]
    with transaction(c.engine) as conn:
        # Every active card, blocked ones too: a declined card is the one most worth removing.
        old = [
            r
            for r in active_cards(conn, customer_id)
            if r["id"] != pm_id and r["token"] != card.token
        ]
        new_row = _attach(conn, customer_id, pm_id, card, gateway or c.gateway.name, now)
        removed = _remove(conn, customer_id, old, now) if remove_old else []
        _confirm(
            conn, c, customer_id, new_row, next((r for r in old if r["is_default"]), None), now
        )
    for token in removed:
        c.gateway.delete_token(token)
    result = ReplaceResult(pm_id)
    pay_open_invoices(c, customer_id, pm_id, now, result)
    if "succeeded" not in result.charged.values():
        _release_confirmation(c, customer_id, pm_id, now)
    return result


def _verify(c: Pipeline, customer_id: str, card: CardToken) -> None:
    with c.engine.connect() as conn:
        customer = rows.get(conn, customers, customer_id)
        currency = conn.execute(
            select(subscriptions.c.currency).where(subscriptions.c.customer_id == customer_id)
        ).scalar()
    customer_ref, _ = gateway_refs(c.gateway.name, customer)
    if customer_ref is None:
        raise NotFound(f"customer {customer_id!r} has no {c.gateway.name} customer id")
    verdict = c.gateway.verify(card.token, customer_id=customer_ref, currency=currency or "USD")
    if not verdict.ok:
        log.info("card verification declined for customer %s", customer_id)
        raise CardDeclined(
            verdict.decline,
            requires_action=verdict.requires_action,
            action_ref=verdict.action_ref,
            client_secret=verdict.client_secret,
        )


def _card_audit(
    kind: str, customer_id: str, card: Mapping[Any, Any], now: datetime
) -> dict[str, Any]:
    return audit_row(
        kind, now, customer_id=customer_id, payment_method_id=card["id"], last4=card["last4"],
        exp_month=card["exp_month"], exp_year=card["exp_year"], customer=customer_id,
        payment_method=card["id"],
    )  # fmt: skip


def _attach(
    conn: Connection, customer_id: str, pm_id: str, card: CardToken, gateway: str, now: datetime
) -> Mapping[Any, Any]:
    """The new card becomes the default and the card of every live subscription; a retry the
    policy had moved to another card comes back to it; older links stop working."""
    conn.execute(
        update(payment_methods)
        .where(payment_methods.c.customer_id == customer_id)
        .values(is_default=False)
    )
    values = {
        "gateway": gateway,
        "token": card.token,
        "network": card.network,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "is_default": True,
        "status": CardStatus.active.value,
        "updated_at": now,
    }
    # A card the gateway's webhook recorded first (Stripe's payment_method.attached, keyed by
    # the same id) is taken over, not recorded twice.
    known = conn.execute(
        update(payment_methods)
        .where(payment_methods.c.id == pm_id, payment_methods.c.customer_id == customer_id)
        .values(**values)
        .returning(*payment_methods.c)
    )
    new_row = known.mappings().first() or (
        conn.execute(
            payment_methods.insert()
            .values(id=pm_id, customer_id=customer_id, created_at=now, **values)
            .returning(*payment_methods.c)
        )
        .mappings()
        .one()
    )
    record_many(conn, [_card_audit("card_added", customer_id, new_row, now)])
    _point_to(conn, customer_id, pm_id, now)
    return new_row


def _point_to(conn: Connection, customer_id: str, pm_id: str, now: datetime) -> None:
    conn.execute(
        update(subscriptions)
        .where(
            subscriptions.c.customer_id == customer_id,
            subscriptions.c.status != SubscriptionStatus.cancelled.value,
        )
        .values(payment_method_id=pm_id, updated_at=now)
    )
    conn.execute(
        update(invoices)
        .where(invoices.c.customer_id == customer_id, invoices.c.status == "open")
        .values(retry_payment_method_id=None)
    )
    conn.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(card_generation=customers.c.card_generation + 1, updated_at=now)
    )


def _remove(
    conn: Connection, customer_id: str, old: Sequence[Mapping[Any, Any]], now: datetime
) -> list[str]:
    """Remove the customer's other cards; return their tokens (deleted at the gateway after
    the commit)."""
    if not old:
        return []
    conn.execute(
        update(payment_methods)
        .where(payment_methods.c.id.in_([r["id"] for r in old]))
        .values(status=CardStatus.removed.value, is_default=False, updated_at=now)
    )
    record_many(conn, [_card_audit("card_removed", customer_id, row, now) for row in old])
    return [row["token"] for row in old if row["token"]]


def _confirm(
    conn: Connection,
    c: Pipeline,
    customer_id: str,
    new_row: Mapping[Any, Any],
    old_default: Mapping[Any, Any] | None,
    now: datetime,
) -> None:
    """The card-updated email and the merchant's ``card.updated`` event."""
    # Expiry reminders held until their morning are about a card no longer in use.
    notify.cancel_pending(conn, customer_id=customer_id, kinds=["card_expiring"])
    cust = rows.get(conn, customers, customer_id)
    ctx = notify.context(
        cust, plan=_plans(conn, c, customer_id), card=old_default, new_card=new_row
    )
    # With an invoice to pay, the email waits for the charge: a paid invoice's receipt
    # confirms the card too (one email, not two); otherwise it is released right after.
    owed = bool(owed_by(conn, customer_id))
    request = notify.EmailRequest(
        "card_updated", f"card_updated:{new_row['id']}", cust, ctx, payment_method_id=new_row["id"],
        not_before=now + CONFIRMATION_HOLD if owed else None,
    )  # fmt: skip
    ids = notify.queue_emails(conn, c, [request], now)
    if ids and not owed:
        after_commit(conn, lambda: c.dispatcher.send_notifications(ids))
    outbound.card_updated(conn, customer_id, new_row, old_default, now)


def _plans(conn: Connection, c: Pipeline, customer_id: str) -> str:
    """The names of the plans the new card pays for, as customers see them."""
    plans = conn.execute(
        select(subscriptions.c.plan)
        .where(
            subscriptions.c.customer_id == customer_id,
            subscriptions.c.status != SubscriptionStatus.cancelled.value,
        )
        .distinct()
    ).scalars()
    return ", ".join(sorted(notify.plan_name(c, p) for p in plans))


def _release_confirmation(c: Pipeline, customer_id: str, pm_id: str, now: datetime) -> None:
    """No invoice was paid: the held card-updated email goes now."""
    with transaction(c.engine) as conn:
        tz = rows.get(conn, customers, customer_id)["timezone"]
        ids = notify.release(conn, c, f"card_updated:{pm_id}", tz, now)
        if ids:
            after_commit(conn, lambda: c.dispatcher.send_notifications(ids))


def pay_open_invoices(
    c: Pipeline, customer_id: str, pm_id: str, now: datetime, result: ReplaceResult
) -> None:
    """Charge what is owed at once, oldest first, as customer-initiated charges on the card."""
    with c.engine.connect() as conn:
        owed = owed_by(conn, customer_id)
    orders = [ChargeOrder(i, Initiator.customer, "card_updated", card_id=pm_id) for i in owed]
    for invoice_id, outcome in charge(c, orders, now).items():
        result.charged[invoice_id] = outcome
        if outcome == "succeeded":
            result.reactivated.append(invoice_id)
