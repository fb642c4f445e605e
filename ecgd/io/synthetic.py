"""Synthetic ECG of a known rhythm, for heart-rate tests and benchmarks.

Real records do not offer steps of exactly 80 → 120 bpm or a clean 250 bpm; this trace has P, QRS
and T waves placed at chosen R-peak times, so the true beats and RR intervals are known exactly.
The wave widths shrink at fast rates as the heart's do (the QT shortens), so T waves never overlap
the next QRS up to 300 bpm.
"""

from __future__ import annotations

import numpy as np


def rr_schedule(duration_s: float, segments: list[tuple[float, float]]) -> np.ndarray:
    """R-peak times (s) from ``(start_s, bpm)`` segments: each rate holds until the next start."""
    times, t = [], 0.5
    bounds = [*segments[1:], (float("inf"), 0.0)]
    for (start, bpm), (nxt, _) in zip(segments, bounds, strict=True):
        t = max(t, start)
        while t < min(nxt, duration_s - 0.5):
            times.append(t)
            t += 60.0 / bpm
    return np.array(times)


def synthetic_ecg(
    r_times_s: np.ndarray,
    duration_s: float,
    fs: float,
    qrs_mv: float = 1.0,
    t_mv: float = 0.3,
    noise_mv: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Millivolts at ``fs``: a beat (P, Q, R, S, T) at each time of ``r_times_s``."""
    n = round(duration_s * fs)
    t = np.arange(n) / fs
    x = np.zeros(n)
    rr = np.diff(
        r_times_s, append=r_times_s[-1] + (r_times_s[-1] - r_times_s[-2] if len(r_times_s) > 1 else 1)
    )
    for r, interval in zip(r_times_s, rr, strict=True):
        scale = float(np.clip(np.sqrt(interval), 0.45, 1.2))  # Bazett-like: QT ~ sqrt(RR)
        lo, hi = np.searchsorted(t, [r - 0.3 * scale, r + 0.45 * scale])
        tt = t[lo:hi] - r
        x[lo:hi] += (
            0.12 * np.exp(-0.5 * ((tt + 0.16 * scale) / (0.025 * scale)) ** 2)  # P
            - 0.10 * qrs_mv * np.exp(-0.5 * ((tt + 0.025) / 0.008) ** 2)  # Q
            + qrs_mv * np.exp(-0.5 * (tt / 0.011) ** 2)  # R
            - 0.25 * qrs_mv * np.exp(-0.5 * ((tt - 0.028) / 0.009) ** 2)  # S
            + t_mv * np.exp(-0.5 * ((tt - 0.25 * scale) / (0.045 * scale)) ** 2)  # T
        )
    if noise_mv:
        x += np.random.default_rng(seed).normal(0.0, noise_mv, n)
    return x
