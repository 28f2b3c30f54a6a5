"""The file outbox and the in-memory twin (the SMTP transport is in tests/integration)."""

from __future__ import annotations

import email
import threading
from collections.abc import Callable
from email import policy
from pathlib import Path

import pytest

from config.settings import load_settings
from dunning.errors import MailPermanent, MailTransient
from dunning.mail.message import build_message, message_id_for
from dunning.mail.render import RenderedEmail
from dunning.mail.smtp import SmtpTransport
from dunning.mail.transport import (
    FileTransport,
    MemoryTransport,
    SendResult,
    Transport,
    eml_name,
    make_transport,
)

RENDERED = RenderedEmail(subject="Hi", text="hello\n", html="<p>hello</p>")


def message(
    dedup_key: str = "payment_failed:inv_1", text: str = "hello\n"
) -> email.message.EmailMessage:
    rendered = RenderedEmail(subject="Hi", text=text, html=f"<p>{text}</p>")
    return build_message(
        rendered,
        mail_from="billing@acme.test",
        to="ana@example.com",
        cc=["books@example.com"],
        message_id=message_id_for(dedup_key, "billing@acme.test"),
    )


def test_file_transport_writes_one_eml_per_message_id(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    transport = FileTransport(outbox)
    assert not outbox.exists()  # nothing happens before the first send
    first = message("payment_failed:inv_1")
    assert transport.send(first) == SendResult(refused={})
    transport.send(message("payment_failed:inv_2"))
    files = sorted(p.name for p in outbox.iterdir())
    assert len(files) == 2
    assert eml_name(first["Message-ID"]) in files
    parsed = email.message_from_bytes(
        (outbox / eml_name(first["Message-ID"])).read_bytes(), policy=policy.default
    )
    assert parsed["Message-ID"] == first["Message-ID"]
    assert parsed.get_content_type() == "multipart/alternative"


def test_file_transport_overwrites_the_same_message_id(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    transport.send(message(text="first\n"))
    transport.send(message(text="second\n"))
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [eml_name(message()["Message-ID"])]
    assert b"second" in files[0].read_bytes()
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".tmp-")]


def test_eml_name_is_safe_for_hostile_ids() -> None:
    name = eml_name("<../../etc/passwd@x y>")
    assert "/" not in name
    assert " " not in name
    assert name.endswith(".eml")
    assert eml_name("<a@b>") == eml_name("<a@b>")


def test_memory_transport_records_and_scripts_failures() -> None:
    transport = MemoryTransport()
    transport.fail_next(2, MailTransient("421 try later"))
    for _ in range(2):
        with pytest.raises(MailTransient):
            transport.send(message())
    assert transport.sent == []
    transport.send(message())
    assert [m["Message-ID"] for m in transport.sent] == [message()["Message-ID"]]
    transport.close()
    assert transport.closed


def test_memory_transport_reports_partial_refusal_and_fails_total_refusal() -> None:
    transport = MemoryTransport()
    transport.refuse("books@example.com", 550, "no such user")
    result = transport.send(message())
    assert result.refused == {"books@example.com": (550, "no such user")}
    transport.refuse("ana@example.com", 550, "no such user")
    with pytest.raises(MailPermanent, match="no such user"):
        transport.send(message())
    assert len(transport.sent) == 1


def test_total_refusal_with_only_4xx_is_transient() -> None:
    transport = MemoryTransport()
    transport.refuse("books@example.com", 450, "greylisted")
    transport.refuse("ana@example.com", 451, "try later")
    with pytest.raises(MailTransient, match="greylisted"):
        transport.send(message())


def test_make_transport_picks_smtp_only_when_a_host_is_set(tmp_path: Path) -> None:
    file_transport = make_transport(load_settings(outbox_dir=tmp_path / "o"))
    assert isinstance(file_transport, FileTransport)
    assert file_transport.outbox_dir == tmp_path / "o"
    smtp = make_transport(load_settings(smtp={"host": "127.0.0.1", "port": 2525}))
    assert isinstance(smtp, SmtpTransport)
    # constructing opened nothing: no loop thread, no connection
    assert smtp.connections_opened == 0
    assert "smtp-transport" not in {t.name for t in threading.enumerate()}
    smtp.close()


def _file(tmp_path: Path) -> tuple[Transport, Callable[[], list[bytes]]]:
    t = FileTransport(tmp_path / "outbox")
    return t, lambda: [p.read_bytes() for p in sorted((tmp_path / "outbox").iterdir())]


def _memory(tmp_path: Path) -> tuple[Transport, Callable[[], list[bytes]]]:
    t = MemoryTransport()
    return t, lambda: [m.as_bytes() for m in t.sent]


@pytest.mark.parametrize("make", [_file, _memory], ids=["file", "memory"])
def test_twins_keep_one_copy_per_message_id_with_headers_intact(
    make: Callable[[Path], tuple[Transport, Callable[[], list[bytes]]]], tmp_path: Path
) -> None:
    transport, stored = make(tmp_path)
    m = message("card_expiring:pm_1:2026-03:30d")
    assert transport.send(m).refused == {}
    transport.close()
    copies = stored()
    assert len(copies) == 1
    parsed = email.message_from_bytes(copies[0], policy=policy.default)
    assert parsed["Message-ID"] == m["Message-ID"]
    assert parsed["Auto-Submitted"] == "auto-generated"
