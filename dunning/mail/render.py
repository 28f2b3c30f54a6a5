"""Pure email rendering: kind + locale + context -> subject, plain text and HTML.

Templates live in ``templates/email/`` as ``<kind>.<lang>.txt`` and ``<kind>.<lang>.html``; the
subject is the ``subject`` variable the text template sets. HTML is autoescaped, every name is
strict (a typo or a missing value raises), and the only IO is reading templates once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

from dunning.errors import PermanentError
from dunning.mail.formatting import calendar_day, card_view, choose_locale, day_of, money, zone
from dunning.mail.locales import LOCALES as LOCALES
from dunning.mail.text_html import html_parts

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "email"

EMAIL_KINDS: tuple[str, ...] = (
    "payment_failed",
    "action_required",
    "payment_retry_failed",
    "final_notice",
    "subscription_suspended",
    "payment_recovered",
    "card_updated",
    "card_expiring",
)
CONTEXT_KEYS: frozenset[str] = frozenset(
    {
        "customer_name",
        "timezone",
        "plan",
        "amount",
        "currency",
        "card",
        "new_card",
        "update_url",
        "next_attempt_at",
        "suspend_at",
        "paid_at",
        "invoice_id",
        "expires_on",
    }
)
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t\r\n]+")  # not the no-break spaces


class UnknownEmailKind(PermanentError):
    """The email kind has no templates; the message lists the kinds that exist."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"unknown email kind {kind!r}; valid kinds: {', '.join(EMAIL_KINDS)}")
        self.kind = kind


class EmailContextError(PermanentError):
    """The context lacks keys every email needs (they may be None, never absent)."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _refuse_none(value: Any) -> Any:
    # StrictUndefined catches absent names; this catches a present None printed as "None"
    if value is None:
        raise EmailContextError("a template printed a value that is None; guard it with {% if %}")
    return value


@dataclass(frozen=True)
class Look:
    """The merchant's look: an optional logo above the email, the accent colour of buttons and
    links, and a directory of templates searched before the built-in ones."""

    logo_url: str = ""
    accent_color: str = "#1a56db"
    templates: Path | None = None


@functools.cache
def _environment(templates: Path | None = None) -> Environment:
    dirs = [FileSystemLoader(templates)] if templates else []
    return Environment(
        finalize=_refuse_none,
        loader=ChoiceLoader([*dirs, FileSystemLoader(TEMPLATE_DIR)]),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=-1,  # every template kept in a plain dict: no LRU bookkeeping per look-up
    )


def check_kind(kind: str) -> None:
    """Raise :class:`UnknownEmailKind` unless ``kind`` is one of :data:`EMAIL_KINDS`."""
    if kind not in EMAIL_KINDS:
        raise UnknownEmailKind(kind)


# Kinds that promise a retry or a suspension day ahead: a day already past when the email is
# sent is left out rather than promised (an email held by quiet hours, an outage).
_PROMISING = frozenset(
    {"payment_failed", "action_required", "payment_retry_failed", "final_notice"}
)


def _ahead(kind: str, at: str | None, sent_at: datetime | None) -> str | None:
    if at is None or sent_at is None or kind not in _PROMISING:
        return at
    return at if datetime.fromisoformat(at) > sent_at else None


def _values(
    context: Mapping[str, Any], lang: str, fmt: str, brand_name: str, support_email: str
) -> dict[str, Any]:
    tz = zone(context["timezone"])
    return {
        "lang": lang,
        "brand_name": brand_name,
        "support_email": support_email,
        "customer_name": (context["customer_name"] or "").strip(),
        "plan": context["plan"],
        "invoice_id": context["invoice_id"],
        "update_url": context["update_url"],
        "amount": money(context["amount"], context["currency"], fmt),
        "card": card_view(context["card"]),
        "new_card": card_view(context["new_card"]),
        "next_attempt": day_of(context["next_attempt_at"], tz, fmt, "full"),
        "suspend_on": day_of(context["suspend_at"], tz, fmt, "full"),
        "paid_on": day_of(context["paid_at"], tz, fmt),
        "expires_on": calendar_day(context["expires_on"], fmt),
    }


def _one_line(text: str) -> str:
    """The text on one line: line breaks and runs of spaces become one space, and a no-break
    space stays (French puts one before a colon)."""
    return _SPACES.sub(" ", text).strip(" ")


def _tidy(text: str) -> str:
    # "-- " keeps its space: it is the signature separator mail clients recognise
    lines = [line if line == "-- " else line.rstrip() for line in text.strip().splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)) + "\n"


def render_email(
    kind: str,
    locale: str,
    context: Mapping[str, Any],
    *,
    brand_name: str,
    support_email: str,
    sent_at: datetime | None = None,
    look: Look | None = None,
) -> RenderedEmail:
    """Render one email in the customer's language (English when it has no templates).

    ``context`` must hold every key of :data:`CONTEXT_KEYS`; amounts are minor units, instants
    ISO-8601 strings shown as days in the customer's zone. With ``sent_at``, a next retry or a
    suspension day that is no longer ahead is not promised.
    """
    check_kind(kind)
    missing = CONTEXT_KEYS - context.keys()
    if missing:
        raise EmailContextError(
            f"email context for {kind!r} lacks {', '.join(sorted(missing))}; "
            "pass every key (None where it does not apply)"
        )
    lang, fmt = choose_locale(locale, LOCALES)
    context = dict(
        context,
        next_attempt_at=_ahead(kind, context["next_attempt_at"], sent_at),
        suspend_at=_ahead(kind, context["suspend_at"], sent_at),
    )
    look = look or Look()
    values = _values(context, lang, fmt, brand_name, support_email)
    values |= {"logo_url": look.logo_url, "accent": look.accent_color}
    env = _environment(look.templates)
    text_module = env.get_template(f"{kind}.{lang}.txt").make_module(values)
    subject = _one_line(str(getattr(text_module, "subject", "")))
    if not subject:
        raise EmailContextError(f"template {kind}.{lang}.txt sets no subject")
    text = _tidy(str(text_module))
    try:
        page = env.get_template(f"{kind}.{lang}.html")
    except TemplateNotFound:  # written as text only: its HTML part is made from the text
        page = env.get_template("from_text.html")
        values |= {
            "parts": html_parts(text, values["update_url"], support_email, look.accent_color)
        }
    html = page.render(values, subject=subject)
    return RenderedEmail(subject=subject, text=text, html=html)
