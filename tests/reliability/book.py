"""The book a reliability run works through: many past-due invoices whose retry is due now.

Most cards succeed on the retry (``sbx_ok_…``); every ``hard_every``-th card is lost
(``sbx_lost_card_…``), so its retry is declined for good and the invoice's retries stop with a
reason. Either way each case has one final state the checker can demand.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import insert, update

from dunning.gateways.base import Decline
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.tables import customers, invoices, payment_methods, subscriptions
from tests.integration.conftest import Pipeline, noon_zone

AMOUNT = 1500
SEED_THREADS = 4


@dataclass
class Cases:
    """The invoices of a run, by the final state each must reach."""

    paid: list[str] = field(default_factory=list)  # the retry succeeds
    stopped: list[str] = field(default_factory=list)  # the retry is declined for good

    @property
    def all(self) -> list[str]:
        return self.paid + self.stopped

    def __len__(self) -> int:
        return len(self.paid) + len(self.stopped)

    def __iadd__(self, other: Cases) -> Cases:
        self.paid += other.paid
        self.stopped += other.stopped
        return self


def _rows(
    keys: list[str], hard: set[str], names: dict[str, str], now: datetime
) -> dict[str, list[dict[str, object]]]:
    zone = noon_zone(now)
    stamps = {"created_at": now, "updated_at": now}
    return {
        "customers": [
            {
                "id": f"cus_{k}",
                "email": f"{k}@customers.test",
                "name": names.get(k, f"Customer {k}"),
                "locale": "en",
                "timezone": zone,
                "billing_emails": [],
                **stamps,
            }
            for k in keys
        ],
        "payment_methods": [
            {
                "id": f"pm_{k}",
                "customer_id": f"cus_{k}",
                "gateway": "sandbox",
                "token": f"sbx_lost_card_{k}" if k in hard else f"sbx_ok_{k}",
                "network": "visa",
                "last4": "4242",
                "exp_month": 12,
                "exp_year": now.year + 5,
                "is_default": True,
                **stamps,
            }
            for k in keys
        ],
        "subscriptions": [
            {
                "id": f"sub_{k}",
                "customer_id": f"cus_{k}",
                "plan": "default",
                "amount": AMOUNT,
                "currency": "USD",
                "interval": "month",
                "status": "active",
                "payment_method_id": f"pm_{k}",
                **stamps,
            }
            for k in keys
        ],
    }


def seed_cases(
    p: Pipeline,
    n: int,
    *,
    prefix: str,
    hard_every: int = 10,
    names: dict[int, str] | None = None,
) -> Cases:
    """``n`` invoices opened by a softly declined renewal (as a webhook reports it), each with
    its own customer, card and subscription, and their retry due now. ``names`` gives some
    customers (by case number) a name of the test's choosing."""
    now = datetime.now(UTC)
    keys = [f"{prefix}{i:05d}" for i in range(n)]
    hard = {k for i, k in enumerate(keys) if hard_every and i % hard_every == hard_every - 1}
    rows = _rows(keys, hard, {keys[i]: name for i, name in (names or {}).items()}, now)
    with p.engine.begin() as conn:
        conn.execute(insert(customers), rows["customers"])
        conn.execute(insert(payment_methods), rows["payment_methods"])
        conn.execute(insert(subscriptions), rows["subscriptions"])
    c = p.container
    _ = c.policy, c.gateway  # built once here, not raced by the seeding threads
    decline = Decline(decline_code="insufficient_funds", network_code="51")

    def fail(k: str) -> str:
        failure = FailedCharge(f"in_{k}", f"sub_{k}", AMOUNT, "USD", decline, now)
        return record_failure(c, failure, now)

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        assert set(pool.map(fail, keys)) == {"recorded"}
    cases = Cases(
        paid=[f"in_{k}" for k in keys if k not in hard],
        stopped=[f"in_{k}" for k in keys if k in hard],
    )
    with p.engine.begin() as conn:
        conn.execute(
            update(invoices)
            .where(invoices.c.id.in_(cases.all))
            .values(next_attempt_at=datetime.now(UTC))
        )
    return cases


def add_account(p: Pipeline, key: str, *, name: str, email: str | None = None) -> str:
    """A customer with a working card and an active subscription, nothing owed; its id."""
    rows = _rows([key], set(), {key: name}, datetime.now(UTC))
    if email:
        rows["customers"][0]["email"] = email
    with p.engine.begin() as conn:
        conn.execute(insert(customers), rows["customers"])
        conn.execute(insert(payment_methods), rows["payment_methods"])
        conn.execute(insert(subscriptions), rows["subscriptions"])
    return f"cus_{key}"
