"""``dunning import``: validated, idempotent, chunked loading, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from bench.make_book import book_lines
from dunning.cli.main import main
from dunning.imports import ImportReport, parse_line
from dunning.store.engine import make_engine
from dunning.store.tables import (
    audit_log,
    customers,
    invoices,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from tests.importing import load

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)
CARD_NUMBER = "4242424242424242"
TABLES = (customers, payment_methods, subscriptions, invoices)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def customer(n: int = 1, **changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": f"cus_{n}",
        "email": f"ana{n}@example.com",
        "name": "Ana",
        "locale": "da",
        "timezone": "Europe/Copenhagen",
        "payment_methods": [
            {"id": f"pm_{n}a", "gateway": "sandbox", "token": f"sbx_ok_{n}a", "network": "visa",
             "last4": "4242", "exp_month": 3, "exp_year": 2030, "default": True},
            {"id": f"pm_{n}b", "gateway": "stripe", "token": f"pm_1Nv{n}b", "network": "mastercard",
             "last4": "4444", "exp_month": 12, "exp_year": 2029},
        ],
        "subscriptions": [
            {"id": f"sub_{n}", "plan": "pro-monthly", "amount": 12500, "currency": "EUR",
             "interval": "month", "payment_method": f"pm_{n}a",
             "last_payment_at": "2026-01-01T00:00:00Z",
             "current_period_end": "2026-02-01T00:00:00+01:00"},
        ],
    }  # fmt: skip
    line.update(changes)
    return line


def with_invoice(line: dict[str, Any]) -> dict[str, Any]:
    sub = line["subscriptions"][0]
    line["invoices"] = [
        {"id": f"in_{sub['id']}", "subscription": sub["id"], "amount": sub["amount"],
         "currency": sub["currency"], "first_failed_at": "2026-01-28T00:05:00Z", "attempts": 2,
         "decline": {"decline_code": "insufficient_funds", "network_code": "51"}},
    ]  # fmt: skip
    return line


def write(tmp_path: Path, lines: list[Any], name: str = "book.jsonl") -> Path:
    path = tmp_path / name
    text = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}


def last_update(engine: Engine) -> list[datetime | None]:
    with engine.connect() as conn:
        return [conn.scalar(select(func.max(t.c.updated_at))) for t in TABLES]


def row(engine: Engine, table: Any, key: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(table).where(table.c.id == key)).mappings().one()


def test_a_book_loads_and_importing_it_again_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "book.jsonl"
    path.write_text("\n".join(book_lines(300, seed=7)) + "\n", encoding="utf-8")

    first = load(engine, path, now=NOW, chunk_size=64)
    loaded, stamps = counts(engine), last_update(engine)
    again = load(engine, path, now=LATER, chunk_size=64)

    assert (first.inserted, first.refused) == (300, [])
    assert loaded["customers"] == 300
    assert loaded["invoices"] > 0
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 300)
    assert counts(engine) == loaded
    assert last_update(engine) == stamps == [NOW, NOW, NOW, NOW]


def test_a_changed_line_updates_that_customer_only(engine: Engine, tmp_path: Path) -> None:
    load(engine, write(tmp_path, [customer(1), customer(2)]), now=NOW)
    changed = customer(2, email="new@example.com")
    changed["payment_methods"][1]["exp_year"] = 2031

    report = load(engine, write(tmp_path, [customer(1), changed]), now=LATER)

    assert (report.updated, report.unchanged) == (1, 1)
    assert row(engine, customers, "cus_2")["email"] == "new@example.com"
    assert row(engine, customers, "cus_2")["updated_at"] == LATER
    assert row(engine, customers, "cus_1")["updated_at"] == NOW
    assert row(engine, payment_methods, "pm_2b")["exp_year"] == 2031
    assert row(engine, payment_methods, "pm_2a")["updated_at"] == NOW


def test_bad_lines_are_named_by_line_and_path_and_good_lines_still_load(
    engine: Engine, tmp_path: Path
) -> None:
    two_defaults = customer(5)
    two_defaults["payment_methods"][1]["default"] = True
    card_as_token = customer(6)
    card_as_token["payment_methods"][0]["token"] = CARD_NUMBER
    bad_currency = customer(4)
    bad_currency["subscriptions"][0]["currency"] = "EURO"
    lines = [
        customer(1),
        '{"id": "cus_2", "email": ',
        customer(3, favourite_colour="blue"),
        bad_currency,
        two_defaults,
        card_as_token,
        customer(7, timezone="Europe/Atlantis"),
        customer(8),
    ]

    report = load(engine, write(tmp_path, lines), now=NOW)

    assert {(e.line, e.path) for e in report.refused} == {
        (2, "$"),
        (3, "favourite_colour"),
        (4, "subscriptions.0.currency"),
        (5, "payment_methods.1.default"),
        (6, "payment_methods.0.token"),
        (7, "timezone"),
    }
    assert (report.inserted, report.refused_lines) == (2, 6)
    assert all(CARD_NUMBER not in str(e) for e in report.refused)
    assert str(report.refused[0]).startswith("line 2: $: ")
    with engine.connect() as conn:
        assert sorted(conn.scalars(select(customers.c.id))) == ["cus_1", "cus_8"]
        assert CARD_NUMBER not in str(conn.execute(select(payment_methods)).all())


def test_a_new_default_card_clears_the_old_one_and_bumps_the_card_generation(
    engine: Engine, tmp_path: Path
) -> None:
    load(engine, write(tmp_path, [customer(1)]), now=NOW)
    flipped = customer(1)
    flipped["payment_methods"][0]["default"] = False
    flipped["payment_methods"][1]["default"] = True
    # The old default is not even listed: the stored one must still lose the flag.
    flipped["payment_methods"] = flipped["payment_methods"][1:]
    flipped["subscriptions"][0]["payment_method"] = "pm_1b"

    report = load(engine, write(tmp_path, [flipped]), now=LATER)

    assert report.updated == 1
    assert row(engine, payment_methods, "pm_1a")["is_default"] is False
    assert row(engine, payment_methods, "pm_1b")["is_default"] is True
    assert row(engine, subscriptions, "sub_1")["payment_method_id"] == "pm_1b"
    assert row(engine, customers, "cus_1")["card_generation"] == 1


def test_an_imported_invoice_continues_from_its_attempts_and_is_audited_once(
    engine: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, [with_invoice(customer(1))])

    load(engine, path, now=NOW)
    again = load(engine, path, now=LATER)

    inv = row(engine, invoices, "in_sub_1")
    assert (inv["status"], inv["attempt_count"], inv["last_decline_code"]) == (
        "open",
        2,
        "visa_cat2",  # the class of the imported decline, as the pipeline records its own
    )
    # Day 3's retry slot (31 January) is over: the next one is the next Copenhagen morning.
    assert inv["next_attempt_at"] == datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
    # Day 4's reminder passed before the import (the first email tells the same news): the
    # next step is the final notice, day 11.
    assert (inv["steps_done"], inv["next_step_at"]) == (1, datetime(2026, 2, 8, 8, 0, tzinfo=UTC))
    assert inv["first_failed_at"] == datetime(2026, 1, 28, 0, 5, tzinfo=UTC)
    assert row(engine, subscriptions, "sub_1")["status"] == "past_due"
    assert again.unchanged == 1
    with engine.connect() as conn:
        audits = conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all()
        tried = conn.execute(select(payment_attempts).order_by(payment_attempts.c.attempt_no))
        attempts = [(a.attempt_no, a.status, a.decline_code) for a in tried]
    assert [(a["kind"], a["invoice_id"], a["actor"]) for a in audits] == [
        ("invoice_imported", "in_sub_1", "import"),
        ("retry_scheduled", "in_sub_1", "system"),
        ("step_skipped", "in_sub_1", "system"),
    ]
    assert audits[0]["data"]["decline"]["network_code"] == "51"
    assert attempts == [(1, "declined", None), (2, "declined", "insufficient_funds")]


def test_importing_again_does_not_undo_what_the_pipeline_did_since(
    engine: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, [with_invoice(customer(1))])
    load(engine, path, now=NOW)
    paid_at = NOW + timedelta(hours=1)
    with engine.begin() as conn:  # the pipeline recovered the invoice and purged a card
        conn.execute(update(invoices).values(status="paid", paid_at=paid_at))
        conn.execute(update(subscriptions).values(status="active", last_payment_at=paid_at))
        conn.execute(update(customers).values(last_payment_at=paid_at))
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.id == "pm_1b")
            .values(status="purged", token=None)
        )

    report = load(engine, path, now=LATER)

    assert report.unchanged == 1
    assert row(engine, invoices, "in_sub_1")["status"] == "paid"
    sub = row(engine, subscriptions, "sub_1")
    assert (sub["status"], sub["last_payment_at"]) == ("active", paid_at)
    assert row(engine, customers, "cus_1")["last_payment_at"] == paid_at
    assert row(engine, payment_methods, "pm_1b")["token"] is None


def test_an_explicit_status_is_applied_where_the_lifecycle_allows(
    engine: Engine, tmp_path: Path
) -> None:
    load(engine, write(tmp_path, [customer(1)]), now=NOW)
    line = customer(1)
    line["subscriptions"][0]["status"] = "cancelled"
    load(engine, write(tmp_path, [line]), now=LATER)
    line["subscriptions"][0]["status"] = "active"

    report = load(engine, write(tmp_path, [line]), now=LATER + timedelta(days=1))

    sub = row(engine, subscriptions, "sub_1")
    assert (sub["status"], sub["cancelled_at"]) == ("cancelled", LATER)
    assert report.unchanged == 1


def test_ids_stored_under_another_customer_refuse_the_line(engine: Engine, tmp_path: Path) -> None:
    load(engine, write(tmp_path, [customer(1)]), now=NOW)
    thief = customer(2)
    thief["payment_methods"][0]["id"] = "pm_1a"
    thief["subscriptions"][0]["payment_method"] = "pm_1a"

    report = load(engine, write(tmp_path, [thief]), now=LATER)

    assert [(e.line, e.path) for e in report.refused] == [(1, "payment_methods.0.id")]
    assert row(engine, payment_methods, "pm_1a")["customer_id"] == "cus_1"
    assert counts(engine)["customers"] == 1


def test_the_same_customer_twice_in_a_file_ends_as_the_later_line(
    engine: Engine, tmp_path: Path
) -> None:
    later = customer(1, name="Ana B.")
    later["payment_methods"][0]["default"] = False
    later["payment_methods"][1]["default"] = True

    report = load(engine, write(tmp_path, [customer(1), customer(2), later]), now=NOW)

    assert report.loaded == 3
    assert not report.refused
    assert row(engine, customers, "cus_1")["name"] == "Ana B."
    assert row(engine, payment_methods, "pm_1b")["is_default"] is True


def test_customer_last_payment_is_the_latest_of_its_subscriptions(
    engine: Engine, tmp_path: Path
) -> None:
    line = customer(1)
    second = copy.deepcopy(line["subscriptions"][0])
    second.update(id="sub_1y", interval="year", last_payment_at="2026-01-15T08:00:00-05:00")
    line["subscriptions"].append(second)

    load(engine, write(tmp_path, [line]), now=NOW)

    assert row(engine, customers, "cus_1")["last_payment_at"] == datetime(
        2026, 1, 15, 13, 0, tzinfo=UTC
    )


def test_cross_field_rules_name_the_field() -> None:
    line = with_invoice(customer(1))
    line["subscriptions"][0]["payment_method"] = "pm_elsewhere"
    line["invoices"][0]["currency"] = "DKK"
    line["payment_methods"][1]["outcomes"] = ["succeeded"]
    line["payment_methods"][1]["exp_month"] = 13

    errors = parse_line(9, json.dumps(line))

    assert isinstance(errors, list)
    assert {str(e).split(":")[1].strip() for e in errors} == {
        "payment_methods.1.outcomes",
        "payment_methods.1.exp_month",
    }
    line["payment_methods"][1] = customer(1)["payment_methods"][1]
    errors = parse_line(9, json.dumps(line))
    assert isinstance(errors, list)
    assert [e.path for e in errors] == ["subscriptions.0.payment_method", "invoices.0.currency"]


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("email", "not-an-email", "email"),
        ("locale", "xx-YY", "locale"),
        ("timezone", "utc", "timezone"),
        ("billing_emails", ["ok@example.com", "nope"], "billing_emails.1"),
    ],
)
def test_customer_fields_are_validated(field: str, value: Any, path: str) -> None:
    errors = parse_line(1, json.dumps(customer(1, **{field: value})))
    assert isinstance(errors, list)
    assert [e.path for e in errors] == [path]


def test_a_naive_datetime_and_a_non_object_line_are_refused() -> None:
    line = customer(1)
    line["subscriptions"][0]["last_payment_at"] = "2026-01-01T00:00:00"
    naive = parse_line(3, json.dumps(line))
    not_object = parse_line(4, "[1, 2]")
    assert isinstance(naive, list)
    assert naive[0].path == "subscriptions.0.last_payment_at"
    assert isinstance(not_object, list)
    assert str(not_object[0]) == ("line 4: $: a line must be one JSON object")


def test_a_card_number_anywhere_in_a_token_is_refused_without_echoing_it() -> None:
    line = customer(1)
    line["payment_methods"][0]["token"] = f"tok_{CARD_NUMBER}"
    errors = parse_line(1, json.dumps(line))
    assert isinstance(errors, list)
    assert errors[0].path == "payment_methods.0.token"
    assert CARD_NUMBER not in str(errors[0])


def failed_at(n: int, first: datetime, last: datetime | None = None) -> dict[str, Any]:
    line = with_invoice(customer(n))
    line["invoices"][0]["first_failed_at"] = first.isoformat()
    if last is not None:
        line["invoices"][0]["last_attempt_at"] = last.isoformat()
    return line


def test_failure_times_in_the_future_are_refused_beyond_the_clock_skew(
    engine: Engine, tmp_path: Path
) -> None:
    ago = NOW - timedelta(days=3)
    lines = [
        failed_at(1, NOW + timedelta(days=2)),
        failed_at(2, ago, NOW + timedelta(hours=1)),
        failed_at(3, NOW + timedelta(minutes=4), NOW + timedelta(minutes=5)),  # a fast clock
        failed_at(4, NOW + timedelta(minutes=6), NOW + timedelta(minutes=7)),
        failed_at(5, ago, NOW),
    ]

    report = load(engine, write(tmp_path, lines), now=NOW)

    assert [(e.line, e.path) for e in report.refused] == [
        (1, "invoices.0.first_failed_at"),
        (2, "invoices.0.last_attempt_at"),
        (4, "invoices.0.first_failed_at"),
        (4, "invoices.0.last_attempt_at"),
    ]
    assert str(report.refused[0]) == (
        "line 1: invoices.0.first_failed_at: is in the future (2026-02-03T12:00:00+00:00; "
        "the import ran at 2026-02-01T12:00:00+00:00 and allows 5 minutes of clock skew)"
    )
    assert (report.inserted, report.refused_lines) == (2, 3)
    with engine.connect() as conn:
        assert sorted(conn.scalars(select(invoices.c.id))) == ["in_sub_3", "in_sub_5"]
        assert sorted(conn.scalars(select(customers.c.id))) == ["cus_3", "cus_5"]


def test_cli_names_a_failure_in_the_future(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    path = write(tmp_path, [customer(1), failed_at(2, tomorrow)])

    assert run_cli(monkeypatch, db_url, str(path)) == 1

    err = capsys.readouterr().err
    assert "line 2: invoices.0.first_failed_at: is in the future" in err


def run_cli(monkeypatch: pytest.MonkeyPatch, db_url: str, *args: str) -> int:
    monkeypatch.setenv("DUNNING_DATABASE_URL", db_url)
    return main(["import", *args])


def test_cli_exit_codes(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, [customer(1)], "good.jsonl")
    mixed = write(tmp_path, [customer(2), "{oops"], "mixed.jsonl")

    assert run_cli(monkeypatch, db_url, str(good)) == 0
    assert run_cli(monkeypatch, db_url, str(mixed)) == 1
    assert "line 2: $: " in capsys.readouterr().err
    assert run_cli(monkeypatch, db_url, str(tmp_path / "missing.jsonl")) == 2
    assert "cannot read" in capsys.readouterr().err
    assert run_cli(monkeypatch, db_url, str(tmp_path)) == 2


def test_cli_json_summary_and_error_cap(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, [customer(1)] + ["nope"] * 130)

    code = run_cli(monkeypatch, db_url, str(path), "--json")

    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert code == 1
    assert (summary["inserted"], summary["refused"], summary["errors"]) == (1, 130, 130)
    shown = err.splitlines()
    assert len(shown) == 101
    assert shown[0].startswith("line 2: $: ")
    assert shown[-1] == "... and 30 more errors"


def test_report_counts_lines_not_errors() -> None:
    report = ImportReport()
    line = customer(1)
    line["email"] = "x"
    line["timezone"] = "Nowhere/Else"
    errors = parse_line(1, json.dumps(line))
    assert isinstance(errors, list)
    report.refuse(errors)
    assert (report.refused_lines, len(report.refused)) == (1, 2)


def test_a_line_the_database_refuses_is_reported_and_its_chunk_still_loads(
    sqlite_url: str, tmp_path: Path
) -> None:
    eng = make_engine(sqlite_url)
    with eng.begin() as conn:  # a database rule validation does not know about
        conn.exec_driver_sql(
            "CREATE TRIGGER no_bob BEFORE INSERT ON customers WHEN NEW.name = 'Bob' "
            "BEGIN SELECT RAISE(ABORT, 'no Bob here'); END"
        )
    lines = [customer(1), customer(2, name="Bob"), customer(3)]

    report = load(eng, write(tmp_path, lines), now=NOW)

    assert [(e.line, e.path) for e in report.refused] == [(2, "$")]
    assert "refused by the database" in report.refused[0].message
    assert (report.inserted, counts(eng)["customers"]) == (2, 2)
    eng.dispose()


def test_rows_written_by_other_code_with_the_same_values_are_unchanged(
    engine: Engine, tmp_path: Path
) -> None:
    line = customer(1, billing_emails=["books@example.com", "cfo@example.com"])
    line["payment_methods"] = line["payment_methods"][:1]
    line["subscriptions"][0]["current_period_end"] = "2026-02-01T00:00:00Z"
    stamps = {"created_at": NOW, "updated_at": NOW}
    paid = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:  # the same customer, as the services would have stored it
        conn.execute(
            customers.insert().values(
                id="cus_1", email="ana1@example.com", name="Ana", locale="da",
                timezone="Europe/Copenhagen", billing_emails=line["billing_emails"],
                last_payment_at=paid, **stamps,
            )
        )  # fmt: skip
        conn.execute(
            payment_methods.insert().values(
                id="pm_1a", customer_id="cus_1", gateway="sandbox", token="sbx_ok_1a",
                network="visa", last4="4242", exp_month=3, exp_year=2030, is_default=True,
                **stamps,
            )
        )  # fmt: skip
        conn.execute(
            subscriptions.insert().values(
                id="sub_1", customer_id="cus_1", plan="pro-monthly", amount=12500,
                currency="EUR", interval="month", payment_method_id="pm_1a",
                last_payment_at=paid, current_period_end=datetime(2026, 2, 1, tzinfo=UTC),
                **stamps,
            )
        )  # fmt: skip

    report = load(engine, write(tmp_path, [line]), now=LATER)

    assert report.unchanged == 1
    assert last_update(engine)[:3] == [NOW, NOW, NOW]
    assert row(engine, customers, "cus_1")["billing_emails"] == line["billing_emails"]


def test_cli_refuses_a_database_without_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'blank.sqlite3'}"

    code = run_cli(monkeypatch, url, str(write(tmp_path, [customer(1)])))

    assert code == 2
    assert "dunning db upgrade" in capsys.readouterr().err


def test_an_old_file_does_not_undo_a_card_the_customer_replaced(
    engine: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, [customer(1)])
    load(engine, path, now=NOW)
    with engine.begin() as conn:  # the customer replaced pm_1a on the update page
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.id == "pm_1a")
            .values(status="removed", is_default=False)
        )
        conn.execute(
            payment_methods.insert().values(
                id="pm_new", customer_id="cus_1", gateway="sandbox", token="sbx_ok_new",
                network="visa", last4="1881", exp_month=1, exp_year=2031, is_default=True,
                created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
        conn.execute(update(subscriptions).values(payment_method_id="pm_new"))

    report = load(engine, path, now=LATER)

    assert report.unchanged == 1
    assert row(engine, subscriptions, "sub_1")["payment_method_id"] == "pm_new"
    assert row(engine, payment_methods, "pm_new")["is_default"] is True
    assert row(engine, payment_methods, "pm_1a")["status"] == "removed"


def test_a_new_customer_naming_a_stored_invoice_is_refused(engine: Engine, tmp_path: Path) -> None:
    load(engine, write(tmp_path, [with_invoice(customer(1))]), now=NOW)
    thief = with_invoice(customer(2))
    thief["invoices"][0]["id"] = "in_sub_1"

    report = load(engine, write(tmp_path, [customer(3), thief]), now=LATER)

    assert [(e.line, e.path) for e in report.refused] == [(2, "invoices.0.id")]
    assert report.inserted == 1
    assert row(engine, invoices, "in_sub_1")["customer_id"] == "cus_1"
    assert counts(engine)["customers"] == 2
