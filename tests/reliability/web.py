"""The real ``dunning web`` process on loopback, and the requests the hostile-input and
card-data tests send it: signed webhooks, card-update links and the card form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from dunning.links import LinkPurpose, make_link_token
from dunning.webhooks.signatures import sign_quickpay, sign_stripe
from tests.integration.conftest import Daemon, Pipeline, wait_until

STRIPE_SECRET = "whsec_reliability_secret"
QP_KEY = "qp_reliability_private_key"
LINK_SECRET = "reliability-link-secret"
MAX_BODY_BYTES = 65_536
TOLERANCE_S = 300


def web_env(port: int) -> dict[str, str]:
    """What the web process (and every other daemon) needs to receive and serve."""
    return {
        "DUNNING_STRIPE__WEBHOOK_SECRETS": json.dumps([STRIPE_SECRET]),
        "DUNNING_QUICKPAY__PRIVATE_KEY": QP_KEY,
        "DUNNING_LINK_SECRET": LINK_SECRET,
        "DUNNING_WEBHOOK_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "DUNNING_WEBHOOK_TOLERANCE_S": str(TOLERANCE_S),
        "DUNNING_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }


def start_web(
    p: Pipeline, port: int, *, name: str = "web", env: dict[str, str] | None = None
) -> tuple[Daemon, str]:
    """Start ``dunning web`` on ``port``; return it and its base URL once it answers."""
    args = ["web", "--host", "127.0.0.1", "--port", str(port)]
    daemon = p.daemons.start(name, args, p.env | (env or {}))
    base = f"http://127.0.0.1:{port}"

    def live() -> bool:
        try:
            return httpx.get(f"{base}/healthz/live", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(live, timeout_s=60, what="dunning web to answer", alive=p.daemons.check_alive)
    return daemon, base


def body_of(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def stripe_headers(
    body: bytes, *, secret: str = STRIPE_SECRET, t: int | None = None
) -> dict[str, str]:
    stamp = int(datetime.now(UTC).timestamp()) if t is None else t
    return {
        "Stripe-Signature": sign_stripe(body, secret, stamp),
        "Content-Type": "application/json",
    }


def quickpay_headers(body: bytes, *, key: str = QP_KEY) -> dict[str, str]:
    return {
        "QuickPay-Checksum-Sha256": sign_quickpay(body, key),
        "Content-Type": "application/json",
    }


def post_stripe(client: httpx.Client, payload: Any, **signing: Any) -> httpx.Response:
    body = body_of(payload)
    return client.post("/webhooks/stripe", content=body, headers=stripe_headers(body, **signing))


def post_quickpay(client: httpx.Client, payload: Any, **signing: Any) -> httpx.Response:
    body = body_of(payload)
    return client.post(
        "/webhooks/quickpay", content=body, headers=quickpay_headers(body, **signing)
    )


def stripe_event(kind: str, event_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(datetime.now(UTC).timestamp()),
        "data": {"object": obj},
        "livemode": False,
        "type": kind,
    }


def link_path(
    customer_id: str,
    *,
    generation: int = 0,
    expires_in: timedelta = timedelta(days=10),
    secret: str = LINK_SECRET,
) -> str:
    token = make_link_token(
        secret,
        customer_id=customer_id,
        purpose=LinkPurpose.update_card,
        generation=generation,
        expires_at=datetime.now(UTC) + expires_in,
    )
    return f"/update/{token}"


def csrf_of(html: str) -> str:
    """The hidden CSRF field's value in the card form."""
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def card_form(csrf: str, number: str, *, cvc: str, remove_old: bool = True) -> dict[str, str]:
    form = {"csrf": csrf, "card_number": number, "exp_month": "12", "exp_year": "2031", "cvc": cvc}
    if remove_old:
        form["remove_old"] = "1"
    return form
