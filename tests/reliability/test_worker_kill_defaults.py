"""Fault 1 on the shipped defaults: the worker's process group is killed with SIGKILL while it
holds charges in flight and a batch of emails, and every case is finished within 150 s of the
kill, with no timing shortened for the test.

What brings each kind of held work back (``config.settings.TimingSettings``): the dead
worker's messages return once its heartbeat is ``broker_heartbeat_timeout_s`` old (every
worker process runs dramatiq's maintenance a few times per timeout); the emails it was
sending are free again when their ``work_lease_s`` ends (renewed while a worker lives) and the
outbox producer finds them within ``outbox_scan_interval_s``; its charges in flight are looked
up ``unknown_after_s`` after they were sent, found by a scan every ``retry_scan_interval_s``,
and retried under a new key when they were not made.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from config.settings import TimingSettings
from dunning.store.tables import notifications
from tests.integration.conftest import Pipeline
from tests.reliability.invariants import progress
from tests.reliability.run import finish, start, under_way
from tests.reliability.servers import SmtpServer

pytestmark = pytest.mark.reliability

RECOVERY_BUDGET_S = 150.0
# Each charge takes this long and each message this long at the server, so that the kill
# finds charges in flight and a batch of emails being sent.
SLOW_CHARGES = {"DUNNING_SANDBOX_DELAY_MS": "60"}
SMTP_DELAY_S = 0.02


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(delay_s=SMTP_DELAY_S)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def leased_emails(p: Pipeline) -> int:
    """Emails a worker holds now (their lease is in the future and they are unsent)."""
    with p.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    notifications.c.status == "pending",
                    notifications.c.claimed_until > datetime.now(UTC),
                )
            ).scalar_one()
        )


def shipped_defaults(p: Pipeline) -> None:
    """Drop every timing the fixtures shorten: the daemons run on the defaults."""
    for name in [k for k in p.env if k.startswith(("DUNNING_TIMING__", "DUNNING_SMTP__TIM"))]:
        del p.env[name]


@pytest.mark.timeout(600)
def test_a_worker_killed_mid_burst_has_every_case_finished_within_150_s_on_the_defaults(
    pipeline: Pipeline,
) -> None:
    shipped_defaults(pipeline)
    defaults = TimingSettings()
    run = start(pipeline, prefix="d", worker_env=SLOW_CHARGES)
    under_way(run)
    pipeline.wait(
        lambda: leased_emails(pipeline) and progress(pipeline)["unresolved_attempts"] > 0,
        timeout_s=60,
        what="a batch of emails sending while charges are in flight",
    )

    pipeline.daemons.kill("worker-1")
    run.mark("killed")
    at_kill = progress(pipeline) | {"leased_emails": leased_emails(pipeline)}
    pipeline.start_worker("worker-2", **SLOW_CHARGES)

    figures = finish(
        run,
        "worker_sigkill_defaults",
        allow_duplicates=True,  # SMTP's one window: accepted, the worker killed before the mark
        timeout_s=RECOVERY_BUDGET_S,
        faults={
            "worker_sigkills": 1,
            "charges_in_flight_at_kill": at_kill["unresolved_attempts"],
            "emails_leased_at_kill": at_kill["leased_emails"],
            "paid_at_kill": at_kill["paid"],
        },
        timing=defaults.model_dump(),
    )
    assert at_kill["unresolved_attempts"] > 0, "no charge was in flight when the worker died"
    assert at_kill["leased_emails"] > 0, "no email was being sent when the worker died"
    assert at_kill["paid"] < len(run.cases.paid)
    assert figures["paid"] == len(run.cases.paid)
    assert figures["drain_after_fault_s"] <= RECOVERY_BUDGET_S
