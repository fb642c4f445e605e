"""The acquisition thread: one ADC read per slot of an absolute sampling grid.

Slot k is due at ``t0 + k·period`` on the monotonic clock, so the rate never
drifts with read time or wake-up jitter. Each PCF8591 byte is the conversion
started by the *previous* read, so it is stored under that read's slot and
instant. A slot whose read fails, or that the thread reaches later than the
tolerance, is recorded as missing (a gap in the ring) and counted: samples are
never invented or moved in time. After ``fault_after`` without a good sample
the sampler reports a sensor fault, backs off, reopens the device, and reports
the recovery with the outage length.
"""

from __future__ import annotations

import errno as errnos
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import numpy as np

from ecgd.acquisition.clock import Clock
from ecgd.acquisition.ring import SampleRing
from ecgd.acquisition.sources import AdcSource

# Errors after which the device must be opened again (gone, unplugged, chip reset).
REOPEN_ERRNOS = frozenset({errnos.ENODEV, errnos.ENXIO, errnos.ENOENT, errnos.EBADF})
_CHUNK_NS = 50_000_000  # long waits are cut so that stop() is honoured within 50 ms


@dataclass(frozen=True)
class SampleGrid:
    """Slot k is due at ``t0_ns + k * period``; ``wall_offset_ns`` labels slots in UTC."""

    t0_ns: int
    rate_hz: float
    wall_offset_ns: int
    first_seq: int = 0

    @cached_property
    def period(self) -> Fraction:
        """Exact, so that slot k is never off by accumulated rounding (computed once: Fractions are slow)."""
        return Fraction(10**9) / Fraction(self.rate_hz).limit_denominator(10**6)

    @cached_property
    def _ratio(self) -> tuple[int, int]:
        return self.period.numerator, self.period.denominator

    def deadline_ns(self, seq: int) -> int:
        num, den = self._ratio
        return self.t0_ns + ((seq - self.first_seq) * num) // den

    def first_slot_at_or_after(self, t_ns: int) -> int:
        num, den = self._ratio
        return self.first_seq + max(0, -((-(t_ns - self.t0_ns) * den) // num))

    def wall_ns(self, seq: int) -> int:
        return self.deadline_ns(seq) + self.wall_offset_ns


@dataclass(frozen=True)
class SamplerEvent:
    """A change the daemon must report: ``sensor_fault``, ``sensor_recovered``, ``realtime_refused``."""

    kind: str
    monotonic_ns: int
    seq: int
    detail: str
    outage_s: float = 0.0


@dataclass(frozen=True)
class SamplerStats:
    taken: int
    missing: int
    missing_late: int
    missing_errors: int
    read_errors: int
    error_bursts: int
    retries_ok: int
    opens: int
    in_fault: bool
    lateness_p50_ms: float
    lateness_p99_ms: float
    lateness_max_ms: float
    next_seq: int


class Sampler:
    def __init__(
        self,
        source: AdcSource,
        ring: SampleRing,
        clock: Clock,
        rate_hz: float,
        *,
        late_tolerance_ms: float = 1.0,
        retries: int = 1,
        fault_after_s: float = 2.0,
        max_backoff_s: float = 1.0,
        events: queue.SimpleQueue[SamplerEvent] | None = None,
        history: int = 65536,
        realtime_priority: int = 0,
    ) -> None:
        self.source = source
        self.ring = ring
        self.clock = clock
        self.rate_hz = rate_hz
        self.tolerance_ns = int(late_tolerance_ms * 1e6)
        self.retries = retries
        self.fault_after_ns = int(fault_after_s * 1e9)
        self.max_backoff_ns = int(max_backoff_s * 1e9)
        self.realtime_priority = realtime_priority
        self.policy = "normal"
        self.events: queue.SimpleQueue[SamplerEvent] = events if events is not None else queue.SimpleQueue()
        self.grid: SampleGrid | None = None
        self.heartbeat_ns = clock.monotonic_ns()
        self._stop = threading.Event()
        self._lateness = np.zeros(history, dtype=np.int64)
        self._lateness_n = 0
        self.missing_late = 0
        self.read_errors = 0
        self.error_bursts = 0
        self.retries_ok = 0
        self.opens = 0
        self.in_fault = False
        self._last_read_ok = True
        self.last_error = "none"
        self._last_good_ns = 0
        self._ready = threading.Event()

    # -- control -------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def wait_ready(self, timeout: float) -> bool:
        """True once the grid is set (the first slot is scheduled)."""
        return self._ready.wait(timeout)

    def stats(self) -> SamplerStats:
        n = min(self._lateness_n, self._lateness.size)
        lat = self._lateness[:n].copy() / 1e6
        p50, p99, mx = (
            (float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), float(lat.max()))
            if n
            else (0.0, 0.0, 0.0)
        )
        return SamplerStats(
            self.ring.taken,
            self.ring.missing,
            self.missing_late,
            self.ring.missing - self.missing_late,
            self.read_errors,
            self.error_bursts,
            self.retries_ok,
            self.opens,
            self.in_fault,
            p50,
            p99,
            mx,
            self.ring.next_seq,
        )

    # -- the loop ------------------------------------------------------------------------------
    def run(self, max_slots: int | None = None, grid: SampleGrid | None = None) -> None:
        """Sample until ``stop()`` (or ``max_slots`` slots, for deterministic tests and the soak).

        A restarted sampler continues the ring's sequence; given the previous ``grid`` it also keeps
        its timing, so the slots that passed during the restart are counted missing, not compressed.
        """
        clock, ring = self.clock, self.ring
        self._set_realtime()
        is_open = self._open()  # before the grid starts, so that slot 0 is not late by the open
        now = clock.monotonic_ns()
        start_seq = ring.next_seq
        if grid is None:
            grid = SampleGrid(now, self.rate_hz, clock.wall_ns() - now, start_seq)
        self.grid = grid
        self._ready.set()
        tol = self.tolerance_ns
        end = None if max_slots is None else start_seq + max_slots
        k = start_seq
        pending = -1  # slot whose conversion the chip holds now; -1: unknown, discard the next byte
        pending_ns = 0
        self._last_good_ns = now
        backoff_ns = 0
        while not self._stop.is_set() and (end is None or k < end):
            deadline = grid.deadline_ns(k)
            self._sleep_until(deadline)
            now = clock.monotonic_ns()
            self.heartbeat_ns = now
            if now - deadline > tol:  # stalled: slots we cannot reach in time become missing
                k2 = grid.first_slot_at_or_after(now - tol)
                self.missing_late += k2 - k
                k = k2
                if end is not None and k >= end:
                    break
                deadline = grid.deadline_ns(k)
            if is_open:
                pending, pending_ns, is_open = self._read_slot(k, deadline, pending, pending_ns)
            if pending == k:  # a conversion started in this slot
                backoff_ns = 0
                k += 1
                continue
            # No conversion started in this slot: everything up to it is final, and missing.
            ring.fill_missing_until(k + 1)
            now = clock.monotonic_ns()
            if not self.in_fault and now - self._last_good_ns >= self.fault_after_ns:
                self._fault(k, now)
            if self.in_fault or not is_open:
                backoff_ns = min(max(2 * backoff_ns, 10_000_000), self.max_backoff_ns)
                wake = now + backoff_ns
                if not self.in_fault:  # try again right at the threshold: an outage past it is a fault
                    wake = min(wake, max(now + 1, self._last_good_ns + self.fault_after_ns))
                self._sleep_until(wake)
                if not is_open:
                    is_open = self._open()
                    if (
                        not is_open
                        and not self.in_fault
                        and clock.monotonic_ns() - self._last_good_ns >= (self.fault_after_ns)
                    ):
                        self._fault(k, clock.monotonic_ns())
                k = max(k + 1, grid.first_slot_at_or_after(clock.monotonic_ns()))
            else:
                k += 1
        self.source.close()

    def _read_slot(self, k: int, deadline: int, pending: int, pending_ns: int) -> tuple[int, int, bool]:
        """One read (plus retries within the slot's tolerance). Returns the new pending slot."""
        clock = self.clock
        attempts = 0
        while True:
            t_read = clock.monotonic_ns()
            try:
                value = self.source.read()
            except OSError as exc:
                self.last_error = f"read: {exc}"
                self.read_errors += 1
                if self._last_read_ok:
                    self.error_bursts += 1
                self._last_read_ok = False
                pending = -1  # the transfer carrying that conversion failed: its value is lost
                if exc.errno in REOPEN_ERRNOS:
                    return -1, 0, False
                attempts += 1
                if attempts > self.retries or clock.monotonic_ns() - deadline > self.tolerance_ns:
                    return -1, 0, True
                continue
            self._last_read_ok = True
            if pending >= 0:
                self.ring.put(pending, value, pending_ns)
                if self.in_fault:
                    self._recovered(pending, pending_ns)
                self._last_good_ns = pending_ns
            elif attempts:
                self.retries_ok += 1
            self.ring.fill_missing_until(k)
            i = self._lateness_n % self._lateness.size
            self._lateness[i] = t_read - deadline
            self._lateness_n += 1
            return k, t_read, True

    # -- helpers -------------------------------------------------------------------------------
    def _set_realtime(self) -> None:
        """SCHED_FIFO for this thread only: wake-ups at the deadline stop queueing behind ordinary
        tasks (and the inference worker stays an ordinary task). Refused → said, and sampling goes on."""
        prio = self.realtime_priority
        if not prio:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))  # 0: the calling thread
        except OSError as exc:
            detail = (
                f"SCHED_FIFO priority {prio} for the sampler refused ({exc.strerror}: needs CAP_SYS_NICE "
                f"or LimitRTPRIO={prio}, and no RestrictRealtime=); sampling at normal priority"
            )
            self.events.put(
                SamplerEvent("realtime_refused", self.clock.monotonic_ns(), self.ring.next_seq, detail)
            )
            return
        self.policy = f"SCHED_FIFO {prio}"

    def _sleep_until(self, deadline_ns: int) -> None:
        clock = self.clock
        while deadline_ns - clock.monotonic_ns() > _CHUNK_NS and not self._stop.is_set():
            clock.sleep_until(clock.monotonic_ns() + _CHUNK_NS)
            self.heartbeat_ns = clock.monotonic_ns()
        clock.sleep_until(deadline_ns)

    def _open(self) -> bool:
        try:
            self.source.open()
        except OSError as exc:
            self.last_error = f"open: {exc}"
            return False
        self.opens += 1
        return True

    def _fault(self, seq: int, now: int) -> None:
        self.in_fault = True
        silent = (now - self._last_good_ns) / 1e9
        detail = f"no good sample for {silent:.1f} s (last error: {self.last_error})"
        self.events.put(SamplerEvent("sensor_fault", now, seq, detail))

    def _recovered(self, seq: int, sample_ns: int) -> None:
        self.in_fault = False
        outage = (sample_ns - self._last_good_ns) / 1e9
        self.events.put(
            SamplerEvent(
                "sensor_recovered", sample_ns, seq, f"samples flowing again after {outage:.1f} s", outage
            )
        )
