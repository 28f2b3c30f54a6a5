"""The sandbox gateway's ledger: every charge it made, one entry per idempotency key.

``MemoryLedger`` serves one process (unit tests, the simulation); ``SqlLedger`` keeps the
entries in a table of its own in the pipeline's database, so tests can read what real worker
processes charged. The unique key makes a second entry for the same key impossible.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine, select

from dunning.store.tables import sandbox_ledger
from dunning.store.uow import statements
from dunning.store.upsert import insert_ignore


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    idempotency_key: str
    customer_id: str
    token: str
    amount: int
    currency: str
    initiator: str
    status: str  # succeeded | declined | verified | verify_declined
    charge_id: str
    decline_code: str | None
    network_code: str | None
    advice_code: str | None
    network_advice_code: str | None
    at: datetime


class Ledger(Protocol):
    def add(self, entry: LedgerEntry) -> LedgerEntry:
        """Store ``entry`` unless its key is there; return the entry that is stored."""
        ...

    def get(self, idempotency_key: str) -> LedgerEntry | None: ...

    def entries(self) -> list[LedgerEntry]: ...


class MemoryLedger:
    def __init__(self) -> None:
        self._entries: dict[str, LedgerEntry] = {}
        self._lock = threading.Lock()

    def add(self, entry: LedgerEntry) -> LedgerEntry:
        with self._lock:
            return self._entries.setdefault(entry.idempotency_key, entry)

    def get(self, idempotency_key: str) -> LedgerEntry | None:
        return self._entries.get(idempotency_key)

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries.values())


class SqlLedger:
    """The sandbox's ledger in its own table (created by the migrations, so that no worker
    runs DDL at its first charge)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, entry: LedgerEntry) -> LedgerEntry:
        """One statement (one round trip on PostgreSQL, as a gateway call costs one request);
        the stored entry is read only when the key was there."""
        with statements(self._engine) as conn, conn.begin():
            key = sandbox_ledger.c.idempotency_key
            if insert_ignore(conn, sandbox_ledger, [asdict(entry)], conflict=[key.name],
                             returning=key):  # fmt: skip
                return entry
            row = conn.execute(select(sandbox_ledger).where(key == entry.idempotency_key)).first()
        if row is None:  # pragma: no cover - entries are never deleted
            raise RuntimeError(f"ledger entry {entry.idempotency_key} vanished")
        return LedgerEntry(**row._mapping)

    def get(self, idempotency_key: str) -> LedgerEntry | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(sandbox_ledger).where(sandbox_ledger.c.idempotency_key == idempotency_key)
            ).first()
        return LedgerEntry(**row._mapping) if row else None

    def entries(self) -> list[LedgerEntry]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(sandbox_ledger)).all()
        return [LedgerEntry(**r._mapping) for r in rows]
