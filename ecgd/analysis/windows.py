"""Sliding windows over the ring: every hop, the last ``window`` samples.

Windows are aligned to sequence numbers (window i ends at ``first + window +
i·hop``), so their position on the sampling grid is exact whatever the
worker's timing. When the worker falls behind, the ready windows are coalesced
to the newest and the others are reported as skipped, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ecgd.acquisition.ring import Block, RingOverrun, SampleRing


@dataclass(frozen=True)
class Window:
    index: int
    first_seq: int
    stop_seq: int  # exclusive
    block: Block | None  # None when the samples were lost before they could be read
    start_wall_ns: int
    end_wall_ns: int
    skip_reason: str | None = None


class WindowScheduler:
    def __init__(
        self,
        ring: SampleRing,
        window_samples: int,
        hop_samples: int,
        wall_ns: Callable[[int], int],
        first_seq: int = 0,
    ) -> None:
        if hop_samples < 1 or window_samples < 1:
            raise ValueError("window and hop must be at least one sample")
        if window_samples + hop_samples > ring.capacity:
            raise ValueError("the ring must hold a window plus a hop")
        self.ring = ring
        self.window = window_samples
        self.hop = hop_samples
        self.wall_ns = wall_ns
        self.next_stop = first_seq + window_samples
        self.next_index = 0

    def _make(self, stop: int, block: Block | None, reason: str | None = None) -> Window:
        first = stop - self.window
        w = Window(self.next_index, first, stop, block, self.wall_ns(first), self.wall_ns(stop), reason)
        self.next_index += 1
        return w

    def drain(self, reason: str) -> list[Window]:
        """At stop: every window already complete in the ring, not read, each with ``reason``."""
        out = []
        while self.next_stop <= self.ring.next_seq:
            out.append(self._make(self.next_stop, None, reason))
            self.next_stop += self.hop
        return out

    def next(self, timeout: float) -> list[Window]:
        """Windows due now, oldest first: skipped ones (no block) then the newest with its samples.
        Empty when none became ready within ``timeout`` seconds."""
        if not self.ring.wait_for(self.next_stop, timeout):
            return []
        ready = self.ring.next_seq
        if ready < self.next_stop:
            return []
        newest = self.next_stop + (ready - self.next_stop) // self.hop * self.hop
        out = [
            self._make(stop, None, "skipped: inference fell behind; coalesced to the newest window")
            for stop in range(self.next_stop, newest, self.hop)
        ]
        try:
            block = self.ring.read(newest - self.window, newest)
            out.append(self._make(newest, block))
        except RingOverrun as exc:
            out.append(self._make(newest, None, f"skipped: {exc}"))
        self.next_stop = newest + self.hop
        return out
