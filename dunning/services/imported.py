"""Invoices that enter dunning from an import: continue each case where it stands.

The import writes the invoice and the charges that failed before it, as attempt rows like the
pipeline's own. This then does what the pipeline does after a decline (:func:`after_decline`):
a card the last decline rules out is blocked (a stolen card, a Visa category 1 code: never
charged again; an expired card: until the customer gives a new one), the next retry is the
policy's (the schedule counts the imported attempts from the first failure, at the customer's
local morning, within the network limits) or the retries stop (a window already over stops with
``window_over``), and the customer is told once, unless the file says they were.

The rows of a whole chunk are read in a few statements; only the writes are per invoice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from dunning.policy.declines import classify
from dunning.policy.limits import HISTORY_SPAN
from dunning.policy.retry import next_retry
from dunning.policy.schedule import STEP_REMINDER, dunning_steps, window_end
from dunning.policy.types import Decline, RetryDecision, Verdict
from dunning.ports import Pipeline
from dunning.services.audit import audit_row, record_many
from dunning.services.case import Case, load_cases
from dunning.services.invoice_emails import queue_invoice_emails
from dunning.services.retry_schedule import (
    STOP_VERDICTS,
    after_decline,
    retry_state,
    stop_retries,
)
from dunning.store import attempts, invoices
from dunning.store.cards import usable, usable_cards_of

NO_CARD = "needs_new_card"


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
    own = attempts.for_invoices(conn, invoice_ids)
    cards = {case.card["id"] for case in cases.values() if case.card is not None}
    histories = attempts.card_histories(conn, cards, now - HISTORY_SPAN)
    usable_of = usable_cards_of(conn, {case.invoice["customer_id"] for case in cases.values()})
    out = {}
    skipped: list[dict[str, Any]] = []
    for key in invoice_ids:
        case = cases[key]
        told = key in notified
        skipped += _pass_over_reminders(conn, c, case, now)
        card, history = case.card, own[key]
        if card is None or not usable(card) or not history:
            out[key] = _no_card(conn, c, case, now, told=told)
            continue
        state = retry_state(
            case,
            card,
            now,
            invoice_attempts=history,
            card_attempts=histories[card["id"]],
            usable=usable_of[case.invoice["customer_id"]],
        )
        decision = next_retry(state, now, case.policy(c.policy))
        cls = classify(_decline(history[-1]), card["network"], gateway=card["gateway"],
                       policy=case.policy(c.policy))  # fmt: skip
        if cls.verdict in (Verdict.unknown, Verdict.duplicate):
            # Imported as failed: whatever the code, it is a decline here, and a generic one.
            cls = classify(Decline(decline_code="generic_decline"), card["network"])
        after_decline(conn, c, case, card, cls, now, attempt_no=len(history), decision=decision,
                      told=told)  # fmt: skip
        if cls.verdict in STOP_VERDICTS:  # blocked now: no other case may move onto it
            for customer, found in usable_of.items():
                usable_of[customer] = [r for r in found if r["id"] != card["id"]]
        out[key] = _outcome(decision)
    record_many(conn, skipped)
    return out


def _pass_over_reminders(
    conn: Connection, c: Pipeline, case: Case, now: datetime
) -> list[dict[str, Any]]:
    """Mark the reminders whose day passed before the import as done: the first email (sent
    now, or by the system the book came from) tells the same news. A final notice or the
    suspension already due still runs, as the steps catch up. Returns their audit rows."""
    inv = case.invoice
    steps = dunning_steps(inv["first_failed_at"], case.timezone, case.policy(c.policy))
    passed = 0
    while passed < len(steps) and steps[passed].kind == STEP_REMINDER and steps[passed].at <= now:
        passed += 1
    if not passed:
        return []
    following = steps[passed].at if passed < len(steps) else None
    invoices.set_values(conn, case.id, now=now, steps_done=passed, next_step_at=following)
    return [
        audit_row(
            "step_skipped",
            now,
            invoice_id=case.id,
            customer_id=inv["customer_id"],
            reason="imported",
            message=f"{s.kind} of {s.at.isoformat()} passed before the import",
            step=s.kind,
        )
        for s in steps[:passed]
    ]


def _no_card(conn: Connection, c: Pipeline, case: Case, now: datetime, *, told: bool) -> str:
    """No card may be charged: the retries wait for a new one, and the customer is asked (while
    the window lasts: after it, the suspension's email is the one to send)."""
    inv = case.invoice
    if now >= window_end(inv["first_failed_at"], case.timezone, case.policy(c.policy)):
        stop_retries(conn, inv, "window_over", "The dunning window is over.", now)
        return "window_over"
    stop_retries(conn, inv, NO_CARD, "No usable card is left.", now)
    if not told:
        queue_invoice_emails(conn, c, "action_required", [case], now)
    return NO_CARD


def _decline(a: Any) -> Decline:
    return Decline(a.decline_code, a.network_code, a.advice_code, a.network_advice_code)


def _outcome(decision: RetryDecision) -> str:
    return "retry" if decision.action == "retry" else decision.reason
