"""Servers a reliability test owns and can break: its own ``redis-server`` (in a temporary
directory, on a free port) and an SMTP server that can be stopped and started on one port.

The shared Redis on 127.0.0.1:6379 is never flushed, killed or restarted here: other test runs
use it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller

from tests.integration.conftest import MailSink
from tests.services import IN_CI, free_port

START_TIMEOUT_S = 15.0


def redis_server_binary() -> str:
    """``redis-server`` on the PATH; skip without it (fail in CI)."""
    found = shutil.which("redis-server")
    if found:
        return found
    message = "redis-server is not installed"
    if IN_CI:
        pytest.fail(message + " (CI=true: reliability tests must not skip)")
    pytest.skip(message)


class RedisServer:
    """A ``redis-server`` this test starts, kills and restarts; append-only when asked."""

    def __init__(self, directory: Path, *, appendonly: bool) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        """Start the server on its port and directory (an AOF there is loaded) and wait for it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--logfile",
            "redis.log",
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        probe = self.client()
        try:
            while True:
                try:
                    # A server still loading its AOF answers LOADING (an error) to PING.
                    if probe.ping():
                        return
                except redis.RedisError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"redis-server did not start:\n{self.log()}") from None
                time.sleep(0.05)
        finally:
            probe.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync; what the AOF holds is what survives."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class SlowSink(MailSink):
    """A :class:`MailSink` that takes ``delay_s`` to answer each message's data, as a busy
    server does: a batch of emails is then in flight for a while."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay_s)
        return await super().handle_DATA(server, session, envelope)


class SmtpServer:
    """aiosmtpd on a fixed free port, with a :class:`MailSink` that outlives restarts."""

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.sink = SlowSink(delay_s) if delay_s else MailSink()
        self.port = free_port()
        self._controller: Controller | None = None
        self.stops = 0

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening: new connections are refused, open ones are closed."""
        if self._controller is not None:
            self._controller.stop(no_assert=True)
            self._controller = None
            self.stops += 1
