"""Connection URLs are shown with their passwords masked, in the user part and the query."""

from __future__ import annotations

import pytest
from sqlalchemy import make_url

from dunning.store.readiness import shown
from dunning.urls import masked, scrubbed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:s%40cret@db:5432/book", "postgresql://app:***@db:5432/book"),
        (
            "postgresql://app@db/book?sslmode=require&password=hunter2&sslpassword=k3y",
            "postgresql://app@db/book?sslmode=require&password=***&sslpassword=***",
        ),
        ("redis://:only-pw@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://h:6379/0?password=p%26w&db=2", "redis://h:6379/0?password=***&db=2"),
        ("amqp://u:pw@h:5672/%2F?heartbeat=30", "amqp://u:***@h:5672/%2F?heartbeat=30"),
        ("amqps://u@h/v?auth_token=abc", "amqps://u@h/v?auth_token=***"),
        ("sqlite:///./var/dunning.sqlite3", "sqlite:///./var/dunning.sqlite3"),
        ("stub://", "stub://"),
    ],
)
def test_masked(url: str, expected: str) -> None:
    assert masked(url) == expected


def test_scrubbed_removes_the_secrets_wherever_an_error_quotes_them() -> None:
    url = "postgresql://app:s%40cret@db/book?password=hunter2"
    text = f"cannot connect to {url}: password for s@cret / s%40cret / hunter2 refused"
    out = scrubbed(text, url)
    for secret in ("s@cret", "s%40cret", "hunter2"):
        assert secret not in out
    assert "postgresql://app:***@db/book?password=***" in out


def test_database_messages_mask_query_passwords() -> None:
    url = make_url("postgresql+psycopg://app:pw123@db/book?password=q-secret")
    assert shown(url) == "postgresql://app:***@db/book?password=***"
