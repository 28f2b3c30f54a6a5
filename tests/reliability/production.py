"""A ``dunning`` process in production mode for the production-mode tests: a settings set that
passes every production check, and helpers that run the CLI or start ``dunning web`` with it."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.integration.conftest import dunning_executable, wait_until

OPS_USER = "ops"
OPS_PASSWORD = "ops-password-for-the-production-mode-tests"
LINK_SECRET = "0123456789abcdef" * 4
PUBLIC_URL = "https://pay.example.test"
STARTED_WITHIN_S = 30.0


def production_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """A production configuration every check accepts (the gateway is never called)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    return env | {
        "DUNNING_ENV": "production",
        "DUNNING_DATABASE_URL": database_url,
        "DUNNING_BROKER_URL": "stub://",
        "DUNNING_GATEWAY": "stripe",
        "DUNNING_STRIPE__API_KEY": "sk_test_production_mode_tests",
        "DUNNING_STRIPE__API_BASE": "http://127.0.0.1:9",
        "DUNNING_PUBLIC_BASE_URL": PUBLIC_URL,
        "DUNNING_LINK_SECRET": LINK_SECRET,
        "DUNNING_OPS__USERNAME": OPS_USER,
        "DUNNING_OPS__PASSWORD": OPS_PASSWORD,
        "DUNNING_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DUNNING_LOG_FORMAT": "json",
    }


@dataclass
class Finished:
    code: int
    out: str
    err: str


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout_s: float = 60) -> Finished:
    """Run ``dunning ARGS`` to its end."""
    proc = subprocess.run(
        [dunning_executable(), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return Finished(proc.returncode, proc.stdout, proc.stderr)


def start_refused(env: dict[str, str], port: int, cwd: Path) -> Finished:
    """Start ``dunning web``; it must exit by itself. One still serving after
    ``STARTED_WITHIN_S`` is stopped, and the test fails: it started."""
    proc = subprocess.Popen(
        [dunning_executable(), "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=STARTED_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"dunning web started in production with this:\n{err[-2000:]}"
        ) from None
    return Finished(proc.returncode, out, err)


def answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz/live", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_serving(base: str, proc: subprocess.Popen[bytes]) -> None:
    def alive() -> None:
        if proc.poll() is not None:
            raise AssertionError(f"dunning web exited with {proc.returncode}")

    wait_until(lambda: answers(base), timeout_s=60, what="dunning web to answer", alive=alive)
