"""The QRS positions of one window, for the classifier when no beat stage hands them over.

A small Pan-Tompkins-style detector on the window alone (band-pass 5-15 Hz by differences of moving
averages, squared slope, 150 ms integration, threshold at a fraction of the window's typical peaks,
200 ms refractory period). The project's streaming detector (``ecgd.analysis.qrs``) is the better
source when it runs continuously (the daemon's beat stage); started afresh on each window it spends
its learning time on the window's first beats (measured on the 8-bit front end, 10-s windows:
Se 0.91-0.97 against this one's 0.96-1.00 on MIT-BIH 101, 108, 119, 203, 207 and SVDB 800), so it
is not used per window. Numpy on the block; the only Python loop is over candidate peaks.
"""

from __future__ import annotations

import numpy as np


def detect_beats(mv: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices (within ``mv``) of the QRS complexes found in one window."""
    x = np.asarray(mv, dtype=np.float64)
    if x.size < int(fs):
        return np.zeros(0, dtype=np.int64)
    return _window_detect(x, fs)


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
