"""Queue customer emails in the outbox: one row per dedup key, claimed before sending.

The row holds the template context, so the email says what was true when it was decided; of a
card-update link it holds what rebuilds it (:func:`dunning.links.link_ref`), never the link, a
bearer credential. The ``Message-ID`` is derived from the dedup key: a copy sent in SMTP's
crash window carries the same one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, update

from dunning.links import link_ref, url_from_ref
from dunning.mail.message import message_id_for
from dunning.policy.timing import email_time
from dunning.ports import Pipeline
from dunning.store.tables import notifications
from dunning.store.upsert import insert_ignore

# Emails about an invoice also go to the customer's additional billing addresses.
INVOICE_KINDS = frozenset(
    {
        "payment_failed",
        "action_required",
        "payment_retry_failed",
        "final_notice",
        "subscription_suspended",
        "payment_recovered",
    }
)


@dataclass(frozen=True, slots=True)
class EmailRequest:
    kind: str
    dedup_key: str
    customer: Mapping[Any, Any]
    context: dict[str, Any]
    invoice_id: str | None = None
    payment_method_id: str | None = None
    plan: str = "default"
    interval: str = "month"
    extra_cc: tuple[str, ...] = field(default_factory=tuple)
    # Hold the email until then (still out of quiet hours); ``None`` sends it now.
    not_before: datetime | None = None


def card_view(row: Mapping[Any, Any] | None) -> dict[str, Any] | None:
    """What an email may show of a card: network, last four, expiry. Never more."""
    if row is None:
        return None
    return {
        "network": row["network"],
        "last4": row["last4"],
        "exp_month": row["exp_month"],
        "exp_year": row["exp_year"],
    }


def link_for(
    c: Pipeline, customer: Mapping[Any, Any], purpose: str, now: datetime
) -> dict[str, Any]:
    """What rebuilds a signed card-update link bound to the customer and their current card
    generation (:func:`dunning.links.link_ref`)."""
    expires_at = now + timedelta(seconds=c.settings.link_ttl_s)
    return link_ref(purpose, int(customer["card_generation"]), expires_at)


def link_url(c: Pipeline, customer_id: str, ref: Mapping[str, Any]) -> str:
    """The link ``ref`` describes, under this deployment's public URL."""
    return url_from_ref(c.settings.link_secret, c.settings.public_base_url, customer_id, ref)


def plan_name(c: Pipeline, plan: str | None) -> str:
    """The plan's name as customers see it: the merchant's name for it (``brand.plan_names``),
    else its id made readable ("pro-monthly" -> "Pro Monthly"); "" for no plan."""
    if not plan:
        return ""
    named = c.settings.brand.plan_names.get(plan)
    if named:
        return named
    return " ".join(
        word[:1].upper() + word[1:] for word in plan.replace("_", "-").split("-") if word
    )


def context(
    customer: Mapping[Any, Any],
    *,
    plan: str = "",
    amount: int = 0,
    currency: str = "",
    card: Mapping[Any, Any] | None = None,
    new_card: Mapping[Any, Any] | None = None,
    update_link: Mapping[str, Any] | None = None,
    next_attempt_at: datetime | None = None,
    suspend_at: datetime | None = None,
    paid_at: datetime | None = None,
    invoice_id: str | None = None,
    expires_on: str | None = None,
) -> dict[str, Any]:
    """The render context every template receives (see ``dunning.mail.render``)."""
    return {
        "customer_name": customer["name"] or customer["email"],
        "timezone": customer["timezone"] or "UTC",
        "plan": plan,
        "amount": amount,
        "currency": currency,
        "card": card_view(card),
        "new_card": card_view(new_card),
        # The link is made again when the email is rendered (see ``rendering_context``).
        "update_url": None,
        "update_link": dict(update_link) if update_link else None,
        "next_attempt_at": next_attempt_at.isoformat() if next_attempt_at else None,
        "suspend_at": suspend_at.isoformat() if suspend_at else None,
        "paid_at": paid_at.isoformat() if paid_at else None,
        "invoice_id": invoice_id,
        "expires_on": expires_on,
    }


def rendering_context(c: Pipeline, customer_id: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored context with its card-update link made again from ``update_link``. (Rows
    written before links were stored so may hold ``update_url`` itself.)"""
    out = dict(stored)
    ref = out.pop("update_link", None)
    if ref:
        out["update_url"] = link_url(c, customer_id, ref)
    return out


def queue_emails(
    conn: Connection, c: Pipeline, requests: Sequence[EmailRequest], now: datetime
) -> list[int]:
    """Insert outbox rows (skipping dedup keys already there); return the new rows' ids."""
    rows = []
    for r in requests:
        policy = c.policy.for_plan(r.plan, r.interval)
        cc = list(r.extra_cc)
        if r.kind in INVOICE_KINDS:
            cc += [a for a in r.customer["billing_emails"] or [] if a != r.customer["email"]]
        rows.append(
            {
                "dedup_key": r.dedup_key,
                "kind": r.kind,
                "customer_id": r.customer["id"],
                "invoice_id": r.invoice_id,
                "payment_method_id": r.payment_method_id,
                "to_addr": r.customer["email"],
                "cc": cc,
                "locale": r.customer["locale"] or "en",
                "context": r.context,
                "status": "pending",
                "not_before": email_time(
                    max(r.not_before or now, now), r.customer["timezone"] or "UTC", policy
                ),
                "message_id": message_id_for(r.dedup_key, c.settings.mail_from),
                "created_at": now,
            }
        )
    ids = insert_ignore(
        conn, notifications, rows, conflict=["dedup_key"], returning=notifications.c.id
    )
    return [int(i) for i in ids]


def take_card_confirmations(
    conn: Connection, customer_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Cancel the card-updated emails still held for these customers and return each one's new
    card: the receipt of the payment the new card made confirms the card too (one email)."""
    held = conn.execute(
        update(notifications)
        .where(
            notifications.c.status == "pending",
            notifications.c.kind == "card_updated",
            notifications.c.customer_id.in_(list(customer_ids)),
        )
        .values(status="cancelled")
        .returning(notifications.c.customer_id, notifications.c.context)
    ).all()
    return {str(cid): dict(ctx["new_card"]) for cid, ctx in held if ctx.get("new_card")}


def release(
    conn: Connection, c: Pipeline, dedup_key: str, timezone: str, now: datetime
) -> list[int]:
    """Send a held email now (still out of quiet hours); returns its id while it is pending."""
    when = email_time(now, timezone or "UTC", c.policy.for_plan("default", "month"))
    ids = conn.execute(
        update(notifications)
        .where(notifications.c.dedup_key == dedup_key, notifications.c.status == "pending")
        .values(not_before=when)
        .returning(notifications.c.id)
    ).scalars()
    return [int(i) for i in ids]


def cancel_pending(
    conn: Connection,
    *,
    invoice_id: str | None = None,
    customer_id: str | None = None,
    payment_method_id: str | None = None,
    kinds: Sequence[str] | None = None,
) -> int:
    """Cancel emails not yet sent (a paid or cancelled invoice must not nag)."""
    stmt = update(notifications).where(notifications.c.status == "pending")
    if invoice_id is not None:
        stmt = stmt.where(notifications.c.invoice_id == invoice_id)
    if customer_id is not None:
        stmt = stmt.where(notifications.c.customer_id == customer_id)
    if payment_method_id is not None:
        stmt = stmt.where(notifications.c.payment_method_id == payment_method_id)
    if kinds:
        stmt = stmt.where(notifications.c.kind.in_(list(kinds)))
    return conn.execute(stmt.values(status="cancelled")).rowcount
