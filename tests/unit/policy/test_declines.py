"""Decline classification: every code of docs/declines-and-network-rules.md §2-4, every MAC of
§3, and the order of §1."""

from __future__ import annotations

import pytest

from dunning.gateways.base import Decline
from dunning.policy.declines import classify
from dunning.policy.types import PlanPolicy, Verdict

# The lists are copied from the document on purpose: a code dropped from the tables fails here.
VISA_CAT1 = "04 07 12 14 15 41 43 46 57 R0 R1 R3".split()
VISA_CAT2 = "03 19 39 51 52 53 59 61 62 65 75 78 86 91 93 96 N3 N4 Z5 5C 9G".split()
VISA_CAT3 = "54 55 70 82 1A 6P N7".split()
VISA_CAT4 = "05 01 00 13 99 ZZ".split()

STRIPE_NEW_METHOD_ONLY = [
    "incorrect_number",
    "lost_card",
    "pickup_card",
    "stolen_card",
    "revocation_of_authorization",
    "revocation_of_all_authorizations",
    "highest_risk_level",
    "transaction_not_allowed",
]
STRIPE_SOFT = [
    "insufficient_funds",
    "card_velocity_exceeded",
    "withdrawal_count_limit_exceeded",
    "processing_error",
    "issuer_not_available",
    "reenter_transaction",
    "try_again_later",
    "approve_with_id",
]
STRIPE_WEAK = ["generic_decline", "do_not_honor", "call_issuer", "no_action_taken"]
STRIPE_NEW_DATA = [
    "expired_card",
    "incorrect_cvc",
    "invalid_cvc",
    "incorrect_zip",
    "invalid_expiry_month",
    "invalid_expiry_year",
    "new_account_information_available",
]
STRIPE_HARD = [
    "card_not_supported",
    "currency_not_supported",
    "do_not_try_again",
    "fraudulent",
    "invalid_account",
    "merchant_blacklist",
    "not_permitted",
    "restricted_card",
    "security_violation",
    "service_not_allowed",
    "stop_payment_order",
    "testmode_decline",
    "invalid_amount",
]

MAC_TABLE = [
    ("01", Verdict.needs_new_card, None),
    ("02", Verdict.retry, 72),
    ("03", Verdict.never, None),
    ("04", Verdict.needs_new_card, None),
    ("21", Verdict.never, None),
    ("24", Verdict.retry, 1),
    ("25", Verdict.retry, 24),
    ("26", Verdict.retry, 48),
    ("27", Verdict.retry, 96),
    ("28", Verdict.retry, 144),
    ("29", Verdict.retry, 192),
    ("30", Verdict.retry, 240),
    ("40", Verdict.never, None),
    ("41", Verdict.never, None),
]


@pytest.mark.parametrize("code", VISA_CAT1)
def test_visa_category_1_is_never_retried(code: str) -> None:
    c = classify(Decline(network_code=code), "visa")
    assert (c.verdict, c.decline_class, c.reason) == (Verdict.never, "visa_cat1", "hard_decline")


@pytest.mark.parametrize("code", VISA_CAT2)
def test_visa_category_2_is_retried(code: str) -> None:
    c = classify(Decline(network_code=code), "visa")
    assert (c.verdict, c.decline_class, c.reason) == (Verdict.retry, "visa_cat2", "soft_decline")
    assert not c.weak


@pytest.mark.parametrize("code", VISA_CAT3)
def test_visa_category_3_needs_new_card_data(code: str) -> None:
    c = classify(Decline(network_code=code), "visa")
    assert (c.verdict, c.decline_class) == (Verdict.needs_new_card, "visa_cat3")
    assert c.reason == "needs_new_card"


@pytest.mark.parametrize("code", VISA_CAT4)
def test_visa_category_4_is_generic(code: str) -> None:
    c = classify(Decline(network_code=code), "visa")
    assert (c.verdict, c.decline_class) == (Verdict.retry, "visa_cat4")


def test_visa_codes_are_matched_case_and_padding_insensitively() -> None:
    assert classify(Decline(network_code="r0"), "visa").verdict is Verdict.never
    assert classify(Decline(network_code="041"), "visa").verdict is Verdict.never
    assert classify(Decline(network_code=" 51 "), "VISA").verdict is Verdict.retry


def test_visa_categories_apply_only_to_visa_cards() -> None:
    c = classify(Decline(network_code="41"), "mastercard")
    assert (c.verdict, c.decline_class) == (Verdict.retry, "generic")


@pytest.mark.parametrize(("mac", "verdict", "hours"), MAC_TABLE)
def test_every_mastercard_advice_code(mac: str, verdict: Verdict, hours: int | None) -> None:
    c = classify(Decline(decline_code="generic_decline", network_advice_code=mac), "mastercard")
    assert c.verdict is verdict
    assert c.decline_class == f"mac_{mac}"
    assert c.min_delay_s == (None if hours is None else hours * 3600)
    if hours is not None:
        assert c.reason == "mac_delay"


def test_unknown_mac_falls_through_to_the_next_signal() -> None:
    c = classify(Decline(decline_code="lost_card", network_advice_code="99"), "mastercard")
    assert c.verdict is Verdict.never


def test_mac_delays_come_from_the_policy() -> None:
    policy = PlanPolicy(mac_delay_hours={"02": 100.0})
    c = classify(Decline(network_advice_code="02"), "mastercard", policy=policy)
    assert c.min_delay_s == 360000.0


@pytest.mark.parametrize("code", STRIPE_NEW_METHOD_ONLY + STRIPE_HARD)
def test_stripe_hard_codes_never_retry_the_card(code: str) -> None:
    c = classify(Decline(decline_code=code), "visa")
    assert (c.verdict, c.reason) == (Verdict.never, "hard_decline")


@pytest.mark.parametrize("code", [*STRIPE_NEW_DATA, "authentication_required"])
def test_stripe_new_data_codes_wait_for_the_customer(code: str) -> None:
    c = classify(Decline(decline_code=code), "visa")
    assert (c.verdict, c.reason) == (Verdict.needs_new_card, "needs_new_card")


@pytest.mark.parametrize("code", STRIPE_SOFT)
def test_stripe_soft_codes_retry(code: str) -> None:
    c = classify(Decline(decline_code=code), "visa")
    assert (c.verdict, c.reason, c.weak) == (Verdict.retry, "soft_decline", False)


@pytest.mark.parametrize("code", STRIPE_WEAK)
def test_stripe_weak_codes_retry_a_few_times(code: str) -> None:
    c = classify(Decline(decline_code=code), "visa")
    assert (c.verdict, c.decline_class, c.weak) == (Verdict.retry, "soft_weak", True)


def test_withdrawal_count_limit_waits_a_day() -> None:
    c = classify(Decline(decline_code="withdrawal_count_limit_exceeded"), "visa")
    assert c.min_delay_s == 86400.0
    assert classify(Decline(decline_code="insufficient_funds"), "visa").min_delay_s is None


def test_duplicate_transaction_is_reconciled_not_charged() -> None:
    c = classify(Decline(decline_code="duplicate_transaction"), "visa", gateway="quickpay")
    assert (c.verdict, c.reason) == (Verdict.duplicate, "duplicate_transaction")


def test_no_answer_is_not_a_decline() -> None:
    c = classify(None, "visa")
    assert (c.verdict, c.reason) == (Verdict.unknown, "unknown_outcome")


@pytest.mark.parametrize("code", ["mystery_code", "", None])
def test_unknown_gateway_codes_are_generic(code: str | None) -> None:
    c = classify(Decline(decline_code=code), "mastercard")
    assert (c.verdict, c.decline_class, c.weak) == (Verdict.retry, "generic", False)


@pytest.mark.parametrize(
    ("advice", "verdict"),
    [
        ("do_not_try_again", Verdict.never),
        ("confirm_card_data", Verdict.needs_new_card),
        ("try_again_later", Verdict.retry),
    ],
)
def test_advice_code_comes_first(advice: str, verdict: Verdict) -> None:
    # The network code and the decline code say otherwise; the advice code wins (§1).
    other = "51" if verdict is not Verdict.retry else "41"
    code = "insufficient_funds" if verdict is not Verdict.retry else "lost_card"
    c = classify(Decline(code, other, advice_code=advice), "visa")
    assert c.verdict is verdict
    assert c.decline_class == f"advice_{advice}"


def test_the_stricter_of_advice_and_mac_wins() -> None:
    c = classify(Decline(advice_code="try_again_later", network_advice_code="03"), "mastercard")
    assert c.verdict is Verdict.never
    c = classify(Decline(advice_code="try_again_later", network_advice_code="02"), "mastercard")
    assert (c.verdict, c.min_delay_s) == (Verdict.retry, 72 * 3600)


def test_network_code_comes_before_the_gateway_code() -> None:
    assert classify(Decline("lost_card", "51"), "visa").verdict is Verdict.retry
    assert classify(Decline("insufficient_funds", "41"), "visa").verdict is Verdict.never


def test_visa_category_4_lets_the_gateway_code_decide() -> None:
    assert classify(Decline("lost_card", "05"), "visa").verdict is Verdict.never
    c = classify(Decline("do_not_honor", "05"), "visa")
    assert (c.verdict, c.weak) == (Verdict.retry, True)


@pytest.mark.parametrize(
    ("qp", "aq", "verdict"),
    [
        ("40000", "051", Verdict.retry),  # acquirer code read as the Visa code 51
        ("40000", "041", Verdict.never),
        ("40000", "054", Verdict.needs_new_card),
        ("40000", None, Verdict.retry),
        ("30100", None, Verdict.needs_new_card),
        ("30101", None, Verdict.needs_new_card),
        ("41000", None, Verdict.never),
        ("42300", None, Verdict.never),
        ("50000", None, Verdict.unknown),
        ("50300", None, Verdict.unknown),
    ],
)
def test_quickpay_status_codes(qp: str, aq: str | None, verdict: Verdict) -> None:
    c = classify(Decline(decline_code=qp, network_code=aq), "visa", gateway="quickpay")
    assert c.verdict is verdict


def test_quickpay_codes_are_recognised_without_the_gateway_name() -> None:
    assert classify(Decline(decline_code="41000"), "visa").verdict is Verdict.never


def test_every_classification_has_a_reason_and_a_sentence() -> None:
    samples = [None, Decline("lost_card"), Decline(network_advice_code="02"), Decline("x")]
    for decline in samples:
        c = classify(decline, "visa")
        assert c.reason
        assert c.message.endswith(".")
