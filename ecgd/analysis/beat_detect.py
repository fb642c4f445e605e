"""The QRS positions of one window, for the classifier when no beat stage hands them over.

Uses the project's streaming detector (:class:`ecgd.analysis.qrs.QrsDetector`) when it is installed,
run over the window with its delay flushed; otherwise a small Pan-Tompkins-style detector on the
window (band-pass 5-15 Hz by differences of moving averages, squared slope, 150 ms integration,
threshold at a fraction of the window's typical peaks, 200 ms refractory period). Numpy on the block;
the only Python loop is over candidate peaks (tens per window).
"""

from __future__ import annotations

import numpy as np


def detect_beats(mv: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices (within ``mv``) of the QRS complexes found in one window."""
    x = np.asarray(mv, dtype=np.float64)
    if x.size < int(fs):
        return np.zeros(0, dtype=np.int64)
    try:
        from ecgd.analysis.qrs import QrsDetector  # the qrs stage, once merged
    except ImportError:
        return _window_detect(x, fs)
    return _stream_detect(QrsDetector, x, fs)


def _stream_detect(cls, x: np.ndarray, fs: float) -> np.ndarray:  # pragma: no cover - needs the qrs stage
    det = cls(fs)
    tail = int(getattr(det, "delay_samples", 0)) + int(0.3 * fs)
    sig = np.concatenate((x, np.full(tail, x[-1])))
    beats = det.process(0, sig.astype(np.float32), np.ones(sig.size, dtype=bool))
    seq = np.asarray(beats.seq, dtype=np.int64)
    return seq[(seq >= 0) & (seq < x.size)]


def _moving_mean(x: np.ndarray, n: int) -> np.ndarray:
    c = np.cumsum(np.concatenate(([0.0], x)))
    y = (c[n:] - c[:-n]) / n
    pad = n // 2
    return np.concatenate((np.full(pad, y[0]), y, np.full(x.size - y.size - pad, y[-1])))


def _window_detect(x: np.ndarray, fs: float) -> np.ndarray:
    bp = _moving_mean(x, max(1, round(fs / 30))) - _moving_mean(x, max(2, round(fs / 5)))
    slope = np.gradient(bp) * fs
    energy = _moving_mean(slope * slope, max(1, round(0.15 * fs)))
    refractory = round(0.2 * fs)
    peaks = np.flatnonzero((energy[1:-1] > energy[:-2]) & (energy[1:-1] >= energy[2:])) + 1
    if peaks.size == 0:
        return peaks.astype(np.int64)
    level = np.percentile(energy[peaks], 90)
    peaks = peaks[energy[peaks] > 0.25 * level]
    kept: list[int] = []
    for p in peaks[np.argsort(-energy[peaks])]:  # strongest first, then refractory suppression
        if all(abs(p - k) > refractory for k in kept):
            kept.append(int(p))
    out = np.sort(np.array(kept, dtype=np.int64))
    half = round(0.12 * fs)  # the integrated peak lags the QRS: take the steepest point before it
    search = np.clip(out[:, None] + np.arange(-half, round(0.03 * fs))[None, :], 0, x.size - 1)
    return search[np.arange(out.size), np.argmax(np.abs(slope[search]), axis=1)]
