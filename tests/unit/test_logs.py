"""Logs: JSON lines naming what they are about, card numbers masked whatever the format."""

from __future__ import annotations

import io
import json
import logging

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
    assert "4242 4242 4242 4242" not in text and "****4242" in text


def test_json_lines_carry_ids_and_the_worker_context(restore_root: object) -> None:
    out = io.StringIO()
    logs.configure_logging(load_settings(log_format="json"), stream=out)
    token = logs.context.set({"actor": "charge_retry", "message_id": "m1"})
    try:
        logging.getLogger("dunning.test").info("charged", extra={"invoice": "in_1"})
    finally:
        logs.context.reset(token)
    line = json.loads(out.getvalue())
    assert line["invoice"] == "in_1" and line["actor"] == "charge_retry"
    assert line["level"] == "info" and line["message"] == "charged"
