"""Validate one line: parse it, check fields that relate to each other, name what is wrong.

Error paths are relative to the line's customer object, dotted, with list indexes as numbers:
``payment_methods.0.exp_month`` (not ``customers.payment_methods[0].exp_month``); ``$`` is the
line itself (not JSON, not an object). Messages never carry a card number: every error text is
masked with :func:`~dunning.gateways.cards.mask_pans` and no validator echoes its input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from dunning.gateways.cards import mask_pans
from dunning.imports.lines import CustomerLine, InvoiceLine

ROOT = "$"
# How far ahead of the importer's clock a failure time may be: the clock of the system the book
# comes from may run a little fast. Anything later has not happened yet.
CLOCK_SKEW = timedelta(minutes=5)

_MESSAGES = {
    "extra_forbidden": "unknown key",
    "model_type": "a line must be one JSON object",
    "model_attributes_type": "a line must be one JSON object",
}


@dataclass(frozen=True, slots=True)
class LineError:
    """One refusal: ``line N: field.path: message``."""

    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return mask_pans(f"line {self.line}: {self.path}: {self.message}")


def parse_line(
    lineno: int, raw: bytes | str, now: datetime | None = None
) -> CustomerLine | list[LineError]:
    """The validated customer of one line, or every error found in it; with ``now``, failure
    times later than ``now`` (plus :data:`CLOCK_SKEW`) are errors too."""
    try:
        customer = CustomerLine.model_validate_json(raw)
    except ValidationError as exc:
        return [_from_pydantic(lineno, err) for err in exc.errors(include_input=False)]
    problems = cross_check(customer, now)
    if problems:
        return [LineError(lineno, path, message) for path, message in problems]
    return customer


def _from_pydantic(lineno: int, err: object) -> LineError:
    assert isinstance(err, dict)
    loc = err.get("loc", ())
    path = ".".join(str(part) for part in loc) or ROOT
    kind = err.get("type", "")
    message = _MESSAGES.get(kind, str(err.get("msg", "invalid")))
    if kind == "extra_forbidden" and loc and loc[-1] == "outcomes":
        message = "not allowed in an import (outcomes script the sandbox in simulations only)"
    return LineError(lineno, path, mask_pans(message))


def _duplicates(kind: str, ids: list[str]) -> list[tuple[str, str]]:
    if len(set(ids)) == len(ids):
        return []
    seen: set[str] = set()
    problems = []
    for i, key in enumerate(ids):
        if key in seen:
            problems.append((f"{kind}.{i}.id", f"duplicate id {key!r} in this customer"))
        seen.add(key)
    return problems


def cross_check(c: CustomerLine, now: datetime | None = None) -> list[tuple[str, str]]:
    """Rules across fields of one customer, as ``(path, message)`` pairs (empty when fine);
    with ``now``, an invoice's failure times must not be in the future."""
    cards = [pm.id for pm in c.payment_methods]
    subs = {s.id: s for s in c.subscriptions}
    problems = _duplicates("payment_methods", cards)
    problems += _duplicates("subscriptions", [s.id for s in c.subscriptions])
    problems += _duplicates("invoices", [inv.id for inv in c.invoices])
    defaults = [i for i, pm in enumerate(c.payment_methods) if pm.default]
    for i in defaults[1:]:
        problems.append(
            (f"payment_methods.{i}.default", "only one card of a customer may be the default")
        )
    for i, sub in enumerate(c.subscriptions):
        if sub.payment_method is not None and sub.payment_method not in cards:
            problems.append(
                (f"subscriptions.{i}.payment_method", "not one of this customer's payment_methods")
            )
    for i, inv in enumerate(c.invoices):
        parent = subs.get(inv.subscription)
        if parent is None:
            problems.append(
                (f"invoices.{i}.subscription", "not one of this customer's subscriptions")
            )
        elif parent.currency != inv.currency:
            problems.append(
                (f"invoices.{i}.currency", f"differs from its subscription's ({parent.currency})")
            )
        elif parent.status == "cancelled":
            problems.append(
                (
                    f"invoices.{i}.subscription",
                    "is cancelled; an invoice in dunning needs a live one",
                )
            )
        problems += _attempt_times(i, inv)
        if now is not None:
            problems += _future_times(i, inv, now)
    return problems


def _attempt_times(i: int, inv: InvoiceLine) -> list[tuple[str, str]]:
    last = inv.last_attempt_at
    if last is None or last == inv.first_failed_at:
        return []
    if last < inv.first_failed_at:
        return [(f"invoices.{i}.last_attempt_at", "is before first_failed_at")]
    if inv.attempts == 1:
        return [(f"invoices.{i}.last_attempt_at", "differs from first_failed_at with 1 attempt")]
    return []


def _future_times(i: int, inv: InvoiceLine, now: datetime) -> list[tuple[str, str]]:
    """A charge that failed after ``now`` (beyond the clock skew) has not happened yet."""
    problems = []
    for name in ("first_failed_at", "last_attempt_at"):
        at: datetime | None = getattr(inv, name)
        if at is not None and at > now + CLOCK_SKEW:
            problems.append((f"invoices.{i}.{name}", _in_the_future(at, now)))
    return problems


def _in_the_future(at: datetime, now: datetime) -> str:
    minutes = int(CLOCK_SKEW.total_seconds() // 60)
    return (
        f"is in the future ({at.isoformat()}; the import ran at {now.isoformat()} and allows "
        f"{minutes} minutes of clock skew)"
    )
