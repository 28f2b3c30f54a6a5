"""Abuse of the card-update page at the real ``dunning web`` process: bearer links kept out of
logs and stored rows, a body refused before it is read, and card-testing limits held across
processes (see tests/reliability/card_testing.py for the requests)."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from sqlalchemy import select

from dunning.links import fingerprint
from dunning.store.tables import audit_log, notifications
from tests.integration.conftest import Pipeline
from tests.reliability.book import seed_cases
from tests.reliability.web import start_web, web_env

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
