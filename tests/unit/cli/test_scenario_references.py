"""``dunning simulate`` checks every reference of a scenario before it runs anything."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dunning.cli.main import main

BASE = json.loads(
    (
        Path(__file__).resolve().parents[2] / "scenarios" / "paid_elsewhere_mid_dunning.json"
    ).read_text()
)


def _events(s: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in s["events"] if e["type"] == kind]


def _bad_subscription(s: dict[str, Any]) -> None:
    _events(s, "payment_failed")[0]["subscription"] = "sub_nope"


def _bad_card(s: dict[str, Any]) -> None:
    s["customers"][0]["subscriptions"][0]["payment_method"] = "pm_nope"


def _paid_before_opened(s: dict[str, Any]) -> None:
    _events(s, "payment_succeeded")[0]["invoice"] = "in_nope"


def _twice(s: dict[str, Any]) -> None:
    s["customers"].append(copy.deepcopy(s["customers"][0]))


def _customer(s: dict[str, Any]) -> None:
    s["events"].append({"at": s["start"], "type": "card_updated", "customer": "cus_nope",
                        "card": {"number": "4242424242424242", "exp_month": 1,
                                 "exp_year": 2030}})  # fmt: skip


def _updater(s: dict[str, Any]) -> None:
    s["events"].append({"at": s["start"], "type": "card_auto_updated",
                        "payment_method": "pm_nope", "exp_month": 1, "exp_year": 2030})  # fmt: skip


def _policy(s: dict[str, Any]) -> None:
    s["policy"] = {"retry": {"dayz": [1]}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_bad_subscription, "events[0].subscription: no subscription 'sub_nope'"),
        (_bad_card, "customers[0].subscriptions[0].payment_method: 'pm_nope' is not one of"),
        (_paid_before_opened, "no payment_failed event opens 'in_nope'"),
        (_twice, "customers[1].id: customer"),
        (_customer, "customer: no customer 'cus_nope'"),
        (_updater, "payment_method: no payment method 'pm_nope'"),
        (_policy, "policy.retry.dayz: unknown key"),
    ],
)
def test_a_reference_to_nothing_is_refused_before_running(
    change: Callable[[dict[str, Any]], None],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenario = copy.deepcopy(BASE)
    change(scenario)
    (tmp_path / "s.json").write_text(json.dumps(scenario))
    assert main(["simulate", str(tmp_path / "s.json"), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # not one line of a run
    assert captured.err.startswith("error: bad scenario")
    assert expected in captured.err


def test_the_unchanged_scenario_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.json").write_text(json.dumps(BASE))
    assert main(["simulate", str(tmp_path / "s.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["kind"] == "summary"
