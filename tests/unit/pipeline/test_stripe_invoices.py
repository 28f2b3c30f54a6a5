"""On Stripe, a Stripe Billing invoice is paid through the invoice, under the attempt's key, by
the one charge path; its customer is Stripe's customer, mapped, never assumed equal to ours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from config.settings import load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.clock import VirtualClock
from dunning.gateways.stripe import StripeGateway
from dunning.mail.transport import MemoryTransport
from dunning.model import Initiator
from dunning.services.charging import ChargeOrder, charge
from dunning.services.events import apply
from dunning.services.resolver import resolve_attempt
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import customers, invoices, payment_attempts
from dunning.webhooks.stripe import parse_stripe
from tests.stripe_double import StripeDouble
from tests.unit.pipeline.conftest import START
from tests.unit.web.builders import stripe_invoice_event


@pytest.fixture
def double() -> StripeDouble:
    return StripeDouble()


@pytest.fixture
def c(tmp_path: Path, double: StripeDouble) -> Iterator[Container]:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 's.sqlite3'}",
        outbox_dir=tmp_path / "outbox",
        gateway="stripe",
        stripe={"api_key": double.api_key},
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    gateway = StripeGateway(
        double.api_key, api_base="https://stripe.test", timeout_s=2, transport=double.transport()
    )
    container = bootstrap(
        settings,
        clock=VirtualClock(START),
        engine=engine,
        gateway=gateway,
        transport=MemoryTransport(),
    )
    try:
        yield container
    finally:
        gateway.close()
        engine.dispose()


def _stripe_failure(c: Container, double: StripeDouble, invoice: str = "in_S1") -> None:
    """Stripe says the renewal invoice failed; the double holds that invoice, open."""
    payload = stripe_invoice_event(
        invoice=invoice, customer="cus_S1", card="pm_card_visa", created=START
    )
    [event] = parse_stripe(payload)
    assert apply(c, event, START) == "recorded"
    double.add_invoice(invoice, customer="cus_S1", amount=1900, currency="eur")


def _attempt(c: Container, invoice: str) -> dict[str, object]:
    with c.engine.connect() as conn:
        stmt = select(payment_attempts).where(payment_attempts.c.invoice_id == invoice)
        return dict(
            conn.execute(stmt.order_by(payment_attempts.c.attempt_no.desc())).mappings().first()
        )  # type: ignore[arg-type]


def _status(c: Container, invoice: str) -> str:
    with c.engine.connect() as conn:
        return str(
            conn.execute(select(invoices.c.status).where(invoices.c.id == invoice)).scalar_one()
        )


def test_a_retry_pays_the_stripe_invoice_not_a_side_payment(
    c: Container, double: StripeDouble
) -> None:
    _stripe_failure(c, double)
    with c.engine.connect() as conn:
        mapped = conn.execute(
            select(customers.c.stripe_customer_id, invoices.c.stripe_invoice_id).join(
                invoices, invoices.c.customer_id == customers.c.id
            )
        ).one()
    assert tuple(mapped) == ("cus_S1", "in_S1")

    outcome = charge(c, [ChargeOrder("in_S1", Initiator.merchant, "operator_retry")], START)

    assert outcome == {"in_S1": "succeeded"}
    [paid] = double.posts("/v1/invoices/in_S1/pay")
    attempt = _attempt(c, "in_S1")
    assert paid.headers["idempotency-key"] == attempt["idempotency_key"]
    assert paid.form == {"off_session": "true", "payment_method": "pm_card_visa"}
    assert double.posts("/v1/payment_intents") == []  # no standalone PaymentIntent
    assert double.invoices["in_S1"]["status"] == "paid"
    assert _status(c, "in_S1") == "paid"
    assert attempt["gateway_charge_id"] == double.invoices["in_S1"]["payment_intent"]


def test_a_lost_answer_is_settled_from_the_stripe_invoice(
    c: Container, double: StripeDouble
) -> None:
    _stripe_failure(c, double)
    double.fail_next("timeout_after")  # Stripe paid the invoice; the answer was lost

    outcome = charge(c, [ChargeOrder("in_S1", Initiator.merchant, "operator_retry")], START)
    later = START + timedelta(seconds=c.settings.timing.unknown_after_s + 1)
    resolved = resolve_attempt(c, str(_attempt(c, "in_S1")["idempotency_key"]), later)

    assert outcome == {"in_S1": "unknown"}
    assert resolved == "succeeded"
    assert _status(c, "in_S1") == "paid"
    assert len(double.posts("/v1/invoices/in_S1/pay")) == 1  # settled by reading, not paying


def test_a_customer_stripe_does_not_know_is_not_charged(c: Container, double: StripeDouble) -> None:
    _stripe_failure(c, double)
    with c.engine.begin() as conn:
        conn.execute(update(invoices).values(stripe_invoice_id=None))
        conn.execute(update(customers).values(stripe_customer_id=None))

    outcome = charge(c, [ChargeOrder("in_S1", Initiator.merchant, "operator_retry")], START)

    assert outcome == {"in_S1": "failed"}
    assert [s for s in double.seen if s.method == "POST"] == []


def test_an_invoice_of_ours_is_charged_on_the_mapped_stripe_customer(
    c: Container, double: StripeDouble
) -> None:
    _stripe_failure(c, double)
    with c.engine.begin() as conn:
        conn.execute(update(invoices).values(stripe_invoice_id=None))
        conn.execute(update(customers).values(stripe_customer_id="cus_Elsewhere"))

    outcome = charge(c, [ChargeOrder("in_S1", Initiator.merchant, "operator_retry")], START)

    assert outcome == {"in_S1": "succeeded"}
    [intent] = double.posts("/v1/payment_intents")
    assert intent.form["customer"] == "cus_Elsewhere"
