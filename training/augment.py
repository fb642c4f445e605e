"""Augmentation that imitates the bedside chain: electrode noise, gain, rate, AD8232 + 8-bit PCF8591.

Every training window is cut from its record with context on both sides, resampled for a small heart-rate
change, scaled, given baseline wander and muscle noise from nstdb, and -- for most windows -- passed through
:meth:`ecgd.io.frontend.AnalogFrontEnd.simulate_mv`, the same model of the board the offline classifier uses.
The context lets the board's 0.5 Hz high-pass settle before the 10 s the model sees, as it has on a device
that has been running for a while. The rest stay clean so the model also works without the front end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ecgd.io.frontend import AnalogFrontEnd
from training.data import FS, WINDOW

CONTEXT = 1800  # samples read on each side of a window (5 s): room for rate change and filter settling
FE_CONTEXT = 720  # samples of the resampled signal kept on each side for the front-end filter (2 s)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges; defaults are the shipped model's."""

    p_frontend: float = 0.6  # share of windows passed through the AD8232 + PCF8591 model
    p_plain: float = 0.15  # share of windows left untouched (no augmentation, no front end)
    rate_range: float = 0.05  # ± relative heart-rate change
    amp_log2_range: tuple[float, float] = (-1.0, 1.0)  # amplitude 0.5x .. 2x
    p_big: float = 0.1  # share with 2x .. 3x amplitude, so that QRS complexes hit the ADC rails
    p_bw: float = 0.5  # nstdb baseline wander
    bw_scale: tuple[float, float] = (0.2, 2.0)
    p_sine: float = 0.3  # synthetic respiration-like wander
    p_ma: float = 0.5  # nstdb muscle artefact at a random SNR
    snr_db: tuple[float, float] = (0.0, 24.0)
    dc_mv: float = 1.0  # ± random electrode offset (removed by the board's high-pass)

    def to_dict(self) -> dict:
        return asdict(self)


def plain_windows(signals: dict[str, np.ndarray], names: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The windows as recorded, shape (n, WINDOW)."""
    out = np.empty((len(starts), WINDOW), dtype=np.float32)
    for i, (name, s) in enumerate(zip(names, starts, strict=True)):
        out[i] = signals[name][s : s + WINDOW]
    return out


def frontend_windows(
    signals: dict[str, np.ndarray], names: np.ndarray, starts: np.ndarray, fe: AnalogFrontEnd
) -> np.ndarray:
    """Windows through the front end with context (no other augmentation): for validation curves."""
    out = np.empty((len(starts), WINDOW), dtype=np.float32)
    for i, (name, s) in enumerate(zip(names, starts, strict=True)):
        seg = signals[name][s - FE_CONTEXT : s + WINDOW + FE_CONTEXT]
        out[i] = fe.simulate_mv(seg, FS)[FE_CONTEXT : FE_CONTEXT + WINDOW]
    return out


def augment_windows(
    signals: dict[str, np.ndarray],
    noise: dict[str, np.ndarray],
    names: np.ndarray,
    starts: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig | None = None,
    fe: AnalogFrontEnd | None = None,
    synth: np.ndarray | None = None,
    beats: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """One augmented copy of each window, shape (n, WINDOW), float32 mV.

    Windows must have ``CONTEXT`` samples of record on both sides. Where ``synth`` is "AF" or "S" the window
    is first rebuilt by :func:`synthetic_af` or :func:`synthetic_s` from the N beats (``beats[name]``)
    around it (those windows should be N windows).
    """
    cfg = cfg or AugmentConfig()
    fe = fe or AnalogFrontEnd()
    n_out = WINDOW + 2 * FE_CONTEXT
    grid = np.arange(n_out, dtype=np.float64) - n_out / 2.0
    t = np.arange(n_out, dtype=np.float64) / FS
    out = np.empty((len(starts), WINDOW), dtype=np.float32)
    for i, (name, s) in enumerate(zip(names, starts, strict=True)):
        sig = signals[name]
        made = None
        kind = synth[i] if synth is not None else ""
        if kind and beats is not None:
            maker = synthetic_af if kind == "AF" else synthetic_s
            made = maker(sig, beats[name], int(s), WINDOW + 2 * CONTEXT, rng)
        if made is None and rng.random() < cfg.p_plain:
            out[i] = sig[s : s + WINDOW]
            continue
        seg = made if made is not None else sig[s - CONTEXT : s + WINDOW + CONTEXT].astype(np.float64)
        centre = CONTEXT + WINDOW / 2.0
        rate = 1.0 + rng.uniform(-cfg.rate_range, cfg.rate_range)
        x = np.interp(centre + grid * rate, np.arange(seg.size), seg)
        if rng.random() < cfg.p_big:
            x *= rng.uniform(2.0, 3.0)
        else:
            x *= 2.0 ** rng.uniform(*cfg.amp_log2_range)
        sig_rms = float(np.std(x)) + 1e-6
        if rng.random() < cfg.p_bw:
            x += _noise_segment(noise["bw"], n_out, rng) * rng.uniform(*cfg.bw_scale)
        if rng.random() < cfg.p_sine:
            f = rng.uniform(0.05, 0.5)
            x += rng.uniform(0.05, 0.6) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        if rng.random() < cfg.p_ma:
            ma = _noise_segment(noise["ma"], n_out, rng)
            snr = rng.uniform(*cfg.snr_db)
            x += ma * (sig_rms / (float(np.std(ma)) + 1e-9)) * 10.0 ** (-snr / 20.0)
        x += rng.uniform(-cfg.dc_mv, cfg.dc_mv)
        if rng.random() < cfg.p_frontend:
            x = fe.simulate_mv(x, FS)
        out[i] = x[FE_CONTEXT : FE_CONTEXT + WINDOW]
    return out


def synthetic_af(
    sig: np.ndarray, beats: np.ndarray, start: int, n_out: int, rng: np.random.Generator
) -> np.ndarray | None:
    """An AF-like segment of ``n_out`` samples made from the beats of a sinus-rhythm stretch.

    DS1 has AF in only two patients, so a model learns *their* AF. What AF has in every patient is an
    irregularly irregular ventricular rhythm without P waves over a fibrillating baseline: this rebuilds
    that from another patient's own QRS-T complexes, placed at log-normally jittered RR intervals (median
    successive change 15-35 %, as in records 201 and 203), with the P-wave stretch between complexes
    replaced by a straight line plus 4-9 Hz f-waves. Returns None where there are too few beats.
    """
    seg, b = _stretch(sig, beats, start)
    if b is None:
        return None
    rr_mean = float(np.median(np.diff(b))) * rng.uniform(0.6, 1.0)
    sigma = rng.uniform(0.15, 0.35)
    times = [float(rng.uniform(0, rr_mean))]
    while times[-1] < n_out:
        times.append(times[-1] + float(np.clip(rr_mean * np.exp(rng.normal(0, sigma)), 0.3 * FS, 2.0 * FS)))
    src = b[rng.integers(0, b.size, len(times))]
    out = _place_complexes(seg, src, np.array(times), n_out, pre_s=0.08)
    if out is None:
        return None
    idx = np.arange(n_out)
    f = rng.uniform(4.0, 9.0) + np.cumsum(rng.normal(0, 0.02, n_out))
    phase = 2 * np.pi * np.cumsum(np.clip(f, 3.5, 10.0)) / FS
    amp = rng.uniform(0.01, 0.12) * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * idx / FS))
    return out + amp * np.sin(phase + rng.uniform(0, 2 * np.pi))


def synthetic_s(
    sig: np.ndarray, beats: np.ndarray, start: int, n_out: int, rng: np.random.Generator
) -> np.ndarray | None:
    """A sinus stretch with one to three beats made premature: an S window in the patient's own morphology.

    S windows in DS1 come mostly from four patients, and a premature beat of normal shape is a matter of
    timing, not of shape. Each chosen beat (inside the 10 s window) comes 20-45 % of an RR interval early,
    P wave and QRS-T moved together; the sinus node resets, so the next beat follows one RR (up to 25 %
    more) later. Gaps between the moved complexes are bridged by straight lines (the TP segment).
    """
    seg, b = _stretch(sig, beats, start)
    if b is None:
        return None
    rr = float(np.median(np.diff(b)))
    inside = np.flatnonzero((b > CONTEXT + 0.3 * FS) & (b < CONTEXT + WINDOW - 0.1 * FS))
    inside = inside[inside >= 1]
    if inside.size == 0:
        return None
    picks = set(rng.choice(inside, size=min(int(rng.integers(1, 4)), inside.size), replace=False).tolist())
    times = b.astype(np.float64).copy()
    for k in range(1, b.size):
        gap = b[k] - b[k - 1]
        if k in picks:
            gap = gap * (1.0 - rng.uniform(0.2, 0.45))
        elif k - 1 in picks:
            gap = rr * rng.uniform(1.0, 1.25)
        times[k] = times[k - 1] + gap
    return _place_complexes(seg, b, times, n_out, pre_s=0.25)


def _stretch(sig: np.ndarray, beats: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The window with its context and the (N) beats in it, relative to the context's start."""
    lo, hi = start - CONTEXT, start + WINDOW + CONTEXT
    b = beats[(beats >= lo + 0.3 * FS) & (beats < hi - 0.45 * FS)] - lo
    seg = sig[lo:hi].astype(np.float64)
    return seg, (b if b.size >= 6 else None)


def _place_complexes(
    seg: np.ndarray, src: np.ndarray, times: np.ndarray, n_out: int, pre_s: float
) -> np.ndarray | None:
    """Copy the complex around each source beat ``src[k]`` to ``times[k]``; straight lines in between.

    A complex spans up to ``pre_s`` before its R wave (0.35 of the previous gap at most) and 0.4 s after it
    (0.6 of the next gap at most), so neighbours never overlap.
    """
    out = np.full(n_out, np.nan)
    for k, t in enumerate(times):
        gap_prev = times[k] - times[k - 1] if k > 0 else FS
        gap_next = times[k + 1] - times[k] if k + 1 < times.size else FS
        pre = int(min(pre_s * FS, 0.35 * gap_prev))
        post = int(min(0.4 * FS, 0.6 * gap_next))
        tr = int(np.rint(t))
        a0, a1 = max(tr - pre, 0), min(tr + post, n_out)
        if a1 <= a0:
            continue
        s0 = int(src[k]) - (tr - a0)
        if s0 < 0 or s0 + (a1 - a0) > seg.size:
            continue
        out[a0:a1] = seg[s0 : s0 + (a1 - a0)]
    known = ~np.isnan(out)
    if known.sum() < n_out // 4:
        return None
    idx = np.arange(n_out)
    return np.interp(idx, idx[known], out[known])


def _noise_segment(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    s = int(rng.integers(0, noise.size - n))
    seg = noise[s : s + n].astype(np.float64)
    return seg - seg.mean()
