"""A callback that reports an outcome nobody knows yet (Quickpay 50000/50300, a gateway error; a
Stripe ``duplicate_transaction``) leaves the charge to the look-up, on a real worker and
scheduler with Redis and PostgreSQL: the attempt waits as ``unknown``, the resolver looks it up,
finds no charge, and the invoice is charged again at once. Before, the attempt was recorded as
a decline and the retries stopped for good (``outcome_unknown``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dunning.store.tables import invoices, payment_attempts
from tests.integration.conftest import Pipeline
from tests.integration.test_poison_events import failing_stripe, seed_customers, stored
from tests.unit.web.builders import quickpay_recurring

pytestmark = pytest.mark.integration


def quickpay_now(now: datetime, **kw: Any) -> dict[str, Any]:
    """A Quickpay callback of a recurring payment made ``now``."""
    body = quickpay_recurring(**kw)
    stamp = now.isoformat().replace("+00:00", "Z")
    body["operations"][0]["created_at"] = body["created_at"] = body["updated_at"] = stamp
    return body


def attempts_of(p: Pipeline, invoice_id: str) -> list[tuple[int, str]]:
    with p.engine.connect() as conn:
        rows = conn.execute(
            select(payment_attempts.c.attempt_no, payment_attempts.c.status)
            .where(payment_attempts.c.invoice_id == invoice_id)
            .order_by(payment_attempts.c.attempt_no)
        )
        return [(int(n), str(s)) for n, s in rows]


def invoice(p: Pipeline, invoice_id: str) -> dict[str, object]:
    """The invoice's row; empty while its event is not processed yet."""
    with p.engine.connect() as conn:
        row = conn.execute(select(invoices).where(invoices.c.id == invoice_id)).mappings().first()
        return dict(row) if row else {}


@pytest.mark.timeout(120)
def test_an_unknown_outcome_reported_by_a_callback_is_looked_up_and_charged_again(
    pipeline: Pipeline,
) -> None:
    now = datetime.now(UTC)
    seed_customers(pipeline.engine, ["a", "b", "c"], now)
    reports = {
        "in_qp_50000": ("quickpay", "1:1", quickpay_now(
            now, payment_id=1, order_id="in_qp_50000", subscription_id="sub_a", customer="cus_a",
            code="50000", aq_code="",
        )),
        "in_qp_50300": ("quickpay", "2:1", quickpay_now(
            now, payment_id=2, order_id="in_qp_50300", subscription_id="sub_b", customer="cus_b",
            code="50300", aq_code="",
        )),
        "in_dup": ("stripe", "evt_dup", failing_stripe(
            "c", "in_dup", now, decline_code="duplicate_transaction",
        )),
    }  # fmt: skip
    ids = [
        stored(pipeline.engine, provider, event_id, body, now + timedelta(seconds=i))
        for i, (provider, event_id, body) in enumerate(reports.values())
    ]
    with pipeline.broker() as (_, c):
        c.dispatcher.process_events(ids)
    pipeline.start_worker()
    pipeline.start_scheduler()

    def all_paid() -> bool:
        return all(invoice(pipeline, i).get("status") == "paid" for i in reports)

    pipeline.wait(all_paid, timeout_s=60, what="each invoice looked up and charged again")
    for invoice_id in reports:
        # The reported attempt was not made (the look-up found nothing): the next one paid.
        assert attempts_of(pipeline, invoice_id) == [(1, "not_charged"), (2, "succeeded")]
        assert invoice(pipeline, invoice_id)["stop_reason"] is None
    ledger = pipeline.ledger()
    assert sorted(e.status for e in ledger) == ["succeeded"] * len(reports)
