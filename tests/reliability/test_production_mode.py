"""``DUNNING_ENV=production`` against the real processes, as an attacker would try it: start-up
refuses what would look safe and is not (the sandbox gateway and its fault knobs, a plain-HTTP
public URL, short secrets), exiting 2 and naming the variable; a started web service sends
HSTS under an https public URL; /metrics is not served to the public without the ops login (a
scraper uses the internal metrics port); the public /healthz names no host, user, database or
path; ``dunning check`` masks passwords, in query strings too; ``dunning endpoints add``
refuses internal, loopback, link-local, private and credential-bearing URLs (and plain http in
production) unless a network is allowed; failed ops logins are logged and, past the budget of
an address, refused (429) whatever the password.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import Daemons
from tests.reliability.production import (
    OPS_PASSWORD,
    OPS_USER,
    production_env,
    run_cli,
    start_refused,
    wait_serving,
)
from tests.reliability.servers import RedisServer
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


def start_web(daemons: Daemons, env: dict[str, str], *args: str, name: str = "web") -> str:
    port = free_port()
    daemon = daemons.start(name, ["web", "--host", "127.0.0.1", "--port", str(port), *args], env)
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


@pytest.mark.timeout(120)
def test_metrics_and_health_details_are_for_operators_only(
    prod_env: dict[str, str], daemons: Daemons, module_pg_url: str
) -> None:
    internal_port = free_port()
    base = start_web(daemons, prod_env | {"DUNNING_OPS__METRICS_PORT": str(internal_port)})
    login = (OPS_USER, OPS_PASSWORD)
    with httpx.Client(base_url=base, timeout=15) as public:
        refused = public.get("/metrics")
        assert refused.status_code == 401
        assert "dunning_" not in refused.text
        assert public.get("/metrics", auth=(OPS_USER, "guess")).status_code == 401
        scraped = public.get("/metrics", auth=login)
        assert scraped.status_code == 200
        assert (
            "dunning_funnel_amount_minor" in scraped.text
            or "dunning_funnel_invoices" in scraped.text
        )

        health = public.get("/healthz")
        assert health.status_code == 200, health.text
        url = urlsplit(module_pg_url)
        for revealing in (url.hostname, url.username, url.path.strip("/"), "outbox", "/"):
            assert revealing
            assert revealing not in health.text, (revealing, health.text)
        detailed = public.get("/healthz", auth=login).json()
        assert url.path.strip("/") in detailed["checks"]["database"]["detail"]

    internal = f"http://127.0.0.1:{internal_port}"
    assert "dunning_funnel_invoices" in httpx.get(f"{internal}/metrics", timeout=15).text
    for path in ("/ops", "/healthz", "/update/x"):
        assert httpx.get(internal + path, timeout=15).status_code == 404, path


@pytest.mark.timeout(120)
def test_check_masks_passwords_in_the_user_part_and_the_query(
    prod_env: dict[str, str], module_pg_url: str, tmp_path: Path
) -> None:
    joiner = "&" if "?" in module_pg_url else "?"
    env = prod_env | {
        "DUNNING_DATABASE_URL": f"{module_pg_url}{joiner}password=pg-query-secret-1",
        "DUNNING_BROKER_URL": "redis://:redis-user-secret-2@127.0.0.1:1/0?password=redis-query-3",
    }
    finished = run_cli(["check", "--json"], env, tmp_path)
    assert finished.code == 1, finished.err  # the broker is unreachable
    for secret in ("pg-query-secret-1", "redis-user-secret-2", "redis-query-3"):
        assert secret not in finished.out + finished.err, secret
    assert "password=***" in finished.out


INSIDE = [
    "http://127.0.0.1:8000/hooks",
    "http://localhost/hooks",
    "http://[::1]/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/hooks",
    "http://192.168.1.1/hooks",
    "https://user:secret@merchant.example/hooks",
]


@pytest.mark.timeout(300)
def test_endpoints_that_point_inside_are_refused(prod_env: dict[str, str], tmp_path: Path) -> None:
    development = prod_env | {"DUNNING_ENV": "development"}
    for url in INSIDE:
        refused = run_cli(["endpoints", "add", url], development, tmp_path)
        assert refused.code == 2, (url, refused.out, refused.err)
        assert "endpoint" in refused.err, (url, refused.err)
    production_http = run_cli(
        ["endpoints", "add", "http://93.184.215.14/hooks"], prod_env, tmp_path
    )
    assert production_http.code == 2
    assert "https" in production_http.err
    allowed = development | {"DUNNING_ENDPOINTS__ALLOW_NETWORKS": '["127.0.0.0/8"]'}
    added = run_cli(
        ["endpoints", "add", "http://127.0.0.1:8000/hooks", "--json"], allowed, tmp_path
    )
    assert added.code == 0, added.err
    listed = run_cli(["endpoints", "list", "--json"], development, tmp_path)
    assert [e["url"] for e in json.loads(listed.out)["endpoints"]] == [
        "http://127.0.0.1:8000/hooks"
    ]
    assert (
        run_cli(
            ["endpoints", "remove", str(json.loads(added.out)["id"])], development, tmp_path
        ).code
        == 0
    )


@pytest.mark.timeout(120)
def test_failed_ops_logins_are_logged_and_throttled(
    prod_env: dict[str, str], daemons: Daemons
) -> None:
    env = prod_env | {"DUNNING_OPS__LOGIN_FAILURES": "4", "DUNNING_OPS__LOGIN_WINDOW_S": "300"}
    base = start_web(daemons, env)
    with httpx.Client(base_url=base, timeout=15) as client:
        assert client.get("/ops").status_code == 401  # no credentials: a challenge, not a failure
        for guess in ("a", "b", "c", "d"):
            assert client.get("/ops", auth=(OPS_USER, guess)).status_code == 401
        for path in ("/ops", "/metrics", "/healthz"):
            throttled = client.get(path, auth=(OPS_USER, OPS_PASSWORD))
            assert throttled.status_code == 429, path
        assert client.get("/healthz/live").status_code == 200
    lines = daemons.running["web"].json_lines()
    failed = [line for line in lines if "failed login from 127.0.0.1" in line.get("message", "")]
    assert len(failed) == 4
    assert any("too many failed logins" in line.get("message", "") for line in lines)
    assert OPS_PASSWORD not in daemons.running["web"].log()


@pytest.mark.timeout(120)
def test_two_web_processes_share_one_failed_login_budget(
    prod_env: dict[str, str], daemons: Daemons, own_redis: RedisServer
) -> None:
    env = prod_env | {
        "DUNNING_OPS__LOGIN_FAILURES": "4",
        "DUNNING_OPS__LOGIN_WINDOW_S": "300",
        "DUNNING_WEB__LIMITS_REDIS_URL": own_redis.url,
    }
    bases = [start_web(daemons, env, name="web-a"), start_web(daemons, env, name="web-b")]
    with httpx.Client(timeout=15) as client:
        for i, guess in enumerate(("a", "b", "c", "d")):  # two guesses on each process
            assert client.get(f"{bases[i % 2]}/ops", auth=(OPS_USER, guess)).status_code == 401
        for base in bases:
            assert client.get(f"{base}/ops", auth=(OPS_USER, OPS_PASSWORD)).status_code == 429
    with own_redis.client() as r:
        assert [r.zcard(k) for k in r.scan_iter(match="*ops-login*")] == [4]
