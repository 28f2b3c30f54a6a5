"""Fault 4: the SMTP server goes down in the middle of a run, long enough for several send
retries, and comes back. Emails wait in the outbox with growing delays and are delivered once
it is back; charges go on meanwhile."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from dunning.store.tables import notifications
from tests.integration.conftest import Pipeline
from tests.reliability.invariants import progress
from tests.reliability.run import finish, start, under_way
from tests.reliability.servers import SmtpServer

pytestmark = pytest.mark.reliability

# A deferred email is retried when its backoff ends (1, 2, 4, 4... s here); a batch holds its
# emails for a short lease (renewed while it sends), 4 s here.
LEASE = {"DUNNING_TIMING__WORK_LEASE_S": "4"}
OUTAGE_S = 16.0


def most_send_attempts(p: Pipeline) -> int:
    with p.engine.connect() as conn:
        return int(conn.execute(select(func.max(notifications.c.send_attempts))).scalar_one())


@pytest.mark.timeout(300)
def test_mail_waits_out_an_smtp_outage_and_is_delivered_once(
    pipeline: Pipeline, smtp_server: SmtpServer
) -> None:
    pipeline.env |= LEASE
    run = start(pipeline, prefix="m")
    under_way(run, paid=len(run.cases) // 5)

    smtp_server.stop()
    run.mark("smtp_down")
    at_stop = progress(pipeline)
    received_at_stop = len(pipeline.mail.messages())
    time.sleep(OUTAGE_S)  # the outage itself, not a wait for a result
    during = progress(pipeline)
    received_during = len(pipeline.mail.messages()) - received_at_stop
    tries_during = most_send_attempts(pipeline)
    smtp_server.start()
    run.mark("smtp_up")

    figures = finish(
        run,
        "smtp_outage",
        # Stopping the server can cut a connection after the message was taken but before the
        # client heard 250: the client retries and the copy has the same Message-ID.
        allow_duplicates=True,
        faults={
            "smtp_outages": 1,
            "outage_s": OUTAGE_S,
            "work_lease_s": float(LEASE["DUNNING_TIMING__WORK_LEASE_S"]),
            "emails_waiting_at_end_of_outage": during["unsent_emails"],
            "most_send_attempts_during_outage": tries_during,
            "paid_during_outage": during["paid"] - at_stop["paid"],
        },
    )
    assert received_during == 0, "the server took mail while it was down"
    assert during["unsent_emails"] > 0, "no email waited for the server"
    # Sent once and retried at least twice while the server was down (a thousand emails wait
    # their turn, so not every one gets a try at every chance).
    assert tries_during >= 3, "emails were not retried several times during the outage"
    assert during["paid"] > at_stop["paid"], "charges stopped while mail was down"
    assert figures["paid"] == len(run.cases.paid)
