"""A realistic customer book as JSON lines, in the ``dunning import`` shape.

Mixed locales, time zones and currencies; one or two sandbox cards and one or two
subscriptions per customer; about 5 % with an invoice already in dunning. Deterministic for a
given seed, so tests and benchmarks can reuse it::

    python -m bench.make_book --customers 100000 --out book.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 1, 1, tzinfo=UTC)

# locale, time zone, currency, price multiplier over EUR, weight
MARKETS = [
    ("en", "Europe/London", "GBP", 0.9, 20),
    ("en-US", "America/New_York", "USD", 1.1, 25),
    ("da", "Europe/Copenhagen", "DKK", 7.5, 15),
    ("de", "Europe/Berlin", "EUR", 1.0, 12),
    ("fr", "Europe/Paris", "EUR", 1.0, 8),
    ("es", "Europe/Madrid", "EUR", 1.0, 5),
    ("sv", "Europe/Stockholm", "SEK", 11.0, 5),
    ("nb", "Europe/Oslo", "NOK", 11.5, 4),
    ("en-AU", "Australia/Sydney", "AUD", 1.6, 4),
    ("ja", "Asia/Tokyo", "JPY", 1.6, 2),  # JPY has no minor unit: amounts are whole yen
]
PLANS = [("basic-monthly", 900, "month"), ("pro-monthly", 2900, "month"),
         ("team-monthly", 9900, "month"), ("pro-yearly", 29000, "year")]  # fmt: skip
FIRST = ["Ana", "Bo", "Chen", "Dana", "Emil", "Fatima", "Gustav", "Hana", "Ivan", "Jonas",
         "Kirsten", "Luca", "Maja", "Noah", "Olga", "Pierre", "Sofia", "Yuki"]  # fmt: skip
LAST = ["Andersen", "Berg", "Costa", "Dubois", "Eriksson", "Fischer", "Garcia", "Hansen",
        "Ito", "Jensen", "Kowalski", "Larsen", "Martin", "Nielsen", "Smith"]  # fmt: skip
NETWORKS = [("visa", 60), ("mastercard", 35), ("amex", 5)]
DECLINES = [
    ({"decline_code": "insufficient_funds", "network_code": "51"}, 50),
    ({"decline_code": "do_not_honor", "network_code": "05"}, 15),
    ({"decline_code": "generic_decline", "network_code": "05"}, 15),
    ({"decline_code": "expired_card", "network_code": "54"}, 10),
    ({"decline_code": "card_velocity_exceeded", "network_code": "61",
      "advice_code": "try_again_later"}, 10),
]  # fmt: skip


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pick(rng: random.Random, weighted: list[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def customer(
    i: int, rng: random.Random, *, start: datetime = START, in_dunning: float = 0.05
) -> dict[str, Any]:
    """Customer number ``i`` of a book; ``in_dunning`` is the share with a failed invoice."""
    locale, tz, currency, rate, _ = rng.choices(MARKETS, weights=[m[4] for m in MARKETS])[0]
    first, last = rng.choice(FIRST), rng.choice(LAST)
    cid = f"cus_{i:07d}"
    failed = rng.random() < in_dunning
    decline = _pick(rng, DECLINES) if failed else None
    cards = []
    for k in range(1 if rng.random() < 0.7 else 2):
        behaviour = decline["decline_code"] if decline and k == 0 else "ok"
        cards.append({
            "id": f"pm_{i:07d}_{k}", "gateway": "sandbox",
            "token": f"sbx_{behaviour}_{rng.getrandbits(40):x}",
            "network": _pick(rng, NETWORKS), "last4": f"{rng.randrange(10000):04d}",
            "exp_month": rng.randint(1, 12), "exp_year": start.year + rng.randint(0, 5),
            "default": k == 0,
        })  # fmt: skip
    subs = []
    for k in range(1 if rng.random() < 0.8 else 2):
        plan, price, interval = rng.choice(PLANS)
        paid = start - timedelta(days=rng.randint(1, 28), hours=rng.randint(0, 23))
        period = timedelta(days=365 if interval == "year" else 30)
        subs.append({
            "id": f"sub_{i:07d}_{k}", "plan": plan, "amount": round(price * rate),
            "currency": currency, "interval": interval, "payment_method": cards[0]["id"],
            "last_payment_at": _iso(paid), "current_period_end": _iso(paid + period),
        })  # fmt: skip
    line: dict[str, Any] = {
        "id": cid, "email": f"{first}.{last}.{i}@example.com".lower(),
        "name": f"{first} {last}", "locale": locale, "timezone": tz,
        "payment_methods": cards, "subscriptions": subs,
    }  # fmt: skip
    if rng.random() < 0.1:
        line["billing_emails"] = [f"billing.{i}@example.org"]
    if decline is not None:
        sub = subs[0]
        line["invoices"] = [{
            "id": f"in_{i:07d}_0", "subscription": sub["id"], "amount": sub["amount"],
            "currency": currency, "attempts": rng.randint(1, 4), "decline": decline,
            "first_failed_at": _iso(start - timedelta(days=rng.randint(0, 10))),
        }]  # fmt: skip
    return line


def book_lines(
    customers: int, *, seed: int = 0, start: datetime = START, in_dunning: float = 0.05
) -> Iterator[str]:
    """The JSON lines (without newlines) of a book of ``customers`` customers."""
    rng = random.Random(seed)
    for i in range(1, customers + 1):
        line = customer(i, rng, start=start, in_dunning=in_dunning)
        yield json.dumps(line, separators=(",", ":"))


def write_book(
    path: str | Path,
    customers: int,
    *,
    seed: int = 0,
    in_dunning: float = 0.05,
    start: datetime = START,
) -> Path:
    """Write a book to ``path``; return the path. Invoices in dunning first failed in the ten
    days before ``start``."""
    out = Path(path)
    with out.open("w", encoding="utf-8") as f:
        for line in book_lines(customers, seed=seed, in_dunning=in_dunning, start=start):
            f.write(line + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.make_book --customers N --out FILE [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_book(args.out, args.customers, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
