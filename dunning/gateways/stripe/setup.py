"""SetupIntents: checking a new card, and 3-D Secure when the bank asks for it.

A card is checked by a SetupIntent confirmed on the server for off-session use. When the bank
wants the customer to authenticate, the SetupIntent stays ``requires_action``: its client secret
goes to Stripe.js on the customer's page, which runs the challenge, and the server then reads
the SetupIntent back from Stripe (:func:`result`) rather than trusting what the page says.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from dunning.errors import GatewayUnavailable
from dunning.gateways.base import Decline, VerifyResult
from dunning.gateways.stripe.answers import AUTH_REQUIRED, UNSETTLED, card_error, decline, text
from dunning.gateways.stripe.http import Form, StripeError, StripeHttp, refused
from dunning.model import CARD_PAGE_SOURCE

# Off-session charges cannot follow a redirect; cards need none (3-D Secure is not a redirect).
NO_REDIRECTS: Form = {
    "automatic_payment_methods[enabled]": "true",
    "automatic_payment_methods[allow_redirects]": "never",
}


def verify(http: StripeHttp, token: str, *, customer_id: str, deadline: float) -> VerifyResult:
    """Confirm an off-session SetupIntent for ``token``; on success Stripe attaches the card
    to the customer."""
    form: Form = {
        "customer": customer_id,
        "payment_method": token,
        "confirm": "true",
        "usage": "off_session",
        "metadata[source]": CARD_PAGE_SOURCE,
        **NO_REDIRECTS,
    }
    key = f"verify-{uuid.uuid4()}"
    status, body = http.call("POST", "/v1/setup_intents", form, key, deadline=deadline)
    if status != 200:
        return VerifyResult(ok=False, decline=decline(card_error(status, body)))
    return _state(body)


def result(http: StripeHttp, setup_intent_id: str, *, token: str, deadline: float) -> VerifyResult:
    """Where a SetupIntent stands, read from Stripe; it must be for ``token``."""
    path = f"/v1/setup_intents/{quote(setup_intent_id, safe='')}"
    status, body = http.call("GET", path, deadline=deadline)
    if status != 200:
        raise refused(status, body)
    method = body.get("payment_method")
    method_id = text(method, "id") if isinstance(method, Mapping) else text(body, "payment_method")
    if method_id != token:
        raise StripeError(
            f"stripe setup intent {setup_intent_id} is not for payment method {token}",
            status=status,
        )
    return _state(body)


def _state(body: Mapping[str, Any]) -> VerifyResult:
    state = text(body, "status")
    if state == "succeeded":
        return VerifyResult(ok=True)
    if state == "requires_action":
        return VerifyResult(
            ok=False,
            requires_action=True,
            decline=Decline(decline_code=AUTH_REQUIRED),
            action_ref=text(body, "id"),
            client_secret=text(body, "client_secret"),
        )
    if state in UNSETTLED or state is None:
        raise GatewayUnavailable(f"stripe setup intent is {state}: outcome not known yet")
    error = body.get("last_setup_error")
    found = decline(error) if isinstance(error, Mapping) else Decline(decline_code=state)
    return VerifyResult(ok=False, decline=found)
