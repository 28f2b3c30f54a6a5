"""Verified webhook events accepted per second, with p50 and p99 latency.

``dunning web`` runs on loopback; an async httpx client posts ``n`` Stripe-signed
``invoice.payment_failed`` events, at most ``CONCURRENCY`` at a time, and stops by itself. Each
is verified, parsed, stored once and enqueued on the Redis broker. The baseline, next to it: an
endpoint on the same kind of server doing one INSERT per request, under the same load.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    BenchError,
    Figure,
    Run,
    count,
    die_with_parent,
    dunning_env,
    free_port,
    python,
    ratio,
    redis_db,
    scratch_database,
    wait_until,
)
from dunning.webhooks.signatures import sign_stripe

CONCURRENCY = 4
WARM_UP = 40
SECRET = "whsec_bench_secret"


def event(i: int, now: datetime) -> bytes:
    """A Stripe ``invoice.payment_failed`` event (API shape since 2025-03-31)."""
    invoice = {
        "id": f"in_wh_{i}", "object": "invoice", "amount_due": 2900, "amount_paid": 0,
        "currency": "eur", "customer": f"cus_{i}", "customer_email": f"c{i}@example.com",
        "status": "open", "attempt_count": 1,
        "parent": {"type": "subscription_details",
                   "subscription_details": {"metadata": {}, "subscription": f"sub_{i}"}},
        "payment_intent": {"id": f"pi_{i}", "object": "payment_intent",
                           "status": "requires_payment_method", "metadata": {},
                           "last_payment_error": {"type": "card_error", "code": "card_declined",
                                                  "decline_code": "insufficient_funds"}},
    }  # fmt: skip
    payload = {"id": f"evt_bench_{i}", "object": "event", "api_version": "2025-03-31.basil",
               "created": int(now.timestamp()), "data": {"object": invoice},
               "livemode": False, "type": "invoice.payment_failed"}  # fmt: skip
    return json.dumps(payload).encode()


async def load(url: str, n: int, sign: Callable[[bytes], dict[str, str]]) -> dict[str, Any]:
    """Post ``WARM_UP`` events, then ``n`` more with at most ``CONCURRENCY`` in flight and
    time those; return the rate and latencies."""
    now = datetime.now(UTC)
    latencies: list[float] = []
    refused: list[int] = []
    todo = iter(range(WARM_UP))

    async def client_loop(client: httpx.AsyncClient) -> None:
        for i in todo:
            body = event(i, now)
            started = time.perf_counter()
            response = await client.post(url, content=body, headers=sign(body))
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                refused.append(response.status_code)

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        # The server's first requests open its pools; they are not what is measured.
        await asyncio.gather(*(client_loop(client) for _ in range(CONCURRENCY)))
        latencies.clear()
        todo = iter(range(WARM_UP, WARM_UP + n))
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    if refused:
        raise BenchError(f"{len(refused)} of {n} requests refused, e.g. HTTP {refused[0]}")
    cuts = statistics.quantiles(latencies, n=100)
    return {"rate": round(n / elapsed, 1), "elapsed_s": round(elapsed, 3),
            "p50_ms": round(cuts[49] * 1000, 2), "p99_ms": round(cuts[98] * 1000, 2)}  # fmt: skip


@contextmanager
def server(cmd: list[str], env: dict[str, str], live_url: str, log: Path) -> Iterator[None]:
    """Start a web server process, wait until it answers, stop it afterwards."""
    with log.open("wb") as handle:
        proc = subprocess.Popen(cmd, env=env, cwd=log.parent, stdout=handle,
                                stderr=subprocess.STDOUT, preexec_fn=die_with_parent)  # fmt: skip
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise BenchError(f"{cmd[0]} exited with {proc.returncode}: see {log}")
            try:
                return httpx.get(live_url, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout_s=60, what=live_url, poll_s=0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(r: Run) -> list[Figure]:
    """Measure ``dunning web`` and the one-INSERT endpoint under the same load."""
    n = r.size(5_000, 100)
    exe = str(Path(python()).with_name("dunning"))

    def stripe_headers(body: bytes) -> dict[str, str]:
        return {"Stripe-Signature": sign_stripe(body, SECRET, int(time.time())),
                "Content-Type": "application/json"}  # fmt: skip

    with redis_db(r.redis_url), scratch_database(r.pg_admin_url) as url:
        port = free_port()
        env = dunning_env(r, url, DUNNING_STRIPE__WEBHOOK_SECRETS=json.dumps([SECRET]))
        cmd = [exe, "web", "--host", "127.0.0.1", "--port", str(port)]
        base_url = f"http://127.0.0.1:{port}"
        with server(cmd, env, base_url + "/healthz/live", r.workdir / "web.log"):
            value = asyncio.run(load(base_url + "/webhooks/stripe", n, stripe_headers))
        stored = count(url, "SELECT count(*) FROM webhook_events WHERE status = 'received'")
        if stored != WARM_UP + n:
            raise BenchError(f"{stored} of {WARM_UP + n} webhook events stored")
        port = free_port()
        cmd = [python(), "-m", "bench.baseline_web", "--port", str(port)]
        base_url = f"http://127.0.0.1:{port}"
        with server(cmd, dunning_env(r, url), base_url + "/live", r.workdir / "web-base.log"):
            base = asyncio.run(load(base_url + "/ingest", n, lambda b: {}))
    q = ratio(value["rate"], base["rate"])
    return [
        Figure(
            name="webhooks",
            title="verified webhook events accepted per second (p50, p99 latency)",
            value=value["rate"],
            unit=f"events/s (p50 {value['p50_ms']} ms, p99 {value['p99_ms']} ms)",
            target="ratio ≥ 0.5, p99 < 50 ms",
            baseline=base["rate"],
            baseline_unit=f"requests/s, one INSERT each (p99 {base['p99_ms']} ms)",
            ratio=q,
            met=q >= 0.5 and value["p99_ms"] < 50,
            details={"events": n, "concurrency": CONCURRENCY, "figure": value, "baseline": base},
        )
    ]
