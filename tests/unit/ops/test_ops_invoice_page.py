"""``/ops/invoices/{id}``: the invoice's timeline and the operator actions as CSRF-checked POST
forms, each audited with the ops login's user name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from dunning.store.tables import audit_log
from dunning.web.app import create_app
from tests.unit.ops.conftest import Book, TestClient
from tests.unit.ops.test_web_ops import AUTH


@pytest.fixture
def client(any_book: Book) -> Iterator[TestClient]:
    with TestClient(create_app(any_book.c), base_url="http://testserver") as c:
        yield c


def token(client: TestClient, invoice_id: str = "in_a") -> str:
    page = client.get(f"/ops/invoices/{invoice_id}", headers=AUTH)
    assert page.status_code == 200
    value = client.cookies.get("dunning_ops_csrf")
    assert value
    assert f'value="{value}"' in page.text
    return value


def operator_audits(book: Book) -> list[dict[str, object]]:
    return [dict(r) for r in book.rows(audit_log, audit_log.c.kind.like("operator_%"))]


def test_the_page_shows_the_timeline_in_time_order(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a", amount=2900)
    any_book.fail("a")
    response = client.get("/ops/invoices/in_a", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    text = response.text
    assert "€29.00" in text
    assert "Visa •••• 4242" in text
    timeline = text[text.index('id="timeline"') :]
    # the invoice opened, its charge declined, a retry planned, the subscription past due,
    # the first email queued: all of it, in the order it happened
    for expected in (
        "invoice status",
        "charge sent",
        "charge attempt",
        "retry scheduled",
        "subscription status",
        "payment failed to a@example.com",
    ):
        assert expected in timeline, expected
    stamps = re.findall(r'<span class="at">([^<]+)</span>', timeline)
    assert stamps == sorted(stamps)
    assert len(stamps) >= 6
    for label in ("Retry now", "Pause", "Mark paid", "Write off"):
        assert f">{label}</button>" in text
    assert ">Resume</button>" not in text


def test_pause_is_audited_with_the_operator_name(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    csrf = token(client)
    response = client.post(
        "/ops/invoices/in_a/pause",
        headers=AUTH,
        data={"csrf": csrf, "reason": "customer on holiday, call on the 20th"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ops/invoices/in_a?done=pause"
    assert any_book.invoice_row("in_a")["paused"] is True
    [audit] = operator_audits(any_book)
    assert audit["kind"] == "operator_pause"
    assert audit["actor"] == "ops"
    assert audit["message"] == "customer on holiday, call on the 20th"
    page = client.get(response.headers["location"], headers=AUTH).text
    assert "Paused: no retries or reminders" in page
    assert "operator pause" in page
    assert "by ops" in page
    assert ">Resume</button>" in page


def test_a_post_without_the_csrf_token_is_refused(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    csrf = token(client)
    form = {"reason": "forged"}
    assert (
        client.post("/ops/invoices/in_a/write-off", data=form | {"csrf": csrf}).status_code == 401
    )
    missing = client.post("/ops/invoices/in_a/write-off", headers=AUTH, data=form)
    assert missing.status_code == 403
    forged = client.post(
        "/ops/invoices/in_a/write-off", headers=AUTH, data=form | {"csrf": csrf[:-2] + "00"}
    )
    assert forged.status_code == 403
    cross_site = client.post(
        "/ops/invoices/in_a/write-off",
        headers=AUTH | {"Origin": "https://evil.example"},
        data=form | {"csrf": csrf},
    )
    assert cross_site.status_code == 403
    client.cookies.clear()
    no_cookie = client.post(
        "/ops/invoices/in_a/write-off", headers=AUTH, data=form | {"csrf": csrf}
    )
    assert no_cookie.status_code == 403
    assert any_book.invoice_row("in_a")["status"] == "open"
    assert operator_audits(any_book) == []


def test_retry_now_queues_the_charge(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    any_book.advance(timedelta(hours=2))
    response = client.post(
        "/ops/invoices/in_a/retry",
        headers=AUTH,
        data={"csrf": token(client), "reason": "customer says the card has funds now"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert any_book.dispatcher.sent["retry_charges"] == [("in_a", 2)]
    row = any_book.invoice_row("in_a")
    assert row["next_attempt_reason"] == "operator_retry"
    [audit] = operator_audits(any_book)
    assert (audit["kind"], audit["actor"]) == ("operator_retry", "ops")


def test_refusals_say_why_and_write_nothing(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    csrf = token(client)
    resume = client.post(
        "/ops/invoices/in_a/resume", headers=AUTH, data={"csrf": csrf, "reason": "x"}
    )
    assert resume.status_code == 409
    assert "is not paused" in resume.text
    csrf = client.cookies.get("dunning_ops_csrf") or ""  # the page shown again has a new one
    assert f'value="{csrf}"' in resume.text
    blank = client.post(
        "/ops/invoices/in_a/pause", headers=AUTH, data={"csrf": csrf, "reason": " "}
    )
    assert blank.status_code == 400
    assert "reason must not be empty" in blank.text
    assert any_book.invoice_row("in_a")["paused"] is False
    assert operator_audits(any_book) == []
    csrf = client.cookies.get("dunning_ops_csrf") or ""
    unknown = client.post("/ops/invoices/in_a/delete", headers=AUTH, data={"csrf": csrf})
    assert unknown.status_code == 404


def test_mark_paid_then_write_off_is_refused(any_book: Book, client: TestClient) -> None:
    any_book.add_customer("a")
    any_book.fail("a")
    csrf = token(client)
    paid = client.post(
        "/ops/invoices/in_a/mark-paid",
        headers=AUTH,
        data={"csrf": csrf, "reason": "paid by bank transfer"},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    assert any_book.invoice_row("in_a")["status"] == "paid"
    page = client.get("/ops/invoices/in_a", headers=AUTH).text
    assert ">Write off</button>" not in page
    assert "Nothing to do" in page
    csrf = client.cookies.get("dunning_ops_csrf") or ""
    late = client.post(
        "/ops/invoices/in_a/write-off", headers=AUTH, data={"csrf": csrf, "reason": "late"}
    )
    assert late.status_code == 409
    assert any_book.invoice_row("in_a")["status"] == "paid"
    assert [a["kind"] for a in operator_audits(any_book)] == ["operator_mark_paid"]


def test_unknown_invoices_and_the_find_form(any_book: Book, client: TestClient) -> None:
    assert client.get("/ops/invoices/in_nope", headers=AUTH).status_code == 404
    assert client.get("/ops/invoices/in_nope").status_code == 401
    found = client.get("/ops/find?invoice=in_x%2Fy", headers=AUTH, follow_redirects=False)
    assert found.status_code == 303
    assert found.headers["location"] == "/ops/invoices/in_x%2Fy"


def test_a_browser_post_with_origin_null_is_judged_by_its_token(
    any_book: Book, client: TestClient
) -> None:
    """Under ``Referrer-Policy: no-referrer`` a browser's same-origin form post carries
    ``Origin: null``; the token decides (refused before: every real browser POST failed)."""
    any_book.add_customer("a")
    any_book.fail("a")
    csrf = token(client)
    null = AUTH | {"Origin": "null"}
    refused = client.post("/ops/invoices/in_a/pause", headers=null, data={"reason": "r"})
    assert refused.status_code == 403
    response = client.post(
        "/ops/invoices/in_a/pause",
        headers=null,
        data={"csrf": csrf, "reason": "r"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert any_book.invoice_row("in_a")["paused"] is True
