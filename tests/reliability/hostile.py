"""Hostile requests for the real web server: forged, replayed, stale, oversized and malformed
webhooks, and a bounded, seeded fuzz of bodies and headers. Each function sends its requests,
asserts each answer, and counts answers by status in ``seen``."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.web import (
    MAX_BODY_BYTES,
    QP_KEY,
    TOLERANCE_S,
    body_of,
    post_quickpay,
    post_stripe,
    quickpay_headers,
    stripe_event,
    stripe_headers,
)

PAYLOADS = Path(__file__).resolve().parents[1] / "unit" / "webhooks" / "payloads"
REFUSED = {400, 413}


def _expect(seen: Counter[str], what: str, response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (what, response.status_code, response.text[:200])
    seen[f"{what}:{status}"] += 1


def ignored_event(event_id: str) -> dict[str, Any]:
    """A well-formed event of a type the pipeline stores and does not act on."""
    return stripe_event(
        "customer.discount.created", event_id, {"id": "cus_elsewhere", "object": "customer"}
    )


def quickpay_pending() -> dict[str, Any]:
    """A Quickpay callback whose operation is still pending: stored, ignored. It names no
    customer or subscription, so no mutation of it can touch the book."""
    payload: dict[str, Any] = json.loads((PAYLOADS / "qp_pending.json").read_text())
    del payload["variables"], payload["subscription_id"]
    return payload


def webhook_attacks(client: httpx.Client, seen: Counter[str]) -> set[tuple[str, str]]:
    """Forged, tampered, stale, replayed, malformed and oversized deliveries; returns the
    ``(provider, event_id)`` pairs that were legitimately accepted."""
    now_s = int(datetime.now(UTC).timestamp())
    event = ignored_event("evt_rel_replayed")
    body = body_of(event)
    _expect(seen, "forged", post_stripe(client, event, secret="whsec_attacker"), 400)
    _expect(seen, "unsigned", client.post("/webhooks/stripe", content=body), 400)
    tampered = body.replace(b"cus_elsewhere", b"cus_elsewhera")
    _expect(
        seen,
        "tampered",
        client.post("/webhooks/stripe", content=tampered, headers=stripe_headers(body)),
        400,
    )
    _expect(seen, "stale", post_stripe(client, event, t=now_s - TOLERANCE_S - 30), 400)
    _expect(seen, "future", post_stripe(client, event, t=now_s + TOLERANCE_S + 30), 400)
    first = post_stripe(client, event)
    _expect(seen, "genuine", first, 200)
    assert first.json() == {"status": "ignored"}
    for _ in range(3):  # the same delivery again, and re-signed later, as a replay would be
        again = post_stripe(client, event)
        _expect(seen, "replayed", again, 200)
        assert again.json() == {"status": "duplicate"}
    for raw in (
        b"not json",
        b"[]",
        b'{"id": 7}',
        b'{"id": "evt_x", "type": "invoice.paid"}',
        b"{" * 5000,
        b'{"id": "evt_nan", "type": "x", "created": NaN}',
    ):
        _expect(seen, "malformed", post_stripe(client, raw), 400)
    big = body_of(ignored_event("evt_rel_big")) + b" " * MAX_BODY_BYTES
    _expect(seen, "oversized", post_stripe(client, big), 413)
    chunks: Iterator[bytes] = iter([b" " * 8192] * (MAX_BODY_BYTES // 8192 + 2))
    streamed = client.post("/webhooks/stripe", content=chunks, headers=stripe_headers(b"{}"))
    _expect(seen, "oversized_streamed", streamed, 413)

    qp = quickpay_pending()
    _expect(seen, "forged", post_quickpay(client, qp, key="qp_attacker"), 400)
    _expect(seen, "unsigned", client.post("/webhooks/quickpay", content=body_of(qp)), 400)
    accepted = post_quickpay(client, qp)
    _expect(seen, "genuine", accepted, 200)
    assert accepted.json() == {"status": "ignored"}
    _expect(seen, "replayed", post_quickpay(client, qp), 200)
    return {("stripe", "evt_rel_replayed"), ("quickpay", "510006:1:pending")}


def _mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 6)):
        action = rng.choice(("flip", "insert", "delete", "truncate"))
        at = rng.randrange(len(data)) if data else 0
        if action == "flip" and data:
            data[at] = rng.randrange(256)
        elif action == "insert":
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif action == "delete" and data:
            del data[at : at + rng.randint(1, 8)]
        elif action == "truncate":
            del data[at:]
    return bytes(data)


def _garbage_header(rng: random.Random) -> bytes:
    alphabet = b"t=v1,0123456789abcdef ;:\"'\\%" + bytes(range(0x80, 0x100))
    value = bytes(rng.choice(alphabet) for _ in range(rng.choice((0, 5, 60, 300, 6000))))
    return value.strip(b" ")  # HTTP itself cannot carry edge whitespace in a header value


def fuzz(client: httpx.Client, seen: Counter[str], *, requests: int, seed: int) -> int:
    """Seeded random bodies and headers; never a 5xx. Returns how many were stored (200s)."""
    rng = random.Random(seed)
    base = body_of(ignored_event("evt_rel_fuzz"))
    qp_base = body_of(quickpay_pending())
    stored = 0
    for i in range(requests):
        provider = rng.choice(("stripe", "quickpay"))
        body = _mutate(rng, base if provider == "stripe" else qp_base)
        if rng.random() < 0.2:
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 3000)))
        signed = rng.random() < 0.6
        if provider == "stripe":
            headers: dict[str, Any] = (
                stripe_headers(body) if signed else {"Stripe-Signature": _garbage_header(rng)}
            )
        else:
            headers = (
                quickpay_headers(body, key=QP_KEY)
                if signed
                else {"QuickPay-Checksum-Sha256": _garbage_header(rng)}
            )
        if rng.random() < 0.1:
            headers["Content-Type"] = _garbage_header(rng)
        response = client.post(f"/webhooks/{provider}", content=body, headers=headers)
        status = response.status_code
        assert status in REFUSED | {200}, (i, provider, status, response.text[:200])
        if status == 200:
            assert signed, (i, "an unsigned body was accepted")
            stored += response.json()["status"] in ("accepted", "ignored")
        seen[f"fuzz:{status}"] += 1
    return stored
