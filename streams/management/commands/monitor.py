"""`manage.py monitor`: compute every group's lag once a second and push it to the UI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand

from streams import selectors, services

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
SLOW_CYCLE_S = 1.0


class Command(BaseCommand):
    help = "Publish consumer lag (log end offset minus committed offset) every second."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--interval", type=float, default=INTERVAL_S, help="Seconds between two cycles."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options["interval"]))

    async def _run(self, interval: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        snapshot = sync_to_async(selectors.group_lag_snapshot, thread_sensitive=True)
        log.info("lag monitor started (every %.1f s)", interval)
        while not stop.is_set():
            started = time.monotonic()
            try:
                await services.lag_publish(await snapshot())
            except Exception:
                # The database or Redis may be restarting; the next cycle tries again.
                log.exception("lag cycle failed")
            await services.cluster_stats_publish()
            elapsed = time.monotonic() - started
            if elapsed > SLOW_CYCLE_S:
                log.warning("lag cycle took %.2f s", elapsed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, interval - elapsed))
        log.info("lag monitor stopped")
