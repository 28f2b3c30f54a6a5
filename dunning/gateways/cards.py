"""Card-number helpers: Luhn, brand from the number, and masking for logs."""

from __future__ import annotations

import re
from typing import Any

PAN_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


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


def mask_pans(text: str) -> str:
    """Replace every Luhn-valid 13-19 digit run with its last four digits."""

    def _mask(match: re.Match[str]) -> str:
        raw = match.group(0)
        digits = re.sub(r"\D", "", raw)
        return "[card ****" + digits[-4:] + "]" if luhn_ok(digits) else raw

    return PAN_CANDIDATE.sub(_mask, text)


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
        elif isinstance(item, int) and not isinstance(item, bool):
            digits = str(item)  # a card number sent as a JSON number
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
