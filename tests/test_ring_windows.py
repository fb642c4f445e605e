"""Ring buffer and window scheduler: exact slots by sequence number, gaps as missing, overruns refused."""

from __future__ import annotations

import inspect
import itertools
import random
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from ecgd.acquisition.ring import RingOverrun, SampleRing
from ecgd.analysis.windows import WindowScheduler

PERIOD_NS = 2_777_778  # ~360 Hz
WALL0 = 1_767_225_600 * 10**9


def value(seq):
    return np.asarray(seq) % 251


def wall(seq: int) -> int:
    return WALL0 + seq * PERIOD_NS


def put_range(ring: SampleRing, start: int, stop: int) -> None:
    for s in range(start, stop):
        ring.put(s, int(value(s)), 1000 + s)


def run_interleaved(call: Callable[[], object], method: Callable, line: str, other: Callable[[], None]):
    """Run ``call``; just before ``method`` executes its source line ``line``, run ``other`` once.

    This replays, deterministically, what a thread switch at that point does: the other thread's
    code runs against the ring's real state between two statements. Returns ``call``'s result.
    """
    code = method.__code__
    src, start = inspect.getsourcelines(method)
    targets = [start + i for i, text in enumerate(src) if text.strip() == line]
    assert len(targets) == 1, f"{method.__qualname__} no longer has the line {line!r}"
    fired = []

    def local(frame, event, arg):
        if event == "line" and frame.f_lineno == targets[0] and not fired:
            fired.append(True)
            other()
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code is code else None

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = call()
    finally:
        sys.settrace(old)
    assert fired, f"{line!r} was never reached"
    return result


# --- SampleRing -----------------------------------------------------------------------------------


def test_ring_needs_two_slots():
    with pytest.raises(ValueError):
        SampleRing(1)
    assert SampleRing(2).capacity == 2


def test_put_and_read_return_the_written_samples():
    ring = SampleRing(16)
    put_range(ring, 0, 10)
    b = ring.read(2, 9)
    assert b.first_seq == 2
    assert b.counts.tolist() == list(range(2, 9))
    assert b.stamps_ns.tolist() == [1000 + s for s in range(2, 9)]
    assert b.valid.all() and b.missing == 0
    assert b.counts.dtype == np.int16 and b.stamps_ns.dtype == np.int64
    assert (ring.next_seq, ring.taken, ring.missing) == (10, 10, 0)


def test_read_is_a_copy_not_a_view():
    ring = SampleRing(8)
    put_range(ring, 0, 4)
    b = ring.read(0, 4)
    put_range(ring, 4, 11)  # overwrites slots 0..2
    assert b.counts.tolist() == [0, 1, 2, 3]
    assert b.valid.all()


def test_skipped_slots_become_missing_in_order():
    ring = SampleRing(32)
    ring.put(0, 5, 100)
    ring.put(4, 7, 104)  # 1..3 missing
    ring.fill_missing_until(6)  # 4 is final, 5 missing
    ring.put(6, 9, 106)
    b = ring.read(0, 7)
    assert b.valid.tolist() == [True, False, False, False, True, False, True]
    assert b.counts.tolist() == [5, 0, 0, 0, 7, 0, 9]
    assert b.stamps_ns.tolist() == [100, 0, 0, 0, 104, 0, 106]
    assert b.missing == 4
    assert (ring.taken, ring.missing, ring.next_seq) == (3, 4, 7)


def test_missing_slots_clear_old_contents_also_across_the_wrap():
    ring = SampleRing(10)
    put_range(ring, 0, 8)
    ring.fill_missing_until(13)  # slots 8, 9, 0, 1, 2 of the array: wraps around
    b = ring.read(4, 13)
    assert b.valid.tolist() == [True] * 4 + [False] * 5
    assert b.counts.tolist() == [4, 5, 6, 7, 0, 0, 0, 0, 0]
    assert (ring.taken, ring.missing) == (8, 5)


def test_gap_longer_than_the_ring_clears_everything_and_counts_every_slot():
    ring = SampleRing(10)
    put_range(ring, 0, 10)
    ring.put(1010, 3, 1)
    assert ring.missing == 1000 and ring.taken == 11 and ring.next_seq == 1011
    b = ring.read(1002, 1011)
    assert b.valid.tolist() == [False] * 8 + [True]
    assert b.counts.tolist() == [0] * 8 + [3]
    assert ring.taken + ring.missing == ring.next_seq


def test_fill_missing_until_the_past_is_a_no_op():
    ring = SampleRing(8)
    put_range(ring, 0, 5)
    ring.fill_missing_until(3)
    ring.fill_missing_until(5)
    assert (ring.next_seq, ring.missing) == (5, 0)


def test_final_slots_cannot_be_written_again():
    ring = SampleRing(8)
    put_range(ring, 0, 5)
    with pytest.raises(ValueError, match="already final"):
        ring.put(4, 1, 1)
    assert ring.read(4, 5).counts.tolist() == [4]


def test_read_refuses_slots_not_yet_final_and_more_than_the_ring():
    ring = SampleRing(8)
    put_range(ring, 0, 20)
    with pytest.raises(ValueError, match="not final"):
        ring.read(15, 21)
    with pytest.raises(ValueError, match="cannot read 9"):
        ring.read(11, 20)
    with pytest.raises(ValueError):
        ring.read(-1, 3)


def test_overwritten_samples_raise_overrun_never_stale_data():
    ring = SampleRing(8)
    put_range(ring, 0, 20)
    assert ring.read(13, 20).counts.tolist() == list(range(13, 20))  # the 7 newest: fine
    assert ring.read(12, 20).counts.tolist() == list(range(12, 20))  # intact while the writer waits
    with pytest.raises(RingOverrun, match="overwritten"):
        ring.read(11, 19)  # slot of 11 already holds seq 19
    with pytest.raises(RingOverrun):
        ring.read(5, 9)


def test_wait_for_returns_at_once_when_final_and_times_out_otherwise():
    ring = SampleRing(8)
    put_range(ring, 0, 3)
    assert ring.wait_for(3, 10.0) is True
    assert ring.wait_for(0, 10.0) is True
    t0 = time.monotonic()
    assert ring.wait_for(4, 0.05) is False
    assert time.monotonic() - t0 >= 0.04


@pytest.mark.parametrize("how", ["put", "fill"])
def test_wait_for_is_woken_by_the_writer(how):
    ring = SampleRing(64)
    put_range(ring, 0, 3)

    def writer():
        time.sleep(0.05)
        if how == "put":
            put_range(ring, 3, 10)
        else:
            ring.fill_missing_until(10)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert ring.wait_for(10, 20.0) is True
        assert ring.next_seq >= 10
    finally:
        t.join()


def test_wait_for_never_reports_a_slot_final_before_it_is():
    ring = SampleRing(64)
    put_range(ring, 0, 10)
    assert ring.wait_for(11, 0.0) is False  # a wait that really waited: _wake_at is 11
    put_range(ring, 10, 11)  # reached
    # The writer puts one more sample right after the reader cleared the event for a far target.
    result = run_interleaved(
        lambda: ring.wait_for(100, 0.0),
        SampleRing.wait_for,
        "self._wake_at = seq",
        lambda: put_range(ring, 11, 12),
    )
    assert ring.next_seq == 12
    assert result is False  # slot 99 is nowhere near final


def test_wait_for_is_not_fooled_by_a_put_just_before_it_arms():
    """The interleaving the ring does handle: the writer runs before the reader clears the event."""
    ring = SampleRing(64)
    put_range(ring, 0, 10)
    result = run_interleaved(
        lambda: ring.wait_for(100, 0.0),
        SampleRing.wait_for,
        "self._wake.clear()",
        lambda: put_range(ring, 10, 12),
    )
    assert result is False


def test_a_read_during_a_gap_fill_never_returns_cleared_samples_as_missing():
    ring = SampleRing(10)
    put_range(ring, 0, 10)  # slots 0..9 all taken
    seen = {}

    def reader():  # the worker reading the oldest 9 samples while the sampler fills 10..12
        try:
            seen["block"] = ring.read(1, 10)
        except RingOverrun as exc:
            seen["overrun"] = exc

    run_interleaved(
        lambda: ring.fill_missing_until(13), SampleRing.fill_missing_until, "self.missing += n", reader
    )
    if "block" in seen:  # either refused as overrun, or the samples as they were taken
        b = seen["block"]
        assert b.valid.all(), f"taken samples handed out as missing: valid={b.valid.tolist()}"
        assert b.counts.tolist() == list(range(1, 10))


# --- WindowScheduler ------------------------------------------------------------------------------


def test_scheduler_refuses_impossible_geometry():
    ring = SampleRing(100)
    with pytest.raises(ValueError):
        WindowScheduler(ring, 0, 10, wall)
    with pytest.raises(ValueError):
        WindowScheduler(ring, 10, 0, wall)
    with pytest.raises(ValueError, match="window plus a hop"):
        WindowScheduler(ring, 90, 11, wall)
    WindowScheduler(ring, 90, 10, wall)  # exactly fits


def test_windows_are_aligned_to_sequence_numbers_every_hop():
    ring = SampleRing(200)
    sched = WindowScheduler(ring, 50, 20, wall, first_seq=7)
    put_range(ring, 0, 56)
    assert sched.next(0.01) == []  # window 0 ends at 57
    put_range(ring, 56, 57)
    (w0,) = sched.next(0.01)
    assert (w0.index, w0.first_seq, w0.stop_seq, w0.skip_reason) == (0, 7, 57, None)
    assert w0.block.counts.tolist() == list(value(np.arange(7, 57)))
    assert (w0.start_wall_ns, w0.end_wall_ns) == (wall(7), wall(57))
    put_range(ring, 57, 76)
    assert sched.next(0.01) == []  # one short of the hop
    put_range(ring, 76, 77)
    (w1,) = sched.next(0.01)
    assert (w1.index, w1.first_seq, w1.stop_seq) == (1, 27, 77)
    assert w1.block.first_seq == 27 and w1.block.valid.all()


def test_window_carries_its_missing_samples():
    ring = SampleRing(200)
    sched = WindowScheduler(ring, 50, 10, wall)
    put_range(ring, 0, 10)
    ring.put(15, 1, 1)  # 10..14 missing
    put_range(ring, 16, 50)
    (w,) = sched.next(0.01)
    assert w.block.missing == 5
    assert np.flatnonzero(~w.block.valid).tolist() == [10, 11, 12, 13, 14]


def test_a_late_worker_gets_skipped_windows_with_a_reason_and_the_newest_one_read():
    ring = SampleRing(1000)
    sched = WindowScheduler(ring, 100, 25, wall)
    put_range(ring, 0, 100)
    (w0,) = sched.next(0.01)
    assert (w0.index, w0.stop_seq) == (0, 100)
    put_range(ring, 100, 212)  # windows ending 125, 150, 175, 200 are due; 225 is not
    out = sched.next(0.01)
    assert [w.index for w in out] == [1, 2, 3, 4]
    assert [w.stop_seq for w in out] == [125, 150, 175, 200]
    for w in out[:-1]:
        assert w.block is None
        assert w.skip_reason == "skipped: inference fell behind; coalesced to the newest window"
        assert (w.start_wall_ns, w.end_wall_ns) == (wall(w.first_seq), wall(w.stop_seq))
    newest = out[-1]
    assert newest.skip_reason is None
    assert newest.block.counts.tolist() == list(value(np.arange(100, 200)))
    put_range(ring, 212, 225)
    (w5,) = sched.next(0.01)
    assert (w5.index, w5.stop_seq) == (5, 225)


def test_an_overrun_while_reading_gives_a_skipped_window_with_the_reason():
    ring = SampleRing(150)
    burst = {"armed": False}

    def wall_while_the_sampler_runs(seq: int) -> int:
        # The worker computes wall times of the skipped windows before it reads the newest one;
        # meanwhile the sampler laps the ring (as when the worker is descheduled for seconds).
        if burst["armed"]:
            burst["armed"] = False
            put_range(ring, ring.next_seq, ring.next_seq + 200)
        return wall(seq)

    sched = WindowScheduler(ring, 100, 25, wall_while_the_sampler_runs)
    put_range(ring, 0, 160)  # windows ending 100, 125, 150 are due
    burst["armed"] = True
    out = sched.next(0.01)
    assert [w.stop_seq for w in out] == [100, 125, 150]
    assert out[0].skip_reason.startswith("skipped: inference fell behind")
    assert out[-1].block is None
    assert out[-1].skip_reason.startswith("skipped: samples from 50 were overwritten")
    # the scheduler carries on along the grid; the windows it could not reach are reported as skipped
    later = sched.next(0.01)
    assert [w.index for w in later] == list(range(3, 11))
    assert [w.stop_seq for w in later] == list(range(175, 351, 25))
    assert all(w.block is None for w in later[:-1])
    assert later[-1].block.counts.tolist() == list(value(np.arange(250, 350)))


def test_threaded_writer_and_reader_agree_on_every_sample():
    """100k samples with random gaps written by one thread while another reads windows."""
    n_taken, window, hop, cap = 100_000, 360, 90, 4096
    ring = SampleRing(cap)
    sched = WindowScheduler(ring, window, hop, wall)
    truth = np.zeros(400_000, dtype=bool)
    low_mark = [0]  # first seq the reader may still read (window start of its next window)
    gaps_total = [0]
    done = threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            rnd = random.Random(12345)
            s = 0
            for _ in range(n_taken):
                if rnd.random() < 0.01:
                    gap = rnd.randint(1, 300)
                    s += gap
                    gaps_total[0] += gap
                # back-pressure: never lap the reader (the real sampler does not wait; overruns are
                # tested above), so every window must come out exact
                while s + 2 > low_mark[0] + cap:
                    time.sleep(0.0005)
                truth[s] = True
                ring.put(s, int(s % 251), s * 7)
                s += 1
                if s % 60 == 0:
                    time.sleep(0)  # let the reader run now and then
        except BaseException as exc:  # pragma: no cover - reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    windows = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            out = sched.next(0.05)
            low_mark[0] = sched.next_stop - window
            for w in out:
                windows.append(w)
                if w.block is None:
                    continue
                seqs = np.arange(w.first_seq, w.stop_seq)
                b = w.block
                assert b.first_seq == w.first_seq and b.counts.size == window
                assert np.array_equal(b.valid, truth[w.first_seq : w.stop_seq]), w.index
                assert np.array_equal(b.counts[b.valid], seqs[b.valid] % 251)
                assert not b.counts[~b.valid].any()
                assert np.array_equal(b.stamps_ns[b.valid], seqs[b.valid] * 7)
            if done.is_set() and not out and sched.next_stop > ring.next_seq:
                break
    finally:
        low_mark[0] = 1 << 40
        t.join(10)
    assert not errors
    assert done.is_set()
    assert ring.taken == n_taken
    assert ring.missing == gaps_total[0]
    assert ring.taken + ring.missing == ring.next_seq
    assert int(truth.sum()) == n_taken
    # every window position on the grid was reported, either read or skipped with a reason
    assert [w.index for w in windows] == list(range(len(windows)))
    stops = [w.stop_seq for w in windows]
    assert all((s - window) % hop == 0 for s in stops)
    assert all(b >= a for a, b in itertools.pairwise(stops))
    assert set(stops) == set(range(window, stops[-1] + 1, hop))
    assert stops[-1] > ring.next_seq - hop
    read = [w for w in windows if w.block is not None]
    skipped = [w for w in windows if w.block is None]
    assert len(read) > 10
    assert all(w.skip_reason and "coalesced" in w.skip_reason for w in skipped)


def test_drain_at_stop_gives_every_complete_window_unread():
    ring = SampleRing(100)
    sched = WindowScheduler(ring, 10, 5, lambda seq: seq, first_seq=0)
    ring.fill_missing_until(27)  # windows ending at 10, 15, 20, 25 are complete; 30 is not
    assert [w.stop_seq for w in sched.next(0.0)] == [10, 15, 20, 25]  # three skipped, the newest read
    ring.fill_missing_until(41)
    drained = sched.drain("stopped")
    assert [(w.index, w.stop_seq, w.block, w.skip_reason) for w in drained] == [
        (4, 30, None, "stopped"),
        (5, 35, None, "stopped"),
        (6, 40, None, "stopped"),
    ]
    assert sched.next_stop == 45 and sched.drain("stopped") == []
