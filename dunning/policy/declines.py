"""Decline classification: from the most specific signal to the least.

The order (docs/declines-and-network-rules.md §1):

1. advice codes (Stripe ``advice_code``) and Mastercard MACs (``network_advice_code``), the
   stricter of the two when both are present;
2. the raw network code read with the card's network (Visa categories 1-3; category 4 is
   "every other code", as generic as no code, so it lets the gateway's code speak);
3. the gateway's decline code (Stripe's codes, Quickpay's ``qp_status_code``);
4. anything else is generic: retry within the limits.

A network advice code is read as a Mastercard MAC whatever the card's network: gateways only
send one for Mastercard, and reading it can only stop or delay retries.
"""

from __future__ import annotations

from dunning.policy import codes
from dunning.policy.types import Classification, Decline, PlanPolicy, Verdict

_DEFAULT_POLICY = PlanPolicy()
_STRICTNESS = {Verdict.retry: 0, Verdict.needs_new_card: 1, Verdict.never: 2}


def _soft(decline_class: str, message: str, *, weak: bool = False) -> Classification:
    return Classification(Verdict.retry, decline_class, "soft_decline", message, weak=weak)


def _new_card(decline_class: str, message: str) -> Classification:
    return Classification(Verdict.needs_new_card, decline_class, "needs_new_card", message)


def _hard(decline_class: str, message: str) -> Classification:
    return Classification(Verdict.never, decline_class, "hard_decline", message)


def _delayed(decline_class: str, message: str, hours: float | None) -> Classification:
    delay_s = None if hours is None else hours * 3600.0
    return Classification(Verdict.retry, decline_class, "mac_delay", message, min_delay_s=delay_s)


def _from_advice(decline: Decline, policy: PlanPolicy) -> Classification | None:
    found: list[Classification] = []
    advice = (decline.advice_code or "").strip().lower()
    if advice in codes.ADVICE_NEVER:
        found.append(_hard("advice_do_not_try_again", "The issuer said never to try again."))
    elif advice in codes.ADVICE_NEW_DATA:
        found.append(_new_card("advice_confirm_card_data", "The card data must be confirmed."))
    elif advice in codes.ADVICE_RETRY:
        found.append(_soft("advice_try_again_later", "The issuer said to try again later."))
    mac = codes.mac_code(decline.network_advice_code)
    if mac in codes.MAC_NEVER:
        found.append(_hard(f"mac_{mac}", f"Mastercard advice {mac}: do not try again."))
    elif mac in codes.MAC_NEW_DATA:
        found.append(_new_card(f"mac_{mac}", f"Mastercard advice {mac}: the card must change."))
    elif mac in codes.MAC_DELAYED:
        hours = policy.mac_delay_hours.get(mac)
        found.append(
            _delayed(f"mac_{mac}", f"Mastercard advice {mac}: try later ({hours} h).", hours)
        )
    if not found:
        return None
    return max(found, key=lambda c: (_STRICTNESS[c.verdict], c.min_delay_s or 0.0))


def _from_network_code(raw: str | None, network: str) -> Classification | None:
    code = codes.network_code(raw)
    if not code or network.strip().lower() != "visa":
        return None
    if code in codes.VISA_CAT1:
        return _hard("visa_cat1", f"Visa code {code}: the issuer will never approve.")
    if code in codes.VISA_CAT2:
        return _soft("visa_cat2", f"Visa code {code}: the issuer cannot approve now.")
    if code in codes.VISA_CAT3:
        return _new_card("visa_cat3", f"Visa code {code}: the card data must be fixed first.")
    return None


def _from_stripe(code: str, policy: PlanPolicy) -> Classification | None:
    if code in codes.STRIPE_HARD:
        return _hard("hard", f"Decline {code}: never retry this card.")
    if code in codes.STRIPE_NEW_DATA:
        return _new_card("needs_new_card", f"Decline {code}: the customer must update the card.")
    if code in codes.STRIPE_WEAK:
        return _soft("soft_weak", f"Decline {code}: a weak soft decline, few retries.", weak=True)
    if code in codes.STRIPE_SOFT:
        hours = policy.decline_min_delay_hours.get(code)
        found = _soft("soft", f"Decline {code}: retry later.")
        if hours is None:
            return found
        return Classification(
            found.verdict, found.decline_class, found.reason, found.message, hours * 3600.0
        )
    return None


def _from_quickpay(code: str) -> Classification | None:
    if code in codes.QP_NEEDS_CUSTOMER:
        return _new_card(f"qp_{code}", f"Quickpay {code}: the customer must authenticate.")
    if code in codes.QP_DEAD_CREDENTIAL:
        return _hard(f"qp_{code}", f"Quickpay {code}: the stored card is no longer usable.")
    return None


def classify(
    decline: Decline | None,
    network: str,
    *,
    gateway: str = "stripe",
    policy: PlanPolicy | None = None,
) -> Classification:
    """Classify one failed charge; ``decline=None`` means the gateway did not answer.

    ``policy`` supplies the delays (MACs, ``withdrawal_count_limit_exceeded``); the defaults
    of :class:`PlanPolicy` apply without it. A five-digit decline code is read as a Quickpay
    ``qp_status_code`` whatever ``gateway`` says.
    """
    if decline is None:
        return Classification(
            Verdict.unknown, "unknown", "unknown_outcome", "No answer: look the charge up first."
        )
    rules = policy or _DEFAULT_POLICY
    code = (decline.decline_code or "").strip().lower()
    quickpay = gateway == "quickpay" or codes.is_quickpay_status(code)
    if code == codes.DUPLICATE:
        return Classification(
            Verdict.duplicate,
            "duplicate",
            "duplicate_transaction",
            "A duplicate charge: look it up and reconcile; do not charge again.",
        )
    if quickpay and code in codes.QP_TRANSIENT:
        return Classification(
            Verdict.unknown,
            f"qp_{code}",
            "unknown_outcome",
            f"Quickpay {code} is a gateway error, not a decline: look the charge up first.",
        )
    found = (
        _from_advice(decline, rules)
        or _from_network_code(decline.network_code, network)
        or (_from_quickpay(code) if quickpay else _from_stripe(code, rules))
    )
    if found is not None:
        return found
    visa_generic = network.strip().lower() == "visa" and codes.network_code(decline.network_code)
    label = "visa_cat4" if visa_generic else "generic"
    return _soft(label, "A generic decline: retry within the network limits.")
