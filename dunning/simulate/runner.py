"""Run a scenario through the production pipeline under a virtual clock.

The same producers, actors, policy, templates, services and store as production, on the
embedded default: SQLite, the file outbox and the sandbox gateway. The actors run in the
simulation's own thread (``InlineDispatcher``): the clock moves in steps, events happen at
their exact time, and after each the queued work is drained, including the work it sends,
before the clock moves on.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from config.settings import Settings, load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.clock import VirtualClock
from dunning.gateways.base import Decline
from dunning.gateways.ledger import MemoryLedger
from dunning.gateways.sandbox import Oracle, SandboxGateway
from dunning.mail.transport import FileTransport, Transport
from dunning.policy.config import PolicyBook
from dunning.policy_file import load_policy_book
from dunning.services import cards, lifecycle
from dunning.services.failures import FailedCharge, record_failure
from dunning.services.notify import link_url
from dunning.simulate import journal
from dunning.simulate.book import load_book
from dunning.simulate.due import due_producers, next_due
from dunning.simulate.inline import InlineDispatcher
from dunning.simulate.scenario import Scenario
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from schedules.producers import PRODUCERS
from workers import context
from workers.dispatch import DEFAULT_BATCH

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


@dataclass(frozen=True)
class Wiring:
    """How a simulation is wired, beyond the scenario. The defaults are ``dunning simulate``'s:
    a database and an outbox in a temporary folder, the policy file with the scenario's
    overrides, the sandbox's own answers."""

    workdir: Path | None = None  # keep the database and the outbox here
    database_url: str | None = None  # "sqlite://" keeps the database in memory
    policy: PolicyBook | None = None  # instead of the policy file and the scenario's overrides
    oracle: Oracle | None = None  # answers the sandbox's charges (dunning.whatif)
    transport: Transport | None = None  # instead of the .eml outbox
    batch: int = DEFAULT_BATCH  # items per actor message


@dataclass
class Simulation:
    container: Container
    dispatcher: InlineDispatcher
    clock: VirtualClock
    gateway: SandboxGateway
    card_seq: Counter[str] = field(default_factory=Counter)

    def drain(self) -> None:
        """Let the actors finish everything, including work that other work sent."""
        context.set_container(self.container)
        self.dispatcher.drain()

    @property
    def unknown_after(self) -> timedelta:
        return timedelta(seconds=self.container.settings.timing.unknown_after_s)

    def _due(self, now: datetime) -> set[str]:
        return due_producers(self.container.engine, now, unknown_after=self.unknown_after)

    def run_producers(self, *, daily: bool) -> None:
        """The producers the scheduler would run now, in order, each one's work drained before
        the next; a scan that would find nothing is left out (most simulated hours)."""
        now = self.clock.now()
        due = self._due(now)
        for name in ORDER:
            if name in DAILY:
                if not daily:
                    continue
            elif name not in due:
                continue
            PRODUCERS[name][0](self.container, now)
            self.drain()
            due = self._due(now)  # the work done may have made more work due

    def next_due(self) -> datetime | None:
        """When a frequent producer may next find work."""
        return next_due(self.container.engine, unknown_after=self.unknown_after)


def _settings(base: Path, wiring: Wiring) -> Settings:
    return load_settings(
        database_url=wiring.database_url or f"sqlite:///{base / 'simulation.sqlite3'}",
        broker_url="stub://",
        outbox_dir=base / "outbox",
    )


@contextmanager
def simulation(scenario: Scenario, wiring: Wiring | None = None) -> Iterator[Simulation]:
    """Wire the embedded pipeline for a scenario; tear it down afterwards."""
    wiring = wiring or Wiring()
    with tempfile.TemporaryDirectory(prefix="dunning-sim-") as tmp:
        base = wiring.workdir or Path(tmp)
        settings = _settings(base, wiring)
        clock = VirtualClock(scenario.start)
        engine = make_engine(settings.database_url)
        upgrade(engine)
        gateway = SandboxGateway(MemoryLedger(), clock=clock.now, oracle=wiring.oracle)
        book = wiring.policy or load_policy_book(settings.policy_file, overrides=scenario.policy)
        dispatcher = InlineDispatcher(batch=wiring.batch)
        c = bootstrap(
            settings,
            clock=clock,
            engine=engine,
            gateway=gateway,
            policy=book,
            transport=wiring.transport or FileTransport(settings.outbox_dir),
            dispatcher=dispatcher,
        )
        try:
            load_book(c, scenario, gateway)
            yield Simulation(c, dispatcher, clock, gateway)
        finally:
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
    with simulation(scenario) as sim:
        advance(sim, scenario, step=step, progress=progress)
        return output(sim, scenario)


def output(sim: Simulation, scenario: Scenario) -> list[dict[str, Any]]:
    """The simulation's output lines, in time order, the summary last."""
    end = scenario.start + timedelta(days=scenario.days)
    c = sim.container
    out = list(journal.lines(c.engine, lambda customer, ref: link_url(c, customer, ref)))
    emails = Counter(line["template"] for line in out if line["kind"] == "email")
    # An attempt whose answer was lost has a second line once it is settled: count it once.
    attempts = len(
        {(line["invoice"], line["attempt"]) for line in out if line["kind"] == "charge_attempt"}
    )
    out.append(journal.summary(sim.container.engine, end, emails, attempts))
    return out


def advance(
    sim: Simulation,
    scenario: Scenario,
    *,
    step: timedelta = timedelta(hours=1),
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Move the clock from the scenario's start to its end: events at their time, producers at
    every step (the daily ones once a day), the queued work drained after each. Steps at which
    no event happens, no day begins and no producer would find work are skipped."""
    start = scenario.start
    end = start + timedelta(days=scenario.days)
    events = sorted(scenario.events, key=lambda e: e.at)
    t = start
    total = int((end - t) / step)
    sim.run_producers(daily=True)
    last_day = t.date()
    while t < end:
        t = min(_next_stop(sim, t, step, start, events), end)
        while events and events[0].at <= t:
            event = events.pop(0)
            sim.clock.set(max(event.at, sim.clock.now()))
            apply_event(sim, event)
            sim.drain()
        sim.clock.set(t)
        sim.run_producers(daily=t.date() != last_day)
        last_day = t.date()
        if progress:
            progress(min(int((t - start) / step), total), total)


def _next_stop(
    sim: Simulation, t: datetime, step: timedelta, start: datetime, events: list[Any]
) -> datetime:
    """The first step after ``t`` at which something may happen: an event, a new day (the
    daily producers), or work a producer would find."""
    wanted = [datetime.combine(t.date() + timedelta(days=1), time(0), tzinfo=t.tzinfo)]
    if events:
        wanted.append(events[0].at)
    due = sim.next_due()
    if due is not None:
        wanted.append(due)
    soonest = min(wanted)
    steps = max(1, -(-(soonest - start) // step) - (t - start) // step)
    return t + steps * step


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
