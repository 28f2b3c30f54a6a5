"""Fixtures for the pipeline on real services: a scratch PostgreSQL database and a Redis database
number per module, an aiosmtpd server, and real ``dunning worker`` / ``dunning scheduler``
processes that never outlive their test.

The daemons are configured only through ``DUNNING_*`` variables, as in production; the test
process wires its own container against the same database and Redis database to seed the book
and read the results.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import dramatiq
import pytest
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, insert, select, text, update

from config.settings import Settings, load_settings
from dunning.bootstrap import Container, bootstrap
from dunning.broker_names import BrokerNames
from dunning.gateways.base import Decline
from dunning.gateways.ledger import LedgerEntry, SqlLedger
from dunning.services.failures import FailedCharge, record_failure
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade
from dunning.store.tables import customers, invoices, metadata, payment_methods, subscriptions
from tests.integration.rabbit import RABBIT_URL, delete_queues, need_rabbitmq, new_prefix
from tests.services import free_port, need, scratch_pg_database
from workers.broker import broker_for, declare_actors
from workers.dispatch import ActorDispatcher

T = TypeVar("T")

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# Redis database numbers these modules may use (the benchmarks use 14, their test 15); each
# module claims one for its run with a key in REDIS_CLAIM_DB, so two test runs on one machine
# do not flush each other's queues or share a scheduler lock.
REDIS_DB_POOL = range(10, 14)
REDIS_CLAIM_DB = 0
REDIS_CLAIM_KEY = "dunning:tests:integration:db:{}"
REDIS_CLAIM_WAIT_S = 120.0
STOP_TIMEOUT_S = 10.0
# Short leases and intervals: what takes minutes in production takes seconds here.
FAST_TIMING = {
    "DUNNING_TIMING__CLAIM_LEASE_S": "3",
    "DUNNING_TIMING__WORK_LEASE_S": "3",
    "DUNNING_TIMING__UNKNOWN_AFTER_S": "2",
    "DUNNING_TIMING__GATEWAY_TIMEOUT_S": "1",
    "DUNNING_TIMING__BROKER_HEARTBEAT_TIMEOUT_S": "5",
    "DUNNING_TIMING__LEADER_TTL_S": "3",
    "DUNNING_TIMING__LEADER_POLL_S": "0.5",
    "DUNNING_TIMING__RETRY_SCAN_INTERVAL_S": "1",
    "DUNNING_TIMING__OUTBOX_SCAN_INTERVAL_S": "1",
    "DUNNING_TIMING__RECONCILE_SCAN_INTERVAL_S": "1",
    "DUNNING_TIMING__EXPIRY_SCAN_INTERVAL_S": "3600",
    "DUNNING_TIMING__PURGE_SCAN_INTERVAL_S": "3600",
    "DUNNING_TIMING__MAIL_RETRY_BASE_S": "1",
}
MAIL_FROM = "billing@dunning.test"


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.2,
    alive: Callable[[], None] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` at the deadline.

    ``alive`` is called on every round so that a daemon that died fails the test at once,
    with its log, instead of at the deadline.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (the inspecting client does not decode, as dramatiq's must not)."""
    return value.decode() if isinstance(value, bytes) else value


def noon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about noon at ``now``: no email waits for quiet hours."""
    offset_h = 12 - now.astimezone(UTC).hour  # -11 .. +12, all valid Etc/GMT zones
    return f"Etc/GMT{-offset_h:+d}"  # the Etc/GMT sign is inverted: Etc/GMT-3 is UTC+3


# -- services ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_pg_url() -> Iterator[str]:
    """One migrated scratch PostgreSQL database for the module, dropped afterwards."""
    with scratch_pg_database() as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="module")
def redis_db() -> Iterator[int]:
    """A Redis database number this module holds for its run."""
    need("Redis", REDIS_HOST, REDIS_PORT)
    admin = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_CLAIM_DB)
    token = f"{os.getpid()}:{time.time_ns()}"

    def claim() -> int | None:
        for n in REDIS_DB_POOL:
            if admin.set(REDIS_CLAIM_KEY.format(n), token, nx=True, ex=600):
                return n
        return None

    n = wait_until(claim, timeout_s=REDIS_CLAIM_WAIT_S, what="a free Redis database", interval_s=1)
    try:
        yield n
    finally:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=n).flushdb()
        if admin.get(REDIS_CLAIM_KEY.format(n)) == token.encode():
            admin.delete(REDIS_CLAIM_KEY.format(n))
        admin.close()


@pytest.fixture
def rdb(redis_db: int) -> Iterator[redis.Redis]:
    """A client on the module's Redis database, flushed before and after each test."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def pg_engine(module_pg_url: str) -> Iterator[Engine]:
    """The module's database, emptied before each test (the sandbox ledger too)."""
    engine = make_engine(module_pg_url)
    names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    try:
        yield engine
    finally:
        engine.dispose()


class MailSink:
    """aiosmtpd handler keeping every accepted message, parsed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self._received.append((list(envelope.rcpt_tos), parsed))
        return "250 OK queued"

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [m for _, m in self._received]


@pytest.fixture
def smtp() -> Iterator[tuple[int, MailSink]]:
    """A real SMTP server on a free port (``Controller(port=0)`` does not work)."""
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop(no_assert=True)


# -- daemons -------------------------------------------------------------------------------------


def dunning_executable() -> str:
    """The ``dunning`` console script of this virtualenv."""
    beside = Path(sys.executable).parent / "dunning"
    found = str(beside) if beside.exists() else shutil.which("dunning")
    if not found:
        raise RuntimeError("the dunning console script is not installed; pip install -e .")
    return found


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines (other output, such as tracebacks, is skipped)."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut short by SIGKILL
        return out


class Daemons:
    """Starts ``dunning`` daemons in their own process groups; stops every one of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, Daemon] = {}
        self.stopped: list[Daemon] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Daemon:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                [dunning_executable(), *args],
                env=env,
                cwd=self.log_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: one signal reaches its children
            )
        daemon = Daemon(name, proc, log_path)
        self.running[name] = daemon
        return daemon

    def kill(self, name: str) -> Daemon:
        """SIGKILL the daemon's whole process group (the dramatiq parent and its workers)."""
        daemon = self.running.pop(name)
        _signal_group(daemon.proc, signal.SIGKILL)
        daemon.proc.wait(timeout=STOP_TIMEOUT_S)
        self.stopped.append(daemon)
        return daemon

    def stop(self, name: str) -> Daemon:
        """SIGTERM the process group, then SIGKILL it if it has not exited in time."""
        daemon = self.running.pop(name)
        _signal_group(daemon.proc, signal.SIGTERM)
        try:
            daemon.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(daemon.proc, signal.SIGKILL)
            daemon.proc.wait(timeout=STOP_TIMEOUT_S)
        # Worker children left behind by a parent that exited go with the group.
        _signal_group(daemon.proc, signal.SIGKILL)
        self.stopped.append(daemon)
        return daemon

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def check_alive(self) -> None:
        """Fail with its log when a running daemon has exited."""
        for daemon in self.running.values():
            code = daemon.proc.poll()
            if code is not None:
                tail = daemon.log()[-4000:]
                raise AssertionError(f"{daemon.name} exited with {code}; its log ends:\n{tail}")

    def dump_logs(self) -> None:
        for daemon in [*self.stopped, *self.running.values()]:
            sys.stdout.write(f"\n----- {daemon.name} (pid {daemon.pid}) -----\n")
            sys.stdout.write(daemon.log()[-6000:])


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass  # the group is gone already


# -- the pipeline --------------------------------------------------------------------------------


@dataclass
class Pipeline:
    """The services, the daemons and a container of the test process on the same stores."""

    env: dict[str, str]
    container: Container
    daemons: Daemons
    mail: MailSink
    broker_redis: redis.Redis | None
    seeded: int = 0  # numbers the seeded customers, invoices and cards

    @property
    def redis(self) -> redis.Redis:
        """The inspecting client of the Redis broker (a pipeline on RabbitMQ has none)."""
        assert self.broker_redis is not None, "this pipeline runs on RabbitMQ, not Redis"
        return self.broker_redis

    @property
    def broker_url(self) -> str:
        return self.env["DUNNING_BROKER_URL"]

    @property
    def names(self) -> BrokerNames:
        """Where the daemons' queues are on the broker."""
        return BrokerNames.for_settings(self.container.settings)

    @property
    def ns(self) -> str:
        """The daemons' Redis key namespace."""
        return self.names.redis_namespace

    @property
    def engine(self) -> Engine:
        return self.container.engine

    def start_worker(self, name: str = "worker", **extra_env: str) -> Daemon:
        args = ["worker", "-p", "2", "-t", "4", "--shutdown-timeout-s", "5"]
        return self.daemons.start(name, args, self.env | extra_env)

    def start_scheduler(self, name: str = "scheduler", **extra_env: str) -> Daemon:
        return self.daemons.start(name, ["scheduler"], self.env | extra_env)

    def wait(self, check: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
        """:func:`wait_until` that also fails at once when a daemon has died."""
        return wait_until(check, timeout_s=timeout_s, what=what, alive=self.daemons.check_alive)

    def container_for(self, **overrides: Any) -> Container:
        """Another container of the test process on the same settings (closed by the caller)."""
        return bootstrap(settings_from_env(self.env), **overrides)

    def seed_due_retries(self, n: int, *, prefix: str = "inv") -> list[str]:
        """``n`` past-due invoices whose first charge was softly declined, retry due now.

        Each has its own customer, Visa card (a sandbox token that succeeds) and monthly
        subscription; the decline goes through :func:`record_failure`, as a webhook would.
        """
        now = datetime.now(UTC)
        zone = noon_zone(now)
        base, self.seeded = self.seeded, self.seeded + n
        keys = [f"{prefix}{base + i:05d}" for i in range(n)]
        with self.engine.begin() as conn:
            conn.execute(
                insert(customers),
                [
                    {
                        "id": f"cus_{k}",
                        "email": f"{k}@customers.test",
                        "name": f"Customer {k}",
                        "locale": "en",
                        "timezone": zone,
                        "billing_emails": [],
                        "created_at": now,
                        "updated_at": now,
                    }
                    for k in keys
                ],
            )
            conn.execute(
                insert(payment_methods),
                [
                    {
                        "id": f"pm_{k}",
                        "customer_id": f"cus_{k}",
                        "gateway": "sandbox",
                        "token": f"sbx_ok_{k}",
                        "network": "visa",
                        "last4": "4242",
                        "exp_month": 12,
                        "exp_year": now.year + 5,
                        "is_default": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for k in keys
                ],
            )
            conn.execute(
                insert(subscriptions),
                [
                    {
                        "id": f"sub_{k}",
                        "customer_id": f"cus_{k}",
                        "plan": "default",
                        "amount": 1500,
                        "currency": "USD",
                        "interval": "month",
                        "status": "active",
                        "payment_method_id": f"pm_{k}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for k in keys
                ],
            )
        decline = Decline(decline_code="insufficient_funds", network_code="51")
        for k in keys:
            failure = FailedCharge(f"in_{k}", f"sub_{k}", 1500, "USD", decline, now)
            assert record_failure(self.container, failure, now) == "recorded"
        invoice_ids = [f"in_{k}" for k in keys]
        with self.engine.begin() as conn:
            conn.execute(
                update(invoices)
                .where(invoices.c.id.in_(invoice_ids))
                .values(next_attempt_at=datetime.now(UTC))
            )
        return invoice_ids

    def count_paid(self, invoice_ids: list[str]) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        invoices.c.id.in_(invoice_ids), invoices.c.status == "paid"
                    )
                ).scalar_one()
            )

    def all_paid(self, invoice_ids: list[str]) -> bool:
        return self.count_paid(invoice_ids) == len(invoice_ids)

    def ledger(self) -> list[LedgerEntry]:
        """Every charge the sandbox gateway made, whichever process made it."""
        return SqlLedger(self.engine).entries()

    @contextmanager
    def broker(self) -> Iterator[tuple[dramatiq.Broker, Container]]:
        """The broker of the daemons with the actors declared, and a container whose
        dispatcher sends on it (for running a producer in the test process).

        Built with the same functions :func:`workers.broker.setup` uses, without making the
        broker global in the test process.
        """
        c = self.container_for()
        broker = broker_for(c.settings)
        declare_actors(broker, BrokerNames.for_settings(c.settings))
        c.dispatcher = ActorDispatcher(broker)
        try:
            yield broker, c
        finally:
            broker.close()
            c.close()


def settings_from_env(env: dict[str, str]) -> Settings:
    """The settings the daemons read from ``env``, loaded in the test process."""
    old = {k: os.environ.get(k) for k in env if k.startswith("DUNNING_")}
    try:
        os.environ.update({k: v for k, v in env.items() if k.startswith("DUNNING_")})
        return load_settings()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def daemon_env(module_pg_url: str, smtp: tuple[int, MailSink], tmp_path: Path) -> dict[str, str]:
    """The environment of the daemons but the broker: every store is real, every interval
    short."""
    port, _ = smtp
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update(FAST_TIMING)
    env.update(
        {
            "DUNNING_DATABASE_URL": module_pg_url,
            "DUNNING_SMTP__HOST": "127.0.0.1",
            "DUNNING_SMTP__PORT": str(port),
            "DUNNING_SMTP__TIMEOUT_S": "5",
            "DUNNING_MAIL_FROM": MAIL_FROM,
            "DUNNING_OUTBOX_DIR": str(tmp_path / "outbox"),
            "DUNNING_METRICS_PORT": str(free_port()),
            "DUNNING_LOG_FORMAT": "json",
            "DUNNING_LOG_LEVEL": "INFO",
        }
    )
    return env


@pytest.fixture
def broker_name() -> str:
    """The broker the pipeline runs on; a test runs on RabbitMQ (too) by parametrizing it:
    ``@pytest.mark.parametrize("broker_name", ["redis", "rabbitmq"])``."""
    return "redis"


@pytest.fixture
def rabbit_prefix() -> Iterator[str]:
    """A queue prefix of this test alone on the shared RabbitMQ node; its queues are deleted
    afterwards."""
    need_rabbitmq()
    prefix = new_prefix()
    try:
        yield prefix
    finally:
        delete_queues(RABBIT_URL, prefix)


def broker_env(broker_name: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """``DUNNING_BROKER_URL`` (and for RabbitMQ the queue prefix) of ``broker_name``."""
    if broker_name == "rabbitmq":
        prefix = request.getfixturevalue("rabbit_prefix")
        return {"DUNNING_BROKER_URL": RABBIT_URL, "DUNNING_QUEUE_PREFIX": prefix}
    redis_db = request.getfixturevalue("redis_db")
    return {"DUNNING_BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"}


@pytest.fixture
def pipeline_env(
    daemon_env: dict[str, str], broker_name: str, request: pytest.FixtureRequest
) -> dict[str, str]:
    """The environment of the daemons, on the broker the test asks for (Redis by default)."""
    return daemon_env | broker_env(broker_name, request)


@pytest.fixture
def broker_redis(broker_name: str, request: pytest.FixtureRequest) -> redis.Redis | None:
    """The inspecting client of the pipeline's Redis broker; ``None`` on RabbitMQ."""
    if broker_name != "redis":
        return None
    client: redis.Redis = request.getfixturevalue("rdb")
    return client


@pytest.fixture
def pipeline(
    pipeline_env: dict[str, str],
    pg_engine: Engine,
    broker_redis: redis.Redis | None,
    smtp: tuple[int, MailSink],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Pipeline]:
    """Real stores, an SMTP server, a daemon runner; every daemon is stopped at the end."""
    log_dir = tmp_path / "daemons"
    log_dir.mkdir()
    daemons = Daemons(log_dir)
    container = bootstrap(settings_from_env(pipeline_env), engine=pg_engine)
    try:
        yield Pipeline(pipeline_env, container, daemons, smtp[1], broker_redis)
    finally:
        try:
            daemons.stop_all()
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                daemons.dump_logs()
            container.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so a fixture can tell the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
