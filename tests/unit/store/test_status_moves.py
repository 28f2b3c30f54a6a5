"""Every status write of an invoice, subscription or attempt is a guarded move: a move the
lifecycle forbids, or a row that moved meanwhile, writes nothing."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from dunning.model import InvoiceStatus, may_move
from dunning.store import status
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import customers, invoices, subscriptions

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def test_forbidden_and_stale_moves_write_nothing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    upgrade(engine)
    ts = {"created_at": NOW, "updated_at": NOW}
    with engine.begin() as conn:
        conn.execute(insert(customers).values(id="c", email="c@example.com", **ts))
        conn.execute(
            insert(subscriptions).values(
                id="s", customer_id="c", plan="p", amount=1, currency="EUR", **ts
            )
        )
        for key, state in (("open", "open"), ("paid", "paid"), ("stale", "open")):
            conn.execute(
                insert(invoices).values(
                    id=key,
                    subscription_id="s",
                    customer_id="c",
                    amount=1,
                    currency="EUR",
                    status=state,
                    **ts,
                )
            )
        moved = status.move(
            conn,
            invoices,
            [("open", "open"), ("paid", "paid"), ("stale", "void")],  # "stale" was read as void
            InvoiceStatus.paid,
            paid_at=NOW,
        )
        rows = dict(conn.execute(select(invoices.c.id, invoices.c.status)).all())
    assert moved == {"open"}
    assert rows == {"open": "paid", "paid": "paid", "stale": "open"}
    assert not may_move("paid", InvoiceStatus.paid)
    assert not may_move("void", InvoiceStatus.open)


def test_no_service_writes_a_lifecycle_status_by_hand() -> None:
    """``status=`` in an UPDATE of invoices, subscriptions or payment_attempts is only written
    by dunning.store.status (the attempt-success batch update checks its sources itself)."""
    found = []
    for path in sorted((ROOT / "dunning" / "services").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id != "update" or not node.args:
                continue
            table = ast.unparse(node.args[0])
            if table in ("invoices", "subscriptions", "payment_attempts"):
                found.append((path.name, node.lineno, table))
    allowed = {"attempt_results.py"}
    offenders = []
    for name, line, table in found:
        source = (ROOT / "dunning" / "services").rglob(name)
        text = next(source).read_text().splitlines()
        window = "\n".join(text[line - 1 : line + 12])
        if "status=" in window.split(".values(", 1)[-1].split(")", 1)[0] and name not in allowed:
            offenders.append(f"{name}:{line} ({table})")
    assert offenders == []
