"""The keeper renews a batch's short lease while the batch runs, in real time: a send that
takes longer than the whole lease still holds its rows, and they are free again soon after
the batch is gone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from config.settings import load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.mail.compose import OutgoingEmail
from dunning.mail.message import message_id_for
from dunning.mail.samples import sample_context
from dunning.mail.transport import MemoryTransport, SendResult
from dunning.services.outbox import leases, send_notifications
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import notifications
from dunning.store.uow import statements

LEASE_S = 0.6


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'k.sqlite3'}",
        outbox_dir=tmp_path / "outbox",
        timing={"work_lease_s": LEASE_S},
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    container = bootstrap(settings, engine=engine, transport=MemoryTransport())
    try:
        yield container
    finally:
        container.close()
        engine.dispose()


def queue(c: Container, n: int) -> list[int]:
    now = datetime.now(UTC)
    rows = [
        {
            "dedup_key": f"card_expiring:cus_{i}",
            "kind": "card_expiring",
            "customer_id": f"cus_{i}",
            "to_addr": f"cus_{i}@example.com",
            "cc": [],
            "locale": "en",
            "context": sample_context("card_expiring"),
            "not_before": now,
            "message_id": message_id_for(f"card_expiring:cus_{i}", c.settings.mail_from),
            "created_at": now,
        }
        for i in range(n)
    ]
    with c.engine.begin() as conn:
        return list(
            conn.execute(insert(notifications).returning(notifications.c.id), rows).scalars()
        )


def lease_of(c: Container, notification_id: int) -> Any:
    with c.engine.connect() as conn:
        return conn.execute(
            select(notifications.c.claimed_until).where(notifications.c.id == notification_id)
        ).scalar_one()


def until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        threading.Event().wait(0.02)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_a_send_longer_than_the_lease_keeps_its_rows_while_the_worker_lives(
    c: Container,
) -> None:
    ids = queue(c, 3)
    entered, release = threading.Event(), threading.Event()

    class Stuck(MemoryTransport):
        def send(self, message: OutgoingEmail | EmailMessage) -> SendResult:
            if not entered.is_set():
                entered.set()
                assert release.wait(10)
            return super().send(message)

    stuck = Stuck()
    c.transport = stuck
    results: list[dict[int, str]] = []
    batch = threading.Thread(
        target=lambda: results.append(send_notifications(c, ids, datetime.now(UTC)))
    )
    batch.start()
    assert entered.wait(10)
    first = aware(lease_of(c, ids[0]))
    # Wait until the first lease is over: the keeper has renewed it by then.
    until(lambda: datetime.now(UTC) > first)
    assert aware(lease_of(c, ids[0])) > first
    assert send_notifications(c, ids, datetime.now(UTC)) == {}  # another sender gets nothing
    release.set()
    batch.join(10)
    assert results == [{i: "sent" for i in ids}]
    assert len(stuck.sent) == 3


def test_the_keeper_renews_only_what_the_batch_still_holds(c: Container) -> None:
    ids = queue(c, 3)
    with statements(c.engine) as conn:
        lease, rows = leases.claim(conn, c, ids, datetime.now(UTC))
    assert [r["id"] for r in rows] == ids
    lease.done(ids[0])  # recorded by the batch
    with leases.kept(c, lease):
        until(lambda: lease.renewals >= 2)
    held = {i: aware(lease_of(c, i)) for i in ids}
    assert held[ids[1]] == held[ids[2]] == aware(lease.until)
    assert held[ids[0]] < held[ids[1]]  # left as the batch wrote it
    ended = lease.renewals
    until(lambda: datetime.now(UTC) > aware(lease.until))  # the batch is gone: nothing renews
    assert lease.renewals == ended
    assert send_notifications(c, ids, datetime.now(UTC)) == {i: "sent" for i in ids}
