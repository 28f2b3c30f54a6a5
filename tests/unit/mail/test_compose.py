"""The composed bytes are the message build_message builds, read back by the email package."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.mail.compose import OutgoingEmail, compose, outgoing
from dunning.mail.message import BadMessage, build_message
from dunning.mail.render import RenderedEmail
from dunning.mail.transaction import dot_stuffed

WHEN = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
HEADERS = ("Subject", "From", "To", "Cc", "Date", "Message-ID", "Auto-Submitted", "X-Dedup")


def both(rendered: RenderedEmail, **kwargs: object) -> tuple[OutgoingEmail, EmailMessage]:
    args: dict[str, object] = {
        "mail_from": "Acme Billing <billing@acme.test>",
        "to": "ana@example.com",
        "cc": [],
        "message_id": "<abc123@acme.test>",
        "date": WHEN,
    }
    args.update(kwargs)
    return compose(rendered, **args), build_message(rendered, **args)  # type: ignore[arg-type]


def lines(text: str) -> str:
    return text.replace("\r\n", "\n")


def assert_same(composed: OutgoingEmail, message: EmailMessage) -> None:
    """Both as a recipient reads them: the bytes on the wire, parsed."""
    parsed, built = composed.parsed(), outgoing(message).parsed()
    for name in HEADERS:
        assert str(parsed.get(name)) == str(built.get(name)), name
    assert parsed.get_content_type() == "multipart/alternative"
    for subtype in ("plain", "html"):
        ours, theirs = parsed.get_body((subtype,)), built.get_body((subtype,))
        assert ours is not None
        assert theirs is not None
        # a base64 part keeps its own line ends, a quoted-printable one takes the wire's CRLF
        assert lines(ours.get_content()) == lines(theirs.get_content()), subtype
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_a_plain_message_takes_the_fast_path_and_reads_back_the_same() -> None:
    rendered = RenderedEmail("Betaling mislykkedes", "Hej Søren,\n\nbetal 99,00 kr.\n", "<p>Æ</p>")
    composed, built = both(rendered, cc=["books@example.com", "cfo@example.com"])
    assert composed.message is None  # composed without the email package
    assert composed.sender == "billing@acme.test"
    assert composed.recipients == ("ana@example.com", "books@example.com", "cfo@example.com")
    assert b"\r\n" in composed.data
    assert b"\n" not in composed.data.replace(b"\r\n", b"")
    assert max(len(line) for line in composed.data.split(b"\r\n")) <= 78
    assert_same(composed, built)


def test_a_non_ascii_subject_is_encoded_and_long_lines_are_wrapped() -> None:
    subject = "Vi kunne ikke trække din betaling for æbleabonnementet — opdatér dit kort nu " * 2
    text = "ø" * 500 + "\n.\nFrom here\n trailing space \n"
    composed, built = both(RenderedEmail(subject, text, "<p>" + "x" * 300 + "</p>"))
    assert composed.message is None
    assert max(len(line) for line in composed.data.split(b"\r\n")) <= 78
    assert_same(composed, built)


def test_a_subject_that_looks_encoded_reads_back_as_written() -> None:
    # (the email package itself would write it raw, and a reader would decode it to "Hi")
    subject = "Invoice =?utf-8?b?SGk=?= due"
    composed, _ = both(RenderedEmail(subject, "t\n", "<p>h</p>"))
    assert composed.parsed()["Subject"] == subject


@pytest.mark.parametrize(
    "changes",
    [
        {"to": "Ana Ørsted <ana@example.com>"},  # a display name
        {"to": "søren@eksempel.dk"},  # an international address
        {"cc": ["Books <books@example.com>"]},
    ],
)
def test_anything_unusual_goes_through_the_email_package(changes: dict[str, object]) -> None:
    composed, built = both(RenderedEmail("Hi", "text\n", "<p>html</p>"), **changes)
    assert composed.message is not None
    assert_same(composed, built)


def test_the_same_errors_as_build_message() -> None:
    rendered = RenderedEmail("Hi", "t", "h")
    with pytest.raises(BadMessage, match="line break"):
        compose(RenderedEmail("Hi\r\nBcc: evil@example.com", "t", "h"), mail_from="a@b.test",
                to="c@d.test", cc=[], message_id="<x@b.test>", date=WHEN)  # fmt: skip
    with pytest.raises(BadMessage, match="set by build_message"):
        compose(rendered, mail_from="a@b.test", to="c@d.test", cc=[], message_id="<x@b.test>",
                headers={"Bcc": "evil@example.com"}, date=WHEN)  # fmt: skip
    with pytest.raises(ValueError, match="timezone-aware"):
        compose(rendered, mail_from="a@b.test", to="c@d.test", cc=[], message_id="<x@b.test>",
                date=datetime(2025, 1, 1))  # fmt: skip


def test_outgoing_reads_the_envelope_of_a_built_message() -> None:
    built = build_message(
        RenderedEmail("Hi", "t", "h"),
        mail_from="Acme <billing@acme.test>",
        to="Ana <ana@example.com>",
        cc=["books@example.com"],
        message_id="<m1@acme.test>",
        date=WHEN,
    )
    out = outgoing(built)
    assert (out.sender, out.recipients, out.message_id) == (
        "billing@acme.test",
        ("ana@example.com", "books@example.com"),
        "<m1@acme.test>",
    )
    assert out.parsed()["Subject"] == "Hi"


bodies = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=400
)
subjects = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=120
).filter(lambda s: s.strip() == s and "  " not in s)


@settings(max_examples=150, deadline=None)
@given(subject=subjects, text=bodies, html=bodies)
def test_any_content_reads_back_as_build_message_builds_it(
    subject: str, text: str, html: str
) -> None:
    composed, built = both(RenderedEmail(subject, text, html), cc=["cfo@example.com"])
    assert composed.message is None
    assert_same(composed, built)


@settings(max_examples=150, deadline=None)
@given(subject=subjects, text=bodies, html=bodies)
def test_the_data_the_transport_sends_is_what_aiosmtplib_would_send(
    subject: str, text: str, html: str
) -> None:
    """The transport dot-stuffs composed bytes with one replace; aiosmtplib's DATA rewrites
    line endings and dot-stuffs with regular expressions. For composed bytes both agree."""
    composed, _ = both(RenderedEmail(subject, "." + text, "\n." + html))
    assert composed.message is None
    theirs = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(composed.data)) + b".\r\n"
    assert dot_stuffed(composed.data) == theirs
