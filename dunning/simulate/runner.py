"""Run a scenario through the production pipeline under a virtual clock.

The same producers, actors, policy, templates, services and store as production, on the
embedded default: SQLite in a temporary folder, the stub broker with an in-process worker, the
file outbox and the sandbox gateway. The clock moves in steps; events happen at their exact
time; after each the worker drains every queue before the clock moves on.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from config.settings import Settings, load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.clock import VirtualClock
from dunning.gateways.base import Decline
from dunning.gateways.ledger import MemoryLedger
from dunning.gateways.sandbox import SandboxGateway
from dunning.mail.transport import FileTransport
from dunning.policy_file import load_policy_book
from dunning.services import cards, lifecycle
from dunning.services.failures import FailedCharge, record_failure
from dunning.simulate import journal
from dunning.simulate.book import load_book
from dunning.simulate.due import anything_due
from dunning.simulate.held import HeldDispatcher
from dunning.simulate.scenario import Scenario
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from schedules.producers import PRODUCERS
from workers.broker import QUEUES, make_broker, setup

DAILY = frozenset({"expiring_cards", "token_purge"})
ORDER = (
    "due_events",
    "unknown_outcomes",
    "due_retries",
    "due_steps",
    "expiring_cards",
    "token_purge",
    "due_emails",
)


@dataclass
class Simulation:
    container: Container
    broker: StubBroker
    worker: dramatiq.Worker
    clock: VirtualClock
    gateway: SandboxGateway
    held: HeldDispatcher
    card_seq: Counter[str] = field(default_factory=Counter)

    def drain(self) -> None:
        """Let the worker finish everything, including work that other work enqueued."""
        while True:
            for queue in QUEUES:
                self.broker.join(queue)
            self.worker.join()
            if all(self.broker.queues[q].qsize() == 0 for q in QUEUES):
                return

    def run_producers(self, *, daily: bool) -> None:
        now = self.clock.now()
        timing = self.container.settings.timing
        unknown_after = timedelta(seconds=timing.unknown_after_s)
        if not daily and not anything_due(self.container.engine, now, unknown_after=unknown_after):
            return  # every scan would find nothing: most simulated hours are like this
        for name in ORDER:
            if name in DAILY and not daily:
                continue
            with self.held.holding():
                PRODUCERS[name][0](self.container, now)
            self.drain()


@contextmanager
def simulation(scenario: Scenario, *, workdir: Path | None = None) -> Iterator[Simulation]:
    """Wire the embedded pipeline for a scenario; tear it down afterwards."""
    with tempfile.TemporaryDirectory(prefix="dunning-sim-") as tmp:
        base = workdir or Path(tmp)
        settings: Settings = load_settings(
            database_url=f"sqlite:///{base / 'simulation.sqlite3'}",
            broker_url="stub://",
            outbox_dir=base / "outbox",
        )
        clock = VirtualClock(scenario.start)
        engine = make_engine(settings.database_url)
        upgrade(engine)
        gateway = SandboxGateway(MemoryLedger(), clock=clock.now)
        book = load_policy_book(settings.policy_file, overrides=scenario.policy)
        c = bootstrap(
            settings,
            clock=clock,
            engine=engine,
            gateway=gateway,
            policy=book,
            transport=FileTransport(settings.outbox_dir),
        )
        broker = make_broker("stub://")
        assert isinstance(broker, StubBroker)
        setup(c, broker)
        held = HeldDispatcher(c.dispatcher)
        c.dispatcher = held
        broker.emit_after("process_boot")
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
        worker.start()
        try:
            load_book(c, scenario, gateway)
            yield Simulation(c, broker, worker, clock, gateway, held)
        finally:
            worker.stop()
            broker.close()
            engine.dispose()


def parse_step(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([mh])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"step must look like 15m or 1h, not {text!r}")
    n = int(match.group(1))
    return timedelta(minutes=n) if match.group(2) == "m" else timedelta(hours=n)


def run(
    scenario: Scenario,
    *,
    step: timedelta = timedelta(hours=1),
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Simulate the scenario; return the output lines, the summary last."""
    end = scenario.start + timedelta(days=scenario.days)
    events = sorted(scenario.events, key=lambda e: e.at)
    with simulation(scenario) as sim:
        t = scenario.start
        last_day = None
        total = int((end - t) / step)
        i = 0
        sim.run_producers(daily=True)
        last_day = t.date()
        while t < end:
            t = min(t + step, end)
            while events and events[0].at <= t:
                event = events.pop(0)
                sim.clock.set(max(event.at, sim.clock.now()))
                with sim.held.holding():
                    apply_event(sim, event)
                sim.drain()
            sim.clock.set(t)
            sim.run_producers(daily=t.date() != last_day)
            last_day = t.date()
            i += 1
            if progress:
                progress(i, total)
        out = list(journal.lines(sim.container.engine))
        emails = Counter(line["template"] for line in out if line["kind"] == "email")
        # An attempt whose answer was lost has a second line once it is settled: count it once.
        attempts = len(
            {(line["invoice"], line["attempt"]) for line in out if line["kind"] == "charge_attempt"}
        )
        out.append(journal.summary(sim.container.engine, end, emails, attempts))
    return out


def apply_event(sim: Simulation, event: Any) -> None:
    """One scenario event, through the same services the webhooks and the web page call."""
    c, now = sim.container, sim.clock.now()
    if event.type == "payment_failed":
        from dunning.store import rows
        from dunning.store.tables import subscriptions

        with c.engine.connect() as conn:
            sub = rows.get(conn, subscriptions, event.subscription)
        d = event.decline
        record_failure(
            c,
            FailedCharge(
                invoice_id=event.invoice,
                subscription_id=event.subscription,
                amount=event.amount,
                currency=sub["currency"],
                decline=Decline(
                    d.decline_code, d.network_code, d.advice_code, d.network_advice_code
                )
                if d
                else Decline("generic_decline"),
                occurred_at=now,
            ),
            now,
        )
    elif event.type == "card_updated":
        token = sim.gateway.tokenize(event.card.number, event.card.exp_month, event.card.exp_year)
        sim.card_seq[event.customer] += 1
        pm_id = f"{event.customer}_card{sim.card_seq[event.customer]}"
        try:
            cards.replace_card(
                c,
                event.customer,
                token,
                remove_old=event.remove_old,
                now=now,
                payment_method_id=pm_id,
            )
        except cards.CardDeclined:
            pass  # the page shows the refusal; nothing changed
    elif event.type == "payment_succeeded":
        lifecycle.invoice_paid_elsewhere(c, event.invoice, now, source="external")
    elif event.type == "subscription_cancelled":
        lifecycle.cancel_subscription(c, event.subscription, now)
    elif event.type == "card_auto_updated":
        lifecycle.card_auto_updated(
            c, event.payment_method, exp_month=event.exp_month, exp_year=event.exp_year, now=now
        )
