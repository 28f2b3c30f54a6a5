"""A batch of outbox rows: leased at once, renewed before the lease can run out mid-send, given
back when the batch fails, each email marked (with its audit row) right after its send."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from dunning.errors import MailTransient, MailUnavailable
from dunning.mail.compose import OutgoingEmail
from dunning.mail.message import message_id_for
from dunning.mail.samples import sample_context
from dunning.mail.transport import MemoryTransport, SendResult
from dunning.services.outbox import records, send_notifications
from dunning.store.tables import audit_log, notifications
from schedules.producers import due_emails
from tests.unit.pipeline.conftest import Pipeline

SEND_S = 200.0  # each send takes this long on the virtual clock


def queue(p: Pipeline, n: int) -> list[int]:
    now = p.clock.now()
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
            "message_id": message_id_for(f"card_expiring:cus_{i}", p.c.settings.mail_from),
            "created_at": now,
        }
        for i in range(n)
    ]
    with p.c.engine.begin() as conn:
        return list(
            conn.execute(insert(notifications).returning(notifications.c.id), rows).scalars()
        )


def leases(p: Pipeline) -> dict[int, Any]:
    with p.c.engine.connect() as conn:
        rows = conn.execute(select(notifications.c.id, notifications.c.claimed_until)).all()
    return {r.id: r.claimed_until for r in rows}


class SlowTransport(MemoryTransport):
    """Each send moves the clock on, and first runs ``during`` (what another sender does)."""

    def __init__(self, p: Pipeline, during: Any = None, fail_at: int | None = None) -> None:
        super().__init__()
        self.p, self.during, self.fail_at = p, during, fail_at

    def send(self, message: OutgoingEmail | EmailMessage) -> SendResult:
        if self.during is not None:
            self.during()
        if self.fail_at is not None and len(self.sent) == self.fail_at:
            raise RuntimeError("the worker is going down")
        self.p.advance(timedelta(seconds=SEND_S))
        return super().send(message)


def test_a_batch_is_leased_at_once_and_each_email_is_marked_with_its_audit_row(
    pipeline: Pipeline,
) -> None:
    ids = queue(pipeline, 3)
    result = send_notifications(pipeline.c, ids, pipeline.clock.now())
    assert result == {i: "sent" for i in ids}
    assert [m["To"] for m in pipeline.mail.sent] == [f"cus_{i}@example.com" for i in range(3)]
    assert pipeline.count(notifications, notifications.c.status == "sent") == 3
    with pipeline.c.engine.connect() as conn:
        audit = conn.execute(select(audit_log.c.data).where(audit_log.c.kind == "email")).all()
    assert sorted(a.data["to"] for a in audit) == [f"cus_{i}@example.com" for i in range(3)]
    assert set(leases(pipeline).values()) == {None}
    assert send_notifications(pipeline.c, ids, pipeline.clock.now()) == {}  # nothing twice


def test_a_batch_renews_its_lease_itself_when_the_keeper_falls_behind(pipeline: Pipeline) -> None:
    """On the virtual clock the keeper thread never runs (its period is real time): each send
    outlasts the whole lease, and another sender polling before each send never gets a row
    the batch still holds."""
    ids = queue(pipeline, 5)
    lease_s = pipeline.c.settings.timing.work_lease_s
    assert SEND_S > lease_s
    competitor: list[dict[int, str]] = []
    slow = SlowTransport(
        pipeline, during=lambda: competitor.append(
            send_notifications(pipeline.c, ids, pipeline.clock.now())
        ),
    )  # fmt: skip
    pipeline.c.transport = slow
    started = pipeline.clock.now()
    assert send_notifications(pipeline.c, ids, started) == {i: "sent" for i in ids}
    assert competitor == [{}] * 5  # every poll found every row leased or sent
    assert len(slow.sent) == 5
    assert pipeline.clock.now() - started > timedelta(seconds=lease_s)


def test_a_row_whose_lease_ran_out_and_was_taken_is_not_sent_again(pipeline: Pipeline) -> None:
    """The first send outlasts the lease; meanwhile another sender (a message with the other
    rows) takes them and sends them. The batch's renewal finds them gone and skips them: each
    email goes once."""
    ids = queue(pipeline, 4)
    others: list[dict[int, str]] = []
    first = [True]

    class Late(MemoryTransport):
        def send(self, message: OutgoingEmail | EmailMessage) -> SendResult:
            if first.pop() if first else False:
                pipeline.advance(timedelta(seconds=SEND_S))  # the lease runs out mid-send
                others.append(send_notifications(pipeline.c, ids[1:], pipeline.clock.now()))
            return pipeline.mail.send(message)

    pipeline.c.transport = Late()
    assert send_notifications(pipeline.c, ids, pipeline.clock.now()) == {ids[0]: "sent"}
    assert others == [{i: "sent" for i in ids[1:]}]
    assert len(pipeline.mail.sent) == 4
    assert len({m["Message-ID"] for m in pipeline.mail.sent}) == 4


def test_a_failing_batch_gives_back_the_rows_it_did_not_send(pipeline: Pipeline) -> None:
    ids = queue(pipeline, 4)
    pipeline.c.transport = SlowTransport(pipeline, fail_at=1)
    with pytest.raises(RuntimeError, match="going down"):
        send_notifications(pipeline.c, ids, pipeline.clock.now())
    state = leases(pipeline)
    assert state[ids[0]] is None  # sent and marked
    assert state[ids[1]] is not None  # in flight when it failed: kept until its lease ends
    assert state[ids[2]] is None
    assert state[ids[3]] is None
    retry = MemoryTransport()
    pipeline.c.transport = retry
    assert send_notifications(pipeline.c, ids, pipeline.clock.now()) == {
        ids[2]: "sent",
        ids[3]: "sent",
    }


def test_a_send_put_off_twice_is_enqueued_again_when_each_backoff_ends(
    pipeline: Pipeline,
) -> None:
    [nid] = queue(pipeline, 1)
    pipeline.mail.fail_next(2, MailTransient("421 try later"))
    assert due_emails(pipeline.c, pipeline.clock.now()) == 1
    pipeline.drain()
    for attempt in (1, 2):
        row = pipeline.row(notifications, nid)  # type: ignore[arg-type]
        assert (row["send_attempts"], row["status"], row["enqueued_until"]) == (
            attempt,
            "pending",
            None,
        )
        pipeline.advance(row["claimed_until"] - pipeline.clock.now())  # the backoff's end
        assert due_emails(pipeline.c, pipeline.clock.now()) == 1
        pipeline.drain()
    assert len(pipeline.mail.sent) == 1
    assert pipeline.row(notifications, nid)["status"] == "sent"  # type: ignore[arg-type]


def test_an_unavailable_server_puts_off_the_rest_of_the_batch_without_trying_it(
    pipeline: Pipeline,
) -> None:
    ids = queue(pipeline, 4)
    tries: list[str] = []

    class Down(MemoryTransport):
        def send(self, message: OutgoingEmail | EmailMessage) -> SendResult:
            tries.append("send")
            raise MailUnavailable("SMTP 127.0.0.1:25 unreachable: connection refused")

    pipeline.c.transport = Down()
    now = pipeline.clock.now()
    assert send_notifications(pipeline.c, ids, now) == {i: "deferred" for i in ids}
    assert tries == ["send"]  # one try; the other three were not sent to a dead server
    with pipeline.c.engine.connect() as conn:
        rows = conn.execute(select(notifications).order_by(notifications.c.id)).mappings().all()
    backoff = timedelta(seconds=pipeline.c.settings.timing.mail_retry_base_s)
    assert [(r["status"], r["claimed_until"], r["enqueued_until"]) for r in rows] == [
        ("pending", now + backoff, None)
    ] * 4
    assert all("unreachable" in r["last_error"] for r in rows)
    assert [r["send_attempts"] for r in rows] == [1, 0, 0, 0]  # only the first was handed over
    pipeline.c.transport = pipeline.mail
    assert send_notifications(pipeline.c, ids, pipeline.clock.now()) == {}  # backing off
    pipeline.advance(backoff)
    assert send_notifications(pipeline.c, ids, pipeline.clock.now()) == {i: "sent" for i in ids}
    assert len(pipeline.mail.sent) == 4


def test_a_failed_mark_keeps_that_row_leased_and_gives_back_the_rest(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The email whose mark failed may have gone out: it waits for its lease and goes again
    with the same Message-ID; the emails after it were not sent and go at once."""
    ids = queue(pipeline, 4)
    real = records.mark_sent
    calls: list[int] = []

    def flaky(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
        real(*args)

    monkeypatch.setattr(records, "mark_sent", flaky)
    with pytest.raises(OperationalError):
        send_notifications(pipeline.c, ids, pipeline.clock.now())
    state = leases(pipeline)
    assert state[ids[0]] is None
    assert state[ids[1]] is not None
    assert state[ids[2]] is None
    assert state[ids[3]] is None
    assert send_notifications(pipeline.c, ids, pipeline.clock.now()) == {
        ids[2]: "sent",
        ids[3]: "sent",
    }
    pipeline.advance(state[ids[1]] - pipeline.clock.now())  # the lease ends
    assert send_notifications(pipeline.c, ids, pipeline.clock.now()) == {ids[1]: "sent"}
    sent = [m["Message-ID"] for m in pipeline.mail.sent]
    assert len(sent) == 5
    assert sent.count(sent[1]) == 2
