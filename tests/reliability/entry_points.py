"""Card data pushed through each way in that is not the web page: ``dunning import`` and
``dunning simulate`` run as the operator would run them, their output kept for the scan."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.conftest import Pipeline, dunning_executable


def import_line(key: str, *, name: str, token: str) -> dict[str, Any]:
    return {
        "id": f"cus_{key}",
        "email": f"{key}@imported.test",
        "name": name,
        "locale": "en",
        "timezone": "Europe/Copenhagen",
        "payment_methods": [
            {"id": f"pm_{key}", "gateway": "sandbox", "token": token, "network": "visa",
             "last4": "4242", "exp_month": 3, "exp_year": 2031, "default": True},
        ],
        "subscriptions": [
            {"id": f"sub_{key}", "plan": "default", "amount": 1500, "currency": "USD",
             "interval": "month", "payment_method": f"pm_{key}"},
        ],
    }  # fmt: skip


def run_cli(p: Pipeline, args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``dunning ARGS`` with the daemons' environment; exit code and all output."""
    done = subprocess.run(
        [dunning_executable(), *args],
        env=p.env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


def run_import(p: Pipeline, tmp: Path, lines: list[dict[str, Any]]) -> tuple[int, str]:
    path = tmp / "book.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return run_cli(p, ["import", str(path)], tmp)


def run_simulate(p: Pipeline, tmp: Path, number: str) -> tuple[int, str]:
    """A customer who replaces a failing card with ``number`` during a three-day simulation."""
    scenario = {
        "start": "2026-01-01T00:00:00Z",
        "days": 3,
        "customers": [
            {
                "id": "cus_sim", "email": "sim@example.com", "name": "Sim", "locale": "en",
                "timezone": "Europe/Copenhagen",
                "payment_methods": [
                    {"id": "pm_sim", "network": "visa", "last4": "4242", "exp_month": 3,
                     "exp_year": 2030, "default": True,
                     "outcomes": [{"decline_code": "insufficient_funds", "network_code": "51"}]},
                ],
                "subscriptions": [
                    {"id": "sub_sim", "plan": "default", "amount": 1500, "currency": "USD",
                     "interval": "month", "payment_method": "pm_sim"},
                ],
            }
        ],
        "events": [
            {"at": "2026-01-01T00:05:00Z", "type": "payment_failed", "subscription": "sub_sim",
             "invoice": "in_sim", "amount": 1500,
             "decline": {"decline_code": "insufficient_funds", "network_code": "51"}},
            {"at": "2026-01-02T09:00:00Z", "type": "card_updated", "customer": "cus_sim",
             "card": {"number": number, "exp_month": 12, "exp_year": 2031}, "remove_old": True},
        ],
    }  # fmt: skip
    path = tmp / "scenario.json"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    return run_cli(p, ["simulate", str(path), "--json"], tmp)
