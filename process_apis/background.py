"""The process tier's background loops (outbox dispatchers, event relay, recovery, reconciliation).

Each loop sleeps until its interval passes or someone :meth:`Wakeup.kick`\\ s it (a commit that gave it work),
and stops promptly at shutdown. Each turn runs in a trace of its own, so what it logs, calls, raises to the
exception queue and emits as events shares one trace id (work resumed for a request, such as a queued job,
switches to that request's trace).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from runtime import correlation

log = logging.getLogger("process_apis.background")


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def kick(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less if kicked."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
        self._event.clear()


class Loops:
    """Named background loops sharing one stop signal."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._wakeups: list[Wakeup] = []

    def start(self, name: str, body: Callable[[], Awaitable[object]], *, interval: Callable[[bool], float],
              wakeup: Wakeup | None = None) -> None:
        """Run ``body`` again and again; ``interval(failed)`` says how long to wait before the next turn."""
        wake = wakeup or Wakeup()
        self._wakeups.append(wake)

        async def loop() -> None:
            while not self.stop.is_set():
                failed = False
                token = correlation.set_current(correlation.from_headers(None, None))
                try:
                    await body()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failed = True
                    log.exception("background loop failed; retrying", extra={"loop": name})
                finally:
                    correlation.reset_current(token)
                if self.stop.is_set():
                    return
                await wake.wait(interval(failed))

        self.tasks[name] = asyncio.create_task(loop(), name=f"psgw-{name}")

    async def shutdown(self, grace_seconds: float = 5.0) -> None:
        self.stop.set()
        for wake in self._wakeups:
            wake.kick()
        if not self.tasks:
            return
        _done, pending = await asyncio.wait(self.tasks.values(), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
