"""Finishing a card update from the gateway's side: the customer passed their bank's 3-D
Secure challenge on the card page's card check but never came back to the page.

Stripe reports the SetupIntent as succeeded (``setup_intent.succeeded``) and, separately, the
card it attached (``payment_method.attached``, which records the card). Once both are in, the
card becomes the customer's card and what is owed is paid, as the page would have done; the old
card is kept (the customer's choice to remove it was on the page). When the page got there
first, the event changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from dunning.gateways.base import CardToken
from dunning.model import CardStatus
from dunning.ports import Pipeline
from dunning.services.cards import replace_card
from dunning.store.tables import customers, payment_methods
from dunning.webhooks import events as ev

log = logging.getLogger(__name__)

# How long the confirmation waits for the card's own event before it is given up.
WAIT_FOR_CARD = timedelta(hours=1)


def card_confirmed(c: Pipeline, event: ev.CardConfirmed, now: datetime) -> str:
    """Make the confirmed card the customer's and pay what is owed. Returns ``card_updated``,
    ``ignored`` (unknown customer, already done, or the card never recorded) or ``deferred``
    (the card's own event is not in yet)."""
    with c.engine.connect() as conn:
        customer_id = conn.execute(
            select(customers.c.id).where(customers.c.stripe_customer_id == event.customer_ref)
        ).scalar()
        card = (
            conn.execute(
                select(payment_methods).where(
                    payment_methods.c.id == event.payment_method_ref,
                    payment_methods.c.customer_id == customer_id,
                )
            )
            .mappings()
            .first()
        )
    if customer_id is None:
        return "ignored"
    if card is None:
        if now - event.occurred_at < WAIT_FOR_CARD:
            return "deferred"
        log.warning("card %s confirmed at the gateway was never recorded", event.payment_method_ref)
        return "ignored"
    if card["status"] != CardStatus.active or card["is_default"]:
        return "ignored"  # removed since, or the card page already made it the card
    token = CardToken(
        card["token"], card["network"], card["last4"], card["exp_month"], card["exp_year"]
    )
    result = replace_card(
        c,
        customer_id,
        token,
        remove_old=False,
        now=now,
        verified=True,
        payment_method_id=card["id"],
    )
    log.info("card confirmed at the gateway for customer %s: %s", customer_id, result.charged)
    return "card_updated"
