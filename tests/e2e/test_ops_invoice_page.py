"""The /ops invoice page in a real browser at phone and desktop widths, on PostgreSQL: the
timeline reads, and an operator pauses the invoice with a reason through the form."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from dunning.store.engine import make_engine
from dunning.store.tables import audit_log
from dunning.web.app import create_app
from tests.conftest import _truncate
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, need_chromium
from tests.services import free_port
from tests.unit.ops.conftest import OPS_PASSWORD, Book, make_book

pytestmark = pytest.mark.e2e

WIDTHS = (390, 1280)


@pytest.fixture
def served(pg_url: str, tmp_path: Path) -> Iterator[tuple[Book, str]]:
    """An empty PostgreSQL book served by uvicorn on a real socket."""
    engine = make_engine(pg_url)
    _truncate(engine)
    engine.dispose()
    for book in make_book(pg_url, tmp_path):
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(book.c), host="127.0.0.1", port=port, log_config=None)
        )
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:  # uvicorn offers no event to wait on
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        try:
            yield book, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@pytest.mark.parametrize("width", WIDTHS)
def test_operator_pauses_an_invoice_from_its_page(
    served: tuple[Book, str], tmp_path: Path, width: int
) -> None:
    need_chromium()
    book, base_url = served
    book.add_customer("a", amount=2900)
    book.fail("a")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": width, "height": 900},
                http_credentials={"username": "ops", "password": OPS_PASSWORD},
            )
            page = context.new_page()
            page.goto(f"{base_url}/ops")
            page.get_by_label("Invoice").fill("in_a")
            page.get_by_role("button", name="Open").click()
            page.wait_for_url("**/ops/invoices/in_a")
            assert page.get_by_role("heading", name="Invoice in_a").is_visible()
            assert page.get_by_text("€29.00").first.is_visible()
            timeline = page.locator("#timeline li")
            assert timeline.count() >= 6
            assert page.get_by_text("payment failed to a@example.com").is_visible()
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1] == width, f"horizontal scroll: {widths}"
            page.screenshot(path=str(tmp_path / f"ops-invoice-{width}.png"), full_page=True)

            # pausing without a reason is stopped by the form itself
            page.get_by_role("button", name="Pause", exact=True).click()
            assert page.url.endswith("/ops/invoices/in_a")
            assert book.invoice_row("in_a")["paused"] is False

            page.get_by_label("Reason for this invoice").fill(
                "customer asked for a week, ticket 4711"
            )
            page.get_by_role("button", name="Pause", exact=True).click()
            page.wait_for_url("**/ops/invoices/in_a?done=pause")
            assert page.get_by_role("status").inner_text().startswith("Paused")
            assert page.get_by_role("button", name="Resume", exact=True).is_visible()
            assert page.get_by_text("ticket 4711").is_visible()  # in the timeline
        finally:
            browser.close()
    assert book.invoice_row("in_a")["paused"] is True
    [audit] = book.rows(audit_log, audit_log.c.kind == "operator_pause")
    assert audit["actor"] == "ops"
    assert audit["message"] == "customer asked for a week, ticket 4711"
