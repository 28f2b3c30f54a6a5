"""Fault 8: hostile input at the real ``dunning web`` process on loopback, while a run of
1,000 cases goes on: forged, replayed, stale, oversized and malformed webhooks; a seeded fuzz of
bodies and headers; tampered, expired, reused and other customers' card-update links; CSRF on
the card form; markup in customer names. Every refusal has its documented status, nothing
refused changes the book, and the run still loses nothing and does nothing twice.

The unit tests in tests/unit/web and tests/unit/webhooks cover each case in depth on the
in-memory twins; this test shows the real server process behaves the same.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import select

from dunning.store.tables import customers, payment_methods, webhook_events
from tests.integration.conftest import Pipeline
from tests.reliability.book import add_account
from tests.reliability.hostile import fuzz, webhook_attacks
from tests.reliability.run import finish, start
from tests.reliability.web import card_form, csrf_of, link_path, start_web, web_env

pytestmark = pytest.mark.reliability

HOSTILE_NAME = '<script>alert("x")</script><img src=x onerror=alert(1)> {{7*7}}'
FUZZ_REQUESTS = 300


@pytest.fixture
def pipeline_env(pipeline_env: dict[str, str], web_port: int) -> dict[str, str]:
    return pipeline_env | web_env(web_port)


def assert_escaped(html: str, where: str) -> None:
    assert "<script>alert" not in html, where
    assert "<img src=x" not in html, where
    assert "&lt;script&gt;alert(" in html, where
    assert "{{7*7}}" in html, f"{where}: the name was evaluated as a template"


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None, f"{message['Subject']}: no {subtype} part"
    return str(part.get_content())


def link_attacks(base: str, victim: str, other: str, seen: Counter[str]) -> None:
    """Links and CSRF: every wrong use is refused; one genuine update goes through."""
    path, other_path = link_path(victim), link_path(other)
    token = path.rsplit("/", 1)[1]
    body, mac = token.split(".")
    other_body = other_path.rsplit("/", 1)[1].split(".")[0]
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")

    def expect(what: str, response: httpx.Response, status: int) -> None:
        assert response.status_code == status, (what, response.status_code)
        seen[f"{what}:{status}"] += 1

    with httpx.Client(base_url=base, timeout=15) as page, httpx.Client(base_url=base) as thief:
        form = page.get(path)
        expect("link", form, 200)
        assert_escaped(form.text, "the card page")
        csrf = csrf_of(form.text)
        good = card_form(csrf, "5555 5555 5555 4444", cvc="123")
        for what, bad in {
            "link_tampered": f"/update/{body}.{flipped}",
            "link_other_customer": f"/update/{other_body}.{mac}",
            "link_expired": link_path(victim, expires_in=timedelta(seconds=-1)),
            "link_forged": link_path(victim, secret="attacker-secret"),
            "link_garbage": "/update/not-a-token",
        }.items():
            expect(what, page.get(bad), 410)
            expect(what, page.post(bad, data=good), 410)
        # CSRF: no cookie; a forged field; the pair minted for another customer's link.
        expect("csrf_no_cookie", thief.post(path, data=good), 403)
        expect(
            "csrf_forged",
            page.post(path, data=card_form("x.y", "4242424242424242", cvc="123")),
            403,
        )
        other_csrf = csrf_of(page.get(other_path).text)
        page.cookies.set("dunning_csrf", csrf, path=other_path)
        expect(
            "csrf_other_link",
            page.post(other_path, data=card_form(csrf, "4242424242424242", cvc="123")),
            403,
        )
        page.cookies.set("dunning_csrf", other_csrf, path=path)
        expect("csrf_mismatch", page.post(path, data=good), 403)
        page.cookies.set("dunning_csrf", csrf, path=path)
        done = page.post(path, data=good)
        expect("update", done, 303)
        assert done.headers["location"].startswith(f"/update/{token}/done?outcome=")
        expect("link_reused", page.get(path), 410)
        expect("link_reused", page.post(path, data=good), 410)


@pytest.mark.timeout(300)
def test_hostile_input_is_refused_by_the_real_server_and_changes_nothing(
    pipeline: Pipeline, web_port: int
) -> None:
    run = start(pipeline, prefix="h", names={i: HOSTILE_NAME for i in range(0, 1000, 100)})
    _, base = start_web(pipeline, web_port)
    victim = add_account(pipeline, "victim", name=HOSTILE_NAME)
    other = add_account(pipeline, "other", name="Other Customer")
    run.mark("attacks")

    seen: Counter[str] = Counter()
    with httpx.Client(base_url=base, timeout=15) as client:
        accepted = webhook_attacks(client, seen)
        fuzz_stored = fuzz(client, seen, requests=FUZZ_REQUESTS, seed=7391)
    link_attacks(base, victim, other, seen)
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200

    with pipeline.engine.connect() as conn:
        stored = {(r.provider, r.event_id) for r in conn.execute(select(webhook_events))}
        generations = {r.id: r.card_generation for r in conn.execute(select(customers))}
        active = select(payment_methods).where(payment_methods.c.status == "active")
        cards = Counter((r.customer_id, r.last4) for r in conn.execute(active))
    # Only the genuine deliveries were stored, once each; only the genuine update changed a
    # card: the other customer's links and every refused form changed nothing.
    assert accepted <= stored
    assert len(stored) == len(accepted) + fuzz_stored
    assert (generations[victim], generations[other]) == (1, 0)
    assert sorted(k for k in cards if k[0] in (victim, other)) == [
        (other, "4242"),
        (victim, "4444"),  # the new card, and only it: the old one was removed as asked
    ]

    figures = finish(
        run,
        "hostile_input",
        allow_duplicates=False,
        faults={
            "requests": dict(sorted(seen.items())),
            "fuzz_requests": FUZZ_REQUESTS,
            "fuzz_stored_as_ignored": fuzz_stored,
        },
    )
    hostile = [m for m in pipeline.mail.messages() if "<script>" in body(m, "plain")]
    kinds = Counter(str(m["Subject"]) for m in hostile)
    assert len(hostile) >= 10 + 1, kinds  # the cases' receipts and the victim's confirmation
    for message in hostile:
        assert_escaped(body(message, "html"), f"email {message['Subject']}")
    assert figures["paid"] == len(run.cases.paid)
