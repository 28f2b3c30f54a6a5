"""Card-number helpers: Luhn, brand from the number, and masking for logs."""

from __future__ import annotations

import re

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
