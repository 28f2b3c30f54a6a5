"""The scheduler daemon: APScheduler 3 (UTC) runs the producers while this instance leads."""

from __future__ import annotations

import logging
import threading
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from dunning.bootstrap import Container
from schedules.leader import Leadership
from schedules.producers import PRODUCERS

log = logging.getLogger(__name__)


def run_producer(c: Container, name: str, leader: Leadership) -> int:
    """One producer run, only while leading; errors are logged and the next tick retries.

    Leadership is checked here too, not only where the scheduler is paused: a leader whose
    renewal hangs stops starting producers when its lease would end, before a standby may
    take over."""
    if not leader.leading:
        log.warning(
            "producer %s skipped: scheduler %s has not renewed its lease in time",
            name,
            leader.identity,
        )
        return 0
    fn, _ = PRODUCERS[name]
    try:
        return fn(c, c.clock.now())
    except Exception:  # a failed scan must not kill the scheduler; the next tick retries
        log.exception("producer %s failed", name)
        return 0


def build_scheduler(c: Container, leader: Leadership) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)
    for name, (_, interval_setting) in PRODUCERS.items():
        interval_s = float(getattr(c.settings.timing, interval_setting))
        scheduler.add_job(
            run_producer,
            IntervalTrigger(seconds=interval_s, timezone=UTC),
            args=[c, name, leader],
            id=name,
            name=name,
            # A missed run is not made up twice: one run finds all the due work.
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(int(interval_s), 1),
            replace_existing=True,
        )
    return scheduler


def serve(c: Container, leader: Leadership, stop: threading.Event) -> None:
    """Run until ``stop`` is set: poll the lease, run the producers only while leading."""
    scheduler = build_scheduler(c, leader)
    scheduler.start(paused=True)
    poll_s = c.settings.timing.leader_poll_s
    leading = False
    try:
        while not stop.is_set():
            now_leading = leader.acquire_or_renew()
            if now_leading and not leading:
                log.info("scheduler %s is active", leader.identity)
                scheduler.resume()
                for name in PRODUCERS:  # catch up at once instead of waiting an interval
                    scheduler.modify_job(name, next_run_time=c.clock.now())
            elif leading and not now_leading:
                log.warning("scheduler %s stands by", leader.identity)
                scheduler.pause()
            leading = now_leading
            stop.wait(min(poll_s, c.settings.timing.leader_ttl_s / 3))
    finally:
        scheduler.shutdown(wait=True)
        leader.release()
