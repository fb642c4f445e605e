"""Time as the sampler and the emulated bus see it.

Everything that waits or reads time takes a ``Clock`` so that tests and the
accelerated soak can drive hours of signal in seconds and reproduce overruns
exactly. Wall-clock time (UTC) is only for labelling results.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic_ns(self) -> int: ...

    def sleep_until(self, deadline_ns: int) -> None: ...

    def wall_ns(self) -> int: ...


class RealClock:
    """The machine's monotonic clock; ``sleep_until`` targets an absolute deadline."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_until(self, deadline_ns: int) -> None:
        remaining = deadline_ns - time.monotonic_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)

    def wall_ns(self) -> int:
        return time.time_ns()


class SimulatedClock:
    """A clock that only moves when someone sleeps or spends time (``advance``).

    Thread-safe, so an emulated bus (spending bus time) and the sampler (sleeping)
    can share it. Wall time is a fixed epoch plus the simulated monotonic time.
    """

    def __init__(self, start_ns: int = 1_000_000_000, wall_epoch_ns: int = 1_767_225_600 * 10**9) -> None:
        self._now = start_ns
        self._wall_offset = wall_epoch_ns - start_ns
        self._lock = threading.Lock()

    def monotonic_ns(self) -> int:
        with self._lock:
            return self._now

    def advance(self, ns: int) -> None:
        with self._lock:
            self._now += max(0, int(ns))

    def sleep_until(self, deadline_ns: int) -> None:
        with self._lock:
            if deadline_ns > self._now:
                self._now = deadline_ns

    def wall_ns(self) -> int:
        with self._lock:
            return self._now + self._wall_offset
