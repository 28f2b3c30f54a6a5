"""The simulation's names in words, for the tables people read (``demo``, ``whatif``).

JSON output keeps the names; a name without words here is shown as it is.
"""

from __future__ import annotations

from functools import cache

from babel.numbers import get_currency_precision

EMAIL_KINDS = {
    "payment_failed": "payment failed (first failure)",
    "action_required": "action required (the card must change)",
    "payment_retry_failed": "a retry failed (reminder)",
    "final_notice": "final notice before suspension",
    "subscription_suspended": "subscription suspended",
    "payment_recovered": "payment recovered (receipt)",
    "card_updated": "card updated",
    "card_expiring": "card expiring soon",
}

STOP_REASONS = {
    "needs_new_card": "the card needs new data or replacing",
    "hard_decline": "hard decline: never retried",
    "weak_soft_limit": "weak decline: its few retries used",
    "schedule_exhausted": "every scheduled retry used",
    "window_over": "the dunning window ended",
    "network_limit": "a card network's retry limit",
    "mac_never": "Mastercard advice: do not try again",
    "visa_category_1": "Visa: the issuer will never approve",
    "cancelled": "subscription cancelled",
    "duplicate_transaction": "duplicate charge: reconciled, not retried",
    "outcome_unknown": "a charge's outcome still unknown",
    "paid": "paid",
    "written_off": "written off by an operator",
}

DECLINE_CLASSES = {
    "insufficient_funds": "insufficient funds",
    "soft": "other soft declines",
    "weak": "weak declines (do not honor, generic)",
    "new_card": "needs new card data (expired, CVC)",
    "hard": "hard declines (lost, stolen, closed)",
    "other_card": "retried on another card",
}


def words(table: dict[str, str], name: str) -> str:
    return table.get(name, name.replace("_", " "))


@cache
def minor_digits(currency: str) -> int:
    """Digits after the decimal point of ``currency`` (2 for EUR, 0 for JPY)."""
    try:
        return int(get_currency_precision(currency))
    except (KeyError, ValueError):
        return 2


def money(minor: float, currency: str) -> str:
    """An amount in minor units as ``1,234.50`` in its currency's own digits."""
    digits = minor_digits(currency)
    return f"{minor / 10**digits:,.{digits}f}"
