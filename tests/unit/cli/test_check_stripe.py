"""``dunning check`` on Stripe says whether Stripe still retries failed invoices itself (read
from the invoices' ``next_payment_attempt``) and what to turn off; its emails are not in the
API, and the check says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dunning.cli.main import main
from tests.stripe_double import StripeDouble, serve


@pytest.fixture
def double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeDouble]:
    double = StripeDouble()
    with serve(double) as base_url:
        for name, value in {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}",
            "GATEWAY": "stripe",
            "STRIPE__API_KEY": double.api_key,
            "STRIPE__API_BASE": base_url,
            "STRIPE__API_VERSION": "2024-06-20",
        }.items():
            monkeypatch.setenv("DUNNING_" + name, value)
        assert main(["db", "upgrade"]) == 0
        yield double


def checks(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])  # type: ignore[no-any-return]


def test_stripe_retries_on_fail_the_check_and_say_what_to_turn_off(
    double: StripeDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    double.smart_retries = True
    double.add_invoice("in_R1", customer="cus_1", amount=1900, currency="eur")
    capsys.readouterr()

    code = main(["check", "--json"])

    found = checks(capsys)
    assert code == 1
    assert found["stripe"] == {"ok": True, "detail": "API version 2024-06-20"}
    retries = found["stripe retries"]
    assert retries["ok"] is False
    assert "in_R1 at 2026-03-05 12:00 UTC" in str(retries["detail"])
    assert "Smart Retries off" in str(retries["detail"])
    emails = found["stripe emails"]
    assert "not readable through Stripe's API" in str(emails["detail"])
    assert "Send emails when card payments fail" in str(emails["detail"])
    [listed] = [s for s in double.seen if s.path == "/v1/invoices"]
    assert listed.query == {
        "status": "open",
        "collection_method": "charge_automatically",
        "limit": "100",
    }
    assert listed.headers["stripe-version"] == "2024-06-20"


def test_stripe_retries_off(double: StripeDouble, capsys: pytest.CaptureFixture[str]) -> None:
    double.add_invoice("in_R2", customer="cus_1", amount=1900, currency="eur")
    capsys.readouterr()

    main(["check", "--json"])

    retries = checks(capsys)["stripe retries"]
    assert retries == {
        "ok": True,
        "detail": "off: none of 1 open invoices has a Stripe retry scheduled",
    }


def test_a_bad_key_fails_the_stripe_check(
    double: StripeDouble, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUNNING_STRIPE__API_KEY", "sk_wrong")
    capsys.readouterr()

    assert main(["check", "--json"]) == 1

    found = checks(capsys)["stripe"]
    assert found["ok"] is False
    assert "DUNNING_STRIPE__API_KEY" in str(found["detail"])
