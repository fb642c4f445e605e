"""Constructed ECG for the beat tests: known beat times, narrow or wide QRS, P waves only on normal beats."""

from __future__ import annotations

import numpy as np

FS = 360.0


def synth_ecg(
    beat_times: np.ndarray, wide: np.ndarray, seconds: float, seed: int = 0, p_waves: bool = True
) -> np.ndarray:
    """A lead-II-like signal: P wave (unless not ``p_waves``: AF), QRS (biphasic, 25 ms or 60 ms wide),
    T wave; a little noise."""
    t = np.arange(round(seconds * FS)) / FS
    x = np.zeros_like(t)
    for bt, w in zip(beat_times, wide, strict=True):
        s = 0.025 if not w else 0.06
        x += 1.2 * np.exp(-0.5 * ((t - bt) / (s / 2.5)) ** 2)  # R
        x -= 0.3 * np.exp(-0.5 * ((t - bt - s) / (s / 2.0)) ** 2)  # S
        if not w and p_waves:
            x += 0.12 * np.exp(-0.5 * ((t - bt + 0.16) / 0.02) ** 2)  # P (absent in a ventricular beat)
        x += (0.25 if not w else -0.35) * np.exp(-0.5 * ((t - bt - 0.3) / 0.05) ** 2)  # T
    return x + np.random.default_rng(seed).normal(0, 0.01, t.size)
