"""After a decline: the next merchant retry (the policy decides when and on which card), or
the reason retries stop; the email that tells the customer; and what a network limit does to
a retry that is due."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from dunning.model import InvoiceStatus
from dunning.policy.limits import HISTORY_SPAN
from dunning.policy.retry import next_retry, postponed
from dunning.policy.types import (
    AttemptRecord,
    Classification,
    LimitCheck,
    RetryDecision,
    RetryState,
    Verdict,
)
from dunning.ports import Pipeline
from dunning.services.audit import record
from dunning.services.case import Case
from dunning.services.invoice_emails import queue_invoice_emails
from dunning.store import attempts, invoices
from dunning.store.cards import usable_cards
from dunning.store.tables import payment_methods

STOP_VERDICTS = (Verdict.needs_new_card, Verdict.never)


def stop_retries(
    conn: Connection, inv: Mapping[Any, Any], reason: str, message: str, now: datetime
) -> None:
    """No more merchant retries, audited with the reason."""
    invoices.stop_retries(conn, inv["id"], reason=reason, now=now)
    record(
        conn,
        "retry_stopped",
        now,
        invoice_id=inv["id"],
        customer_id=inv["customer_id"],
        reason=reason,
        message=message,
    )


def _scheduled(
    conn: Connection, inv: Mapping[Any, Any], at: datetime, reason: str, message: str, now: datetime
) -> None:
    record(
        conn,
        "retry_scheduled",
        now,
        invoice_id=inv["id"],
        customer_id=inv["customer_id"],
        reason=reason,
        message=message,
        attempt=inv["attempt_count"] + 1,
        due=at,
    )


def postpone_or_stop(
    conn: Connection, c: Pipeline, case: Case, check: LimitCheck, now: datetime
) -> None:
    """A network limit forbids the attempt now: move it to the earliest time the policy allows
    (the customer's retry morning, inside the window), or stop."""
    inv = case.invoice
    check = postponed(
        check,
        first_failed_at=inv["first_failed_at"],
        timezone=case.timezone,
        policy=case.policy(c.policy),
    )
    if check.earliest is None:
        stop_retries(conn, inv, check.reason, check.message, now)
        return
    invoices.schedule_retry(
        conn,
        inv["id"],
        at=check.earliest,
        reason=check.reason,
        now=now,
        card_id=inv["retry_payment_method_id"],
    )
    _scheduled(conn, inv, check.earliest, check.reason, check.message, now)


def retry_state(
    case: Case,
    card: Mapping[Any, Any],
    now: datetime,
    *,
    invoice_attempts: tuple[AttemptRecord, ...],
    card_attempts: tuple[AttemptRecord, ...],
    usable: Sequence[Mapping[Any, Any]],
) -> RetryState:
    """What the policy reads about the case after an attempt on ``card``, from rows already
    read: the invoice's attempts, the card's recent ones, the customer's usable cards."""
    inv = case.invoice
    return RetryState(
        invoice_id=inv["id"],
        first_failed_at=inv["first_failed_at"] or now,
        plan=case.subscription["plan"],
        interval=case.subscription["interval"],
        customer_timezone=case.timezone,
        payment_method_id=card["id"],
        network=card["network"],
        amount=inv["amount"],
        invoice_attempts=invoice_attempts,
        card_attempts=card_attempts,
        backup_cards=tuple((r["id"], r["network"]) for r in usable if r["id"] != card["id"]),
    )


def decide(
    conn: Connection, c: Pipeline, case: Case, card: Mapping[Any, Any], now: datetime
) -> RetryDecision:
    """The policy's next retry of the case after an attempt on ``card``."""
    state = retry_state(
        case,
        card,
        now,
        invoice_attempts=attempts.for_invoice(conn, case.id),
        card_attempts=attempts.card_histories(conn, [card["id"]], now - HISTORY_SPAN)[card["id"]],
        usable=usable_cards(conn, case.invoice["customer_id"]),
    )
    return next_retry(state, now, case.policy(c.policy))


def email_kind(cls: Classification, decision: RetryDecision, *, first: bool) -> str | None:
    """The email after a decline: ``action_required`` whenever the card needs replacing,
    ``payment_failed`` on the ``first`` news of the failure, none once the window is over."""
    if decision.reason == "window_over":
        return None  # the window is over already: the suspension's email is the one to send
    if cls.verdict in STOP_VERDICTS:
        return "action_required"
    return "payment_failed" if first else None


def after_decline(
    conn: Connection,
    c: Pipeline,
    case: Case,
    card: Mapping[Any, Any],
    cls: Classification,
    now: datetime,
    *,
    attempt_no: int,
    decision: RetryDecision | None = None,
    told: bool | None = None,
) -> RetryDecision:
    """Block a card the decline rules out, schedule the next retry or stop, and tell the
    customer: on the first failure, and whenever the card needs replacing.

    ``decision`` is the policy's, when the caller has worked it out from rows it read for
    many cases at once. ``told`` says whether the customer has heard of this failure already
    (``None``: they have after the first attempt); one who has gets no email.
    """
    inv = case.invoice
    if cls.verdict in STOP_VERDICTS:
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.id == card["id"])
            .values(blocked_reason=cls.reason)
        )
    if decision is None:
        decision = decide(conn, c, case, card, now)
    codes = {"last_decline_code": cls.decline_class, "last_decline_class": cls.verdict.value}
    retry_at = decision.at if decision.action == "retry" else None
    if inv["status"] != InvoiceStatus.open:
        invoices.set_values(conn, inv["id"], now=now, **codes)
    elif retry_at is not None:
        invoices.schedule_retry(
            conn, inv["id"], at=retry_at, reason=decision.reason, now=now,
            card_id=decision.payment_method_id, **codes,
        )  # fmt: skip
        _scheduled(conn, inv, retry_at, decision.reason, decision.message, now)
    else:
        invoices.stop_retries(conn, inv["id"], reason=decision.reason, now=now, **codes)
        record(
            conn, "retry_stopped", now, invoice_id=inv["id"], customer_id=inv["customer_id"],
            reason=decision.reason, message=decision.message,
        )  # fmt: skip
    kind = None if told else email_kind(cls, decision, first=attempt_no == 1 or told is False)
    if kind:
        queue_invoice_emails(conn, c, kind, [case], now, next_attempt_at=retry_at)
    return decision
