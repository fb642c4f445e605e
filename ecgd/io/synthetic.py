"""Constructed ECG for alarm tests, the emulated device and the alarm benchmark.

Each piece is electrode-level millivolts at ``fs`` that the emulated board (or ``AnalogFrontEnd``)
turns into ADC codes, so a test controls exactly what happens when: beats at a given rate and QRS
width, a flat line with the front end's own noise (an asystole with the electrodes on), coarse
ventricular fibrillation. Pieces are concatenated with ``np.concatenate``.
"""

from __future__ import annotations

import numpy as np

# The AD8232 input noise and mains pickup of a bedside lead at rest: enough to flicker the 8-bit
# ADC's last code (1 LSB = 11.7 µV at the electrodes), as a real flat line with the electrodes on does.
FLAT_NOISE_MV = 0.006
MAINS_MV = 0.004


def beats(
    fs: float, rr_s: list[float] | np.ndarray, width_ms: float = 90.0, amplitude_mv: float = 1.2
) -> np.ndarray:
    """One beat per RR interval (its R peak 0.3 s into the interval, or mid-way if shorter): P, QRS, T.

    The QRS is a Gaussian R wave between small Q and S dips whose total duration is ``width_ms``;
    a wide (ventricular) beat has a lower, broad T wave of opposite sign, as PVCs do.
    """
    out = []
    for rr in np.asarray(rr_s, dtype=np.float64):
        n = max(1, round(rr * fs))
        t = np.arange(n) / fs
        r = min(0.3, rr / 2)
        sigma = width_ms / 1000.0 / 6.0
        x = amplitude_mv * np.exp(-0.5 * ((t - r) / sigma) ** 2)
        x -= 0.15 * amplitude_mv * np.exp(-0.5 * ((t - r + 2 * sigma) / (0.7 * sigma)) ** 2)
        x -= 0.2 * amplitude_mv * np.exp(-0.5 * ((t - r - 2 * sigma) / (0.7 * sigma)) ** 2)
        wide = width_ms >= 120
        if not wide and r > 0.2:
            x += 0.12 * np.exp(-0.5 * ((t - r + 0.16) / 0.02) ** 2)  # P wave
        tw = 0.3 if rr > 0.5 else 0.6 * rr
        x += (-0.35 if wide else 0.3) * np.exp(-0.5 * ((t - r - tw) / 0.05) ** 2)
        out.append(x)
    return np.concatenate(out) if out else np.zeros(0)


def flat(fs: float, seconds: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """A flat baseline with the front end's noise: what an asystole looks like with the electrodes on."""
    rng = rng or np.random.default_rng(0)
    n = round(seconds * fs)
    t = np.arange(n) / fs
    return FLAT_NOISE_MV * rng.standard_normal(n) + MAINS_MV * np.sin(2 * np.pi * 50.0 * t)


def fibrillation(
    fs: float,
    seconds: float,
    freq_hz: float = 5.0,
    amplitude_mv: float = 0.6,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Coarse VF: an oscillation around ``freq_hz`` whose frequency and amplitude wander (no QRS)."""
    rng = rng or np.random.default_rng(1)
    n = round(seconds * fs)
    wander = np.convolve(rng.standard_normal(n), np.ones(int(fs)) / fs, mode="same")  # ~1 s correlation
    f = freq_hz * (1.0 + 0.15 * wander / (np.abs(wander).max() + 1e-9))
    phase = 2 * np.pi * np.cumsum(f) / fs
    envelope = 1.0 + 0.3 * np.sin(2 * np.pi * 0.3 * np.arange(n) / fs + rng.uniform(0, 6.28))
    return amplitude_mv * envelope * np.sin(phase) + flat(fs, seconds, rng)


def regular(fs: float, seconds: float, bpm: float, width_ms: float = 90.0) -> np.ndarray:
    """Beats at a fixed rate filling ``seconds``."""
    count = max(1, round(seconds * bpm / 60.0))
    return beats(fs, [60.0 / bpm] * count, width_ms)
