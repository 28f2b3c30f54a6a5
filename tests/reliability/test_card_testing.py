"""Abuse of the card-update page at the real ``dunning web`` process: bearer links kept out of
logs and stored rows; a body refused before it is read; card-testing limits held across two web
processes sharing one Redis, X-Forwarded-For believed only from a configured proxy, one generic
answer after the first decline, and mistyped forms not counted against the customer."""

from __future__ import annotations

import json
import re
import socket
import time

import httpx
import pytest
from sqlalchemy import select

from dunning.links import fingerprint
from dunning.store.tables import audit_log, notifications
from tests.integration.conftest import Pipeline
from tests.reliability.book import add_account, seed_cases
from tests.reliability.web import card_form, csrf_of, link_path, start_web, web_env
from tests.services import free_port

pytestmark = pytest.mark.reliability

LINK = re.compile(r"https?://[^\s\"<>]+/update/([A-Za-z0-9_.-]+)")


@pytest.fixture
def pipeline_env(pipeline_env: dict[str, str], web_port: int) -> dict[str, str]:
    return pipeline_env | web_env(web_port)


def emailed_tokens(p: Pipeline) -> set[str]:
    tokens = set()
    for message in p.mail.messages():
        part = message.get_body(("plain",))
        if part is not None:
            tokens |= set(LINK.findall(str(part.get_content())))
    return tokens


@pytest.mark.timeout(180)
def test_link_tokens_stay_out_of_logs_and_stored_email_rows(
    pipeline: Pipeline, web_port: int
) -> None:
    p = pipeline
    _, base = start_web(p, web_port)
    seed_cases(p, 3, prefix="tok", hard_every=0)
    p.start_scheduler()
    p.start_worker()
    tokens = p.wait(lambda: emailed_tokens(p), timeout_s=90, what="emails with card-update links")
    with httpx.Client(base_url=base, timeout=15) as page:
        for token in tokens:  # the links work, and each is requested (and logged) twice
            assert page.get(f"/update/{token}").status_code == 200
            assert page.get(f"/update/{token}/done?outcome=paid").status_code == 200
        assert page.get("/update/not-a-token").status_code == 410

    with p.engine.connect() as conn:
        stored = json.dumps(
            [dict(r._mapping) for r in conn.execute(select(notifications.c.context))]
            + [dict(r._mapping) for r in conn.execute(select(audit_log.c.data))],
            default=str,
        )
    logs = {name: daemon.log() for name, daemon in p.daemons.running.items()}
    access = [line for line in logs["web"].splitlines() if "GET /update/" in line]
    assert len(access) >= 2 * len(tokens) + 1, logs["web"][-2000:]
    for token in tokens:
        mac = token.split(".")[1]
        assert mac not in stored, "a card-update link is stored"
        for name, text in logs.items():
            assert mac not in text, f"a card-update link in the {name} log"
        assert f"/update/[link {fingerprint(token)}]" in logs["web"]
    assert '"update_link"' in stored  # what rebuilds the links is there


DECLINED, WRONG_CVC, EXPIRED = "4000000000000002", "4000000000000127", "4000000000000069"
GENERIC = "Your bank declined this card"
TYPOS = [
    {"card_number": "4242424242424241"},  # fails the Luhn check
    {"card_number": "4242"},
    {"exp_month": "13"},
    {"exp_year": "2019"},
    {"cvc": "12"},
]


class Page:
    """One customer's link, opened once; its form posted through any web process."""

    def __init__(self, customer_id: str, base: str) -> None:
        self.path = link_path(customer_id)
        with httpx.Client(base_url=base, timeout=15) as client:
            self.csrf = csrf_of(client.get(self.path).text)

    def post(
        self, base: str, number: str, forwarded: str | None = None, **fields: str
    ) -> httpx.Response:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        form = card_form(self.csrf, number, cvc="123") | fields
        with httpx.Client(base_url=base, timeout=15, headers=headers) as client:
            client.cookies.set("dunning_csrf", self.csrf, path=self.path)
            return client.post(self.path, data=form)


@pytest.mark.timeout(240)
def test_card_testing_meets_one_budget_one_answer_and_no_spoofed_address(
    pipeline: Pipeline, web_port: int
) -> None:
    p = pipeline
    _, a = start_web(p, web_port)
    _, b = start_web(p, free_port(), name="web-b")
    _, proxied = start_web(
        p, free_port(), name="web-behind-proxy", env={"DUNNING_WEB__TRUSTED_PROXIES": "127.0.0.1"}
    )
    names = ["typo", "generic", "shared", "x1", "x2", "x3", "x4", "x5"]
    pages = {n: Page(add_account(p, f"ct_{n}", name=n), a) for n in names}
    address_used = 0

    # Forms the browser's checks would have stopped reach no gateway and are not counted.
    typo = pages["typo"]
    for fields in TYPOS * 2:
        answer = typo.post(a, "4242424242424242", **fields)
        assert answer.status_code == 422, (fields, answer.status_code)
    assert typo.post(a, DECLINED).status_code == 422  # the customer's allowance is untouched
    address_used += 1

    # The first decline says why; every later one says only "declined".
    generic = pages["generic"]
    first, second, third = (generic.post(a, n) for n in (WRONG_CVC, EXPIRED, WRONG_CVC))
    assert "the CVC is not right" in first.text
    for later in (second, third):
        assert later.status_code == 422
        assert GENERIC in later.text
        assert "the CVC is not right" not in later.text
        assert "has expired" not in later.text
    address_used += 3

    # Two web processes, one budget: five attempts per customer, whichever process answers.
    shared = pages["shared"]
    codes = [shared.post(a if i % 2 else b, DECLINED).status_code for i in range(7)]
    assert codes == [422] * 5 + [429] * 2
    address_used += 5

    # A spoofed X-Forwarded-For from a client that is not a configured proxy changes nothing:
    # every attempt counts against the connection's address (20 in 10 minutes).
    room = 20 - address_used
    codes = []
    for i in range(16):
        page = pages[f"x{i % 4 + 1}"]
        codes.append(page.post(a, DECLINED, forwarded=f"198.51.100.{i}").status_code)
    assert codes == [422] * room + [429] * (16 - room), codes
    # Behind a configured proxy the forwarded address is the client's: another budget; the
    # process that trusts no proxy still counts the connection's address, whose budget is spent.
    behind = pages["x5"]
    assert behind.post(proxied, DECLINED, forwarded="203.0.113.7").status_code == 422
    assert behind.post(b, DECLINED, forwarded="203.0.113.8").status_code == 429


def raw_post(port: int, path: str, headers: dict[str, str], body: bytes, wait_s: float) -> str:
    """Send the request line, the headers and ``body`` (maybe less than declared); return what
    the server answered within ``wait_s`` ('' if nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode() + body)
        try:
            return sock.recv(4096).decode("latin-1")
        except TimeoutError:
            return ""


@pytest.mark.timeout(120)
def test_the_link_is_checked_before_the_body_is_read(pipeline: Pipeline, web_port: int) -> None:
    p = pipeline
    _, base = start_web(p, web_port, env={"DUNNING_WEB__FORM_READ_TIMEOUT_S": "2"})
    page = Page(add_account(p, "body", name="Body"), base)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    twenty_mb = str(20 * 1024 * 1024)

    # A bogus link with 20 MB declared: refused after 64 KiB were sent, the rest never awaited.
    started = time.monotonic()
    answer = raw_post(web_port, "/update/not-a-token", form | {"Content-Length": twenty_mb},
                      b"a=" + b"x" * 65_536, wait_s=5)  # fmt: skip
    assert answer.startswith("HTTP/1.1 410"), answer[:200]
    assert time.monotonic() - started < 5
    # A good link: too large declared, too large sent in chunks, too slow.
    cookie = {"Cookie": f"dunning_csrf={page.csrf}"}
    answer = raw_post(web_port, page.path, form | cookie | {"Content-Length": twenty_mb}, b"", 5)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    chunks = iter([b"card_number=" + b"4" * 8192] + [b"4" * 8192] * 10)
    with httpx.Client(base_url=base, timeout=15, headers=cookie | form) as client:
        assert client.post(page.path, content=chunks).status_code == 413
    started = time.monotonic()
    answer = raw_post(web_port, page.path, form | cookie | {"Content-Length": "500"}, b"a=1", 8)
    assert answer.startswith("HTTP/1.1 408"), answer[:200]
    assert 1.5 < time.monotonic() - started < 6
    # The page still works.
    assert page.post(base, "4242424242424242").status_code == 303
