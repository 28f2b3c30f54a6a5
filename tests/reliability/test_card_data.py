"""Card data: card numbers and a distinctive CVC pushed through every way in (``dunning
import``, signed webhooks, the card-update page, ``dunning simulate``) during a run of 1,000
cases; then the database (``pg_dump``), every daemon's and command's output, every email (at
the SMTP server and as .eml files) and every Redis value, read while messages were in flight
and at the end, hold no Luhn-valid 13-19 digit number and not the CVC."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Pipeline, wait_until
from tests.reliability.book import add_account
from tests.reliability.card_scan import (
    card_numbers_in,
    cvc_in,
    database_text,
    email_text,
    eml_text,
    pg_dump,
    redis_text,
)
from tests.reliability.entry_points import import_line, run_import, run_simulate
from tests.reliability.hostile import ignored_event, quickpay_pending
from tests.reliability.invariants import progress, settled
from tests.reliability.results import write_results
from tests.reliability.run import finish, start
from tests.reliability.web import (
    card_form,
    csrf_of,
    link_path,
    post_quickpay,
    post_stripe,
    start_web,
    web_env,
)

pytestmark = pytest.mark.reliability

CVC = "7391"
# The CVC is looked for in the database's text and JSON values, not in the whole dump, whose
# integer columns (row ids, amounts) hold any 4-digit number sooner or later.
DUMP = "database (pg_dump)"
PANS = {
    "import_token": "5555 5555 5555 4444",
    "import_name": "3782 822463 10005",
    "webhook_stripe": "4000 0566 5566 5556",
    "webhook_quickpay": "6011-1111-1111-1117",
    "page_declined": "4000 0000 0000 0002",
    "page_3ds": "4000 0025 0000 3155",
    "page_ok": "4242 4242 4242 4242",
    "simulate": "2223 0031 2200 3222",
    "page_file_outbox": "3622 720627 1667",
}


@pytest.fixture
def pipeline_env(pipeline_env: dict[str, str], web_port: int) -> dict[str, str]:
    return pipeline_env | web_env(web_port)


def push_webhooks(base: str) -> None:
    stripe = ignored_event("evt_card_data")
    stripe["data"]["object"] |= {
        "description": f"card {PANS['webhook_stripe']} cvc {CVC}",
        "metadata": {"pan": PANS["webhook_stripe"].replace(" ", ""), "cvc": CVC},
    }
    quickpay = quickpay_pending()
    quickpay["id"] = 510099
    quickpay["variables"] = {"note": PANS["webhook_quickpay"], "cvc": CVC}
    with httpx.Client(base_url=base, timeout=15) as client:
        assert post_stripe(client, stripe).status_code == 200
        assert post_quickpay(client, quickpay).status_code == 200


def update_card(base: str, customer_id: str, number: str) -> httpx.Response:
    """Open the customer's link and submit ``number`` with the CVC; a 3-D Secure card is
    taken through the sandbox challenge."""
    with httpx.Client(base_url=base, timeout=15) as page:
        path = link_path(customer_id)
        csrf = csrf_of(page.get(path).text)
        answer = page.post(path, data=card_form(csrf, number, cvc=CVC))
        marker = 'name="card" value="'
        if answer.status_code == 200 and marker in answer.text:
            start_at = answer.text.index(marker) + len(marker)
            sealed = answer.text[start_at : answer.text.index('"', start_at)]
            form = {"csrf": csrf, "card": sealed, "result": "approve"}
            answer = page.post(f"{path}/authenticate", data=form)
        return answer


def drain_watching_redis(p: Pipeline, cases: object, redis_seen: list[str]) -> None:
    """Wait for the run to settle, reading every Redis value once a second meanwhile."""
    last = [0.0]

    def check() -> bool:
        if time.monotonic() - last[0] > 1.0:
            last[0] = time.monotonic()
            redis_seen.append(redis_text(p.redis))
        return settled(p, cases)  # type: ignore[arg-type]

    wait_until(check, timeout_s=180, what="the run to settle", interval_s=0.3,
               alive=p.daemons.check_alive)  # fmt: skip


@pytest.mark.timeout(300)
def test_card_numbers_and_cvcs_stay_out_of_every_store(
    pipeline: Pipeline, web_port: int, tmp_path: Path
) -> None:
    run = start(pipeline, prefix="c")
    _, base = start_web(pipeline, web_port)
    accounts = [add_account(pipeline, f"card{i}", name=f"Card Holder {i}") for i in range(4)]
    outputs: dict[str, str] = {}
    redis_seen: list[str] = []

    code, outputs["dunning import"] = run_import(pipeline, tmp_path, [
        import_line("imp1", name="Ann", token=PANS["import_token"]),
        import_line("imp2", name=f"Bo {PANS['import_name']}", token="sbx_ok_imp2"),
        import_line("imp3", name="Cy", token="sbx_ok_imp3"),
    ])  # fmt: skip
    assert code == 1, outputs["dunning import"]  # some lines refused, the good one loaded
    push_webhooks(base)
    redis_seen.append(redis_text(pipeline.redis))
    statuses = [
        update_card(base, accounts[0], PANS["page_declined"]).status_code,
        update_card(base, accounts[1], PANS["page_3ds"]).status_code,
        update_card(base, accounts[2], PANS["page_ok"]).status_code,
    ]
    assert statuses == [422, 303, 303], statuses
    code, outputs["dunning simulate"] = run_simulate(pipeline, tmp_path, PANS["simulate"])
    assert code == 0, outputs["dunning simulate"]
    assert '"card_added"' in outputs["dunning simulate"], outputs["dunning simulate"]
    drain_watching_redis(pipeline, run.cases, redis_seen)

    figures = finish(run, "card_data", allow_duplicates=False, faults={})
    smtp_before = len(pipeline.mail.messages())

    # The file outbox: the web again, and a worker without an SMTP server, which writes .eml
    # files.
    outbox_dir = tmp_path / "eml-outbox"
    start_web(pipeline, web_port)
    pipeline.start_worker("worker-file", DUNNING_SMTP__HOST="", DUNNING_OUTBOX_DIR=str(outbox_dir))
    assert update_card(base, accounts[3], PANS["page_file_outbox"]).status_code == 303
    wait_until(lambda: progress(pipeline)["unsent_emails"] == 0 and list(outbox_dir.glob("*.eml")),
               timeout_s=60, what="the .eml file", alive=pipeline.daemons.check_alive)  # fmt: skip
    redis_seen.append(redis_text(pipeline.redis))
    pipeline.daemons.stop_all()

    sources = gather(pipeline, outputs, redis_seen, outbox_dir)
    numbers = {name: card_numbers_in(text) for name, text in sources.items()}
    cvcs = {name: cvc_in(text, CVC) for name, text in sources.items() if name != DUMP}
    figures["faults"] = {"card_numbers_pushed": len(PANS), "cvc": CVC}
    figures["scanned"] = {
        name: {
            "chars": len(text),
            "card_numbers": len(numbers[name]),
            "cvc": len(cvcs[name]) if name in cvcs else "see the text and JSON columns",
        }
        for name, text in sources.items()
    }
    write_results("card_data", figures)

    assert len(pipeline.mail.messages()) == smtp_before  # the .eml email went to the file
    for name, text in sources.items():
        assert text, f"{name}: nothing to scan, so the scan would prove nothing"
    pushed = [
        f"{name}: {entry}"
        for name, text in sources.items()
        for entry, number in PANS.items()
        if number in text or number.replace(" ", "").replace("-", "") in text
    ]
    assert not pushed, "card numbers pushed in came out:\n" + "\n".join(pushed)
    found = [f"{name}: {snippet!r}" for name, hits in numbers.items() for snippet in hits]
    assert not found, "card numbers found:\n" + "\n".join(found[:30])
    found = [f"{name}: {snippet!r}" for name, hits in cvcs.items() for snippet in hits]
    assert not found, "the CVC found:\n" + "\n".join(found[:30])


def gather(
    p: Pipeline, outputs: dict[str, str], redis_seen: list[str], outbox_dir: Path
) -> dict[str, str]:
    """Everything the run left behind, as text, by where it was found."""
    sources = {
        DUMP: pg_dump(p.env["DUNNING_DATABASE_URL"]),
        "database (text and JSON columns)": database_text(p.engine),
    }
    for daemon in p.daemons.stopped:  # a daemon started twice appends to one log
        sources[f"log: dunning {daemon.name}"] = daemon.log()
    sources |= {f"output: {name}": text for name, text in outputs.items()}
    sources["smtp messages"] = "\n".join(email_text(m) for m in p.mail.messages())
    sources[".eml files"] = "\n".join(eml_text(f.read_bytes()) for f in outbox_dir.glob("*.eml"))
    sources["redis values"] = "\n".join([*redis_seen, redis_text(p.redis)])
    return sources


def test_the_scanner_finds_what_it_looks_for() -> None:
    assert card_numbers_in("x 4242 4242 4242 4242 y") == ["x 4242 4242 4242 4242 y"]
    assert card_numbers_in("4000-0566-5566-5556") == ["4000-0566-5566-5556"]
    assert card_numbers_in("4242424242424241") == []  # not Luhn-valid
    assert card_numbers_in("tok_4242424242424242.") == ["tok_4242424242424242."]
    assert card_numbers_in("<a8c7367fc55bbde122e4023906293673@x>") == []  # a digest
    stamp = str(int(time.time() * 1000))
    assert card_numbers_in(f"timestamp {stamp}") == []
    assert cvc_in(f"cvc {CVC}.", CVC) == [f"cvc {CVC}."]
    assert cvc_in(f"a{CVC}f 1{CVC}0", CVC) == []
