"""Load a scenario's customers into the store and script the sandbox's answers."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import insert

from dunning.bootstrap import Container
from dunning.gateways.sandbox import SandboxGateway
from dunning.simulate.scenario import CustomerSpec, PaymentMethodSpec, Scenario, SubscriptionSpec
from dunning.store.tables import customers, payment_methods, subscriptions


def sandbox_token(card_id: str) -> str:
    """A token that succeeds unless scripted, with the card id as its suffix."""
    return "sbx_ok_" + (re.sub(r"[^a-z0-9]", "", card_id.lower()) or "card")


def load_book(c: Container, scenario: Scenario, gateway: SandboxGateway) -> None:
    ts = {"created_at": scenario.start, "updated_at": scenario.start}
    cust_rows: list[dict[str, Any]] = []
    card_rows: list[dict[str, Any]] = []
    sub_rows: list[dict[str, Any]] = []
    for cust in scenario.customers:
        cust_rows.append(_customer_row(cust) | ts)
        default = next((pm.id for pm in cust.payment_methods if pm.default), None)
        if default is None and cust.payment_methods:
            default = cust.payment_methods[0].id
        for pm in cust.payment_methods:
            card_rows.append(_card_row(cust.id, pm, default, gateway) | ts)
        for sub in cust.subscriptions:
            sub_rows.append(_subscription_row(cust.id, sub, default) | ts)
    with c.engine.begin() as conn:
        for table, rows in (
            (customers, cust_rows),
            (payment_methods, card_rows),
            (subscriptions, sub_rows),
        ):
            if rows:
                conn.execute(insert(table), rows)


def _customer_row(cust: CustomerSpec) -> dict[str, Any]:
    paid = [s.last_payment_at for s in cust.subscriptions if s.last_payment_at]
    return {
        "id": cust.id,
        "email": cust.email,
        "name": cust.name,
        "locale": cust.locale,
        "timezone": cust.timezone,
        "billing_emails": list(cust.billing_emails),
        "card_generation": 0,
        "last_payment_at": max(paid) if paid else None,
    }


def _card_row(
    customer_id: str, pm: PaymentMethodSpec, default: str | None, gateway: SandboxGateway
) -> dict[str, Any]:
    """The card's row; its scripted answers, if any, go to the sandbox under its token."""
    token = sandbox_token(pm.id)
    if pm.outcomes:
        answers = [
            o if isinstance(o, str) else o.model_dump(exclude_none=True) for o in pm.outcomes
        ]
        gateway.script(token, answers)
    return {
        "id": pm.id,
        "customer_id": customer_id,
        "gateway": "sandbox",
        "token": token,
        "network": pm.network,
        "last4": pm.last4,
        "exp_month": pm.exp_month,
        "exp_year": pm.exp_year,
        "is_default": pm.id == default,
        "status": "active",
    }


def _subscription_row(
    customer_id: str, sub: SubscriptionSpec, default: str | None
) -> dict[str, Any]:
    return {
        "id": sub.id,
        "customer_id": customer_id,
        "plan": sub.plan,
        "amount": sub.amount,
        "currency": sub.currency,
        "interval": sub.interval,
        "status": sub.status,
        "payment_method_id": sub.payment_method or default,
        "current_period_end": sub.current_period_end,
        "last_payment_at": sub.last_payment_at,
    }
