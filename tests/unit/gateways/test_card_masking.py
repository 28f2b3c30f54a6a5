"""mask_pans: any Luhn-valid 13-19 digit number is masked however its digits are written apart
(single or double spaces, no-break and thin spaces, dashes, dots, slashes, underscores) or as a
float; amounts, ids, dates and numbers that fail the Luhn check are left as they are. And the
log formatters mask what the message filter cannot see: tracebacks and extra fields."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from config.settings import load_settings
from dunning import logs
from dunning.gateways.cards import luhn_ok, mask_pans, scrub_card_data

SEPARATORS = [" ", "  ", "-", ".", "/", "_", "\u00a0", "\u202f", "\u2009", " - ", "\u2007"]
# Text around a number: no digit, and not a separator at the edge that joins it to the number.
WORDS = st.text(alphabet="abcxyz:;,()[]{}=#'\"", max_size=12)


def check_digit(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return d
    raise AssertionError(body)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    return body + check_digit(body)


@st.composite
def written_apart(draw: st.DrawFn, number: str) -> str:
    """``number`` cut into groups of 1-6 digits joined by drawn separators."""
    out, at = [], 0
    while at < len(number):
        size = draw(st.integers(1, 6))
        out.append(number[at : at + size])
        at += size
    sep = st.sampled_from(SEPARATORS)
    mixed = draw(st.booleans())
    one = draw(sep)
    return "".join(g + (draw(sep) if mixed else one) for g in out[:-1]) + out[-1]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), number=card_numbers(), before=WORDS, after=WORDS)
def test_any_card_number_written_in_any_way_is_masked(
    data: st.DataObject, number: str, before: str, after: str
) -> None:
    written = data.draw(written_apart(number))
    masked = mask_pans(f"{before} {written} {after}")
    assert f"[card ****{number[-4:]}]" in masked, masked
    assert re.sub(r"\D", "", masked) == number[-4:], masked  # no other digit survives


@settings(max_examples=200, deadline=None)
@given(number=card_numbers())
def test_a_card_number_as_a_float_is_masked(number: str) -> None:
    value = float(number)
    if str(int(value)) != number:  # beyond a float's precision: it holds another number
        return
    for text in (repr(value), json.dumps({"pan": value}), f"pan={value!r}."):
        assert number not in re.sub(r"\D", "", mask_pans(text)), text
    assert scrub_card_data({"pan": value}) == {"pan": f"[card ****{number[-4:]}]"}


@settings(max_examples=300, deadline=None)
@given(
    # Up to 100 million with cents: 12 digits, one short of the shortest card number. (A dot may
    # stand between a card number's digits, so "24694048410.04" is 13 digits and may pass Luhn.)
    amount=st.integers(0, 10**10 - 1),
    cents=st.integers(0, 99),
    invoice=st.integers(0, 10**12),
    year=st.integers(2000, 2099),
    day=st.integers(1, 28),
)
def test_amounts_ids_and_dates_are_left(
    amount: int, cents: int, invoice: int, year: int, day: int
) -> None:
    text = (
        f"paid {amount}.{cents:02d} EUR for invoice in_{invoice} "
        f"on {year}-03-{day:02d} 13:04:22.123456, charge ch_{invoice}, 1500, {amount}"
    )
    assert mask_pans(text) == text


@settings(max_examples=300, deadline=None)
@given(data=st.data(), number=card_numbers(), nudge=st.integers(1, 9))
def test_a_number_failing_the_luhn_check_is_left(
    data: st.DataObject, number: str, nudge: int
) -> None:
    wrong = number[:-1] + str((int(number[-1]) + nudge) % 10)
    stretches = [wrong[i:j] for i in range(len(wrong)) for j in range(i + 13, len(wrong) + 1)]
    assume(not any(luhn_ok(part) for part in stretches))  # nor any part of it is a card number
    text = "ref " + data.draw(written_apart(wrong)) + " end"
    assert mask_pans(text) == text


def test_a_long_digit_run_is_not_a_card_number() -> None:
    text = "digest 42424242424242424242424242 and 4242424242424242424242"
    assert mask_pans(text) == text


def test_columns_and_lines_of_numbers_are_not_joined() -> None:
    text = "4242\t4242\t4242\t4242\n4242\n4242\n4242\n4242"
    assert mask_pans(text) == text


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_tracebacks_and_extra_fields_are_masked(fmt: str, root: logging.Logger) -> None:
    out = io.StringIO()
    logs.configure_logging(load_settings(log_format=fmt), stream=out)
    log = logging.getLogger("dunning.test")
    try:
        raise ValueError("bad card 4242.4242.4242.4242")
    except ValueError:
        log.exception("refused", extra={"note": "5555\u00a05555\u00a05555\u00a04444"})
    log.warning("stack", stack_info=True, extra={"pan": 4242424242424242})
    text = out.getvalue()
    assert "****4242" in text
    assert "****4444" in text
    for digits in ("4242424242424242", "5555555555554444"):
        assert digits not in re.sub(r"\D", "", text.replace("\\u00a0", " ")), text
