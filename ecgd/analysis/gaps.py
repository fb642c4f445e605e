"""Runs of missing samples in a stream of blocks: the one notion of a gap that the detector and the
beat stage share (a run may start in one block and end in a later one)."""

from __future__ import annotations

import numpy as np


def missing_runs(first_seq: int, ok: np.ndarray, open_start: int | None) -> tuple[list[int], list[int]]:
    """The runs ``[lo, hi)`` of ``ok == False`` in the block starting at ``first_seq``, in seqs.

    ``open_start`` is where a run still open at the end of the previous block began: the first run
    here continues it (or it ends at this block's first sample). A run whose ``hi`` is the block's end
    may go on in the next block.
    """
    edges = np.diff(np.r_[0, (~ok).astype(np.int8), 0])
    starts = list(np.flatnonzero(edges == 1) + first_seq)
    ends = list(np.flatnonzero(edges == -1) + first_seq)
    if open_start is not None:
        if starts and starts[0] == first_seq:
            starts[0] = open_start
        else:
            starts.insert(0, open_start)
            ends.insert(0, first_seq)
    return starts, ends


def longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True."""
    edges = np.diff(flags.astype(np.int8), prepend=0, append=0)
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return int(runs.max()) if runs.size else 0
