"""Synthetic ECG of a known rhythm, for heart-rate and alarm tests and benchmarks.

Real records do not offer steps of exactly 80 → 120 bpm, a clean 250 bpm, an asystole with the
electrodes on or VF on demand; these traces are electrode millivolts at ``fs`` with the events
placed where a test wants them, so the truth is known exactly. ``rr_schedule``/``synthetic_ecg``:
P, QRS and T waves at chosen R-peak times (the heart-rate tests). ``beats``/``regular``/``flat``/
``fibrillation``/``p_waves``: pieces to concatenate for the alarm tests (beats at a rate and QRS width,
a flat line with the front end's noise, coarse VF, a ventricular standstill).
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


def p_waves(
    fs: float, seconds: float, bpm: float, p_mv: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """P waves alone (~100 ms wide) on the flat line: a ventricular standstill, the atria still beating
    and the ventricles not (complete AV block without an escape rhythm). An asystole all the same."""
    x = flat(fs, seconds, rng)
    t = np.arange(x.size) / fs
    for centre in np.arange(0.3, seconds, 60.0 / bpm):
        x += p_mv * np.exp(-0.5 * ((t - centre) / 0.02) ** 2)
    return x


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
