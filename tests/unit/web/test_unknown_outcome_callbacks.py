"""A Quickpay callback with 50000 (a gateway error: the charge may exist) waits for the look-up;
the customer hears of a failed payment only once a charge is known to have failed (the same on
PostgreSQL with real workers: tests/integration/test_unknown_callbacks.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dunning.store.tables import invoices, notifications, payment_attempts
from schedules.producers import unknown_outcomes
from tests.unit.web.builders import quickpay_recurring
from tests.unit.web.conftest import Web


def attempts(web: Web) -> list[tuple[int, str, str | None]]:
    with web.c.engine.connect() as conn:
        rows = conn.execute(
            select(
                payment_attempts.c.attempt_no,
                payment_attempts.c.status,
                payment_attempts.c.decline_code,
            ).order_by(payment_attempts.c.attempt_no)
        )
        return [(int(n), str(s), d) for n, s, d in rows]


def kinds(web: Web) -> list[str]:
    return sorted(r["kind"] for r in web.rows(notifications))


def test_a_gateway_error_is_looked_up_and_a_failed_retry_tells_the_customer(web: Web) -> None:
    web.add_customer("cus_1", token="sbx_insufficient_funds_1")

    assert web.post_quickpay(quickpay_recurring(code="50000", aq_code="")).status_code == 200
    web.drain()

    assert attempts(web) == [(1, "unknown", "50000")]
    inv = web.row(invoices, "in_qp_1")
    assert (inv["status"], inv["next_attempt_at"], inv["stop_reason"]) == ("open", None, None)
    assert "payment_failed" not in kinds(web)  # nothing is known to have failed yet

    web.clock.advance(timedelta(seconds=web.c.settings.timing.unknown_after_s + 1))
    assert unknown_outcomes(web.c, web.now) == 1
    web.drain()

    assert attempts(web) == [
        (1, "not_charged", "50000"),
        (2, "declined", "insufficient_funds"),
    ]
    assert kinds(web).count("payment_failed") == 1
    assert web.row(invoices, "in_qp_1")["next_attempt_at"] is not None  # retries go on
