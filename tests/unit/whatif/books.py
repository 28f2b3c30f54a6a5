"""Small books for what-if tests, in the import format."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
ZONES = [("Europe/Copenhagen", "DKK", 14900), ("America/New_York", "USD", 2900),
         ("Europe/London", "GBP", 2500)]  # fmt: skip
DECLINES = [
    {"decline_code": "insufficient_funds", "network_code": "51"},
    {"decline_code": "processing_error", "network_code": "96"},
    {"decline_code": "do_not_honor", "network_code": "05"},
    {"decline_code": "expired_card", "network_code": "54"},
]


def customer(i: int, rng: random.Random, decline: dict[str, str] | None = None) -> dict[str, Any]:
    zone, currency, amount = ZONES[i % len(ZONES)]
    failed = START + timedelta(hours=rng.uniform(0, 24 * 20))
    return {
        "id": f"cus_{i}",
        "email": f"c{i}@example.com",
        "timezone": zone,
        "payment_methods": [{"id": f"pm_{i}", "gateway": "sandbox", "token": f"sbx_ok_{i}x",
                             "network": "visa", "last4": "4242", "exp_month": 12,
                             "exp_year": 2030, "default": True}],
        "subscriptions": [{"id": f"sub_{i}", "plan": "pro-monthly", "amount": amount,
                           "currency": currency, "payment_method": f"pm_{i}"}],
        "invoices": [{"id": f"in_{i}", "subscription": f"sub_{i}", "amount": amount,
                      "currency": currency, "attempts": 1,
                      "first_failed_at": failed.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "decline": decline or DECLINES[i % len(DECLINES)]}],
    }  # fmt: skip


def write(path: Path, n: int, *, seed: int = 3, decline: dict[str, str] | None = None) -> Path:
    rng = random.Random(seed)
    lines = [json.dumps(customer(i, rng, decline)) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
