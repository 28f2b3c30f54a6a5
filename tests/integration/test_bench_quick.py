"""The benchmark harness in quick mode: tiny sizes, real services, every figure measured.

This checks that the harness works from start to end (services, worker processes, baselines,
the results file), not the timings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import IN_CI, need

pytestmark = [pytest.mark.bench, pytest.mark.integration, pytest.mark.timeout(200)]

REPO = Path(__file__).resolve().parents[2]
# Not the harness's default database number (14): a full run may be going on at the same time.
REDIS_DBS = (15, 13, 12, 11, 10)
# Inside the per-test timeout, with time left to stop the run cleanly.
RUN_LIMIT_S = 150


def _need_smtp_sink() -> None:
    if shutil.which("smtp-sink") or Path("/usr/sbin/smtp-sink").exists():
        return
    message = "smtp-sink is missing: run `bash scripts/system-packages`"
    if IN_CI:
        pytest.fail(message + " (CI=true: the bench test must not skip)")
    pytest.skip(message)


def _free_redis_db() -> str:
    """A database number nothing uses (empty: a live dramatiq consumer keeps a heartbeat key)."""
    import redis

    for db in REDIS_DBS:
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        try:
            if client.dbsize() == 0:
                return f"redis://127.0.0.1:6379/{db}"
        finally:
            client.close()
    pytest.fail(f"Redis databases {REDIS_DBS} are all in use")


def test_quick_run_measures_every_figure_and_writes_the_results(tmp_path: Path) -> None:
    need("PostgreSQL", "127.0.0.1", 5432)
    need("Redis", "127.0.0.1", 6379)
    _need_smtp_sink()
    from bench.__main__ import FIGURES

    out = tmp_path / "latest.json"
    redis_url = _free_redis_db()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--redis-url", redis_url],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=RUN_LIMIT_S)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the harness stop its workers and drop its scratch databases.
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=20)
        pytest.fail(f"the quick run took over {RUN_LIMIT_S} s:\n{stderr[-3000:]}")

    assert proc.returncode == 0, stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["quick"] is True
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["date"]
    figures = {f["name"]: f for f in report["figures"]}
    assert list(figures) == list(FIGURES)
    for name, f in figures.items():
        assert f["skipped"] is None, (name, f["skipped"])
        assert f["value"] is not None, name
        assert f["value"] > 0, name
        assert isinstance(f["met"], bool), name
        if f["baseline"] is not None:
            assert f["baseline"] > 0, name
            assert f["ratio"] == pytest.approx(f["value"] / f["baseline"], rel=0.02), name
    assert "| retry_charges " in stdout  # the table
