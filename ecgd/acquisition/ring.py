"""Preallocated ring of samples addressed by sequence number.

One writer (the sampler) and one reader (the inference worker). A slot is
either a taken sample (ADC code + the instant it was converted) or missing;
gaps are filled as missing in order, so sequence numbers map 1:1 onto the
sampling grid and nothing is ever time-shifted. A reader that asks for samples
the writer has already overwritten gets ``RingOverrun``, never stale data.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


class RingOverrun(Exception):
    """The reader fell behind by more than the ring's capacity."""


@dataclass(frozen=True)
class Block:
    """A copy of the ring between two sequence numbers."""

    first_seq: int
    counts: np.ndarray  # int16 ADC codes (0 where missing)
    valid: np.ndarray  # bool
    stamps_ns: np.ndarray  # int64 conversion instants (0 where missing)

    @property
    def missing(self) -> int:
        return int(self.valid.size - np.count_nonzero(self.valid))


class SampleRing:
    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError("ring capacity must be at least 2")
        self.capacity = capacity
        self._counts = np.zeros(capacity, dtype=np.int16)
        self._valid = np.zeros(capacity, dtype=bool)
        self._stamps = np.zeros(capacity, dtype=np.int64)
        self.next_seq = 0  # every slot below this is final
        self._write_limit = 0  # slots below this may be being written (published before writing)
        self.taken = 0
        self.missing = 0
        self._wake_at = 1 << 62
        self._wake = threading.Event()

    def put(self, seq: int, count: int, stamp_ns: int) -> None:
        """Store the sample of slot ``seq``; slots skipped since the last put become missing."""
        if seq < self.next_seq:
            raise ValueError(f"slot {seq} is already final (next is {self.next_seq})")
        if seq > self.next_seq:
            self.fill_missing_until(seq)
        self._write_limit = seq + 1
        i = seq % self.capacity
        self._counts[i] = count
        self._valid[i] = True
        self._stamps[i] = stamp_ns
        self.taken += 1
        self.next_seq = seq + 1
        if self.next_seq >= self._wake_at:
            self._wake.set()

    def fill_missing_until(self, seq: int) -> None:
        """Declare every slot below ``seq`` not yet final as missing (vectorised for long gaps)."""
        start = self.next_seq
        if seq <= start:
            return
        n = seq - start
        self._write_limit = seq
        if n >= self.capacity:
            self._valid[:] = False
            self._counts[:] = 0
            self._stamps[:] = 0
        else:
            i = start % self.capacity
            j = i + n
            for a, b in ((i, min(j, self.capacity)), (0, max(0, j - self.capacity))):
                self._valid[a:b] = False
                self._counts[a:b] = 0
                self._stamps[a:b] = 0
        self.missing += n
        self.next_seq = seq
        if self.next_seq >= self._wake_at:
            self._wake.set()

    def wait_for(self, seq: int, timeout: float) -> bool:
        """Block until slot ``seq - 1`` is final (``next_seq >= seq``) or the timeout passes."""
        if self.next_seq >= seq:
            return True
        # Target first, then clear: a put() in between can only set the event for *this* target.
        self._wake_at = seq
        self._wake.clear()
        if self.next_seq >= seq:
            return True
        self._wake.wait(timeout)
        return self.next_seq >= seq

    def read(self, first_seq: int, stop_seq: int) -> Block:
        """Copy slots ``[first_seq, stop_seq)``; they must be final and not yet overwritten."""
        if stop_seq > self.next_seq:
            raise ValueError(f"slots up to {stop_seq} are not final yet (next is {self.next_seq})")
        n = stop_seq - first_seq
        if n > self.capacity or first_seq < 0:
            raise ValueError(f"cannot read {n} slots from a ring of {self.capacity}")
        idx = np.arange(first_seq, stop_seq) % self.capacity
        block = Block(first_seq, self._counts[idx], self._valid[idx], self._stamps[idx])
        # The writer may have lapped us while we copied: it publishes how far it writes first.
        if first_seq < self._write_limit - self.capacity:
            raise RingOverrun(
                f"samples from {first_seq} were overwritten (writer at {self._write_limit}, "
                f"capacity {self.capacity})"
            )
        return block
