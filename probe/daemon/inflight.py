"""The daemon's run in flight: measured on an event loop of its own in the worker thread, and
abandoned (cancelled, nothing of it kept) from any other thread: the stop's grace timer, a second signal."""

from __future__ import annotations

import asyncio
import threading

from probe.runner import RunConfig, RunSummary, run_async


class InflightRun:
    def __init__(self) -> None:
        self._abandon = threading.Event()
        self._inflight: tuple[asyncio.AbstractEventLoop, asyncio.Task] | None = None
        self._inflight_lock = threading.Lock()

    def measure(self, cfg: RunConfig, targets) -> RunSummary | None:
        """Measure, judge and build records (nothing written). None if abandoned."""

        async def main():
            with self._inflight_lock:
                if self._abandon.is_set():
                    raise asyncio.CancelledError
                self._inflight = (asyncio.get_running_loop(), asyncio.current_task())
            try:
                return await run_async(cfg, targets)
            finally:
                with self._inflight_lock:
                    self._inflight = None

        try:
            with asyncio.Runner() as loop_runner:
                return loop_runner.run(main())
        except asyncio.CancelledError:
            return None

    def abandon(self) -> None:
        with self._inflight_lock:
            self._abandon.set()
            if self._inflight is not None:
                loop, task = self._inflight
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:
                    pass  # the loop just finished
