"""The card form in a real browser at phone (390 px) and desktop (1280 px) widths: every wrong
field marked at once, the expiry kept after an error, the Pay button with the amount, the amount
on the result page, and labels that neither overlap nor get cut in any language."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import insert

from dunning.gateways.base import Decline
from dunning.links import LinkPurpose, make_link_token
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.tables import customers, payment_methods, subscriptions
from dunning.web.i18n import LOCALES
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, Service, need_chromium

pytestmark = pytest.mark.e2e

WIDTHS = (390, 1280)
LINK_SECRET = "e2e-link-secret"  # tests/e2e/conftest.py's e2e_settings
FIELDS = ("exp_month", "exp_year", "cvc")


def add_owing_customer(service: Service, cid: str, locale: str = "en") -> str:
    """A past-due customer owing 29.00 EUR; the path of their card-update link."""
    c, now = service.c, service.c.clock.now()
    ts = {"created_at": now, "updated_at": now}
    with c.engine.begin() as conn:
        conn.execute(
            insert(customers).values(
                id=cid, email=f"{cid}@example.com", name="Ana Berg", locale=locale,
                timezone="Europe/Copenhagen", billing_emails=[], **ts,
            )
        )  # fmt: skip
        conn.execute(
            insert(payment_methods).values(
                id=f"pm_{cid}", customer_id=cid, gateway="sandbox", token="sbx_ok_old",
                network="visa", last4="0341", exp_month=4, exp_year=2027, is_default=True, **ts,
            )
        )  # fmt: skip
        conn.execute(
            insert(subscriptions).values(
                id=f"sub_{cid}", customer_id=cid, plan="pro-monthly", amount=2900,
                currency="EUR", payment_method_id=f"pm_{cid}", status="active",
                current_period_end=now + timedelta(days=20), **ts,
            )
        )  # fmt: skip
    failure = FailedCharge(
        invoice_id=f"in_{cid}",
        subscription_id=f"sub_{cid}",
        amount=2900,
        currency="EUR",
        decline=Decline(decline_code="insufficient_funds", network_code="51"),
        occurred_at=now,
    )
    record_failure(c, failure, now)
    token = make_link_token(
        LINK_SECRET,
        customer_id=cid,
        purpose=LinkPurpose.update_card,
        generation=0,
        expires_at=now + timedelta(days=10),
    )
    return f"{service.base_url}/update/{token}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    need_chromium()
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Browser, width: int, url: str) -> Page:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    opened = page.goto(url)
    assert opened is not None
    assert opened.status == 200
    return page


def fits(page: Page) -> None:
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client, f"the page scrolls sideways ({scroll} > {client})"


def boxes(page: Page) -> dict[str, dict[str, Any]]:
    """Each expiry/CVC label and input (and error, when shown): its box, and whether its text
    is cut (wider than the box)."""
    return dict(
        page.evaluate(
            """(names) => {
              const out = {};
              for (const name of names) {
                const parts = [["label", document.querySelector(`label[for=${name}]`)],
                               ["input", document.getElementById(name)],
                               ["error", document.getElementById(`${name}-error`)]];
                for (const [kind, el] of parts) {
                  if (!el) continue;
                  const r = el.getBoundingClientRect();
                  out[`${name} ${kind}`] = {x: r.left, y: r.top, r: r.right, b: r.bottom,
                    cut: el.scrollWidth > el.clientWidth + 1};
                }
              }
              return out;
            }""",
            list(FIELDS),
        )
    )


def no_overlap(page: Page, where: str) -> None:
    found = boxes(page)
    width = page.evaluate("document.documentElement.clientWidth")
    for name, box in found.items():
        assert not box["cut"], f"{where}: {name} is cut"
        assert box["x"] >= 0, f"{where}: {name} leaves the page: {box}"
        assert box["r"] <= width, f"{where}: {name} leaves the page: {box}"
    names = sorted(found)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            p, q = found[a], found[b]
            apart = p["r"] <= q["x"] or q["r"] <= p["x"] or p["b"] <= q["y"] or q["b"] <= p["y"]
            assert apart, f"{where}: {a} {p} overlaps {b} {q}"


@pytest.mark.parametrize("width", WIDTHS)
def test_every_wrong_field_is_marked_at_once_and_the_expiry_is_kept(
    service: Service, browser: Browser, width: int
) -> None:
    page = open_page(browser, width, add_owing_customer(service, f"cus_err_{width}"))

    page.get_by_label("Card number").fill("4242 4242 4242 4241")
    page.get_by_label("Expiry month").fill("13")
    page.get_by_label("Expiry year").fill("2031")
    page.get_by_label("CVC").fill("1")
    page.get_by_label("Remove my previous card").check()
    with page.expect_navigation() as sent:
        page.get_by_role("button", name="Pay €29.00").click()

    assert sent.value is not None
    assert sent.value.status == 422
    assert page.get_by_role("alert").is_visible()
    assert "Some card details need correcting" in page.get_by_role("alert").inner_text()
    for name in ("card_number", "exp_month", "cvc"):
        field = page.locator(f"#{name}")
        assert field.get_attribute("aria-invalid") == "true", name
        error = page.locator(f"#{field.get_attribute('aria-describedby')}")
        assert error.is_visible(), name
    assert page.locator("#exp_year").get_attribute("aria-invalid") is None
    # what the customer typed comes back, except the card number and the CVC
    assert page.get_by_label("Expiry month").input_value() == "13"
    assert page.get_by_label("Expiry year").input_value() == "2031"
    assert page.get_by_label("Remove my previous card").is_checked()
    assert page.get_by_label("Card number").input_value() == ""
    assert page.get_by_label("CVC").input_value() == ""
    assert "4242 4242 4242 4241" not in page.content()
    fits(page)
    no_overlap(page, f"errors at {width} px")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_pay_button_names_the_amount_and_the_result_page_shows_it(
    service: Service, browser: Browser, width: int
) -> None:
    page = open_page(browser, width, add_owing_customer(service, f"cus_pay_{width}"))

    button = page.get_by_role("button", name="Pay €29.00")
    assert button.is_visible()
    assert "not a charge" not in page.locator("#card-form").inner_text()
    assert "€29.00 is charged to the new card at once" in page.locator("#charge-note").inner_text()
    assert page.get_by_text("Pro Monthly").is_visible()  # the plan's name, not its id
    fits(page)

    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("CVC").fill("123")
    button.click()
    page.wait_for_url("**/done?outcome=paid&*")

    assert page.get_by_role("heading", name="Thank you").is_visible()
    assert page.locator("#amount-charged").inner_text() == "We charged €29.00 to your card."
    fits(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_labels_neither_overlap_nor_get_cut_in_any_language(
    service: Service, browser: Browser, tmp_path: Path, width: int
) -> None:
    """Danish at 390 px first of all ("Udløbsmåned" once ran into the year's label)."""
    for code in LOCALES:
        url = add_owing_customer(service, f"cus_{code}_{width}", locale=code)
        page = open_page(browser, width, url)
        assert page.evaluate("document.documentElement.lang") == code
        fits(page)
        no_overlap(page, f"{code} at {width} px")
        if code == "da":
            assert page.locator("#exp_year").get_attribute("placeholder") == "ÅÅÅÅ"
            assert page.get_by_role("button", name="Betal 29,00\xa0€").is_visible()
        # and with every field marked wrong, messages under their inputs
        page.locator("#exp_month").fill("13")
        page.locator("#exp_year").fill("1")
        page.locator("#cvc").fill("1")
        with page.expect_navigation():
            page.locator("#card-submit").click()
        assert page.locator("#exp_month").get_attribute("aria-invalid") == "true"
        page.screenshot(path=str(tmp_path / f"card-form-{code}-{width}.png"), full_page=True)
        fits(page)
        no_overlap(page, f"{code} at {width} px with errors")
        page.context.close()
