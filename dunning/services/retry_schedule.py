"""After a decline: the next merchant retry (the policy decides when and on which card), or
the reason retries stop; the email that tells the customer; and what a network limit does to
a retry that is due."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
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
from dunning.services.audit import audit_row, record, record_many
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
    told: bool | None = None,
) -> RetryDecision:
    """Block a card the decline rules out, schedule the next retry or stop, and tell the
    customer: on the first failure, and whenever the card needs replacing.

    ``told`` says whether the customer has heard of this failure already (``None``: they have
    after the first attempt); ``False`` makes this the first news, whatever the attempt."""
    decision = decide(conn, c, case, card, now)
    kind = None if told else email_kind(cls, decision, first=attempt_no == 1 or told is False)
    apply_declines(conn, c, [Declined(case, card, cls, decision, kind)], now)
    return decision


@dataclass(frozen=True, slots=True)
class Declined:
    """A decline decided: the case, the card tried and the decline's class (``None`` when
    there was no card to try), the policy's decision and the email to send, if any."""

    case: Case
    card: Mapping[Any, Any] | None
    cls: Classification | None
    decision: RetryDecision
    email: str | None


def apply_declines(
    conn: Connection, c: Pipeline, declined: Sequence[Declined], now: datetime
) -> None:
    """Write what the declines decided, in a few statements for all of them: block the cards
    they rule out, schedule each next retry or stop the retries (audited), queue the emails."""
    blocks: dict[str, list[str]] = {}
    rows: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    emails: dict[str, list[Case]] = {}
    for d in declined:
        inv, decision = d.case.invoice, d.decision
        codes: dict[str, Any] = {}
        if d.cls is not None:
            codes = {"last_decline_code": d.cls.decline_class,
                     "last_decline_class": d.cls.verdict.value}  # fmt: skip
            if d.card is not None and d.cls.verdict in STOP_VERDICTS:
                blocks.setdefault(d.cls.reason, []).append(d.card["id"])
        retry_at = decision.at if decision.action == "retry" else None
        fields = {"invoice_id": inv["id"], "customer_id": inv["customer_id"],
                  "reason": decision.reason, "message": decision.message}  # fmt: skip
        if inv["status"] != InvoiceStatus.open:
            rows.append({"id": inv["id"], **codes})
        elif retry_at is not None:
            rows.append({"id": inv["id"], "next_attempt_at": retry_at,
                         "next_attempt_reason": decision.reason,
                         "retry_payment_method_id": decision.payment_method_id,
                         "retry_claimed_until": None, **codes})  # fmt: skip
            audit.append(audit_row("retry_scheduled", now, **fields,
                                   attempt=inv["attempt_count"] + 1, due=retry_at))  # fmt: skip
        else:
            rows.append({"id": inv["id"], "next_attempt_at": None, "retry_claimed_until": None,
                         "stop_reason": decision.reason, **codes})  # fmt: skip
            audit.append(audit_row("retry_stopped", now, **fields))
        if d.email:
            told = replace(d.case, invoice=dict(inv, next_attempt_at=retry_at))
            emails.setdefault(d.email, []).append(told)
    for reason, ids in blocks.items():
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.id.in_(ids))
            .values(blocked_reason=reason)
        )
    invoices.write_many(conn, rows, now=now)
    record_many(conn, audit)
    for kind, cases in emails.items():
        queue_invoice_emails(conn, c, kind, cases, now)
