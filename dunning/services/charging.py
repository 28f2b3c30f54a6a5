"""The one way money is taken: :func:`charge`, for every initiator (scheduled retries, the
customer's card page, an operator's retry).

A batch of orders costs a few statements, not a few per invoice: one transaction reads the
cases, cards and card histories, checks each order against the rules (owed, unpaused, a
usable card, the network limits), takes every attempt through one compare-and-set
(:func:`dunning.store.invoices.claim_charges`) and writes the ``pending`` attempt rows, all
*before* any gateway call; the gateway is called once per attempt; one transaction applies
every answer. A crash anywhere leaves either no row (nothing was charged) or a ``pending`` or
``unknown`` row that the resolver settles by looking the charge up, never by charging blind.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from dunning.errors import GatewayUnavailable, NotFound, PermanentError
from dunning.model import OWED, Initiator, InvoiceStatus
from dunning.policy.limits import HISTORY_SPAN, check_limits
from dunning.ports import Pipeline
from dunning.services import attempt_results
from dunning.services.case import Case, load_cases
from dunning.services.gateway_calls import (
    Answer,
    PreparedCharge,
    gateway_refs,
    send_all,
    unknown_at_gateway,
)
from dunning.services.retry_schedule import postpone_or_stop, stop_retries
from dunning.store import attempts, rows
from dunning.store.cards import usable
from dunning.store.invoices import claim_charges
from dunning.store.tables import payment_methods
from dunning.store.uow import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChargeOrder:
    """Charge an invoice now, if the rules allow."""

    invoice_id: str
    initiator: Initiator
    reason: str
    # A scheduled retry names the attempt it is for: a stale or repeated message finds the
    # invoice moved on and charges nothing. ``None``: the next attempt, whatever it is.
    attempt_no: int | None = None
    card_id: str | None = None  # ``None``: the policy's retry card, else the subscription's

    @property
    def scheduled(self) -> bool:
        return self.attempt_no is not None


@dataclass
class _Batch:
    """What one claim read: cases, cards and histories, and what it decided."""

    cases: dict[str, Case]
    cards: dict[str, RowMapping]
    histories: dict[str, tuple[Any, ...]]
    outcome: dict[str, str]
    rows: list[dict[str, Any]]
    tokens: dict[str, str]
    later: list[ChargeOrder]
    refs: dict[str, tuple[str, str | None]]


def charge(c: Pipeline, orders: Sequence[ChargeOrder], now: datetime) -> dict[str, str]:
    """Carry out ``orders``; safe to run twice. Returns, per invoice, ``succeeded``,
    ``declined``, ``unknown`` or why nothing was charged (``skipped``, ``paused``,
    ``in_flight``, ``no_card``, ``not_allowed``, ``failed``)."""
    if not orders:
        return {}
    try:
        prepared, batch = _claim(c, orders, now)
    except PermanentError as exc:
        if len(orders) == 1:
            log.error("charge of invoice %s failed for good: %s", orders[0].invoice_id, exc)
            return {orders[0].invoice_id: "failed"}
        # One broken order must not hold up the others: each is then tried on its own.
        log.warning("a charge batch failed (%s); trying its %d orders one by one", exc, len(orders))
        return {k: v for order in orders for k, v in charge(c, [order], now).items()}
    answers = send_all(c, prepared)
    sent = [ch for ch in prepared if ch.key in answers]
    failed = _apply(c, sent, answers, now)
    outcome = batch.outcome
    for ch in sent:
        answer = answers[ch.key]
        word = "unknown" if isinstance(answer, GatewayUnavailable) else answer.status
        outcome[ch.invoice_id] = "failed" if ch.key in failed else word
        log.info("charge %s for invoice %s: %s", ch.key, ch.invoice_id, outcome[ch.invoice_id])
    # Orders on a card already charged in this batch wait for its answer (a decline may block
    # the card), then go through the same rules.
    outcome.update(charge(c, batch.later, now))
    return {order.invoice_id: outcome.get(order.invoice_id, "skipped") for order in orders}


def prepare(c: Pipeline, orders: Sequence[ChargeOrder], now: datetime) -> list[PreparedCharge]:
    """Write the ``pending`` attempts of the orders the rules allow, without calling the
    gateway (the first half of :func:`charge`; the resolver settles what is left unsent)."""
    return _claim(c, orders, now)[0]


def _claim(
    c: Pipeline, orders: Sequence[ChargeOrder], now: datetime
) -> tuple[list[PreparedCharge], _Batch]:
    with transaction(c.engine) as conn:
        batch = _read(conn, orders, now)
        busy = attempts.in_flight(conn, batch.cases)
        on_cards: set[str] = set()
        for order in dict((o.invoice_id, o) for o in orders).values():
            _decide(conn, c, batch, order, busy, on_cards, now)
        prepared = _take(conn, batch, orders, now=c.clock.now())
    return prepared, batch


def _read(conn: Connection, orders: Sequence[ChargeOrder], now: datetime) -> _Batch:
    cases = load_cases(conn, (o.invoice_id for o in orders), required=False)
    # A scheduled retry of an invoice deleted since is nothing to do; any other order must
    # name an invoice that exists.
    missing = next((o for o in orders if not o.scheduled and o.invoice_id not in cases), None)
    if missing is not None:
        raise NotFound(f"invoice {missing.invoice_id!r} does not exist")
    card_ids = {o.card_id for o in orders} | {
        case.invoice["retry_payment_method_id"] for case in cases.values()
    }
    card_ids |= {case.subscription["payment_method_id"] for case in cases.values()}
    cards = rows.by_ids(conn, payment_methods, card_ids)
    histories = attempts.card_histories(conn, cards, now - HISTORY_SPAN)
    return _Batch(cases, cards, histories, {}, [], {}, [], {})


def _refusal(
    order: ChargeOrder, case: Case | None, busy: Mapping[str, str], now: datetime
) -> str | None:
    """Why the order charges nothing, read from the case (the claim checks again)."""
    if case is None:
        return "skipped"
    inv = case.invoice
    owed = OWED if order.initiator is Initiator.customer else {InvoiceStatus.open}
    if inv["status"] not in owed or case.subscription["status"] == "cancelled":
        return "skipped"
    if inv["paused"] or case.customer["dunning_paused"]:
        return "paused"
    if case.id in busy:
        return "in_flight"
    if order.scheduled and (
        inv["attempt_count"] != order.attempt_no - 1  # type: ignore[operator]
        or inv["next_attempt_at"] is None
        or inv["next_attempt_at"] > now
    ):
        return "skipped"
    return None


def _decide(
    conn: Connection,
    c: Pipeline,
    batch: _Batch,
    order: ChargeOrder,
    busy: Mapping[str, str],
    on_cards: set[str],
    now: datetime,
) -> None:
    case = batch.cases.get(order.invoice_id)
    refusal = _refusal(order, case, busy, now) or unknown_at_gateway(c.gateway.name, case)
    if refusal is not None or case is None:
        batch.outcome[order.invoice_id] = refusal or "skipped"
        return
    card = _card_for(order, case, batch.cards)
    if card is None:
        batch.outcome[case.id] = "no_card"
        if order.initiator is Initiator.merchant:
            stop_retries(conn, case.invoice, "needs_new_card", "No usable card is left.", now)
        return
    if card["id"] in on_cards:
        batch.later.append(order)
        return
    verdict = check_limits(
        batch.histories.get(card["id"], ()),
        network=card["network"],
        amount=case.invoice["amount"],
        now=now,
        policy=case.policy(c.policy),
        first_decline_at=case.invoice["first_failed_at"],
    )
    if not verdict.allowed:
        batch.outcome[case.id] = "not_allowed"
        postpone_or_stop(conn, c, case, verdict, now)
        return
    reason = (
        order.reason if not order.scheduled else case.invoice["next_attempt_reason"] or order.reason
    )
    attempt_no = int(case.invoice["attempt_count"]) + 1
    batch.rows.append(
        attempts.new_row(
            case.invoice, card, attempt_no, initiator=order.initiator, reason=reason, at=now
        )
    )
    batch.tokens[case.id] = card["token"]
    customer_ref, invoice_ref = gateway_refs(c.gateway.name, case.customer, case.invoice)
    batch.refs[case.id] = (customer_ref or "", invoice_ref)
    on_cards.add(card["id"])


def _card_for(order: ChargeOrder, case: Case, cards: Mapping[str, RowMapping]) -> RowMapping | None:
    """The card the attempt goes to: the order's, else the policy's choice, else the
    subscription's; ``None`` when none of them may be charged."""
    if order.card_id is not None:
        chosen = cards.get(order.card_id)
        return chosen if usable(chosen) else None
    for card_id in (
        case.invoice["retry_payment_method_id"],
        case.subscription["payment_method_id"],
    ):
        chosen = cards.get(card_id) if card_id else None
        if usable(chosen):
            return chosen
    return None


def _take(
    conn: Connection, batch: _Batch, orders: Sequence[ChargeOrder], *, now: datetime
) -> list[PreparedCharge]:
    """Claim every attempt decided on through the compare-and-set; write the claimed rows,
    stamped with the present moment."""
    initiators = {o.invoice_id: o.initiator for o in orders}
    taken: set[str] = set()
    for initiator in set(initiators.values()):
        owed = OWED if initiator is Initiator.customer else {InvoiceStatus.open}
        claims = [
            (r["invoice_id"], r["attempt_no"] - 1)
            for r in batch.rows
            if initiators[r["invoice_id"]] is initiator
        ]
        taken |= claim_charges(conn, claims, statuses=owed, now=now)
    claimed = [dict(r, created_at=now) for r in batch.rows if r["invoice_id"] in taken]
    for r in batch.rows:
        if r["invoice_id"] not in taken:
            batch.outcome[r["invoice_id"]] = "skipped"  # it moved on since it was read
    attempts.insert_rows(conn, claimed)
    return [
        PreparedCharge(
            r["idempotency_key"],
            r["invoice_id"],
            r["attempt_no"],
            r["customer_id"],
            r["payment_method_id"],
            batch.tokens[r["invoice_id"]],
            r["amount"],
            r["currency"],
            Initiator(r["initiator"]),
            r["reason"],
            *batch.refs[r["invoice_id"]],
        )
        for r in claimed
    ]


def _apply(
    c: Pipeline, charges: list[PreparedCharge], answers: Mapping[str, Answer], now: datetime
) -> set[str]:
    """Write every answer in one transaction; if that fails for good, each on its own. Returns
    the keys whose answer could not be written (left pending for the resolver)."""
    try:
        with transaction(c.engine) as conn:
            unknown = {
                ch.key: str(a)
                for ch in charges
                if isinstance(a := answers[ch.key], GatewayUnavailable)
            }
            attempt_results.mark_unknown_keys(conn, unknown, now)
            results = [
                (ch.key, a)
                for ch in charges
                if not isinstance(a := answers[ch.key], GatewayUnavailable)
            ]
            attempt_results.apply_answers(conn, c, results, now)
        return set()
    except PermanentError as exc:
        if len(charges) == 1:
            log.error("charge %s: answer not written: %s", charges[0].key, exc)
            return {charges[0].key}
        log.warning("writing %d answers failed (%s); writing them one by one", len(charges), exc)
    return {key for ch in charges for key in _apply(c, [ch], answers, now)}
