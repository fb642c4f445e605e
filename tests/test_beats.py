"""The beat stage (ecgd/analysis/beats.py): heart rate, RR, breaks, live rate; with the real detector."""

from __future__ import annotations

import numpy as np
import pytest

from ecgd.analysis.beats import BLOCK_S, BeatSettings, BeatTracker, WindowBeats
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.synthetic import rr_schedule, synthetic_ecg

FS = 360.0
BLOCK = round(BLOCK_S * FS)  # what the daemon's worker reads every 0.2 s


def run(mv: np.ndarray, valid: np.ndarray | None = None, block: int = BLOCK, **kw) -> BeatTracker:
    tracker = BeatTracker(FS, keep_s=kw.pop("keep_s", 600.0), **kw)
    for i in range(0, mv.size, block):
        tracker.feed(i, mv[i : i + block], None if valid is None else valid[i : i + block])
    return tracker


def through_frontend(mv: np.ndarray) -> np.ndarray:
    return AnalogFrontEnd().simulate_mv(mv, FS)  # AD8232 filters + 8-bit PCF8591, as the device sees it


@pytest.mark.parametrize("bpm", [30, 40, 60, 80, 120, 150, 180, 220, 250])
def test_heart_rate_of_a_known_rate_through_the_8_bit_front_end(bpm):
    duration = 60.0
    r = rr_schedule(duration, [(0.0, bpm)])
    tracker = run(through_frontend(synthetic_ecg(r, duration, FS)))
    assert len(tracker.beats) == len(r)
    truth = np.round(r * FS)
    assert np.abs(np.array([b.seq for b in tracker.beats]) - truth).max() <= 0.01 * FS  # within 10 ms
    w = tracker.window(round(20 * FS), round(30 * FS))
    assert w.heart_rate_bpm == pytest.approx(bpm, rel=0.01)
    assert w.beat_count == np.count_nonzero((truth >= 20 * FS) & (truth < 30 * FS))
    assert w.rr_count == w.beat_count - 1 and w.heart_rate_reason is None
    assert w.rr_min_ms == pytest.approx(60000 / bpm, abs=3) and w.rr_max_ms == pytest.approx(
        60000 / bpm, abs=3
    )
    live = tracker.live()
    assert live.bpm == pytest.approx(bpm, rel=0.01) and live.rr_used == 4 and live.text() == f"HR {bpm} bpm"


def test_rmssd_and_rr_range_of_an_alternating_rhythm():
    r = np.cumsum(np.tile([0.8, 1.0], 20))  # bigeminy-like: RR 800, 1000, 800, ...
    tracker = run(synthetic_ecg(r, r[-1] + 1.0, FS))
    w = tracker.window(round(5 * FS), round(15 * FS))
    assert (w.rr_min_ms, w.rr_max_ms) == (pytest.approx(800, abs=3), pytest.approx(1000, abs=3))
    assert w.rr_rmssd_ms == pytest.approx(200, abs=4)
    assert w.heart_rate_bpm == pytest.approx(60000 / 900, rel=0.01)


def test_block_boundaries_do_not_change_the_beats():
    r = rr_schedule(40.0, [(0.0, 70), (15.0, 140), (28.0, 45)])
    mv = through_frontend(synthetic_ecg(r, 40.0, FS, noise_mv=0.02))
    results = {b: [(x.seq, x.rr_ms) for x in run(mv, block=b).beats] for b in (1, 37, BLOCK, 1000, mv.size)}
    reference = results.pop(BLOCK)
    assert len(reference) == len(r)
    for b, got in results.items():
        assert got == reference, f"block of {b} samples"


def test_rr_across_a_gap_is_not_measured_and_short_gaps_are_bridged():
    r = rr_schedule(40.0, [(0.0, 75)])
    mv = synthetic_ecg(r, 40.0, FS)
    valid = np.ones(mv.size, bool)
    gap = slice(round(20.1 * FS), round(20.6 * FS))  # 0.5 s lost: may hide a beat
    valid[gap] = False
    for s in (round(10.3 * FS), round(12.7 * FS)):  # single missing samples (late wake-ups) only
        valid[s] = False
    mv = np.where(valid, mv, np.nan)
    tracker = run(mv, valid)
    beats = list(tracker.beats)
    assert all(not (gap.start <= b.seq < gap.stop) for b in beats), "a gap never makes a beat"
    after = next(b for b in beats if b.seq >= gap.stop)
    assert after.rr_ms is None, "the interval across the gap is not measured"
    unmeasured = [b.seq for b in beats if b.rr_ms is None]
    assert unmeasured == [beats[0].seq, after.seq]  # the single missing samples broke nothing
    w = tracker.window(round(15 * FS), round(25 * FS))
    assert w.heart_rate_bpm == pytest.approx(75, rel=0.01)
    assert w.rr_count == w.beat_count - 2  # the first beat of the window and the one after the gap


def test_an_unreadable_window_breaks_the_rr_sequence_and_hides_the_live_rate():
    r = rr_schedule(60.0, [(0.0, 72)])
    mv = synthetic_ecg(r, 60.0, FS)
    tracker = BeatTracker(FS, keep_s=600)
    half = round(30 * FS)
    for i in range(0, half, BLOCK):
        tracker.feed(i, mv[i : i + BLOCK])
    assert tracker.live().bpm == pytest.approx(72, rel=0.01)
    tracker.unreadable(round(20 * FS), half)  # the quality gate (or leads off) said so
    live = tracker.live(unreadable=True)
    assert live.bpm is None and live.text() == "HR --- (signal unreadable)"
    assert tracker.live(leads_off=True).text() == "HR --- (leads off)"
    for i in range(half, mv.size, BLOCK):
        tracker.feed(i, mv[i : i + BLOCK])
    after = [b for b in tracker.beats if b.seq >= half]
    assert after and after[0].rr_ms is None and all(b.rr_ms is not None for b in after[1:])
    assert tracker.live().bpm == pytest.approx(72, rel=0.01)


def test_live_rate_falls_when_beats_stop_then_says_so():
    r = rr_schedule(30.0, [(0.0, 60)])
    r = r[r < 20.0]  # asystole from 20 s
    mv = synthetic_ecg(r, 30.0, FS)
    tracker = BeatTracker(FS, keep_s=600)
    shown = []
    for i in range(0, mv.size, BLOCK):
        tracker.feed(i, mv[i : i + BLOCK])
        shown.append((i / FS, tracker.live()))
    at = {round(t, 1): lv for t, lv in shown}
    assert at[19.0].bpm == pytest.approx(60, rel=0.01)
    # the open interval counts once it is past the detector's delay (2.5 s: a late beat may still come)
    assert at[23.0].bpm is not None and at[23.0].bpm < 59.5
    assert at[25.0].bpm < 50
    late = at[28.0]
    assert late.bpm is None and late.reason.startswith("no beat for ") and late.since_beat_s > 6
    assert late.text() == f"HR --- (no beat for {late.since_beat_s:.0f} s)"


def test_too_few_beats_give_a_reason_not_a_rate():
    r = np.array([1.0, 2.0, 3.0, 8.0, 9.0])
    tracker = run(synthetic_ecg(r, 14.0, FS))
    w = tracker.window(round(2.5 * FS), round(8.5 * FS))  # beats at 3 and 8 s: one RR
    assert w.beat_count == 2 and w.heart_rate_bpm is None and w.rr_count == 1
    assert w.heart_rate_reason == "fewer than 2 measured RR intervals in the window (2 beats, 1 RR)"
    assert WindowBeats.none("window unreadable").fields()["beat_count"] is None


def test_samples_lost_before_they_were_read_are_a_break():
    r = rr_schedule(30.0, [(0.0, 80)])
    mv = synthetic_ecg(r, 30.0, FS)
    tracker = BeatTracker(FS, keep_s=600)
    cut = round(12 * FS)
    for i in range(0, cut, BLOCK):
        tracker.feed(i, mv[i : i + BLOCK])
    resume = round(14 * FS)
    for i in range(resume, mv.size, BLOCK):  # a jump: the ring overran the reader
        tracker.feed(i, mv[i : i + BLOCK])
    after = [b for b in tracker.beats if b.seq >= resume]
    assert after[0].rr_ms is None and not [b for b in tracker.beats if cut <= b.seq < resume]
    with pytest.raises(ValueError, match="already fed up to"):
        tracker.feed(0, mv[:10])


def test_settings_are_checked():
    assert "live_rr_count: 0 must be 1 to 64" in BeatSettings(live_rr_count=0).problems()
    assert BeatSettings(live_min_rr=9).problems() == ["live_min_rr: 9 must be 1 to live_rr_count (4)"]
    with pytest.raises(ValueError, match="live_timeout_s"):
        BeatTracker(FS, settings=BeatSettings(live_timeout_s=0.5))


def test_after_an_unreadable_stretch_the_detector_restarts_where_the_signal_is_readable_again():
    """Leads off for 3 s (the output at a rail): then readable windows must have all their beats."""
    r = rr_schedule(60.0, [(0.0, 72)])
    clean = synthetic_ecg(r, 60.0, FS)
    mv = clean.copy()
    off = slice(round(20 * FS), round(23 * FS))
    mv[off] = 40.0  # far beyond any ECG: the detector's levels learn it
    tracker = BeatTracker(FS, keep_s=60)
    window, hop = round(10 * FS), round(2 * FS)
    judged = 0  # windows are judged when their last sample is in, as in the daemon
    redone = []
    for i in range(0, mv.size, BLOCK):
        tracker.feed(i, mv[i : i + BLOCK])
        while judged + window <= tracker.fed_until:
            a, b = judged, judged + window
            if a < off.stop and b > off.start:
                tracker.unreadable(a, b)
            else:
                out = tracker.readable(a, b)
                if out is not None:
                    redone.append(out)
            judged += hop
    assert len(redone) == 1 and redone[0][0] == round(24 * FS)  # the first window after the stretch
    first_readable = round(24 * FS)
    truth = np.round(r * FS)
    truth = truth[truth >= first_readable + 0.5 * FS]  # the detector's start-up: filters settle
    found = np.array([b.seq for b in tracker.beats])
    assert all(np.abs(found - t).min() <= 4 for t in truth)
    after = [b for b in tracker.beats if b.seq >= first_readable]
    assert after[0].rr_ms is None and all(b.rr_ms is not None for b in after[1:])
    w = tracker.window(first_readable, first_readable + window)
    assert w.heart_rate_bpm == pytest.approx(72, rel=0.01) and w.beat_count >= 11
