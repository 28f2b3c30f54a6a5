"""The outbox on PostgreSQL and a real SMTP server: a batch is leased, renewed and marked with
the statements PostgreSQL alone runs (the mark and its audit row are one)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.exc import OperationalError

from dunning.bootstrap import bootstrap
from dunning.mail.message import message_id_for
from dunning.mail.samples import sample_context
from dunning.services.outbox import records, send_notifications
from dunning.store.tables import audit_log, notifications
from tests.integration.conftest import MAIL_FROM, MailSink, settings_from_env

pytestmark = pytest.mark.integration


def queue(engine: Engine, n: int, now: object) -> list[int]:
    rows = [
        {
            "dedup_key": f"card_expiring:cus_{i}",
            "kind": "card_expiring",
            "customer_id": f"cus_{i}",
            "to_addr": f"cus_{i}@example.com",
            "cc": ["books@example.com"] if i % 2 else [],
            "locale": "da" if i % 2 else "en",
            "context": sample_context("card_expiring"),
            "not_before": now,
            "message_id": message_id_for(f"card_expiring:cus_{i}", MAIL_FROM),
            "created_at": now,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        inserted = conn.execute(insert(notifications).returning(notifications.c.id), rows)
        return list(inserted.scalars())


# 5 s: shorter than a send may take; 0.3 s: the keeper renews it several times mid-batch
@pytest.mark.parametrize("lease_s", [600.0, 5.0, 0.3])
def test_a_batch_is_sent_once_and_each_email_audited(
    pipeline_env: dict[str, str],
    pg_engine: Engine,
    smtp: tuple[int, MailSink],
    lease_s: float,
) -> None:
    env = pipeline_env | {"DUNNING_TIMING__WORK_LEASE_S": str(lease_s)}
    c = bootstrap(settings_from_env(env), engine=pg_engine)
    try:
        now = c.clock.now()
        ids = queue(pg_engine, 12, now)
        assert send_notifications(c, ids, now) == {i: "sent" for i in ids}
        assert send_notifications(c, ids, c.clock.now()) == {}
    finally:
        c.close()
    received = smtp[1].messages()
    assert sorted(m["Message-ID"] for m in received) == sorted(
        message_id_for(f"card_expiring:cus_{i}", MAIL_FROM) for i in range(12)
    )
    with pg_engine.connect() as conn:
        rows = conn.execute(select(notifications)).mappings().all()
        audit = conn.execute(select(audit_log).where(audit_log.c.kind == "email")).mappings().all()
    assert {(r["status"], r["claimed_until"], r["send_attempts"]) for r in rows} == {
        ("sent", None, 1)
    }
    assert all(r["sent_at"] is not None for r in rows)
    by_message = {a["data"]["message_id"]: a for a in audit}
    assert len(audit) == 12
    assert set(by_message) == {r["message_id"] for r in rows}
    for r in rows:
        a = by_message[r["message_id"]]
        assert (a["customer_id"], a["reason"], a["at"]) == (r["customer_id"], "card_expiring",
                                                            r["sent_at"])  # fmt: skip
        assert a["data"]["to"] == r["to_addr"]
        assert a["data"]["cc"] == r["cc"]
        subject = next(m["Subject"] for m in received if m["Message-ID"] == r["message_id"])
        assert a["data"]["subject"] == subject


def test_a_connection_lost_at_the_mark_fails_the_batch_as_sqlalchemy_does_and_the_pool_recovers(
    pipeline_env: dict[str, str],
    pg_engine: Engine,
    smtp: tuple[int, MailSink],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mark runs on psycopg itself: a backend that dies under it surfaces as SQLAlchemy's
    OperationalError (what the worker's retry sees for any other statement), the email keeps
    its lease (it may have gone out: it is sent again with the same Message-ID), and the next
    batch gets a working connection."""
    c = bootstrap(settings_from_env(pipeline_env), engine=pg_engine)
    real = records.mark_sent

    def killed(conn: Connection, *args: Any) -> None:
        pid = conn.connection.driver_connection.info.backend_pid
        with pg_engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        real(conn, *args)

    try:
        now = c.clock.now()
        ids = queue(pg_engine, 3, now)
        monkeypatch.setattr(records, "mark_sent", killed)
        with pytest.raises(OperationalError):
            send_notifications(c, ids, now)
        monkeypatch.setattr(records, "mark_sent", real)
        with pg_engine.connect() as conn:
            statuses = conn.execute(select(notifications.c.status)).scalars().all()
        assert statuses == ["pending"] * 3  # nothing recorded as sent, nothing lost
        later = now + timedelta(hours=1)  # past every lease
        assert send_notifications(c, ids, later) == {i: "sent" for i in ids}
    finally:
        c.close()
    first = message_id_for("card_expiring:cus_0", MAIL_FROM)
    assert [m["Message-ID"] for m in smtp[1].messages()].count(first) == 2
