"""The email figures' baseline: aiosmtplib sending one pre-rendered message over and over.

One process per worker process of the figure, one connection each, to the same sink. Prints
one JSON line: how many were sent and the wall-clock start and end (after connecting)::

    python -m bench.smtp_blast --port 2525 --count 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib

from bench.harness import die_with_parent
from dunning.mail.message import build_message, message_id_for
from dunning.mail.render import render_email
from dunning.mail.samples import sample_context


def prerendered(kind: str = "payment_recovered") -> EmailMessage:
    """The message the pipeline would send for ``kind``, rendered once."""
    rendered = render_email(
        kind, "en", sample_context(kind), brand_name="Example", support_email="help@example.com"
    )
    return build_message(
        rendered,
        mail_from="billing@example.com",
        to="customer@example.com",
        cc=[],
        message_id=message_id_for("bench", "billing@example.com"),
        date=datetime.now(UTC),
    )


async def blast(port: int, count: int, connections: int, start_at: float) -> dict[str, float]:
    """Send ``count`` copies over ``connections`` reused connections from wall-clock time
    ``start_at`` on (so that several processes send at the same time); return the timings."""
    message = prerendered()
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
               for _ in range(connections)]  # fmt: skip
    for client in clients:
        await client.connect()
    await asyncio.sleep(max(start_at - time.time(), 0))
    share = [count // connections + (1 if i < count % connections else 0)
             for i in range(connections)]  # fmt: skip

    async def send(client: aiosmtplib.SMTP, n: int) -> None:
        for _ in range(n):
            await client.send_message(message)

    start = time.time()
    await asyncio.gather(*(send(c, n) for c, n in zip(clients, share, strict=True)))
    end = time.time()
    for client in clients:
        await client.quit()
    return {"sent": count, "start": start, "end": end}


def main(argv: list[str] | None = None) -> int:
    """Parse the options, send, print the timings as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args(argv)
    timings = asyncio.run(blast(args.port, args.count, args.connections, args.start_at))
    print(json.dumps(timings), flush=True)
    return 0


def measure(port: int, *, processes: int, count: int, env: dict[str, str]) -> dict[str, float]:
    """Run ``processes`` senders at once, ``count`` messages in all; return the rate."""
    # Every sender has imported and connected by then (a quick run's few messages need less).
    start_at = time.time() + (3.0 if count >= 1000 else 1.5)
    share = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.smtp_blast",
                "--port",
                str(port),
                "--count",
                str(n),
                "--start-at",
                str(start_at),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        for n in share
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"smtp_blast exited with {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    elapsed_s = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {"sent": count, "elapsed_s": round(elapsed_s, 3), "rate": round(count / elapsed_s, 1)}


if __name__ == "__main__":
    raise SystemExit(main())
