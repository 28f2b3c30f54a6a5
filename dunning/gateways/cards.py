"""Card-number helpers: Luhn, brand from the number, and masking for logs."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

# What may stand between the digits of a written card number, up to three in a row: spaces of
# any width (no-break, thin, figure spaces), dashes, dots, slashes and underscores ("4242  4242",
# "4242.4242", "4242 - 4242", "4242\u00a04242"). Not tabs or line ends, which part columns and
# lines of numbers.
_SEPARATOR = r"[^\S\t\n\r\f\v]|[-\u2010-\u2015./_]"
_RUN = re.compile(rf"(?<!\d)\d+(?:(?:{_SEPARATOR}){{1,3}}\d+)*")
_DIGITS = re.compile(r"\d+")
# A card number printed as a float in exponent form: 4.242424242424242e+15.
_FLOAT = re.compile(r"(?<![\d.])\d\.(\d{5,18})[eE]\+?(\d{2})(?![\d.])")
# Text that may hold a card number: 13 or more digits with at most three separators between
# any two. A quick screen; :func:`mask_pans` decides.
PAN_CANDIDATE = re.compile(rf"(?<!\d)(?:\d(?:{_SEPARATOR}){{0,3}}){{12,}}\d|{_FLOAT.pattern}")


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def network_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    prefix2, prefix4 = int(number[:2] or 0), int(number[:4] or 0)
    if 51 <= prefix2 <= 55 or 2221 <= prefix4 <= 2720:
        return "mastercard"
    if prefix2 in (34, 37):
        return "amex"
    return "unknown"


def _card_groups(groups: list[re.Match[str]]) -> list[tuple[int, int]]:
    """The stretches of consecutive digit groups (first, last index) that read as one
    Luhn-valid 13-19 digit number; overlapping stretches are merged into one."""
    found: list[tuple[int, int]] = []
    for first in range(len(groups)):
        digits = ""
        for last in range(first, len(groups)):
            digits += groups[last].group(0)
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_ok(digits):
                if found and first <= found[-1][1]:
                    found[-1] = (found[-1][0], max(found[-1][1], last))
                else:
                    found.append((first, last))
    return found


def pan_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds a card number: (start, end) of each Luhn-valid 13-19 digit number,
    its digits written together or apart (see ``_SEPARATOR``), or as a float in exponent form.
    A digit group longer than 19 digits (an id, a digest) is never part of one."""
    spans: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        groups = list(_DIGITS.finditer(text, run.start(), run.end()))
        spans += [(groups[a].start(), groups[b].end()) for a, b in _card_groups(groups)]
    for match in _FLOAT.finditer(text):
        fraction, exponent = match.group(1), int(match.group(2))
        if len(fraction) <= exponent and luhn_ok(_float_digits(match.group(0))):
            spans.append((match.start(), match.end()))
    return sorted(spans)


def _float_digits(text: str) -> str:
    return str(int(Decimal(text)))


def mask_pans(text: str) -> str:
    """Replace every card number (see :func:`pan_spans`) with its last four digits."""
    if not PAN_CANDIDATE.search(text):
        return text
    out, at = [], 0
    for start, end in pan_spans(text):
        if start < at:
            continue
        raw = text[start:end]
        digits = _float_digits(raw) if "e" in raw.lower() else re.sub(r"\D", "", raw)
        out += [text[at:start], "[card ****", digits[-4:], "]"]
        at = end
    return "".join(out) + text[at:]


# Keys under which a card security code travels (``cvc``, ``card_cvv``, ``Security-Code``...);
# their values are dropped, whatever they hold.
_SECURITY_CODE_SUFFIXES = ("cvc", "cvc2", "cvv", "cvv2", "securitycode")
_SECURITY_CODE_KEYS = frozenset({"cid", "csc", "cvn"})


# A security code written out in text: "cvc 123", "CVV2: 1234", "security code 123".
_SECURITY_CODE_TEXT = re.compile(
    r"(?i)\b(cvc2?|cvv2?|cid|csc|cvn|security[ _-]?code)(\W{0,3})\d{3,4}(?!\d)"
)


def _mask_text(text: str) -> str:
    text = _SECURITY_CODE_TEXT.sub(r"\1\2[removed]", text)
    return mask_pans(text) if PAN_CANDIDATE.search(text) else text


def _security_code_key(key: object) -> bool:
    name = re.sub(r"[^a-z0-9]", "", str(key).lower())
    return name in _SECURITY_CODE_KEYS or name.endswith(_SECURITY_CODE_SUFFIXES)


def scrub_card_data(value: Any) -> Any:
    """A copy of decoded JSON with every card number masked and every security code dropped.

    For data from outside (webhook payloads) that is stored: a card number in a description
    or in merchant metadata must not reach the database. A security code is known by its key
    (whatever is under such a key goes) or by its name just before it in text ("cvc 123").
    Iterative, so any nesting depth the JSON decoder accepted is fine here too.
    """
    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        holder, at = stack.pop()
        item = holder[at]
        if isinstance(item, str):
            holder[at] = _mask_text(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            # a card number sent as a JSON number, integer or float (4242424242424242.0)
            digits = str(int(item)) if isinstance(item, int) or item.is_integer() else ""
            masked = _mask_text(digits)
            if masked != digits:
                holder[at] = masked
        elif isinstance(item, list):
            holder[at] = items = list(item)
            stack.extend((items, i) for i in range(len(items)))
        elif isinstance(item, dict):
            holder[at] = fields = {}
            for key, field in item.items():
                name = _mask_text(key) if isinstance(key, str) else key  # a number as a key
                if _security_code_key(key):
                    fields[name] = "[removed]"
                else:
                    fields[name] = field
                    stack.append((fields, name))
    return root[0]
