"""`dunning run`: everything in one process on the embedded default, stopped cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.services import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except OSError:
        return 0, b""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    exe = Path(sys.executable).parent / "dunning"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe), "run", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 45
            status, body = 0, b""
            while time.monotonic() < deadline and status != 200:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
            assert status == 200, log.read_text()
            checks = json.loads(body)["checks"]
            assert checks["broker"]["ok"]
            assert checks["migrations"]["ok"]
            assert (tmp_path / "var" / "dunning.sqlite3").exists()
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "dunning stopped" in log.read_text()
