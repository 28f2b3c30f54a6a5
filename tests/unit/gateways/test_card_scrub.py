"""scrub_card_data: card numbers in stored payloads are masked wherever they sit, security codes
are dropped, and the digits that are not card numbers (amounts, dates, ids) are kept."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dunning.gateways.cards import luhn_ok, scrub_card_data

# Public test numbers of the card networks, written as people paste them.
VISA = "4242 4242 4242 4242"
MASTERCARD = "5555-5555-5555-4444"
AMEX = "3782 822463 10005"
VISA_PLAIN = "4000000000000002"


def test_card_numbers_are_masked_in_nested_dicts_lists_and_strings() -> None:
    payload = {
        "type": "invoice.payment_failed",
        "data": {
            "object": {
                "description": f"customer wrote {VISA} in the notes",
                "metadata": {"cards": [f"old {MASTERCARD}", [f"amex {AMEX}"]]},
                "lines": [{"memo": VISA_PLAIN}],
            }
        },
    }
    scrubbed = scrub_card_data(payload)
    obj = scrubbed["data"]["object"]
    assert obj["description"] == "customer wrote [card ****4242] in the notes"
    assert obj["metadata"]["cards"] == ["old [card ****4444]", ["amex [card ****0005]"]]
    assert obj["lines"] == [{"memo": "[card ****0002]"}]
    assert scrubbed["type"] == "invoice.payment_failed"


def test_every_card_number_in_one_string_is_masked() -> None:
    text = f"{VISA}, then {MASTERCARD}"
    assert scrub_card_data(text) == "[card ****4242], then [card ****4444]"


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567812345678",  # 16 digits, Luhn-invalid
        "ref 4242-4242-4242-4241",  # a test number with its check digit off
        "amount 12500 EUR",
        "paid 1250.00 on 2026-03-02",
        "invoice in_1234567890",
        "created 1772445600",  # a Unix timestamp: ten digits
        "call +1 415 555 0100",
        "period 20260302-20260402",  # two dates joined: 17 digits with a dash
    ],
)
def test_digits_that_are_not_card_numbers_are_kept(text: str) -> None:
    assert scrub_card_data({"note": text}) == {"note": text}


def test_the_joined_dates_case_is_not_luhn_valid() -> None:
    # The parametrised case above would prove nothing if these digits passed the check.
    assert not luhn_ok("2026030220260402")


def test_security_codes_are_dropped_by_key_whatever_they_hold() -> None:
    payload = {
        "cvc": "123",
        "card_cvv": 4567,
        "Security-Code": ["999"],
        "cid": {"x": 1},
        "card": {"CVV2": "321", "exp_month": 12, "last4": "4242"},
    }
    assert scrub_card_data(payload) == {
        "cvc": "[removed]",
        "card_cvv": "[removed]",
        "Security-Code": "[removed]",
        "cid": "[removed]",
        "card": {"CVV2": "[removed]", "exp_month": 12, "last4": "4242"},
    }


def test_security_codes_named_in_text_are_dropped() -> None:
    text = "cvc 123, CVV2: 4567, security code 890; amount 12500"
    assert scrub_card_data(text) == (
        "cvc [removed], CVV2: [removed], security code [removed]; amount 12500"
    )


def test_the_input_is_not_changed_and_other_values_pass_through() -> None:
    payload: dict[str, Any] = {
        "list": [VISA, 1, 2.5, True, None],
        "nested": {"cvc": "123", "amount": 12500},
    }
    before = copy.deepcopy(payload)
    scrubbed = scrub_card_data(payload)
    assert payload == before
    assert scrubbed["list"] == ["[card ****4242]", 1, 2.5, True, None]
    assert scrubbed["nested"] == {"cvc": "[removed]", "amount": 12500}


def test_deep_nesting_is_scrubbed_without_recursion() -> None:
    depth = 5000  # far past Python's recursion limit
    payload: Any = VISA
    for _ in range(depth):
        payload = [{"x": payload}]
    scrubbed = scrub_card_data(payload)
    for _ in range(depth):
        scrubbed = scrubbed[0]["x"]
    assert scrubbed == "[card ****4242]"


def test_card_numbers_sent_as_json_numbers_or_used_as_keys_are_masked() -> None:
    payload = {
        "pan": int(VISA_PLAIN),
        "by_card": {VISA_PLAIN: "primary", "amount": 4242424242424241},
        "amounts": [12500, 4000000000000002, 0, -5],
    }
    scrubbed = scrub_card_data(payload)
    assert scrubbed["pan"] == "[card ****0002]"
    assert scrubbed["by_card"] == {"[card ****0002]": "primary", "amount": 4242424242424241}
    assert scrubbed["amounts"] == [12500, "[card ****0002]", 0, -5]
    assert VISA_PLAIN not in repr(scrubbed)
