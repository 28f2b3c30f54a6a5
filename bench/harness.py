"""What every figure shares: the scratch services, the machine, the result rows.

A run gets its own PostgreSQL database (created, migrated, dropped), one Redis database number
that only it flushes (never FLUSHALL: other people's tests share the server), an ``smtp-sink``
on a free port, and environment variables for the ``dunning`` processes it starts.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SCRATCH_PREFIX = "dunning_bench_"
ABANDONED_S = 6 * 3600


class BenchError(RuntimeError):
    """The harness could not set a measurement up; the message says what to fix."""


@dataclass
class Figure:
    """One row of the results: the figure, its baseline from the same run, and the verdict."""

    name: str
    title: str
    value: float | None
    unit: str
    target: str
    baseline: float | None = None
    baseline_unit: str = ""
    ratio: float | None = None
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``, rounded for the table; 0 when the baseline is 0."""
    return round(value / baseline, 3) if baseline else 0.0


@dataclass
class Run:
    """The options and services one run of the harness shares between figures."""

    quick: bool
    pg_admin_url: str = PG_ADMIN_URL
    redis_url: str = REDIS_URL
    workdir: Path = field(default_factory=lambda: Path("/tmp"))
    log: Callable[[str], None] = print

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def die_with_parent() -> None:
    """``preexec_fn`` for the processes a run starts: SIGTERM them when the harness dies.

    A harness killed outright (a CI timeout) would otherwise leave worker processes behind,
    polling Redis and holding their scratch database open. Linux only; a no-op elsewhere.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool], *, timeout_s: float, what: str, poll_s: float = 0.05
) -> float:
    """Poll ``check`` until true; return the monotonic time it became true."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


# -- the machine --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """nproc, CPU model, memory, load averages, Python and the date, for the results file."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "load_avg": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


# -- PostgreSQL ---------------------------------------------------------------------------------


@contextmanager
def scratch_database(admin_url: str, *, migrate: bool = True) -> Iterator[str]:
    """A new PostgreSQL database (migrated to head); dropped afterwards. Yields its URL."""
    name = f"{SCRATCH_PREFIX}{int(time.time())}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            _drop_abandoned(conn)
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL is not reachable at {admin_url}: {exc}") from exc
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        if migrate:
            from dunning.gateways.ledger import SqlLedger
            from dunning.store.engine import make_engine
            from dunning.store.migrate import upgrade

            engine = make_engine(url)
            upgrade(engine)
            # The sandbox ledger's table is created by the first gateway built; made here, the
            # worker processes do not race each other to create it.
            SqlLedger(engine)
            engine.dispose()
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_abandoned(conn: psycopg.Connection[Any]) -> None:
    """Drop scratch databases a killed run left behind: older than ``ABANDONED_S`` and with
    nobody connected (a run still going always has a connection open)."""
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (SCRATCH_PREFIX + "%",)
    ).fetchall()
    for (name,) in rows:
        stamp = name[len(SCRATCH_PREFIX) :].split("_", 1)[0]
        if not stamp.isdigit() or time.time() - int(stamp) < ABANDONED_S:
            continue
        try:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        except psycopg.errors.ObjectInUse:
            continue


class Count:
    """A reusable ``SELECT count(*) …`` on its own connection, for polling progress."""

    def __init__(self, url: str, sql: str) -> None:
        self._conn = psycopg.connect(url, autocommit=True)
        self._sql = sql.encode()

    def __call__(self) -> int:
        row = self._conn.execute(self._sql).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._conn.close()


def count(url: str, sql: str) -> int:
    """One ``SELECT count(*) …`` on the database at ``url``."""
    counter = Count(url, sql)
    try:
        return counter()
    finally:
        counter.close()


# -- Redis ----------------------------------------------------------------------------------------


def check_no_consumers(url: str, *, wait_s: float = 1.5) -> None:
    """Fail when another dramatiq worker consumes from the run's Redis database: it would take
    the run's messages and process them against its own database."""
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
        time.sleep(wait_s)  # an idle consumer polls (and heartbeats) at least once a second
        others = int(client.zcard("dramatiq:__heartbeats__"))
        client.flushdb()
    except redis.RedisError as exc:
        raise BenchError(f"Redis is not reachable at {url}: {exc}") from exc
    finally:
        client.close()
    if others:
        raise BenchError(
            f"{others} dramatiq consumer(s) already poll {url}; stop them or pass --redis-url "
            "with a database number nothing else uses"
        )


@contextmanager
def redis_db(url: str) -> Iterator[redis.Redis]:
    """The run's own Redis database number, emptied before and after (FLUSHDB, that one only)."""
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis is not reachable at {url}: {exc}") from exc
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


# -- the SMTP sink --------------------------------------------------------------------------------


@dataclass
class Sink:
    """Postfix's ``smtp-sink``: accepts and drops mail, counts the DATA commands it completed."""

    port: int
    proc: subprocess.Popen[bytes]
    out: Path

    def delivered(self) -> int:
        """Messages the sink has accepted so far (from its ``-c`` counter)."""
        data = self.out.read_bytes()[-200:].decode("ascii", "replace")
        counts = re.findall(r"mesg=(\d+)", data)
        return int(counts[-1]) if counts else 0


@contextmanager
def smtp_sink(workdir: Path) -> Iterator[Sink]:
    """Start ``smtp-sink`` on a free loopback port; stop it afterwards."""
    exe = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if exe is None:
        raise BenchError("smtp-sink is missing: run `bash scripts/system-packages` (Postfix)")
    port = free_port()
    out = workdir / f"smtp-sink-{port}.out"
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    # smtp-sink drops its privileges, which clears a parent-death signal; the shell keeps one
    # and ends the sink when it is told to stop or the harness dies.
    script = 'trap \'kill "$child"\' TERM; "$@" & child=$!; wait "$child"'
    with out.open("wb") as handle:
        proc = subprocess.Popen(
            ["sh", "-c", script, "sh", exe, *user, "-c", f"127.0.0.1:{port}", "1000"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    sink = Sink(port, proc, out)
    try:
        wait_until(lambda: _listening(port), timeout_s=10, what=f"smtp-sink on port {port}")
        yield sink
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# -- environment of the processes we start -----------------------------------------------------


def dunning_env(
    run: Run, database_url: str, *, sink: Sink | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a ``dunning`` process: this run's database, broker and SMTP sink.

    The caller's ``DUNNING_*`` variables are dropped so that nothing outside the run leaks in.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update(
        {
            "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
            "DUNNING_DATABASE_URL": database_url,
            "DUNNING_BROKER_URL": run.redis_url,
            # dramatiq's plain layout (namespace "dramatiq"), which the harness reads and feeds
            # directly; each run has a Redis database of its own.
            "DUNNING_QUEUE_PREFIX": "",
            "DUNNING_METRICS_PORT": str(free_port()),
            "DUNNING_OUTBOX_DIR": str(run.workdir / "outbox"),
        }
    )
    if sink is not None:
        env["DUNNING_SMTP__HOST"] = "127.0.0.1"
        env["DUNNING_SMTP__PORT"] = str(sink.port)
    env.update(extra)
    return env


def python() -> str:
    return sys.executable
