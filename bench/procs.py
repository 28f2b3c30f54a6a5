"""Worker processes the harness starts: ``dunning worker`` and the baseline's ``dramatiq``.

Each group runs in its own session, logs to a file, is ready once every worker process has
said so, and is stopped by its own process id. RSS comes from ``/proc``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness import BenchError, die_with_parent, python

READY = "Worker process is ready for action."
QUEUES = ("charges", "emails", "steps", "events", "maintenance")


@dataclass
class Group:
    """A ``dramatiq`` master process and its forked worker processes."""

    proc: subprocess.Popen[bytes]
    log: Path
    processes: int
    threads: int

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise BenchError(f"worker processes exited with {self.proc.returncode}:\n{self.tail()}")
        return self.log.read_text(errors="replace").count(READY) >= self.processes

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        """The worker processes (the children running worker threads), oldest first."""
        pids = []
        for pid in _children(self.proc.pid):
            if _threads(pid) >= self.threads:
                pids.append(pid)
        return sorted(pids)

    def rss_mb(self) -> list[float]:
        """Resident memory of each worker process, in MB."""
        return [round(_rss_kb(pid) / 1024, 1) for pid in self.worker_pids()]


def _children(parent: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            out.append(int(entry))
    return out


def _status(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _threads(pid: int) -> int:
    return _status(pid, "Threads")


def _rss_kb(pid: int) -> int:
    return _status(pid, "VmRSS")


def dunning_worker_cmd(processes: int, threads: int, queues: Sequence[str]) -> list[str]:
    """``dunning worker -p N -t T -Q "..."``, through this interpreter's console script."""
    exe = Path(python()).with_name("dunning")
    head = [str(exe)] if exe.exists() else [python(), "-m", "dunning.cli.main"]
    return [*head, "worker", "-p", str(processes), "-t", str(threads), "-Q", " ".join(queues)]


def dramatiq_cmd(module: str, processes: int, threads: int, queues: Sequence[str]) -> list[str]:
    """The plain ``dramatiq`` CLI with the flags ``dunning worker`` passes."""
    return [python(), "-m", "dramatiq", module, "--processes", str(processes), "--threads",
            str(threads), "--skip-logging", "--queues", *queues]  # fmt: skip


@contextmanager
def worker_group(
    cmd: list[str],
    env: dict[str, str],
    *,
    log: Path,
    processes: int,
    threads: int,
    ready_timeout_s: float = 90.0,
) -> Iterator[Group]:
    """Start ``cmd``, wait until each worker process is ready, stop it afterwards."""
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=log.parent,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    group = Group(proc, log, processes, threads)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not group.ready():
            if time.monotonic() > deadline:
                raise BenchError(f"worker processes not ready after {ready_timeout_s:.0f} s")
            time.sleep(0.1)
        yield group
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # The group is the session this harness started for these workers only.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
