"""What Stripe itself does about a failed invoice payment, as far as its API shows it.

Stripe's own retries (Smart Retries or a custom retry schedule) and its failed-payment emails
to customers are Dashboard settings (Settings → Billing → Revenue recovery); the API does not
expose either setting. Retries show on the invoices, though: an open invoice that Stripe will
charge again carries the time in ``next_payment_attempt`` (``null`` when Stripe will not retry
it). The emails leave no trace in the API at all, so they can only be named, not detected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dunning.gateways.stripe.answers import text
from dunning.gateways.stripe.http import StripeHttp, refused

RETRIES_OFF = (
    "Dashboard → Settings → Billing → Revenue recovery → Retries: turn Smart Retries off and "
    "set no retry schedule, so only this pipeline retries"
)
EMAILS_OFF = (
    "Dashboard → Settings → Billing → Revenue recovery → Emails: turn off 'Send emails when "
    "card payments fail' and the 3-D Secure reminders, so customers get only this pipeline's "
    "emails"
)


@dataclass(frozen=True, slots=True)
class StripeRetries:
    """Open, automatically collected invoices read, and those Stripe will retry itself."""

    open_read: int
    retried: list[tuple[str, datetime]]

    @property
    def on(self) -> bool:
        return bool(self.retried)


def stripe_retries(http: StripeHttp, *, deadline: float, limit: int = 100) -> StripeRetries:
    """Read up to ``limit`` open invoices that Stripe collects itself."""
    params = {
        "status": "open",
        "collection_method": "charge_automatically",
        "limit": str(limit),
    }
    status, body = http.call("GET", "/v1/invoices", params=params, deadline=deadline)
    if status != 200:
        raise refused(status, body)
    page = body.get("data")
    invoices = [i for i in page if isinstance(i, dict)] if isinstance(page, list) else []
    retried = []
    for invoice in invoices:
        at = invoice.get("next_payment_attempt")
        if isinstance(at, int):
            retried.append((text(invoice, "id") or "?", datetime.fromtimestamp(at, UTC)))
    return StripeRetries(open_read=len(invoices), retried=retried)
