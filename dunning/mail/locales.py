"""The languages customers are written to, and which one a customer gets.

Every email and the card page exist in each of :data:`LOCALES`. A customer's locale comes from
the import file (``locale``) or from Stripe (the customer's ``preferred_locales``, in order):
:func:`customer_locale` picks the first tag whose language we write, and keeps its region for
formatting (``de-AT`` gets German text with Austrian dates and amounts).
"""

from __future__ import annotations

from collections.abc import Iterable

from babel import Locale, UnknownLocaleError

LOCALES: tuple[str, ...] = ("en", "da", "de", "sv", "nb", "nl", "fr", "es")
DEFAULT_LOCALE = "en"
# Norwegian is often tagged "no" (macro-language) or "nn"; customers read our Bokmål.
_ALIASES = {"no": "nb", "nn": "nb"}


def parse_locale(tag: object) -> Locale | None:
    """A tag such as ``da``, ``da-DK``, ``da_DK``, ``no-NO`` as a Babel locale, or ``None``."""
    if not isinstance(tag, str) or not 2 <= len(tag.strip()) <= 16:
        return None
    language, _, region = tag.strip().replace("-", "_").partition("_")
    language = _ALIASES.get(language.lower(), language)
    try:
        return Locale.parse(f"{language}_{region}" if region else language)
    except (UnknownLocaleError, ValueError, TypeError):
        try:  # a region Babel has no data for (es_XX): the language alone
            return Locale.parse(language)
        except (UnknownLocaleError, ValueError, TypeError):
            return None


def customer_locale(preferred: Iterable[object], supported: tuple[str, ...] = LOCALES) -> str:
    """The first of ``preferred`` whose language we write, as a tag (``de_AT``); else ``en``.

    For Stripe's ``preferred_locales`` and the import's ``locale``: ``["fr-CA", "en"]`` gives
    ``fr_CA``; ``["no"]`` gives ``nb``; ``["pl", "de"]`` gives ``de``; ``[]`` gives ``en``.
    """
    for tag in preferred:
        parsed = parse_locale(tag)
        if parsed is not None and parsed.language in supported:
            return str(parsed)
    return DEFAULT_LOCALE
