"""``dunning policy show|check``."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from config.settings import DEFAULT_POLICY_FILE
from dunning.cli.main import main
from dunning.store.engine import make_engine
from dunning.store.tables import customers, subscriptions


def test_show_prints_the_default_policy_as_toml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "show"]) == 0
    out = capsys.readouterr().out
    shown = tomllib.loads(out)
    assert shown["retry"]["days"] == [1, 3, 5, 7]
    assert shown["limits"]["mastercard"]["mac_delay_hours"]["02"] == 72
    assert "intervals with overrides: year" in out


def test_show_json_for_an_annual_plan_of_the_book(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a book with a subscription on the plan, which has no section of its own
    engine = make_engine(sqlite_url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(insert(customers).values(id="c", email="c@example.com", name="C",
                                              created_at=now, updated_at=now))  # fmt: skip
        conn.execute(insert(subscriptions).values(id="s", customer_id="c", plan="pro-annual",
                                                  amount=100, currency="EUR", interval="year",
                                                  status="active", created_at=now,
                                                  updated_at=now))  # fmt: skip
    engine.dispose()
    monkeypatch.setenv("DUNNING_DATABASE_URL", sqlite_url)
    assert main(["policy", "show", "--plan", "pro-annual", "--interval", "year", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["plan"] == "pro-annual"
    assert shown["policy"]["window"]["suspend_day"] == 28
    assert shown["intervals"] == ["year"]
    assert shown["warnings"] == []


def test_show_reads_the_configured_policy_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEFAULT_POLICY_FILE.read_text() + '\n[plans."gold"]\nretry.days = [2, 6]\n'
    (tmp_path / "p.toml").write_text(text)
    monkeypatch.setenv("DUNNING_POLICY_FILE", str(tmp_path / "p.toml"))
    assert main(["policy", "show", "--plan", "gold", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"]["retry"]["days"] == [2, 6]


def test_check_accepts_a_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(DEFAULT_POLICY_FILE)]) == 0
    assert "ok" in capsys.readouterr().out


def test_check_names_the_bad_key_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEFAULT_POLICY_FILE.read_text().replace("days = [1, 3, 5, 7]", "days = [1, 3, 0]")
    (tmp_path / "bad.toml").write_text(text)
    assert main(["policy", "check", str(tmp_path / "bad.toml")]) == 2
    err = capsys.readouterr().err
    assert "retry.days[2]: must be a positive integer" in err


def test_check_refuses_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "check", str(tmp_path / "absent.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_check_warns_about_a_window_longer_than_visas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEFAULT_POLICY_FILE.read_text().replace("suspend_day = 14", "suspend_day = 40")
    (tmp_path / "long.toml").write_text(text)
    assert main(["policy", "check", str(tmp_path / "long.toml")]) == 0
    # One unwrapped line, whatever the terminal width: scripts read it.
    assert (
        "warning: window.suspend_day: a 40-day window is longer than Visa's 30-day reattempt "
        "window (limits.visa.transaction_window_days); tries after day 30 on a Visa card need "
        "a new card or a new transaction\n"
    ) in capsys.readouterr().err


def test_show_with_a_bad_configured_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.toml").write_text("[retry]\n")
    monkeypatch.setenv("DUNNING_POLICY_FILE", str(tmp_path / "bad.toml"))
    assert main(["policy", "show"]) == 2
    assert "retry.days: is required" in capsys.readouterr().err
