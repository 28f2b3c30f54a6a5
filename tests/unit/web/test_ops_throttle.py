"""Failed ops logins are counted per client address, logged, and past the budget refused."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dunning.bootstrap import Container, bootstrap
from dunning.web.app import create_app
from tests.unit.web.conftest import TestClient, web_settings

PASSWORD = "the-right-ops-password"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_failed_logins_are_logged_then_refused_right_password_included(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = web_settings(
        tmp_path, ops={"password": PASSWORD, "login_failures": 3, "login_window_s": 600}
    )
    c = bootstrap(settings)
    caplog.set_level(logging.WARNING, logger="dunning.web.ops_throttle")
    try:
        with TestClient(create_app(c)) as client:
            assert client.get("/ops").status_code == 401  # no credentials: not a failed login
            for path in ("/ops", "/metrics", "/healthz"):
                assert client.get(path, headers=basic("ops", "guess")).status_code == 401, path
            for path in ("/ops", "/metrics", "/healthz"):
                refused = client.get(path, headers=basic("ops", PASSWORD))
                assert refused.status_code == 429, path
                assert refused.headers["retry-after"] == "600"
            # without credentials the public pages still answer
            assert client.get("/healthz/live").status_code == 200
            assert client.get("/healthz").status_code in (200, 503)  # not 429
    finally:
        c.close()
    failed = [r.getMessage() for r in caplog.records if "failed login from" in r.getMessage()]
    assert len(failed) == 3
    assert all("testclient" in m for m in failed)
    assert "guess" not in caplog.text
    assert PASSWORD not in caplog.text
    assert any("refused: too many failed logins" in r.getMessage() for r in caplog.records)


def test_the_budget_is_per_address_and_returns_with_time(tmp_path: Path) -> None:
    from dunning.web.ops_throttle import FailedLogins

    now = [datetime(2026, 3, 2, 10, 0, tzinfo=UTC)]
    failures = FailedLogins(2, 60.0, lambda: now[0])
    assert failures.add("10.0.0.1") == 1
    assert failures.add("10.0.0.1") == 2
    assert failures.blocked("10.0.0.1")
    assert not failures.blocked("10.0.0.2")
    now[0] += timedelta(seconds=60.5)
    assert not failures.blocked("10.0.0.1")


def _guess_until_blocked(client: TestClient, forwarded: str) -> list[int]:
    headers = basic("ops", "guess") | {"X-Forwarded-For": forwarded}
    return [client.get("/ops", headers=headers).status_code for _ in range(3)]


def _behind_proxies(tmp_path: Path) -> Container:
    """Two failed logins allowed per client; the proxies of 10.0.0.0/24 are trusted."""
    return bootstrap(
        web_settings(
            tmp_path,
            ops={"password": PASSWORD, "login_failures": 2, "login_window_s": 600},
            web={"trusted_proxies": "10.0.0.0/24"},
        )
    )


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(tmp_path: Path) -> None:
    c = _behind_proxies(tmp_path)
    try:
        with TestClient(create_app(c), client=("10.0.0.9", 4000)) as proxy:
            assert _guess_until_blocked(proxy, "203.0.113.7") == [401, 401, 429]
            # another client behind the same balancer still has its own budget
            assert _guess_until_blocked(proxy, "198.51.100.2") == [401, 401, 429]
    finally:
        c.close()


def test_a_forwarded_header_from_an_untrusted_peer_changes_nothing(tmp_path: Path) -> None:
    c = _behind_proxies(tmp_path)
    try:
        with TestClient(create_app(c), client=("192.0.2.50", 4000)) as client:
            # a new made-up address per request does not buy new guesses
            codes = [
                client.get(
                    "/ops", headers=basic("ops", "guess") | {"X-Forwarded-For": f"203.0.113.{n}"}
                ).status_code
                for n in range(3)
            ]
            assert codes == [401, 401, 429]
    finally:
        c.close()
