"""Looking for card data where it must never be: Luhn-valid 13-19 digit numbers and a CVC.

The sources are read in the form a person or a program would read them: the database as
``pg_dump`` prints it, log lines, emails decoded part by part (a base64 or quoted-printable body
would hide a number from a raw search), and every Redis key's value by its type.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

import redis
from sqlalchemy import JSON, Engine, MetaData, String, select

from dunning.gateways.cards import pan_spans

# A number this close to now, read as Unix time in ms, µs or ns, is a timestamp (dramatiq
# stamps each message in ms, a 13-digit number that is Luhn-valid one time in ten). No card
# network issues numbers starting with 1, so nothing that could be a PAN is let through.
_STAMP_DIGITS = {13: 1e3, 16: 1e6, 19: 1e9}
_STAMP_WINDOW_S = 10 * 365 * 86400


def _is_timestamp(digits: str) -> bool:
    scale = _STAMP_DIGITS.get(len(digits))
    if scale is None or digits[0] != "1":
        return False
    return abs(int(digits) / scale - datetime.now(UTC).timestamp()) < _STAMP_WINDOW_S


def card_numbers_in(text: str) -> list[str]:
    """Every Luhn-valid 13-19 digit number standing as a word of its own in ``text`` (written
    in any way the log mask knows), each with the text around it.

    Left out: Unix timestamps of this decade, and digit runs glued to a letter or digit, which
    are pieces of longer tokens (hex digests in Message-IDs and charge ids, UUIDs). Random hex
    holds a Luhn-valid run of 13 digits often enough to matter; the numbers a test pushed in are
    searched for exactly, wherever they stand, by the test itself.
    """
    found = []
    for start, end in pan_spans(text):
        glued = text[start - 1 : start] + text[end : end + 1]
        if any(ch.isalnum() for ch in glued):
            continue
        digits = re.sub(r"\D", "", text[start:end])
        if not _is_timestamp(digits):
            found.append(text[max(start - 60, 0) : end + 20])
    return found


def cvc_in(text: str, cvc: str) -> list[str]:
    """``cvc`` standing alone (not inside a longer run of hex digits), with the text around."""
    pattern = rf"(?<![0-9a-fA-F]){re.escape(cvc)}(?![0-9a-fA-F])"
    return [text[max(m.start() - 60, 0) : m.end() + 20] for m in re.finditer(pattern, text)]


def pg_dump(url: str) -> str:
    """The whole database as SQL text."""
    done = subprocess.run(["pg_dump", "--no-owner", url], capture_output=True, check=True)
    return done.stdout.decode("utf-8", "replace")


def database_text(engine: Engine) -> str:
    """Every text and JSON value of every table. Where a CVC could be kept: the dump's integer
    columns (row ids, amounts) hold every 4-digit number sooner or later."""
    meta = MetaData()
    meta.reflect(engine)
    out = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | JSON)]
            if columns:
                out += [repr(tuple(row)) for row in conn.execute(select(*columns))]
    return "\n".join(out)


def email_text(message: Message) -> str:
    """Headers and every part's decoded content (not the MIME boundaries, random numbers the
    email package makes up)."""
    out = [f"{k}: {v}" for k, v in message.items() if k.lower() != "content-type"]
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            out.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(out)


def eml_text(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return email_text(message)


def redis_text(client: redis.Redis) -> str:
    """Every key and its value, read by type."""
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        values: Iterable[object]
        if kind == "string":
            values = [client.get(key)]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [x for kv in client.hgetall(key).items() for x in kv]
        elif kind == "set":
            values = client.smembers(key)
        elif kind == "zset":
            values = client.zrange(key, 0, -1)  # the scores are times
        else:
            values = []
        out.append(_text(key) + " " + " ".join(_text(v) for v in values))
    return "\n".join(out)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
