"""MIME building and stable Message-IDs."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta, timezone
from email import policy

import pytest

from dunning.mail.message import BadMessage, build_message, message_id_for
from dunning.mail.render import RenderedEmail

RENDERED = RenderedEmail(
    subject="Betaling modtaget", text="Tak, Søren!\n", html="<p>Tak, Søren!</p>"
)
WHEN = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def build(**changes: object) -> email.message.EmailMessage:
    kwargs: dict[str, object] = {
        "mail_from": "Acme <billing@acme.test>",
        "to": "ana@example.com",
        "cc": ["books@example.com", "cfo@example.com"],
        "message_id": "<abc123@acme.test>",
        "date": WHEN,
    }
    kwargs.update(changes)
    return build_message(RENDERED, **kwargs)  # type: ignore[arg-type]


def test_message_id_is_stable_per_dedup_key_and_uses_the_sender_domain() -> None:
    a = message_id_for("payment_failed:inv_1", "Acme Billing <billing@Acme.TEST>")
    assert a == message_id_for("payment_failed:inv_1", "billing@acme.test")
    assert a != message_id_for("payment_failed:inv_2", "billing@acme.test")
    assert a.startswith("<")
    assert a.endswith("@acme.test>")
    assert all(c in "0123456789abcdef" for c in a[1:].split("@")[0])


def test_message_is_multipart_alternative_text_then_html() -> None:
    m = build()
    assert m.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in m.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = m.get_body(("plain",))
    html = m.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content() == "Tak, Søren!\n"
    assert "<p>Tak, Søren!</p>" in html.get_content()


def test_headers_are_exactly_as_given() -> None:
    m = build(headers={"X-Dunning-Dedup-Key": "payment_recovered:inv_1"})
    assert m["Message-ID"] == "<abc123@acme.test>"
    assert m["Auto-Submitted"] == "auto-generated"
    assert m["Subject"] == "Betaling modtaget"
    assert m["Cc"] == "books@example.com, cfo@example.com"
    assert m["X-Dunning-Dedup-Key"] == "payment_recovered:inv_1"
    assert m["Date"].datetime == WHEN


def test_message_survives_a_round_trip_through_bytes() -> None:
    parsed = email.message_from_bytes(build().as_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == "<abc123@acme.test>"
    body = parsed.get_body(("plain",))
    assert body is not None
    assert body.get_content() == "Tak, Søren!\n"


def test_no_cc_header_without_cc() -> None:
    assert build(cc=[])["Cc"] is None


def test_date_defaults_to_now_and_keeps_the_offset() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    m = build(date=None)
    assert m["Date"].datetime >= before
    cet = datetime(2025, 3, 4, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert build(date=cet)["Date"].datetime == WHEN


def test_header_injection_is_refused() -> None:
    with pytest.raises(BadMessage):
        build(to="ana@example.com\r\nBcc: victim@example.com")


def test_extra_headers_cannot_replace_owned_ones() -> None:
    with pytest.raises(BadMessage, match="Message-ID"):
        build(headers={"Message-ID": "<other@x>"})


def test_naive_date_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build(date=datetime(2025, 3, 4, 10, 0))
