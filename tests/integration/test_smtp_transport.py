"""The SMTP transport against a real SMTP server (aiosmtpd) started by each test."""

from __future__ import annotations

import asyncio
import email
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from config.settings import SmtpSettings, SmtpTls
from dunning.errors import MailPermanent, MailTransient, MailUnavailable
from dunning.mail import transaction
from dunning.mail.compose import OutgoingEmail, compose
from dunning.mail.message import build_message, message_id_for
from dunning.mail.render import RenderedEmail, render_email
from dunning.mail.samples import sample_context
from dunning.mail.smtp import SmtpTransport
from tests.services import free_port

pytestmark = pytest.mark.integration


class Sink:
    """Accepts mail, refuses ``nobody@`` recipients and ``blocked@`` senders, rejects subjects
    with SPAM, drops when told; offers PIPELINING when ``pipelining``."""

    def __init__(self, pipelining: bool = False) -> None:
        self.pipelining = pipelining
        self.received: list[tuple[tuple[str, int], list[str], bytes]] = []
        self.drop_next_mail: str | None = None  # "silent" or "421"
        self.stall: str | None = None  # "MAIL" or "DATA": answer that command only after 3 s

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if not self.pipelining:
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        mode, self.drop_next_mail = self.drop_next_mail, None
        if address.startswith("blocked@"):
            return "550 5.7.1 sender blocked"
        if self.stall == "MAIL":
            await asyncio.sleep(3)
        if mode == "silent":
            server.transport.abort()  # gone without a word, as a NAT or idle reaper does
            return "250 OK"
        if mode == "421":
            server.loop.call_soon(server.transport.close)
            return "421 4.4.2 idle too long, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stall == "DATA":
            await asyncio.sleep(3)
        if b"SPAM" in envelope.content:
            return "554 5.7.1 message looks like spam"
        self.received.append((session.peer, list(envelope.rcpt_tos), envelope.content))
        return "250 OK queued"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelining"])
def sink(request: pytest.FixtureRequest) -> Sink:
    """Every test runs against a server without and with PIPELINING (RFC 2920)."""
    return Sink(pipelining=request.param)


@pytest.fixture
def server(sink: Sink, port: int) -> Iterator[Controller]:
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop(no_assert=True)


@pytest.fixture
def transport(port: int) -> Iterator[SmtpTransport]:
    t = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port, timeout_s=5), local_hostname="t")
    try:
        yield t
    finally:
        t.close()


def message(
    n: int,
    to: str = "ana@example.com",
    cc: tuple[str, ...] = (),
    subject: str = "",
    form: str = "built",
    sender: str = "billing@acme.test",
) -> Any:
    """The message the email package builds, or (``form="composed"``) the bytes the outbox
    composes, which go out through the transport's own SMTP transaction."""
    kind = "payment_failed"
    rendered = render_email(
        kind, "da", sample_context(kind), brand_name="Acme", support_email="help@acme.test"
    )
    if subject:
        rendered = type(rendered)(subject=subject, text=rendered.text, html=rendered.html)
    build = compose if form == "composed" else build_message
    return build(
        rendered,
        mail_from=sender,
        to=to,
        cc=list(cc),
        message_id=message_id_for(f"{kind}:inv_{n}", "billing@acme.test"),
    )


FORMS = pytest.mark.parametrize("form", ["built", "composed"])


def test_several_messages_share_one_connection_and_arrive_intact(
    server: Controller, sink: Sink, transport: SmtpTransport
) -> None:
    sent = [message(n) for n in range(5)]
    for m in sent:
        assert transport.send(m).refused == {}
    assert transport.connections_opened == 1
    assert len({peer for peer, _, _ in sink.received}) == 1  # one client port: one connection
    for m, (_, rcpts, raw) in zip(sent, sink.received, strict=True):
        got = email.message_from_bytes(raw, policy=policy.default)
        assert got["Message-ID"] == m["Message-ID"]
        assert got.get_content_type() == "multipart/alternative"
        text = got.get_body(("plain",))
        assert text is not None
        assert "125,00\xa0€" in text.get_content()
        assert rcpts == ["ana@example.com"]


@FORMS
def test_partially_refused_recipient_is_reported(
    form: str, server: Controller, sink: Sink, transport: SmtpTransport
) -> None:
    result = transport.send(message(1, cc=("nobody@example.com", "books@example.com"), form=form))
    assert set(result.refused) == {"nobody@example.com"}
    code, reply = result.refused["nobody@example.com"]
    assert code == 550
    assert "no such user" in reply
    assert sink.received[0][1] == ["ana@example.com", "books@example.com"]


@FORMS
def test_every_recipient_refused_is_permanent(
    form: str, server: Controller, transport: SmtpTransport
) -> None:
    with pytest.raises(MailPermanent, match="550"):
        transport.send(message(1, to="nobody@example.com", form=form))


@FORMS
def test_every_recipient_refused_leaves_the_connection_ready_for_the_next_message(
    form: str, server: Controller, sink: Sink, transport: SmtpTransport
) -> None:
    with pytest.raises(MailPermanent, match="550"):
        transport.send(message(1, to="nobody@example.com", cc=("nobody@acme.test",), form=form))
    assert transport.send(message(2, form=form)).refused == {}
    assert [rcpts for _, rcpts, _ in sink.received] == [["ana@example.com"]]
    assert transport.connections_opened == 1


@FORMS
def test_a_refused_sender_is_permanent_and_the_connection_stays_usable(
    form: str, server: Controller, sink: Sink, transport: SmtpTransport
) -> None:
    with pytest.raises(MailPermanent, match="sender blocked"):
        transport.send(message(1, sender="blocked@acme.test", form=form))
    transport.send(message(2, form=form))
    assert len(sink.received) == 1
    assert transport.connections_opened == 1


def test_composed_messages_are_pipelined_when_the_server_offers_it(
    server: Controller, sink: Sink, transport: SmtpTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups: list[list[bytes]] = []
    original = transaction._Ask.group

    async def group(self: Any, commands: list[bytes]) -> Any:
        groups.append(commands)
        return await original(self, commands)

    monkeypatch.setattr(transaction._Ask, "group", group)
    for n in range(3):
        assert transport.send(message(n, cc=("books@example.com",), form="composed")).refused == {}
    assert len(sink.received) == 3
    if sink.pipelining:
        assert [c.split(b" ")[0] for c in groups[0]] == [b"MAIL", b"RCPT", b"RCPT", b"DATA"]
        assert len(groups) == 3
    else:
        assert groups == []


@FORMS
def test_5xx_answer_is_permanent_and_the_connection_stays_usable(
    form: str, server: Controller, sink: Sink, transport: SmtpTransport
) -> None:
    with pytest.raises(MailPermanent, match=r"554 5\.7\.1 message looks like spam"):
        transport.send(message(1, subject="SPAM offer", form=form))
    transport.send(message(2, form=form))
    assert len(sink.received) == 1
    assert transport.connections_opened == 1


def test_unreachable_server_is_transient(transport: SmtpTransport) -> None:
    with pytest.raises(MailUnavailable, match="unreachable"):  # every message would fail
        transport.send(message(1))


def test_stopped_server_is_transient_and_a_restarted_one_is_used_again(
    sink: Sink, port: int, transport: SmtpTransport
) -> None:
    first = Controller(sink, hostname="127.0.0.1", port=port)
    first.start()
    transport.send(message(1))
    first.stop()
    with pytest.raises(MailTransient):
        transport.send(message(2))
    second = Controller(sink, hostname="127.0.0.1", port=port)
    second.start()
    try:
        transport.send(message(3))
    finally:
        second.stop()
    assert len(sink.received) == 2
    assert transport.connections_opened == 2


@pytest.mark.parametrize("how", ["silent", "421"])
def test_connection_dropped_while_idle_is_reopened_and_the_message_resent(
    how: str,
    server: Controller,
    sink: Sink,
    transport: SmtpTransport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport.send(message(1))
    sink.drop_next_mail = how
    with caplog.at_level(logging.INFO, logger="dunning.mail.smtp"):
        result = transport.send(message(2))
    assert result.refused == {}
    assert "dropped the idle connection" in caplog.text
    assert transport.connections_opened == 2
    assert [email.message_from_bytes(raw)["Message-ID"] for _, _, raw in sink.received] == [
        message(1)["Message-ID"],
        message(2)["Message-ID"],
    ]
    assert sink.received[0][0] != sink.received[1][0]


@pytest.mark.parametrize("stage", ["MAIL", "DATA"])
def test_a_reply_that_does_not_come_in_time_drops_the_connection_and_the_next_send_reconnects(
    stage: str, server: Controller, sink: Sink, port: int
) -> None:
    t = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port, timeout_s=1), local_hostname="t")
    try:
        t.send(message(1, form="composed"))
        sink.stall = stage
        started = time.monotonic()
        with pytest.raises(MailUnavailable, match="unreachable"):
            t.send(message(2, form="composed"))
        waited = time.monotonic() - started
        assert 0.9 < waited < 2.5  # one timeout, not the server's 3 s
        sink.stall = None
        t.send(message(3, form="composed"))
        assert t.connections_opened == 2
    finally:
        t.close()


def test_lines_that_start_with_a_dot_arrive_intact(
    server: Controller, sink: Sink, transport: SmtpTransport
) -> None:
    text = ".hidden\n.\n..two dots\nend.\n"
    rendered = RenderedEmail(subject="dots", text=text, html="<p>.</p>\n.<br>\n")
    composed = compose(
        rendered,
        mail_from="billing@acme.test",
        to="ana@example.com",
        cc=[],
        message_id=message_id_for("dots", "billing@acme.test"),
    )
    assert composed.message is None  # the transport's own DATA, not aiosmtplib's
    transport.send(composed)
    parsed = email.message_from_bytes(sink.received[0][2], policy=policy.default)
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().replace("\r\n", "\n") == text
    assert html.get_content().replace("\r\n", "\n") == rendered.html


def test_send_after_close_is_transient(server: Controller, transport: SmtpTransport) -> None:
    transport.send(message(1))
    transport.close()
    transport.close()
    with pytest.raises(MailUnavailable, match="closed"):
        transport.send(message(2))


@pytest.mark.parametrize("tls", [SmtpTls.starttls, SmtpTls.tls])
def test_required_tls_never_falls_back_to_plain_text(
    tls: SmtpTls, server: Controller, sink: Sink, port: int
) -> None:
    t = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port, tls=tls, timeout_s=5))
    try:
        with pytest.raises(MailTransient):
            t.send(message(1))
    finally:
        t.close()
    assert sink.received == []


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    ok = data.login == b"mailer" and data.password == b"pa55"
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize(("password", "delivered"), [("pa55", True), ("wrong", False)])
def test_login_uses_the_configured_credentials(
    password: str, delivered: bool, sink: Sink, port: int
) -> None:
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=_authenticator, auth_require_tls=False
    )
    controller.start()
    settings = SmtpSettings(
        host="127.0.0.1", port=port, username="mailer", password=SecretStr(password), timeout_s=5
    )
    t = SmtpTransport(settings)
    try:
        if delivered:
            t.send(message(1))
        else:
            with pytest.raises(MailPermanent, match="535"):
                t.send(message(1))
    finally:
        t.close()
        controller.stop()
    assert len(sink.received) == (1 if delivered else 0)


def test_composed_messages_from_many_threads_go_out_one_by_one_on_one_connection(
    server: Controller, sink: Sink, transport: SmtpTransport
) -> None:
    kind = "payment_failed"
    rendered = render_email(
        kind, "da", sample_context(kind), brand_name="Acme", support_email="help@acme.test"
    )

    def composed(n: int) -> OutgoingEmail:
        return compose(
            rendered,
            mail_from="Acme Billing <billing@acme.test>",
            to=f"customer{n}@example.com",
            cc=["books@example.com"],
            message_id=message_id_for(f"{kind}:inv_{n}", "billing@acme.test"),
        )

    messages = [composed(n) for n in range(80)]
    assert all(m.message is None for m in messages)  # the bytes path, not the email package
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(transport.send, messages))
    assert all(r.refused == {} for r in results)
    assert transport.connections_opened == 1
    assert len({peer for peer, _, _ in sink.received}) == 1
    got = {
        parsed["Message-ID"]: (rcpts, parsed)
        for _, rcpts, raw in sink.received
        for parsed in [email.message_from_bytes(raw, policy=policy.default)]
    }
    assert set(got) == {m.message_id for m in messages}
    for n, m in enumerate(messages):
        rcpts, parsed = got[m.message_id]
        assert rcpts == [f"customer{n}@example.com", "books@example.com"]
        text = parsed.get_body(("plain",))
        assert text is not None
        assert "125,00\xa0€" in text.get_content()
        assert parsed["Subject"] == rendered.subject


def test_close_while_threads_send_lets_the_transaction_under_way_finish(
    server: Controller, sink: Sink, transport: SmtpTransport
) -> None:
    """Each send either went out whole or was refused as closed: QUIT waits its turn."""
    messages = [message(n) for n in range(60)]
    outcomes: list[str] = []
    lock = threading.Lock()

    def send(m: EmailMessage) -> None:
        try:
            transport.send(m)
            result = "sent"
        except MailUnavailable as exc:
            result = "closed" if "closed" in str(exc) else f"unexpected: {exc}"
        with lock:
            outcomes.append(result)
            if len(outcomes) == 20:
                threading.Thread(target=transport.close).start()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, messages))
    assert len(outcomes) == 60
    assert "closed" in outcomes
    assert set(outcomes) <= {"sent", "closed"}, outcomes
    assert len(sink.received) == outcomes.count("sent")
    got = {email.message_from_bytes(raw, policy=policy.default)["Message-ID"]
           for _, _, raw in sink.received}  # fmt: skip
    assert len(got) == outcomes.count("sent")


@pytest.mark.parametrize("brand_name", ["Acme Streaming", "Kælderen ApS"])
def test_outbox_message_arrives_from_the_brand_with_reply_to_support(
    server: Controller, sink: Sink, transport: SmtpTransport, brand_name: str
) -> None:
    from types import SimpleNamespace

    from config.settings import load_settings
    from dunning.services.outbox.delivery import message as outbox_message

    settings = load_settings(
        mail_from="billing@acme.test",
        brand={"name": brand_name, "support_email": "help@acme.test"},
    )
    row = {"to_addr": "ana@example.com", "cc": [],
           "message_id": message_id_for("payment_failed:in_1", "billing@acme.test")}  # fmt: skip
    rendered = render_email(
        "payment_failed", "en", sample_context("payment_failed"), brand_name=brand_name,
        support_email="help@acme.test",
    )  # fmt: skip
    outgoing = outbox_message(SimpleNamespace(settings=settings), row, rendered, None)  # type: ignore[arg-type]

    assert transport.send(outgoing).refused == {}

    (_, envelope_to, raw) = sink.received[-1]
    got = email.message_from_bytes(raw, policy=policy.default)
    assert got["From"].addresses[0].display_name == brand_name
    assert got["From"].addresses[0].addr_spec == "billing@acme.test"
    assert str(got["Reply-To"]) == "help@acme.test"
    assert envelope_to == ["ana@example.com"]
