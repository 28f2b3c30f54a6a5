"""Replacing a customer's card: verify, make default, attach, remove the old one, charge the
open invoices at once, reactivate when paid, confirm by email. The web page and the simulation
both call :func:`replace_card`."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update

from dunning.bootstrap import Container
from dunning.errors import PermanentError
from dunning.gateways.base import CardToken, Decline
from dunning.model import Initiator
from dunning.services import charging, notify, outbound
from dunning.services.audit import record
from dunning.store import queries
from dunning.store.tables import customers, invoices, payment_methods, subscriptions
from dunning.store.uow import after_commit, transaction

log = logging.getLogger(__name__)


class CardDeclined(PermanentError):
    """The new card failed verification; nothing was changed."""

    def __init__(self, decline: Decline | None, *, requires_action: bool = False) -> None:
        code = decline.decline_code if decline else "declined"
        super().__init__(f"the card was declined at verification ({code})")
        self.decline = decline
        self.requires_action = requires_action


@dataclass
class ReplaceResult:
    payment_method_id: str
    charged: dict[str, str] = field(default_factory=dict)  # invoice -> succeeded/declined/...
    reactivated: list[str] = field(default_factory=list)


def replace_card(
    c: Container,
    customer_id: str,
    card: CardToken,
    *,
    remove_old: bool,
    now: datetime,
    gateway: str | None = None,
    payment_method_id: str | None = None,
) -> ReplaceResult:
    """Verify ``card`` and make it the customer's card; charge open invoices at once."""
    with c.engine.connect() as conn:
        cust = queries.customer(conn, customer_id)
        currency = (
            conn.execute(
                select(subscriptions.c.currency).where(subscriptions.c.customer_id == customer_id)
            ).scalar()
            or "USD"
        )
    verdict = c.gateway.verify(card.token, customer_id=customer_id, currency=currency)
    if not verdict.ok:
        log.info("card verification declined for customer %s", customer_id)
        raise CardDeclined(verdict.decline, requires_action=verdict.requires_action)
    pm_id = payment_method_id or "pm_" + uuid.uuid4().hex[:16]
    removed_tokens: list[str] = []
    with transaction(c.engine) as conn:
        # Every active card, blocked ones too: a declined card is the one most worth removing.
        old = queries.active_cards(conn, customer_id)
        old_default = next((r for r in old if r["is_default"]), None)
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.customer_id == customer_id)
            .values(is_default=False)
        )
        conn.execute(
            payment_methods.insert().values(
                id=pm_id,
                customer_id=customer_id,
                gateway=gateway or c.gateway.name,
                token=card.token,
                network=card.network,
                last4=card.last4,
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                is_default=True,
                status="active",
                created_at=now,
                updated_at=now,
            )
        )
        record(
            conn,
            "card_added",
            now,
            customer_id=customer_id,
            payment_method_id=pm_id,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            customer=customer_id,
            payment_method=pm_id,
        )
        conn.execute(
            update(subscriptions)
            .where(
                subscriptions.c.customer_id == customer_id, subscriptions.c.status != "cancelled"
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
        if remove_old:
            for row in old:
                conn.execute(
                    update(payment_methods)
                    .where(payment_methods.c.id == row["id"])
                    .values(status="removed", is_default=False, updated_at=now)
                )
                record(
                    conn,
                    "card_removed",
                    now,
                    customer_id=customer_id,
                    payment_method_id=row["id"],
                    last4=row["last4"],
                    exp_month=row["exp_month"],
                    exp_year=row["exp_year"],
                    customer=customer_id,
                    payment_method=row["id"],
                )
                if row["token"]:
                    removed_tokens.append(row["token"])
        # Expiry reminders held until their morning are about a card no longer in use.
        notify.cancel_pending(conn, customer_id=customer_id, kinds=["card_expiring"])
        cust = queries.customer(conn, customer_id)
        new_row = queries.card(conn, pm_id)
        ctx = notify.context(cust, card=old_default, new_card=new_row)
        ids = notify.queue_emails(
            conn,
            c,
            [
                notify.EmailRequest(
                    "card_updated", f"card_updated:{pm_id}", cust, ctx, payment_method_id=pm_id
                )
            ],
            now,
        )
        if ids:
            after_commit(conn, lambda: c.dispatcher.send_notifications(ids))
        outbound.card_updated(conn, customer_id, new_row, old_default, now)
    for token in removed_tokens:
        c.gateway.delete_token(token)
    result = ReplaceResult(pm_id)
    pay_open_invoices(c, customer_id, pm_id, now, result)
    return result


def pay_open_invoices(
    c: Container, customer_id: str, pm_id: str, now: datetime, result: ReplaceResult
) -> None:
    """Charge what is owed at once, as customer-initiated charges on the new card."""
    with c.engine.connect() as conn:
        owed = list(
            conn.execute(
                select(invoices.c.id)
                .where(
                    invoices.c.customer_id == customer_id,
                    invoices.c.status.in_(["open", "uncollectible"]),
                )
                .order_by(invoices.c.created_at)
            ).scalars()
        )
    for invoice_id in owed:
        with transaction(c.engine) as conn:
            inv = queries.invoice(conn, invoice_id, lock=True)
            if charging.in_flight(conn, invoice_id):
                result.charged[invoice_id] = "in_flight"
                continue
            prepared = charging.prepare(
                conn,
                c,
                inv,
                queries.card(conn, pm_id),
                initiator=Initiator.customer,
                reason="card_updated",
                now=now,
            )
        if prepared is None:
            result.charged[invoice_id] = "not_allowed"
            continue
        outcome = charging.execute(c, prepared, now)
        result.charged[invoice_id] = outcome.status if outcome else "unknown"
        if outcome and outcome.succeeded:
            result.reactivated.append(invoice_id)
