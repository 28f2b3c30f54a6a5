"""The scheduler's leader lease, on SQLite and PostgreSQL: one holder at a time, renewed by it,
taken over once it runs out or is given back, and a holder that cannot renew stands down."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, select, update

from dunning.store.engine import make_engine
from dunning.store.tables import leader_leases
from schedules.leader import DatabaseLeadership, LocalLeadership, current_leader

TTL_S = 30.0


class Monotonic:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    with eng.begin() as conn:
        conn.execute(delete(leader_leases))
    yield eng
    eng.dispose()


def expire(engine: Engine) -> None:
    """The lease ran out (as if its holder had died a TTL ago)."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(update(leader_leases).values(expires_at=past))


def test_one_holder_at_a_time_and_the_holder_renews(engine: Engine) -> None:
    a = DatabaseLeadership(engine, ttl_s=TTL_S, identity="a")
    b = DatabaseLeadership(engine, ttl_s=TTL_S, identity="b")
    assert a.acquire_or_renew()
    assert a.leading
    assert not b.acquire_or_renew()
    assert not b.leading
    assert a.acquire_or_renew(), "the holder could not renew"
    assert not b.acquire_or_renew()
    assert current_leader(engine) == "a"


def test_a_lease_that_ran_out_is_taken_and_its_old_holder_cannot_renew(engine: Engine) -> None:
    a = DatabaseLeadership(engine, ttl_s=TTL_S, identity="a")
    b = DatabaseLeadership(engine, ttl_s=TTL_S, identity="b")
    assert a.acquire_or_renew()
    with engine.connect() as conn:
        first = conn.execute(select(leader_leases)).mappings().one()
    expire(engine)
    assert current_leader(engine) is None
    assert b.acquire_or_renew()
    assert not a.acquire_or_renew()
    assert not a.leading
    with engine.connect() as conn:
        row = conn.execute(select(leader_leases)).mappings().one()
    assert row["holder"] == "b"
    assert row["acquired_at"] >= first["acquired_at"]
    assert row["expires_at"] > datetime.now(UTC) + timedelta(seconds=TTL_S - 5)


def test_a_released_lease_is_taken_at_once(engine: Engine) -> None:
    a = DatabaseLeadership(engine, ttl_s=TTL_S, identity="a")
    b = DatabaseLeadership(engine, ttl_s=TTL_S, identity="b")
    assert a.acquire_or_renew()
    a.release()
    assert not a.leading
    assert current_leader(engine) is None
    assert b.acquire_or_renew()
    a.release()  # not a's any more: b keeps it
    assert current_leader(engine) == "b"


def test_leading_ends_a_ttl_after_the_last_renewal_began_even_without_a_renewal(
    engine: Engine,
) -> None:
    clock = Monotonic()
    a = DatabaseLeadership(engine, ttl_s=TTL_S, identity="a", monotonic=clock)
    assert a.acquire_or_renew()
    clock.now += TTL_S - 0.01
    assert a.leading
    clock.now += 0.02  # the renewal hangs: by now the lease may be someone else's
    assert not a.leading


def test_a_holder_that_loses_the_database_stands_down_at_once(engine: Engine) -> None:
    a = DatabaseLeadership(engine, ttl_s=TTL_S, identity="a")
    assert a.acquire_or_renew()
    broken = make_engine("sqlite:////nonexistent-directory/x/y.sqlite3")
    a.engine = broken
    try:
        assert not a.acquire_or_renew()
        assert not a.leading
    finally:
        broken.dispose()
    a.engine = engine  # back: its lease has not run out, so it is still its own
    assert a.acquire_or_renew()
    assert a.leading


def race(rivals: list[DatabaseLeadership]) -> list[str]:
    """All ``rivals`` try to take the lease at the same moment; return who won."""
    start = threading.Barrier(len(rivals))
    won: list[str] = []

    def attempt(leader: DatabaseLeadership) -> None:
        start.wait()
        if leader.acquire_or_renew():
            won.append(leader.identity)

    threads = [threading.Thread(target=attempt, args=(r,)) for r in rivals]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return won


def test_schedulers_racing_for_a_free_lease_elect_exactly_one(engine: Engine) -> None:
    rivals = [DatabaseLeadership(engine, ttl_s=TTL_S, identity=f"s{i}") for i in range(8)]
    for round_ in range(3):
        expire(engine)
        won = race(rivals)
        assert len(won) == 1, (round_, won)
        assert current_leader(engine) == won[0]


def test_the_embedded_scheduler_always_leads() -> None:
    local = LocalLeadership()
    assert local.acquire_or_renew()
    assert local.leading
