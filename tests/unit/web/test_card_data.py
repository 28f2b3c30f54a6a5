"""Card numbers and CVCs reach neither a log line nor the database."""

from __future__ import annotations

import logging
import re

import pytest

from dunning.logs import MaskCardNumbers
from tests.unit.web.conftest import Web

CVC = "7319"
NUMBERS = ("4242 4242 4242 4242", "4000000000000002", "4000-0025-0000-3155")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def test_no_card_number_or_cvc_in_logs_or_database(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    web.add_customer()
    web.fail_invoice()
    path = web.link()
    with caplog.at_level(logging.DEBUG):
        token = web.open_form(path)
        declined = web.submit_card(path, NUMBERS[1], csrf=token, cvc=CVC)
        challenged = web.submit_card(path, NUMBERS[2], csrf=token, cvc=CVC)
        accepted = web.submit_card(path, NUMBERS[0], csrf=token, cvc=CVC)
        web.drain()

    assert (declined.status_code, challenged.status_code, accepted.status_code) == (422, 200, 303)
    assert caplog.records, "the requests logged nothing: the check below would prove nothing"
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    stored = repr(web.snapshot())
    for number in NUMBERS:
        for text in (logged, stored):
            assert number not in text
            assert _digits(number) not in text
    cvc_alone = re.compile(rf"(?<![0-9a-fA-F]){CVC}(?![0-9a-fA-F])")
    assert not cvc_alone.search(logged)
    assert not cvc_alone.search(stored)
    assert "card_updated" in stored  # the flow really went through


def test_production_log_filter_would_mask_a_number_that_slipped_through() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "card %s", ("4242424242424242",), None
    )

    MaskCardNumbers().filter(record)

    assert record.getMessage() == "card [card ****4242]"
