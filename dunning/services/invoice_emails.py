"""Emails about an invoice (payment failed, action required, reminders, final notice,
suspension, recovery), built from cases already read and queued in the outbox.

An email promises only what will happen: the next retry when one is scheduled before the
suspension, the suspension day while it is still ahead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from dunning.policy.schedule import window_end
from dunning.ports import Pipeline
from dunning.services import notify
from dunning.services.case import Case
from dunning.store.uow import after_commit

# The kinds whose link reactivates a suspended subscription rather than only updating a card.
_REACTIVATE = frozenset({"subscription_suspended"})
_NO_LINK = frozenset({"payment_recovered"})


def _promises(
    case: Case, c: Pipeline, now: datetime, next_attempt_at: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The next retry and the suspension day an email may still promise at ``now``."""
    inv = case.invoice
    suspend_at = None
    if inv["first_failed_at"] is not None:
        suspend_at = window_end(inv["first_failed_at"], case.timezone, case.policy(c.policy))
    retry = next_attempt_at or inv["next_attempt_at"]
    if retry is not None and (retry <= now or (suspend_at is not None and retry >= suspend_at)):
        retry = None
    return retry, suspend_at


def _request(
    c: Pipeline,
    kind: str,
    case: Case,
    now: datetime,
    *,
    dedup_suffix: str,
    next_attempt_at: datetime | None,
    paid_at: datetime | None,
    new_card: Mapping[str, Any] | None = None,
) -> notify.EmailRequest:
    cust, sub = case.customer, case.subscription
    retry, suspend_at = _promises(case, c, now, next_attempt_at)
    purpose = "reactivate" if kind in _REACTIVATE else "update_card"
    link = None if kind in _NO_LINK else notify.link_for(c, cust, purpose, now)
    ctx = notify.context(
        cust,
        plan=notify.plan_name(c, sub["plan"]),
        amount=case.invoice["amount"],
        currency=case.invoice["currency"],
        card=case.card,
        update_link=link,
        next_attempt_at=retry,
        suspend_at=suspend_at,
        paid_at=paid_at,
        invoice_id=case.id,
    )
    if new_card is not None:
        ctx["new_card"] = dict(new_card)
    key = f"{kind}:{case.id}" + (f":{dedup_suffix}" if dedup_suffix else "")
    return notify.EmailRequest(
        kind, key, cust, ctx, invoice_id=case.id, plan=sub["plan"], interval=sub["interval"]
    )


def queue_invoice_emails(
    conn: Connection,
    c: Pipeline,
    kind: str,
    cases: Sequence[Case],
    now: datetime,
    *,
    dedup_suffix: str = "",
    next_attempt_at: datetime | None = None,
    paid_at: datetime | None = None,
    new_cards: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[int]:
    """Queue one ``kind`` email per case (a dedup key already queued is skipped); the sends
    are enqueued once the transaction commits. Returns the new outbox ids.

    ``new_cards`` (customer id -> card view): a card just saved, which the email also
    confirms, so that a card update that pays an invoice sends one email, not two."""
    new_cards = new_cards or {}
    requests = [
        _request(
            c,
            kind,
            case,
            now,
            dedup_suffix=dedup_suffix,
            next_attempt_at=next_attempt_at,
            paid_at=paid_at,
            new_card=new_cards.get(case.invoice["customer_id"]),
        )
        for case in cases
    ]
    ids = notify.queue_emails(conn, c, requests, now)
    if ids:
        after_commit(conn, lambda: c.dispatcher.send_notifications(ids))
    return ids
