"""Scheduled charge retries, a batch at a time.

The rules are those of :mod:`dunning.services.charging`: a retry is made only when the invoice
is still open, due, unpaused, at the expected attempt and without an attempt in flight, on a
usable card, within the network limits. The work is set-based so that a batch of retries costs
a few statements, not a few dozen per invoice: one transaction reads the batch's invoices,
subscriptions, cards and card histories and commits every pending attempt row *before* any
gateway call; the gateway is called once per attempt; one transaction applies every answer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, select, tuple_, update

from dunning.bootstrap import Container
from dunning.errors import GatewayUnavailable, NotFound, PermanentError
from dunning.gateways.base import ChargeResult
from dunning.model import Initiator
from dunning.policy.types import AttemptRecord
from dunning.services import charging, outcomes
from dunning.store.tables import invoices, payment_attempts, payment_methods, subscriptions
from dunning.store.uow import transaction

log = logging.getLogger(__name__)

Item = tuple[str, int]  # (invoice id, attempt number)
# Attempts of a batch still to be sent are stamped again when their stamp is older than this.
RESTAMP_S = 5.0
_RECORD_FIELDS = [f.name for f in dataclasses.fields(AttemptRecord) if f.name != "at"]


def retry_charges(c: Container, items: Sequence[Item], now: datetime) -> list[str]:
    """Make the scheduled retries ``items``; safe to run twice. Returns what happened to each
    item, in order: ``skipped``, ``succeeded``, ``declined``, ``unknown`` or ``failed``."""
    try:
        charges, later = prepare_retries(c, items, now)
    except PermanentError as exc:
        if len(items) == 1:
            log.error("retry %s failed for good: %s", items[0], exc)
            return ["failed"]
        # One broken item must not hold up the others: each is then retried on its own.
        log.warning("a retry batch failed (%s); retrying its %d items one by one", exc, len(items))
        return [retry_charges(c, [item], now)[0] for item in items]
    answers = {ch.key: _call(c, ch) for ch in _sendable(c, charges, now)}
    sent = [ch for ch in charges if ch.key in answers]
    failed = _apply(c, sent, answers, now)
    done: dict[str, str] = {}
    for ch in sent:
        answer = answers[ch.key]
        status = "unknown" if isinstance(answer, GatewayUnavailable) else answer.status
        done[ch.invoice_id] = "failed" if ch.key in failed else status
        log.info("charge %s for invoice %s: %s", ch.key, ch.invoice_id, done[ch.invoice_id])
    if later:
        # Attempts on a card already charged in this batch wait for its answer (a decline may
        # block the card), then go through the same rules.
        done.update(zip((i for i, _ in later), retry_charges(c, later, now), strict=True))
    return [done.get(invoice_id, "skipped") for invoice_id, _ in items]


def prepare_retries(
    c: Container, items: Sequence[Item], now: datetime
) -> tuple[list[charging.PreparedCharge], list[Item]]:
    """Write the pending attempts of the items that are due and allowed, one per card, in one
    transaction; return the charges to make and the items left for a later round."""
    with transaction(c.engine) as conn:
        due = _due(conn, items, now)
        if not due:
            return [], []
        subs = _rows(conn, subscriptions, (inv["subscription_id"] for inv, _ in due))
        card_ids = {inv["retry_payment_method_id"] for inv, _ in due}
        card_ids |= {sub["payment_method_id"] for sub in subs.values()}
        cards = _rows(conn, payment_methods, card_ids)
        history = _histories(conn, cards, now - charging.LIMIT_LOOKBACK)
        rows: list[dict[str, Any]] = []
        tokens: dict[str, str] = {}
        on_cards: set[str] = set()
        later: list[Item] = []
        for inv, attempt_no in due:
            sub = subs.get(inv["subscription_id"])
            if sub is None:
                raise NotFound(f"subscriptions {inv['subscription_id']!r} does not exist")
            card = _card_for(inv, sub, cards)
            if card is None:
                outcomes.stop_retries(
                    conn, inv, "needs_new_card", "No usable card is left to charge.", now
                )
                continue
            if card["id"] in on_cards:
                later.append((inv["id"], attempt_no))
                continue
            if not charging.allowed(conn, c, inv, sub, card, history.get(card["id"], ()), now):
                continue
            reason = inv["next_attempt_reason"] or "scheduled_retry"
            rows.append(
                charging.attempt_values(
                    inv, card, attempt_no, initiator=Initiator.merchant, reason=reason, now=now
                )
            )
            tokens[inv["id"]] = card["token"]
            on_cards.add(card["id"])
        rows = _claim(conn, rows, now)
        if rows:
            conn.execute(payment_attempts.insert(), rows)
    return [charging.prepared_charge(r, tokens[r["invoice_id"]]) for r in rows], later


def _due(conn: Connection, items: Sequence[Item], now: datetime) -> list[tuple[RowMapping, int]]:
    """The items whose invoice is open, due, unpaused, at ``attempt_no - 1`` and idle."""
    ids = list(dict.fromkeys(i for i, _ in items))
    invs = _rows(conn, invoices, ids)
    busy = set(
        conn.execute(
            select(payment_attempts.c.invoice_id).where(
                payment_attempts.c.invoice_id.in_(ids),
                payment_attempts.c.status.in_(outcomes.UNRESOLVED),
            )
        ).scalars()
    )
    due = []
    for invoice_id, attempt_no in items:
        inv = invs.get(invoice_id)
        if (
            inv is None
            or invoice_id in busy
            or inv["status"] != "open"
            or inv["paused"]
            or inv["attempt_count"] != attempt_no - 1
            or inv["next_attempt_at"] is None
            or inv["next_attempt_at"] > now
        ):
            continue
        busy.add(invoice_id)  # the same item twice in one batch is made once
        due.append((inv, attempt_no))
    return due


def _rows(conn: Connection, table: Table, ids: Iterable[str | None]) -> dict[str, RowMapping]:
    wanted = [i for i in set(ids) if i]
    if not wanted:
        return {}
    return {
        r["id"]: r for r in conn.execute(select(table).where(table.c.id.in_(wanted))).mappings()
    }


def _histories(
    conn: Connection, cards: dict[str, RowMapping], since: datetime
) -> dict[str, tuple[AttemptRecord, ...]]:
    """Each card's attempts since ``since``, oldest first (what the network limits count)."""
    out: dict[str, list[AttemptRecord]] = {card_id: [] for card_id in cards}
    if not cards:
        return {}
    rows = conn.execute(
        select(payment_attempts)
        .where(
            payment_attempts.c.payment_method_id.in_(list(cards)),
            payment_attempts.c.created_at >= since,
        )
        .order_by(payment_attempts.c.created_at, payment_attempts.c.id)
    ).mappings()
    for r in rows:
        out[r["payment_method_id"]].append(
            AttemptRecord(at=r["created_at"], **{f: r[f] for f in _RECORD_FIELDS})
        )
    return {card_id: tuple(records) for card_id, records in out.items()}


def _card_for(inv: RowMapping, sub: RowMapping, cards: dict[str, RowMapping]) -> RowMapping | None:
    """The card the next attempt goes to: the policy's choice, else the subscription's."""
    for card_id in (inv["retry_payment_method_id"], sub["payment_method_id"]):
        card = cards.get(card_id) if card_id else None
        if charging.usable(card):
            return card
    return None


def _claim(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Move each invoice to its new attempt number unless another worker did first; keep the
    rows of the invoices this call moved."""
    if not rows:
        return []
    expected = [(r["invoice_id"], r["attempt_no"] - 1) for r in rows]
    claimed = set(
        conn.execute(
            update(invoices)
            .where(tuple_(invoices.c.id, invoices.c.attempt_count).in_(expected))
            .values(
                attempt_count=invoices.c.attempt_count + 1,
                next_attempt_at=None,
                retry_claimed_until=None,
                updated_at=now,
            )
            .returning(invoices.c.id)
        ).scalars()
    )
    return [r for r in rows if r["invoice_id"] in claimed]


def _sendable(
    c: Container, charges: list[charging.PreparedCharge], now: datetime
) -> Iterator[charging.PreparedCharge]:
    """The charges in order, each sent within a few seconds of its attempt's ``created_at``.

    The resolver looks an attempt up ``unknown_after_s`` after its ``created_at``. Stamped only
    when the batch was written, the tail of a long batch (a slow gateway) would be looked up,
    found missing and retried under a new key before its own charge was sent: two charges. So
    whenever the last stamp is older than ``restamp_s``, every attempt not yet sent is stamped
    again with the present moment, and one settled meanwhile is skipped. In a batch that is
    quick, as most are, that costs nothing; a slow one pays one statement per ``restamp_s``
    instead of one per charge.
    """
    restamp_s = min(RESTAMP_S, c.settings.timing.unknown_after_s / 10)
    stamped, settled = now, set[str]()
    for i, charge in enumerate(charges):
        at = c.clock.now()
        if (at - stamped).total_seconds() > restamp_s:
            rest = [ch.key for ch in charges[i:]]
            settled |= set(rest) - _stamp(c, rest, at)
            stamped = at
        if charge.key not in settled:
            yield charge


def _stamp(c: Container, keys: list[str], at: datetime) -> set[str]:
    """Stamp the still pending attempts among ``keys`` as sent at ``at``; return their keys."""
    with c.engine.begin() as conn:
        return set(
            conn.execute(
                update(payment_attempts)
                .where(
                    payment_attempts.c.idempotency_key.in_(keys),
                    payment_attempts.c.status == "pending",
                )
                .values(created_at=at)
                .returning(payment_attempts.c.idempotency_key)
            ).scalars()
        )


def _call(c: Container, charge: charging.PreparedCharge) -> ChargeResult | GatewayUnavailable:
    try:
        return c.gateway.charge(charging.request_for(charge))
    except GatewayUnavailable as exc:
        log.warning(
            "charge %s for invoice %s: outcome unknown (%s)", charge.key, charge.invoice_id, exc
        )
        return exc


def _apply(
    c: Container,
    charges: list[charging.PreparedCharge],
    answers: dict[str, ChargeResult | GatewayUnavailable],
    now: datetime,
) -> set[str]:
    """Write every answer in one transaction; if that fails for good, each on its own. Returns
    the keys whose answer could not be written (left pending for the resolver)."""
    try:
        with transaction(c.engine) as conn:
            _write(conn, c, charges, answers, now)
        return set()
    except PermanentError as exc:
        if len(charges) == 1:
            log.error("charge %s: answer not written: %s", charges[0].key, exc)
            return {charges[0].key}
        log.warning("writing %d answers failed (%s); writing them one by one", len(charges), exc)
    failed: set[str] = set()
    for ch in charges:
        failed |= _apply(c, [ch], answers, now)
    return failed


def _write(
    conn: Connection,
    c: Container,
    charges: list[charging.PreparedCharge],
    answers: dict[str, ChargeResult | GatewayUnavailable],
    now: datetime,
) -> None:
    results = []
    for ch in charges:
        answer = answers[ch.key]
        if isinstance(answer, GatewayUnavailable):
            outcomes.mark_unknown(conn, ch.key, str(answer), now)
        else:
            results.append((ch.key, answer))
    outcomes.apply_results(conn, c, results, now)
