"""The QRS detector: the same beats whatever the block size, on synthetic and real ECG, gaps make none."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

from ecgd.analysis.qrs import DetectedBeats, QrsDetector, QrsSettings
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import read_recording

DATA = Path(os.environ.get("ECGD_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
needs_data = pytest.mark.skipif(not (DATA / "mitdb").is_dir(), reason=f"no MIT-BIH data in {DATA}")
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")
FE = AnalogFrontEnd()


def synthetic_ecg(
    fs: float,
    bpm: float,
    seconds: float,
    r_mv: float = 1.0,
    t_mv: float = 0.3,
    qrs_ms: float = 90.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """ECG-like trace of known beats: P, a QRS of ``qrs_ms`` (Q, R, S), T; returns (mv, R-peak indices)."""
    rng = np.random.default_rng(seed)
    n = round(seconds * fs)
    t = np.arange(n) / fs
    rr = 60.0 / bpm
    peaks = np.arange(1.0, seconds - 0.5, rr)
    mv = np.zeros(n)
    sigma = qrs_ms / 1000.0 / 6.0
    qt = 0.3 * np.sqrt(rr)  # Bazett: the T wave comes closer at high rates
    for p in peaks:
        mv += r_mv * np.exp(-0.5 * ((t - p) / sigma) ** 2)
        mv -= 0.15 * r_mv * np.exp(-0.5 * ((t - p + 2.5 * sigma) / sigma) ** 2)  # Q
        mv -= 0.25 * r_mv * np.exp(-0.5 * ((t - p - 2.5 * sigma) / sigma) ** 2)  # S
        mv += t_mv * np.exp(-0.5 * ((t - p - qt) / 0.04) ** 2)
        mv += 0.1 * np.exp(-0.5 * ((t - p + 0.16) / 0.02) ** 2) if rr > 0.45 else 0.0
    mv += 0.1 * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0, 0.01, n)  # breathing wander, a little noise
    return mv, np.round(peaks * fs).astype(np.int64)


def detect(
    fs: float, mv: np.ndarray, block: int, valid: np.ndarray | None = None, **settings
) -> DetectedBeats:
    """Feed ``mv`` in blocks of ``block`` samples; all beats, concatenated."""
    det = QrsDetector(fs, QrsSettings(**settings))
    parts = [
        det.process(i, mv[i : i + block], None if valid is None else valid[i : i + block])
        for i in range(0, mv.size, block)
    ]
    # Flush: feed the delay's worth of flat signal so the last beats are confirmed.
    pad = det.delay_samples + 1
    parts.append(det.process(mv.size, np.full(pad, mv[-1]), None))
    return DetectedBeats(
        np.concatenate([p.seq for p in parts]),
        np.concatenate([p.amplitude_mv for p in parts]),
        np.concatenate([p.width_ms for p in parts]),
    )


def matches(ref: np.ndarray, found: np.ndarray, tol: int) -> tuple[int, int, int]:
    """(true positives, missed, false) within ``tol`` samples, one detection per reference beat."""
    used = np.zeros(found.size, bool)
    tp = 0
    for r in ref:
        near = np.flatnonzero(~used & (np.abs(found - r) <= tol))
        if near.size:
            used[near[np.argmin(np.abs(found[near] - r))]] = True
            tp += 1
    return tp, ref.size - tp, found.size - tp


@functools.cache
def _mitdb(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(electrode mV of channel 0, reference beat samples) of an MIT-BIH record."""
    import wfdb

    rec = read_recording(DATA / "mitdb" / name, 0)
    ann = wfdb.rdann(str(DATA / "mitdb" / name), "atr")
    ref = np.array([s for s, c in zip(ann.sample, ann.symbol, strict=True) if c in BEAT_SYMBOLS])
    return rec.mv.astype(np.float64), ref


# ---------------------------------------------------------------- block boundaries


@pytest.mark.parametrize("block", [360, 36, 7])
def test_same_beats_whatever_the_block_size(block: int) -> None:
    mv, _ = synthetic_ecg(360.0, 75, 40.0, seed=3)
    mv = FE.simulate_mv(mv, 360.0)
    valid = np.random.default_rng(5).random(mv.size) > 0.01  # 1 % single missing samples
    valid[6000:6400] = False  # and one long gap
    whole = detect(360.0, mv, mv.size, valid)
    blocks = detect(360.0, mv, block, valid)
    assert whole.seq.size > 40
    np.testing.assert_array_equal(blocks.seq, whole.seq)
    np.testing.assert_allclose(blocks.amplitude_mv, whole.amplitude_mv)
    np.testing.assert_allclose(blocks.width_ms, whole.width_ms, equal_nan=True)


def test_one_sample_blocks_give_the_same_beats() -> None:
    mv, _ = synthetic_ecg(128.0, 90, 12.0, seed=4)
    np.testing.assert_array_equal(detect(128.0, mv, 1).seq, detect(128.0, mv, mv.size).seq)


@needs_data
def test_real_record_same_beats_in_blocks_of_1s_100ms_and_7_samples() -> None:
    mv, _ = _mitdb("208")  # many PVCs and couplets: decisions and search-backs everywhere
    mv = FE.simulate_mv(mv[: 360 * 180], 360.0)
    whole = detect(360.0, mv, mv.size).seq
    for block in (360, 36, 7):
        np.testing.assert_array_equal(detect(360.0, mv, block).seq, whole)


# ---------------------------------------------------------------- synthetic beats


@pytest.mark.parametrize("fs", [360.0, 128.0])
@pytest.mark.parametrize("bpm", [30, 45, 60, 100, 150, 200, 250, 300])
def test_every_synthetic_beat_found_once_from_30_to_300_bpm(fs: float, bpm: int) -> None:
    mv, peaks = synthetic_ecg(fs, bpm, 60.0, seed=bpm)
    found = detect(fs, FE.simulate_mv(mv, fs), round(0.25 * fs)).seq
    _tp, missed, false = matches(peaks, found, round(0.05 * fs))
    assert (missed, false) == (0, 0), f"{bpm} bpm at {fs:g} Hz: {missed} missed, {false} false"
    assert np.abs(found - peaks).max() <= round(0.01 * fs)  # within 10 ms of the true R peak


def test_low_amplitude_and_tall_t_waves() -> None:
    for r_mv, t_mv in ((0.15, 0.05), (1.0, 1.2)):
        mv, peaks = synthetic_ecg(360.0, 70, 60.0, r_mv=r_mv, t_mv=t_mv, seed=7)
        found = detect(360.0, FE.simulate_mv(mv, 360.0), 90).seq
        _tp, missed, false = matches(peaks, found, 18)
        assert (missed, false) == (0, 0), f"R {r_mv} mV, T {t_mv} mV: {missed} missed, {false} false"


def test_flat_line_and_quantisation_noise_make_no_beats() -> None:
    rng = np.random.default_rng(1)
    flat = FE.counts_to_mv(np.full(360 * 30, 128) + rng.integers(0, 2, 360 * 30))  # a code of flicker
    assert detect(360.0, flat.astype(np.float64), 90).seq.size == 0


def test_a_gap_never_makes_a_beat_and_the_detector_reacquires() -> None:
    mv, peaks = synthetic_ecg(360.0, 60, 60.0, seed=9)
    mv = FE.simulate_mv(mv, 360.0)
    valid = np.ones(mv.size, bool)
    lo, hi = 360 * 20 + 100, 360 * 23  # a 2.7-s gap; across it the signal jumps by 2 mV
    valid[lo:hi] = False
    mv[hi:] += 2.0
    mv[lo:hi] = np.nan
    found = detect(360.0, mv, 90, valid).seq
    assert not np.any((found >= lo) & (found < hi)), "a beat inside the gap"
    assert matches(peaks, found, 18)[2] == 0, "a false beat"
    # Beats more than 0.4 s away from the gap are all found: the filters settle in that time (the
    # beat 0.28 s before the gap and the one on its last sample are blanked: their filters saw it).
    clear = peaks[(peaks < lo - 144) | (peaks >= hi + 144)]
    assert matches(clear, found, 18)[1] == 0


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="fs"):
        QrsDetector(50.0)
    with pytest.raises(ValueError, match="band_high_hz"):
        QrsDetector(360.0, QrsSettings(band_low_hz=20.0, band_high_hz=10.0))
    det = QrsDetector(360.0)
    det.process(0, np.zeros(100))
    with pytest.raises(ValueError, match="expected 100"):
        det.process(50, np.zeros(10))
    with pytest.raises(ValueError, match="valid"):
        det.process(100, np.zeros(10), np.ones(5, bool))


# ---------------------------------------------------------------- real records


@needs_data
def test_bigeminy_record_119_through_the_8_bit_front_end() -> None:
    mv, ref = _mitdb("119")  # ventricular bigeminy: ectopic beats every other beat
    n = 360 * 300
    found = detect(360.0, FE.simulate_mv(mv[:n], 360.0), 90).seq
    _tp, missed, false = matches(ref[ref < n], found, 54)
    assert missed <= 1 and false <= 1, (missed, false)


@needs_data
def test_ventricular_beats_measure_wider_than_normal_ones() -> None:
    import wfdb

    n = 360 * 300
    mv, _ = _mitdb("119")
    beats = detect(360.0, FE.simulate_mv(mv[:n], 360.0), 90)
    ann = wfdb.rdann(str(DATA / "mitdb" / "119"), "atr", sampto=n)
    samples, symbols = np.asarray(ann.sample), np.asarray(ann.symbol)
    nearest = symbols[np.abs(samples[None, :] - beats.seq[:, None]).argmin(axis=1)]
    normal, ventricular = beats.width_ms[nearest == "N"], beats.width_ms[nearest == "V"]
    assert normal.size > 100 and ventricular.size > 30
    assert np.nanmedian(normal) < 100.0 < 120.0 < np.nanmedian(ventricular)


def test_a_search_back_never_takes_a_peak_below_the_floor() -> None:
    """Small beats (0.15 mV) keep the threshold at its floor (``min_qrs_mv``); in a 3-s pause, a bump of
    0.06 mV, QRS-shaped but below the floor, is no beat, though it is above half the threshold (the
    search-back's lower threshold): muscle noise in a pause must not split it (MIT-BIH 207, README)."""
    fs = 360.0
    mv, peaks = synthetic_ecg(fs, 60, 40.0, r_mv=0.15, t_mv=0.03, seed=3)
    t = np.arange(mv.size) / fs
    pause = (t >= 29.6) & (t < 32.6)  # the beats at 30, 31 and 32 s are gone: a 3-s RR
    quiet = 0.1 * np.sin(2 * np.pi * 0.3 * t) + np.random.default_rng(4).normal(0, 0.01, t.size)
    mv[pause] = quiet[pause]  # no P waves either (in an AV block they would come on time, and be seen)
    bump = 0.06 * np.exp(-0.5 * ((t - 31.0) / 0.015) ** 2)
    kept = peaks[(peaks < 29.6 * fs) | (peaks >= 32.6 * fs)]
    found = detect(fs, mv + bump, 90).seq
    assert matches(kept, found, 18)[1:] == (0, 0)
    near = found[np.abs(found - round(31.0 * fs)) < round(0.15 * fs)]
    assert near.size == 0, "a beat from a peak below the floor"
