"""``DUNNING_ENV=production`` against the real processes, as an attacker would try it: start-up
refuses what would look safe and is not (the sandbox gateway and its fault knobs, a plain-HTTP
public URL, short secrets), exiting 2 and naming the variable; a started web service sends
HSTS under an https public URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Daemons
from tests.reliability.production import (
    production_env,
    start_refused,
    wait_serving,
)
from tests.services import free_port

pytestmark = pytest.mark.reliability


@pytest.fixture
def prod_env(module_pg_url: str, tmp_path: Path) -> dict[str, str]:
    return production_env(module_pg_url, tmp_path)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    log_dir = tmp_path / "daemons"
    log_dir.mkdir()
    running = Daemons(log_dir)
    try:
        yield running
    finally:
        running.stop_all()


def start_web(daemons: Daemons, env: dict[str, str], *args: str) -> str:
    port = free_port()
    daemon = daemons.start("web", ["web", "--host", "127.0.0.1", "--port", str(port), *args], env)
    base = f"http://127.0.0.1:{port}"
    wait_serving(base, daemon.proc)
    return base


UNSAFE = {
    "DUNNING_GATEWAY": "sandbox",
    "DUNNING_SANDBOX_FAILURE_RATE": "0.05",
    "DUNNING_SANDBOX_DELAY_MS": "200",
    "DUNNING_PUBLIC_BASE_URL": "http://pay.example.test",
    "DUNNING_LINK_SECRET": "x" * 31,
    "DUNNING_OPS__PASSWORD": "y" * 31,
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("variable", sorted(UNSAFE))
def test_production_refuses_an_unsafe_setting_at_start_up(
    prod_env: dict[str, str], variable: str, tmp_path: Path
) -> None:
    finished = start_refused(prod_env | {variable: UNSAFE[variable]}, free_port(), tmp_path)
    assert finished.code == 2, finished.err
    assert variable in finished.err
    assert "Traceback" not in finished.err


@pytest.mark.timeout(120)
def test_production_starts_with_safe_settings_and_sends_hsts(
    prod_env: dict[str, str], daemons: Daemons
) -> None:
    base = start_web(daemons, prod_env)
    for path in ("/healthz/live", "/update/not-a-token", "/ops"):
        response = httpx.get(base + path, timeout=10)
        assert response.headers.get("strict-transport-security") == "max-age=31536000", path


@pytest.mark.timeout(120)
def test_no_hsts_under_a_plain_http_public_url(prod_env: dict[str, str], daemons: Daemons) -> None:
    development = prod_env | {"DUNNING_ENV": "development"}
    base = start_web(daemons, development | {"DUNNING_PUBLIC_BASE_URL": "http://127.0.0.1:1"})
    assert "strict-transport-security" not in httpx.get(f"{base}/healthz/live").headers
