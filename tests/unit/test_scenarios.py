"""The scenario library: every ``tests/scenarios/NAME.json`` through the real pipeline, its
``--json`` output compared line by line with ``NAME.expected.jsonl``.

``UPDATE_SCENARIOS=1`` rewrites the expected files; read a rewritten file before committing it.
Besides the exact timelines, a few rules are checked on every scenario's output, so a new
scenario is held to them without anyone writing its expectation by hand.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dunning.cli.main import main
from dunning.simulate.due import anything_due
from dunning.simulate.runner import apply_event, run, simulation
from dunning.simulate.scenario import Scenario, load_scenario
from dunning.store import rows
from dunning.store.tables import subscriptions

HERE = Path(__file__).resolve().parent.parent / "scenarios"
SCENARIOS = sorted(HERE.glob("*.json"))
UPDATE = os.environ.get("UPDATE_SCENARIOS") == "1"


def _expected_path(scenario: Path) -> Path:
    return scenario.with_name(scenario.stem + ".expected.jsonl")


def _as_text(lines: list[dict[str, Any]]) -> list[str]:
    """The exact text ``dunning simulate --json`` prints."""
    return [json.dumps(line, sort_keys=False) for line in lines]


@cache
def _simulated(name: str) -> tuple[Scenario, tuple[str, ...]]:
    """Each scenario runs once per session; the checks below share its output."""
    scenario = load_scenario(HERE / f"{name}.json")
    return scenario, tuple(_as_text(run(scenario)))


def _lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(text) for text in _simulated(name)[1]]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _compare(name: str, actual: list[str], expected_file: Path) -> None:
    if UPDATE:
        expected_file.write_text("\n".join(actual) + "\n", encoding="utf-8")
        return
    if not expected_file.exists():
        pytest.fail(f"{expected_file.name} is missing: run with UPDATE_SCENARIOS=1 and read it")
    expected = expected_file.read_text(encoding="utf-8").splitlines()
    if actual != expected:
        diff = "\n".join(
            difflib.unified_diff(
                expected, actual, f"{name}.expected.jsonl", "simulated", lineterm="", n=2
            )
        )
        pytest.fail(f"scenario {name} changed:\n{diff}", pytrace=False)


NAMES = [p.stem for p in SCENARIOS]


def test_every_scenario_has_its_expected_timeline() -> None:
    assert len(NAMES) >= 20
    orphans = {p.name for p in HERE.glob("*.expected.jsonl")} - {
        _expected_path(p).name for p in SCENARIOS
    }
    assert not orphans, f"expected files without a scenario: {sorted(orphans)}"


@pytest.mark.parametrize("name", NAMES)
def test_scenario_timeline(name: str) -> None:
    _compare(name, list(_simulated(name)[1]), _expected_path(HERE / f"{name}.json"))


# -- rules every scenario's output keeps ------------------------------------------------------


def _customers_by_email(scenario: Scenario) -> dict[str, Any]:
    return {c.email: c for c in scenario.customers}


@pytest.mark.parametrize("name", NAMES)
def test_emails_go_out_after_quiet_hours(name: str) -> None:
    scenario, _ = _simulated(name)
    who = _customers_by_email(scenario)
    for line in _lines(name):
        if line["kind"] != "email":
            continue
        local = _at(line["at"]).astimezone(ZoneInfo(who[line["to"]].timezone))
        assert 8 <= local.hour < 21, f"{line['dedup_key']} sent at {local.isoformat()}"


@pytest.mark.parametrize("name", NAMES)
def test_retry_failed_reminder_only_after_a_declined_retry(name: str) -> None:
    declined_retry: dict[str, datetime] = {}
    for line in _lines(name):
        if line["kind"] == "charge_attempt" and line["attempt"] >= 2:
            if line["result"] == "declined":
                declined_retry.setdefault(line["invoice"], _at(line["at"]))
        if line["kind"] == "email" and line["template"] == "payment_retry_failed":
            invoice = line["dedup_key"].split(":")[1]
            assert invoice in declined_retry, f"{line['dedup_key']}: no retry was declined"
            assert declined_retry[invoice] <= _at(line["at"])


@pytest.mark.parametrize("name", NAMES)
def test_every_scheduled_retry_runs_or_is_overtaken(name: str) -> None:
    """A scheduled retry is made at its time, unless something about the invoice happened
    first (paid, stopped, cancelled, rescheduled) or the scenario ends before it."""
    lines = _lines(name)
    end = _at(lines[-1]["at"])
    for i, line in enumerate(lines):
        if line["kind"] != "retry_scheduled":
            continue
        due, invoice = _at(line["due"]), line["invoice"]
        if due >= end:
            continue
        later = [x for x in lines[i + 1 : -1] if x.get("invoice") == invoice]
        made = any(
            x["kind"] == "charge_attempt"
            and x["attempt"] == line["attempt"]
            and _at(x["at"]) == due
            for x in later
        )
        overtaken = any(
            x["kind"] in ("retry_stopped", "invoice_status", "retry_scheduled", "charge_attempt")
            and _at(x["at"]) <= due
            for x in later
        )
        assert made or overtaken, f"retry {line} never ran"


@pytest.mark.parametrize("name", NAMES)
def test_summary_matches_the_timeline(name: str) -> None:
    scenario, _ = _simulated(name)
    lines = _lines(name)
    summary, body = lines[-1], lines[:-1]
    assert summary["kind"] == "summary"
    attempts = {(x["invoice"], x["attempt"]) for x in body if x["kind"] == "charge_attempt"}
    assert summary["attempts"] == len(attempts)
    emails: dict[str, int] = defaultdict(int)
    for x in body:
        if x["kind"] == "email":
            emails[x["template"]] += 1
    assert summary["emails"] == dict(emails)
    amounts = {e.invoice: e.amount for e in scenario.events if e.type == "payment_failed"}
    currency = {
        s.id: s.currency for c in scenario.customers for s in c.subscriptions
    }  # invoice currency is its subscription's
    by_invoice = {
        e.invoice: currency[e.subscription] for e in scenario.events if e.type == "payment_failed"
    }
    recovered: dict[str, int] = defaultdict(int)
    status: dict[str, str] = {}
    for x in body:
        if x["kind"] == "invoice_status":
            status[x["invoice"]] = x["to"]
    for invoice, to in status.items():
        if to == "paid":
            recovered[by_invoice[invoice]] += amounts[invoice]
    assert summary["recovered"] == dict(recovered)
    for x in body:
        assert set(x) >= {"at", "kind"}
        assert x["at"].endswith("Z")
    assert [x["at"] for x in body] == sorted(x["at"] for x in body)


@pytest.mark.parametrize("name", NAMES)
def test_card_expiring_reminders_at_the_local_morning_never_on_the_1st(name: str) -> None:
    scenario, _ = _simulated(name)
    who = _customers_by_email(scenario)
    for line in _lines(name):
        if line["kind"] == "email" and line["template"] == "card_expiring":
            local = _at(line["at"]).astimezone(ZoneInfo(who[line["to"]].timezone))
            assert (local.hour, local.minute) == (9, 0), line
            assert local.day != 1, line


# -- the CLI --------------------------------------------------------------------------------

SOFT = HERE / "soft_decline_recovered_by_retry.json"


def test_simulate_cli_subprocess_prints_the_expected_timeline() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dunning.cli.main", "simulate", str(SOFT), "--json"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = _expected_path(SOFT).read_text(encoding="utf-8").splitlines()
    assert done.stdout.splitlines() == expected


def test_step_15m_gives_the_same_timeline_when_everything_is_on_the_hour(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", str(SOFT), "--json", "--step", "15m"]) == 0
    expected = _expected_path(SOFT).read_text(encoding="utf-8").splitlines()
    assert capsys.readouterr().out.splitlines() == expected


def test_step_15m_settles_a_lost_answer_sooner() -> None:
    scenario = load_scenario(HERE / "gateway_timeout_not_charged_tried_again.json")
    hourly = [x for x in run(scenario) if x["kind"] == "charge_resolved"]
    quarter = [
        x for x in run(scenario, step=timedelta(minutes=15)) if x["kind"] == "charge_resolved"
    ]
    assert [x["at"] for x in hourly] == ["2026-01-02T10:00:00Z"]
    assert [x["at"] for x in quarter] == ["2026-01-02T09:15:00Z"]


def test_bad_step_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(SOFT), "--step", "7s"]) == 2
    assert "--step" in capsys.readouterr().err


def test_human_readable_output_has_a_timeline_and_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", str(SOFT)]) == 0
    out = capsys.readouterr().out
    assert "timeline" in out
    assert "summary at 2026-01-21T00:00:00Z" in out
    assert "payment_recovered" in out
    assert "recovered EUR" in out
    assert "125.00" in out


def _scenario_with(tmp_path: Path, change: Any) -> Path:
    data = json.loads(SOFT.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d.update({"//": "a comment"}), "//"),
        (lambda d: d["customers"][0].update({"colour": "red"}), "customers[0].colour"),
        (
            lambda d: d["customers"][0]["payment_methods"][0].update({"exp_month": 13}),
            "customers[0].payment_methods[0].exp_month",
        ),
        (
            lambda d: d["customers"][0].update({"timezone": "Mars/Olympus"}),
            "customers[0].timezone",
        ),
        (lambda d: d["events"][0].update({"at": "2026-01-01T00:05:00"}), "events[0]"),
        (lambda d: d["events"][0].update({"type": "refund"}), "events[0]"),
        (lambda d: d.update({"days": 0}), "days"),
        (lambda d: d.update({"policy": {"retry.dayz": [1]}}), "dayz"),
    ],
    ids=[
        "comment",
        "unknown-key",
        "bad-month",
        "bad-zone",
        "naive-time",
        "bad-event",
        "days",
        "policy",
    ],
)
def test_bad_scenarios_are_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, named: str
) -> None:
    path = _scenario_with(tmp_path, change)
    assert main(["simulate", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert named in " ".join(captured.err.split())
    assert captured.out == ""


def test_unreadable_scenario_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert main(["simulate", str(tmp_path / "broken.json")]) == 2
    assert "not JSON" in " ".join(capsys.readouterr().err.split())


def test_card_update_without_open_invoice_attaches_the_card_and_charges_nothing() -> None:
    scenario = load_scenario(HERE / "card_update_without_open_invoice_no_charge.json")
    with simulation(scenario) as sim:
        event = scenario.events[0]
        sim.clock.set(event.at)
        apply_event(sim, event)
        sim.drain()
        with sim.container.engine.connect() as conn:
            sub = rows.get(conn, subscriptions, "sub_1")
        assert sub["payment_method_id"] == "cus_1_card1"
        assert sim.gateway.ledger.entries() == []


def test_hours_without_due_work_are_skipped_only_when_no_scan_would_find_any() -> None:
    scenario = load_scenario(SOFT)
    after = timedelta(seconds=120)
    with simulation(scenario) as sim:
        engine = sim.container.engine
        assert not anything_due(engine, scenario.start, unknown_after=after)
        event = scenario.events[0]
        sim.clock.set(event.at)
        apply_event(sim, event)  # the failure email waits for the end of quiet hours
        sim.drain()
        assert not anything_due(engine, _at("2026-01-01T06:59:00Z"), unknown_after=after)
        assert anything_due(engine, _at("2026-01-01T07:00:00Z"), unknown_after=after)
