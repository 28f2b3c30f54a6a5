"""What the result page says after a card change or a reactivation, and what it may say was
charged.

The result page is a redirect target, ``/update/{token}/done?outcome=paid&paid=EUR.2900&sig=…``.
The amount is the sum of the invoices the charge paid, read from the database once the charge
succeeded, and signed with the link secret over the link token, the outcome and the amount. A
customer who edits the URL gets the page without an amount, never a forged one.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from pydantic import SecretStr

from dunning.bootstrap import Container
from dunning.services.cards import ReplaceResult
from dunning.store import rows
from dunning.store.tables import invoices

_DOMAIN = b"dunning-receipt:"  # keeps these MACs apart from the link and CSRF MACs
MAX_PAID = 200  # characters of the ``paid`` parameter; a few currencies fit many times over

Amounts = tuple[tuple[int, str], ...]


def replace_outcome(result: ReplaceResult) -> str:
    """What the result page says after a card change."""
    statuses = set(result.charged.values())
    if not statuses:
        return "saved"
    if statuses == {"succeeded"}:
        return "paid"
    return "charge_declined" if "declined" in statuses else "pending"


def reactivate_outcome(result: ReplaceResult) -> str:
    statuses = set(result.charged.values())
    if not statuses:
        return "nothing_due"
    if statuses == {"succeeded"}:
        return "reactivated"
    return "reactivate_declined" if "declined" in statuses else "pending"


def paid_amounts(c: Container, result: ReplaceResult) -> Amounts:
    """What the charges of ``result`` collected, one amount per currency (blocking)."""
    paid = sorted(invoice for invoice, status in result.charged.items() if status == "succeeded")
    totals: dict[str, int] = {}
    with c.engine.connect() as conn:
        for invoice_id in paid:
            row = rows.find(conn, invoices, invoice_id)
            if row is not None:
                currency = str(row["currency"])
                totals[currency] = totals.get(currency, 0) + int(row["amount"])
    return tuple((amount, currency) for currency, amount in sorted(totals.items()) if amount)


def _mac(secret: SecretStr, token: str, outcome: str, paid: str) -> str:
    key = secret.get_secret_value().encode()
    message = _DOMAIN + "|".join((token, outcome, paid)).encode("utf-8", "replace")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def done_url(secret: SecretStr, token: str, outcome: str, paid: Amounts) -> str:
    """The result page's address; with amounts, signed so the page can trust them."""
    query = {"outcome": outcome}
    if paid:
        text = ",".join(f"{currency}.{amount}" for amount, currency in paid)
        query |= {"paid": text, "sig": _mac(secret, token, outcome, text)}
    return f"/update/{token}/done?{urlencode(query)}"


def read_paid(secret: SecretStr, token: str, outcome: str, paid: str, sig: str) -> Amounts:
    """The amounts :func:`done_url` signed; ``()`` when missing, malformed or not signed."""
    if not paid or len(paid) > MAX_PAID:
        return ()
    if not hmac.compare_digest(sig.encode(), _mac(secret, token, outcome, paid).encode()):
        return ()
    found = []
    for part in paid.split(","):
        currency, _, amount = part.partition(".")
        if len(currency) != 3 or not currency.isalpha() or not amount.isdigit():
            return ()
        found.append((int(amount), currency))
    return tuple(found)
