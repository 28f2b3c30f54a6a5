"""What a newcomer does after ``dunning demo``, in a real browser at phone and desktop widths:
``dunning run`` on the demo's database, the printed card-update link opened and paid, and the
operators' view of the same database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from config.settings import DEFAULT_SECRET
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, need_chromium
from tests.services import free_port

pytestmark = pytest.mark.e2e

WIDTHS = (390, 1280)
LINK = re.compile(r"http://127\.0\.0\.1:8000(/update/\S+)")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo run as the README says, in its own folder; its database and printed link."""
    where = tmp_path_factory.mktemp("newcomer")
    done = subprocess.run(
        [sys.executable, "-m", "dunning.cli.main", "demo", "--customers", "300", "--days", "20"],
        cwd=where,
        env=_env(COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = LINK.search(done.stdout)
    assert found, f"the demo printed no card-update link:\n{done.stdout[-3000:]}"
    assert (where / "var/demo/dunning.sqlite3").exists()
    return where, found.group(1)


@pytest.fixture(scope="module")
def running(demo: tuple[Path, str]) -> Iterator[str]:
    """``dunning run`` on the demo's database, as the demo's next steps print it."""
    where, _ = demo
    port = free_port()
    env = _env(
        DUNNING_DATABASE_URL=f"sqlite:///{where / 'var/demo/dunning.sqlite3'}",
        DUNNING_OUTBOX_DIR=str(where / "var/demo/outbox"),
        DUNNING_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    log = where / "run.log"
    with log.open("w") as err:  # the child keeps its own copy of the file
        proc = subprocess.Popen(
            [sys.executable, "-m", "dunning.cli.main", "run", "--port", str(port)],
            cwd=where,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz/live", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, f"dunning run stopped: {log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "dunning run did not answer in 60 s"
                time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _fits(page: Page, width: int) -> None:
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client, f"the page scrolls sideways at {width} px ({scroll} > {client})"


def _pay(page: Page, width: int, shots: Path) -> None:
    """Fill the card form as a customer would and send it; the answer names the new card."""
    _fits(page, width)
    page.locator("input[name=card_number]").fill("4242 4242 4242 4242")
    page.locator("input[name=exp_month]").fill("12")
    page.locator("input[name=exp_year]").fill("2030")
    page.locator("input[name=cvc]").fill("123")
    page.screenshot(path=str(shots / f"card-{width}.png"), full_page=True)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state()
    assert page.get_by_text("4242").first.is_visible()
    _fits(page, width)


def test_the_demo_link_and_ops_work_on_the_demo_database(
    demo: tuple[Path, str], running: str, tmp_path: Path
) -> None:
    """At 390 px the customer pays through the demo's link; at 1280 px the link is spent. At
    both widths the operators' page shows the demo's funnel without scrolling sideways."""
    need_chromium()
    _, path = demo
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width in WIDTHS:
                context = browser.new_context(
                    viewport={"width": width, "height": 900},
                    http_credentials={"username": "ops", "password": DEFAULT_SECRET},
                )
                page = context.new_page()
                opened = page.goto(running + path)
                assert opened is not None
                if width == WIDTHS[0]:
                    assert opened.status == 200
                    _pay(page, width, tmp_path)
                else:
                    assert opened.status == 410, "the used link still opens the form"
                    _fits(page, width)
                page.goto(running + "/ops")
                assert page.locator("h1").first.is_visible()
                assert page.get_by_text("past due").first.is_visible()
                page.screenshot(path=str(tmp_path / f"ops-{width}.png"), full_page=True)
                _fits(page, width)
                context.close()
        finally:
            browser.close()
