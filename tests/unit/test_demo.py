"""``dunning demo``: a small generated book, its figures checked against the journal and the
store's own summary, the HTML report read back, and what the demo leaves to explore."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from dunning.cli.main import main
from dunning.simulate.demo import funnel, run_demo, write_report
from dunning.simulate.demo_book import RATES, build_book
from dunning.simulate.demo_run import DemoJob, demo_policies, run_job
from dunning.simulate.figures import Figures, compute
from dunning.simulate.scenario import Scenario
from dunning.whatif.params import load_params

CUSTOMERS, DAYS, SEED = 150, 20, 3


@cache
def _simulated() -> tuple[Scenario, list[dict[str, Any]], Figures]:
    scenario = build_book(customers=CUSTOMERS, days=DAYS, seed=SEED)
    job = DemoJob(0, scenario, demo_policies()[0], load_params(), SEED, None)
    lines = run_job(job, lambda _i, _n: None)
    return scenario, lines, compute(scenario, lines, RATES)


def test_the_book_is_seeded_and_varied() -> None:
    a = build_book(customers=50, days=30, seed=11)
    assert a == build_book(customers=50, days=30, seed=11)
    assert a != build_book(customers=50, days=30, seed=12)
    big = build_book(customers=2000, days=60, seed=7)
    kinds = {e.type for e in big.events}
    assert kinds == {
        "payment_failed",
        "card_updated",
        "subscription_cancelled",
        "payment_succeeded",
        "card_auto_updated",
    }
    declines = {
        e.decline.decline_code for e in big.events if e.type == "payment_failed" and e.decline
    }
    assert {"insufficient_funds", "expired_card", "do_not_honor", "stolen_card"} <= declines
    assert len({c.timezone for c in big.customers}) >= 6
    assert {c.locale for c in big.customers} == {"en", "da"}
    assert all(big.start <= e.at < big.start + timedelta(days=60) for e in big.events)


def test_recovered_amount_is_the_sum_of_the_paid_invoices() -> None:
    scenario, lines, f = _simulated()
    summary = lines[-1]
    assert f.failed >= 5, "the sample book must exercise dunning"
    paid = {x["invoice"] for x in lines if x["kind"] == "invoice_status" and x["to"] == "paid"}
    amounts = {e.invoice: e.amount for e in scenario.events if e.type == "payment_failed"}
    # The figures come from the lines; the summary line from the invoices table.
    assert {c: m.recovered for c, m in f.money.items() if m.recovered} == summary["recovered"]
    assert sum(m.recovered for m in f.money.values()) == sum(amounts[i] for i in paid)
    assert {c: m.lost for c, m in f.money.items() if m.lost} == summary["lost"]
    eur = sum(m.recovered / RATES[c] / 100 for c, m in f.money.items())
    assert f.recovered_by_day[-1] == pytest.approx(eur, abs=0.05)
    assert f.recovered_by_day == sorted(f.recovered_by_day)
    assert len(f.recovered_by_day) == DAYS + 1


def test_funnel_and_outcomes_add_up() -> None:
    _, lines, f = _simulated()
    opened = [x for x in lines if x["kind"] == "invoice_status" and x["from"] is None]
    assert f.failed == len(opened)
    assert f.recovered == sum(f.recovered_by.values()) == len(f.days_to_recovery)
    assert f.recovered + f.suspended_unpaid + f.cancelled + f.written_off + f.in_dunning == f.failed
    assert f.retried <= f.failed
    for m in f.money.values():
        assert m.recovered + m.lost + m.retrying + m.cancelled == m.failed
        assert min(m.lost, m.retrying, m.cancelled) >= 0
    stages = dict(funnel(f))
    assert stages["payment failed"] == f.failed
    assert f.emails == lines[-1]["emails"]
    assert sum(f.emails.values()) == sum(1 for x in lines if x["kind"] == "email")
    stopped = sum(1 for x in lines if x["kind"] == "retry_stopped")
    assert sum(f.stop_reasons.values()) == stopped
    assert all(d >= 0 for d in f.days_to_recovery)
    median, p90 = f.median_days, f.percentile_days(0.9)
    assert median is not None
    assert p90 is not None
    assert median <= p90


def test_report_is_self_contained_html_with_two_charts(tmp_path: Path) -> None:
    _, _, f = _simulated()
    path = tmp_path / "report.html"
    write_report([f, f], ["default", "again"], path, seed=SEED)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    root = ET.fromstring(text.split("\n", 1)[1])  # well-formed: an XML parser reads it
    svgs = {svg.get("id"): svg for svg in root.iter("svg")}
    assert set(svgs) == {"recovery-chart", "funnel-chart", "policies-chart"}
    points = svgs["recovery-chart"].find("polyline")
    assert points is not None
    assert len(points.get("points", "").split()) == DAYS + 1
    bars = svgs["funnel-chart"].findall("rect")
    assert len(bars) == len(funnel(f))
    widths = [float(b.get("width", "0")) for b in bars]
    assert widths[0] == max(widths)  # everything starts as a failed payment
    assert not list(root.iter("script"))
    for element in root.iter():
        assert element.get("src") is None
        assert element.get("href") is None
    assert "http" not in text.lower().replace("http://www.w3.org", "")
    text_only = "".join(root.itertext())
    assert f"{f.failed}" in text_only
    assert "failed = recovered + lost" in text_only


def test_retries_are_answered_by_the_model_so_timing_matters() -> None:
    _, lines, f = _simulated()
    retries = [x for x in lines if x["kind"] == "charge_attempt" and x["attempt"] >= 2]
    results = {x["result"] for x in retries if x["initiator"] == "merchant"}
    assert {"succeeded", "declined"} <= results
    assert 0 < f.recovered_by["retry"] < f.retried


def test_run_demo_prints_the_summary_the_comparison_and_what_to_explore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, keep = tmp_path / "demo.html", tmp_path / "demo"
    (keep / "outbox").mkdir(parents=True)
    (keep / "outbox" / "stale.eml").write_text("from an earlier demo")
    run_demo(customers=120, days=20, report=report, seed=5, workdir=keep, workers=1)
    out = capsys.readouterr().out
    for title in ("Dunning funnel", "Recovered revenue", "Emails by kind", "Why retries stopped",
                  "The same book under three policies", "stripe-like", "payday-aware"):  # fmt: skip
        assert title in out
    assert "failed = recovered + lost + retrying + cancelled" in out.replace("\n", " ")
    assert (keep / "dunning.sqlite3").exists()
    assert not (keep / "outbox" / "stale.eml").exists()
    emails = list((keep / "outbox").glob("*.eml"))
    assert emails
    assert f"{len(emails)} .eml files" in out
    assert f"DUNNING_DATABASE_URL=sqlite:///{keep / 'dunning.sqlite3'}" in out
    assert "/ops, user ops, password" in out
    assert "/update/" in out
    assert report.exists()
    assert "<svg" in report.read_text(encoding="utf-8")


def test_demo_command(tmp_path: Path) -> None:
    report = tmp_path / "cli.html"
    args = ["demo", "--customers", "20", "--days", "3", "--seed", "2", "--report", str(report),
            "--dir", str(tmp_path / "demo")]  # fmt: skip
    assert main(args) == 0
    assert report.exists()
    assert (tmp_path / "demo" / "dunning.sqlite3").exists()
