"""Failed /ops logins on two app instances sharing one real Redis: one budget per address for
both, not one each; without Redis (down, or none configured) each instance counts on its own."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from dunning.bootstrap import bootstrap
from dunning.web.app import create_app
from tests.integration.conftest import REDIS_HOST, REDIS_PORT
from tests.services import free_port
from tests.unit.web.conftest import TestClient, web_settings

pytestmark = pytest.mark.integration

PASSWORD = "the-right-ops-password"
LIMIT = 4


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"ops:{password}".encode()).decode()}


@pytest.fixture
def apps(module_pg_url: str, tmp_path: Path) -> Iterator[tuple[ExitStack, Path, str]]:
    with ExitStack() as stack:
        yield stack, tmp_path, module_pg_url


def start(
    apps: tuple[ExitStack, Path, str], limits_url: str, client: str = "203.0.113.7"
) -> TestClient:
    """One app instance (its own container and counters) as a web process has it."""
    stack, tmp_path, database_url = apps
    settings = web_settings(
        tmp_path,
        database_url=database_url,
        ops={"password": PASSWORD, "login_failures": LIMIT, "login_window_s": 600},
        web={"limits_redis_url": limits_url},
    )
    c = bootstrap(settings)
    stack.callback(c.close)
    app = create_app(c)
    return stack.enter_context(TestClient(app, client=(client, 40000)))


def guess(client: TestClient) -> int:
    return client.get("/ops", headers=basic("guess")).status_code


def test_two_instances_share_one_budget_per_address(
    rdb: redis.Redis, redis_db: int, apps: tuple[ExitStack, Path, str]
) -> None:
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"
    a, b = start(apps, url), start(apps, url)
    other = start(apps, url, client="198.51.100.9")
    # half the budget spent on each instance
    assert [guess(a), guess(b), guess(a), guess(b)] == [401] * LIMIT
    # both refuse the address now, the right password included
    for client in (a, b):
        refused = client.get("/ops", headers=basic(PASSWORD))
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "600"
    # another address has its own budget
    assert other.get("/ops", headers=basic(PASSWORD)).status_code == 200
    keys = [k.decode() for k in rdb.scan_iter(match="*ops-login*")]
    assert len(keys) == 1, keys  # one count for the guessing address, in Redis
    assert "203.0.113.7" not in keys[0]  # the address is hashed
    assert rdb.zcard(keys[0]) == LIMIT


def test_while_redis_is_down_each_instance_counts_in_memory(
    apps: tuple[ExitStack, Path, str],
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    a, b = start(apps, down), start(apps, down)
    assert [guess(a) for _ in range(LIMIT)] == [401] * LIMIT
    assert a.get("/ops", headers=basic(PASSWORD)).status_code == 429
    assert b.get("/ops", headers=basic(PASSWORD)).status_code == 200
