"""Logs: JSON lines naming what they are about, card numbers masked whatever the format."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import pytest

from config.settings import load_settings
from dunning import logs


@pytest.fixture
def restore_root() -> object:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_card_numbers_are_masked(fmt: str, restore_root: object) -> None:
    out = io.StringIO()
    logs.configure_logging(load_settings(log_format=fmt), stream=out)
    logging.getLogger("dunning.test").warning(
        "customer typed %s into a note", "4242 4242 4242 4242"
    )
    text = out.getvalue()
    assert "4242 4242 4242 4242" not in text
    assert "****4242" in text


def test_json_lines_carry_ids_and_the_worker_context(restore_root: object) -> None:
    out = io.StringIO()
    logs.configure_logging(load_settings(log_format="json"), stream=out)
    token = logs.context.set({"actor": "charge_retry", "message_id": "m1"})
    try:
        logging.getLogger("dunning.test").info("charged", extra={"invoice": "in_1"})
    finally:
        logs.context.reset(token)
    line = json.loads(out.getvalue())
    assert line["invoice"] == "in_1"
    assert line["actor"] == "charge_retry"
    assert line["level"] == "info"
    assert line["message"] == "charged"


def test_text_lines_name_the_logger_the_invoice_and_the_worker_context(
    restore_root: object,
) -> None:
    out = io.StringIO()
    logs.configure_logging(load_settings(log_format="text"), stream=out)
    token = logs.context.set({"actor": "charge_retry", "message_id": "m1"})
    try:
        logging.getLogger("dunning.services.charging").info(
            "charge answered: %s", "declined", extra={"invoice": "in_7", "customer": "cus_7"}
        )
        logging.getLogger("dunning.services.charging").info(
            "charge for invoice %s: %s", "in_8", "succeeded", extra={"invoice": "in_8"}
        )
    finally:
        logs.context.reset(token)
    first, second = out.getvalue().splitlines()
    assert " INFO dunning.services.charging: charge answered: declined [" in first
    assert "invoice=in_7" in first
    assert "customer=cus_7" in first
    assert "actor=charge_retry" in first
    assert "message_id=m1" in first
    assert "invoice=in_8" not in second  # the message names it already


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_apscheduler_run_lines_only_at_debug(level: str, shown: bool, restore_root: object) -> None:
    out = io.StringIO()
    logs.configure_logging(load_settings(log_level=level), stream=out)
    try:
        logging.getLogger("apscheduler.executors.default").info('Running job "due_retries"')
        logging.getLogger("apscheduler.scheduler").info('Added job "due_retries"')
        logging.getLogger("apscheduler.scheduler").info("Scheduler started")
        logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
        logging.getLogger("schedules.producers").info("producer due_retries enqueued 3 items")
    finally:
        logs.configure_logging(load_settings(log_level="DEBUG"), stream=io.StringIO())
    text = out.getvalue()
    assert ('Running job "due_retries"' in text) is shown
    assert ('Added job "due_retries"' in text) is shown
    assert "Scheduler started" in text  # its start, stop and warnings still show
    assert "Run time of job was missed" in text
    assert "producer due_retries enqueued 3 items" in text


def test_a_command_logs_warnings_with_the_logger_name(tmp_path: object) -> None:
    import os
    import subprocess
    import sys

    from config.settings import DEFAULT_POLICY_FILE

    # given a policy warning logged while a one-shot command runs (status loads the policy)
    text = DEFAULT_POLICY_FILE.read_text().replace("suspend_day = 14", "suspend_day = 40")
    policy = os.path.join(str(tmp_path), "long.toml")
    with open(policy, "w") as f:
        f.write(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env["DUNNING_POLICY_FILE"] = policy
    done = subprocess.run(
        [sys.executable, "-m", "dunning.cli.main", "db", "upgrade"],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "dunning.cli.main", "status"],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "40-day window" in line]
    assert len(warning) == 1, done.stderr
    assert " WARNING dunning.policy" in warning[0], done.stderr


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_card_update_tokens_never_reach_a_log_line(
    fmt: str, restore_root: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.links import fingerprint, make_link_token

    # uvicorn started with its own log config (as other tests do) leaves its access logger
    # disabled or not propagating; `dunning web` starts it with ours, as here.
    access = logging.getLogger("uvicorn.access")
    for logger in (logging.getLogger("uvicorn"), access):
        monkeypatch.setattr(logger, "disabled", False)
        monkeypatch.setattr(logger, "propagate", True)
        monkeypatch.setattr(logger, "handlers", [])
        monkeypatch.setattr(logger, "level", logger.level)  # put back afterwards
        logger.setLevel(logging.NOTSET)  # not the attribute alone: this clears logging's cache

    out = io.StringIO()
    logs.configure_logging(load_settings(log_format=fmt), stream=out)
    token = make_link_token(
        "k" * 32, customer_id="cus_1", purpose="update_card", generation=0,
        expires_at=datetime.now(UTC),
    )  # fmt: skip
    # The lines uvicorn's access log writes, and a token in an extra field and a traceback.
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/update/{token}", "1.1", 200)
    try:
        raise ValueError(f"bad link {token}")
    except ValueError:
        logging.getLogger("dunning.test").exception("failed", extra={"link": token})
    text = out.getvalue()
    assert token not in text
    assert token.split(".")[1] not in text
    assert f"/update/[link {fingerprint(token)}]" in text
