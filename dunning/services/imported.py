"""Invoices that enter dunning from an import: continue each case where it stands.

The import writes the invoice and the charges that failed before it, as attempt rows like the
pipeline's own. This then does what the pipeline does after a decline (:func:`after_decline`):
a card the last decline rules out is blocked (a stolen card, a Visa category 1 code: never
charged again; an expired card: until the customer gives a new one), the next retry is the
policy's (the schedule counts the imported attempts from the first failure, at the customer's
local morning, within the network limits) or the retries stop (a window already over stops with
``window_over``), and the customer is told once, unless the file says they were.

The rows of a whole chunk are read, and written, in a few statements.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from dunning.policy.declines import classify
from dunning.policy.limits import HISTORY_SPAN
from dunning.policy.retry import next_retry
from dunning.policy.schedule import STEP_REMINDER, dunning_steps, window_end
from dunning.policy.types import (
    AttemptRecord,
    Decline,
    PlanPolicy,
    RetryDecision,
    Step,
    Verdict,
)
from dunning.ports import Pipeline
from dunning.services.audit import audit_row, record_many
from dunning.services.case import Case, load_cases
from dunning.services.retry_schedule import (
    STOP_VERDICTS,
    Declined,
    apply_declines,
    email_kind,
    retry_state,
)
from dunning.store import attempts, invoices
from dunning.store.cards import usable, usable_cards_of

NO_CARD = "needs_new_card"


@dataclass
class _Chunk:
    """What a chunk's cases need from the store, read at once, and what they decide."""

    own: dict[str, tuple[AttemptRecord, ...]]
    histories: dict[str, tuple[AttemptRecord, ...]]
    usable_of: dict[str, Sequence[RowMapping]]
    declined: list[Declined] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)


def continue_imported(
    conn: Connection,
    c: Pipeline,
    invoice_ids: Sequence[str],
    now: datetime,
    *,
    notified: Collection[str] = (),
) -> dict[str, str]:
    """Schedule or stop the retries of invoices just imported, and tell the customers not in
    ``notified``. Returns, per invoice, ``retry`` or the reason the retries stop."""
    cases = load_cases(conn, invoice_ids)
    cards = {case.card["id"] for case in cases.values() if case.card is not None}
    chunk = _Chunk(
        own=attempts.for_invoices(conn, invoice_ids),
        histories=attempts.card_histories(conn, cards, now - HISTORY_SPAN),
        usable_of=usable_cards_of(conn, {case.invoice["customer_id"] for case in cases.values()}),
    )
    for key in invoice_ids:
        _pass_over_reminders(chunk, c, cases[key], now)
        chunk.declined.append(_decide(chunk, c, cases[key], now, told=key in notified))
    apply_declines(conn, c, chunk.declined, now)
    invoices.write_many(conn, chunk.steps, now=now)
    record_many(conn, chunk.audit)
    return {d.case.id: _outcome(d.decision) for d in chunk.declined}


def _decide(chunk: _Chunk, c: Pipeline, case: Case, now: datetime, *, told: bool) -> Declined:
    """What the pipeline would decide after the last imported attempt."""
    card, history = case.card, chunk.own[case.id]
    policy = case.policy(c.policy)
    if card is None or not usable(card) or not history:
        return _no_card(case, policy, now, told=told)
    state = retry_state(
        case,
        card,
        now,
        invoice_attempts=history,
        card_attempts=chunk.histories[card["id"]],
        usable=chunk.usable_of[case.invoice["customer_id"]],
    )
    decision = next_retry(state, now, policy)
    cls = classify(_decline(history[-1]), card["network"], gateway=card["gateway"], policy=policy)
    if cls.verdict in (Verdict.unknown, Verdict.duplicate):
        # Imported as failed: whatever the code, it is a decline here, and a generic one.
        cls = classify(Decline(decline_code="generic_decline"), card["network"])
    if cls.verdict in STOP_VERDICTS:  # blocked with the others: no case may move onto it
        for customer, found in chunk.usable_of.items():
            chunk.usable_of[customer] = [r for r in found if r["id"] != card["id"]]
    kind = None if told else email_kind(cls, decision, first=True)
    return Declined(case, card, cls, decision, kind)


def _no_card(case: Case, policy: PlanPolicy, now: datetime, *, told: bool) -> Declined:
    """No card may be charged: the retries wait for a new one, and the customer is asked (while
    the window lasts: after it, the suspension's email is the one to send)."""
    inv = case.invoice
    if now >= window_end(inv["first_failed_at"], case.timezone, policy):
        over = RetryDecision("stop", "window_over", "The dunning window is over.")
        return Declined(case, None, None, over, None)
    stop = RetryDecision("stop", NO_CARD, "No usable card is left.")
    return Declined(case, None, None, stop, None if told else "action_required")


def _pass_over_reminders(chunk: _Chunk, c: Pipeline, case: Case, now: datetime) -> None:
    """Mark the reminders whose day passed before the import as done: the first email (sent
    now, or by the system the book came from) tells the same news. A final notice or the
    suspension already due still runs, as the steps catch up."""
    inv = case.invoice
    steps = dunning_steps(inv["first_failed_at"], case.timezone, case.policy(c.policy))
    passed = 0
    while passed < len(steps) and steps[passed].kind == STEP_REMINDER and steps[passed].at <= now:
        passed += 1
    if not passed:
        return
    following = steps[passed].at if passed < len(steps) else None
    chunk.steps.append({"id": case.id, "steps_done": passed, "next_step_at": following})
    chunk.audit += [_skipped(case, step, now) for step in steps[:passed]]


def _skipped(case: Case, step: Step, now: datetime) -> dict[str, Any]:
    return audit_row(
        "step_skipped", now, invoice_id=case.id, customer_id=case.invoice["customer_id"],
        reason="imported", message=f"{step.kind} of {step.at.isoformat()} passed before the import",
        step=step.kind,
    )  # fmt: skip


def _decline(a: AttemptRecord) -> Decline:
    return Decline(a.decline_code, a.network_code, a.advice_code, a.network_advice_code)


def _outcome(decision: RetryDecision) -> str:
    return "retry" if decision.action == "retry" else decision.reason
