"""A RabbitMQ node of the test's own, which it can kill and restart: its own node name, AMQP
and distribution ports, data and log directories and Erlang cookie, and an empty
configuration file (so nothing of the shared node's ``/etc/rabbitmq`` applies).

The shared node on 127.0.0.1:5672 is never stopped, killed or restarted here: other test runs
use it. The two only share ``epmd``, the Erlang port mapper, where each is a separate name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pika
import pika.exceptions
import pytest

from tests.services import IN_CI, free_port

START_TIMEOUT_S = 90.0
# The server script itself, not the /usr/sbin wrapper that switches to the rabbitmq user and
# its home (and with them to the shared node's settings).
SERVER_SCRIPTS = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)


def rabbitmq_server_script() -> str:
    """The ``rabbitmq-server`` script; skip without it (fail in CI)."""
    for path in SERVER_SCRIPTS:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("rabbitmq-server")
    if found:
        return found
    message = "rabbitmq-server is not installed"
    if IN_CI:
        pytest.fail(message + " (CI=true: reliability tests must not skip)")
    pytest.skip(message)


class RabbitNode:
    """A ``rabbitmq-server`` this test starts, kills with SIGKILL and starts again on the same
    port and data directory (so durable queues and persistent messages come back)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = f"dunning-t-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.start_s: list[float] = []

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _env(self) -> dict[str, str]:
        d = self.directory
        for sub in ("mnesia", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "rabbitmq.conf").write_text("")
        (d / "rabbitmq-env.conf").write_text("")
        (d / "enabled_plugins").write_text("[].\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        return env | {
            "HOME": str(d),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self) -> None:
        """Start the node and wait until it takes AMQP connections."""
        started = time.monotonic()
        env = self._env()  # creates the directories
        with (self.directory / "server.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [rabbitmq_server_script()],
                env=env,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: one signal reaches the Erlang VM too
            )
        self.starts += 1
        self._wait_ready(started)
        self.start_s.append(round(time.monotonic() - started, 1))

    def _wait_ready(self, started: float) -> None:
        params = pika.URLParameters(self.url)
        params.connection_attempts = 1
        params.socket_timeout = 2
        while True:
            try:
                pika.BlockingConnection(params).close()
                return
            except pika.exceptions.AMQPError:
                assert self.proc is not None
                if self.proc.poll() is not None or time.monotonic() - started > START_TIMEOUT_S:
                    raise AssertionError(f"rabbitmq-server did not start:\n{self.log()}") from None
                time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the whole node: no shutdown, what is on disk is what survives."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the Erlang VM shuts down cleanly
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # helpers left behind by the VM
        except ProcessLookupError:
            pass
        self.proc = None

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
