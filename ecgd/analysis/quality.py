"""Signal-quality gate: decide whether a window is readable ECG before the model sees it.

A bedside monitor must never report a rhythm for leads off, a flat line, a saturated ADC or gross
noise: the model was trained on ECG and will put *some* label on anything. Each check here is a
single measured number compared with a threshold from ``QualitySettings``, so that the reason
given for an ``unreadable`` window can be read and verified by a person. Checks run cheapest and
most specific first; the first failing one gives the reason.

QRS complexes are the beats of the QRS detector the beat stage runs (``ecgd.analysis.qrs``, one
notion of "a QRS complex" in the project), run on the window alone, counted when they are steep
enough (mV/s over 20 ms): the detector adapts to whatever it is given and finds "beats" in baseline
wander and motion noise too, which have no steep deflections. Muscle noise has steep deflections,
but they do not repeat the way QRS complexes (and P/T waves) do beat after beat. Ventricular
flutter is slow (4-6 Hz) and self-similar, so it is not mistaken for noise (MIT-BIH 207 passes).

Thresholds were chosen on MIT-BIH DS1 and the NSTDB ``bw``/``ma`` noise records only
(``bench/quality_false_alarms.py`` reproduces the figures).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ecgd.analysis.qrs import QrsDetector, QrsSettings
from ecgd.io.frontend import AnalogFrontEnd

# Internal constants: shapes of the measurement, not thresholds.
_SLOPE_SPAN_S = 0.02  # slope = difference across 20 ms: the rise time of a QRS, longer than ADC steps
_REFRACTORY_S = 0.2  # one complex per ±200 ms: a QRS lasts ~0.1 s; flutter waves up to 300/min stay apart
_SEGMENT_HALF_S = 0.08  # ±80 ms around the steepest point covers the QRS of normal and wide beats
_REFERENCE_TOP = 3  # the slope reference is the median of the 3 steepest complexes: one spike cannot set it
_HF_REFERENCE_HZ = 1.0  # power below 1 Hz (baseline wander, DC) is left out of the noise ratio
MIN_FS_HZ = 100.0  # below this the QRS band (5-40 Hz) and the 20 Hz noise band are not both resolved
MIN_WINDOW_S = 2.0  # two beats at 60/min need 2 s; the similarity check needs two complexes


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the quality gate; YAML ``quality.<field>`` maps onto each field."""

    enabled: bool = True
    # Flat line: below ~4 LSB of the AD8232+PCF8591 chain (0.0117 mV/LSB): ADC stuck or no signal.
    # The smallest DS1 window through the front end spans 0.62 mV.
    flat_max_range_mv: float = 0.05
    # A sample within this fraction of the rail-to-rail span of a rail counts as "at the rail":
    # 2 % = 5 codes of the 8-bit ADC (66 mV at the AD8232 output): a rail-to-rail output stops short of it.
    rail_margin_fraction: float = 0.02
    # Tall R waves clip at the rails of the ±1.5 mV AD8232 chain: up to 11 % of a DS1 window
    # (records 109, 116). Leads off sits there for good; poor contact keeps coming back to it.
    rail_max_fraction: float = 0.2
    # Longest stay at a rail: a clipped QRS lasts < 0.25 s (DS1: ≤ 0.21 s, except one real 0.46-s
    # saturation artifact in 116); an electrode off lasts longer.
    rail_max_run_s: float = 0.4
    # Body-surface ECG rarely exceeds 5 mV; DS1 windows reach 9.5 mV with baseline wander (the MIT-BIH
    # ADC spans ±5 mV). More than this is a unit error or an electrode pop, not a heart.
    max_peak_to_peak_mv: float = 12.0
    # Steepness (over 20 ms, within ±80 ms of its R peak) a detected beat must reach to count as a QRS
    # complex, and the floor of the steep deflections the similarity check compares: the 3rd steepest
    # complex of every DS1 window is ≥ 16 mV/s; baseline wander mostly stays < 5 mV/s.
    qrs_min_slope_mv_per_s: float = 8.0
    # A detected beat must also be at least this fraction as steep as the window's typical steepest
    # beats (the median of the 3 steepest).
    qrs_relative_slope: float = 0.3
    # Fewer complexes than this rate is no ECG (12/min = 2 per 10 s window; a 10 s asystole is flat anyway).
    min_qrs_per_minute: float = 12.0
    # Share of the power above 1 Hz that lies above noise_cutoff_hz: QRS energy sits at 5-20 Hz, muscle noise
    # higher (NSTDB ma median 53-72 %). DS1 ECG: at most 33 % through the front end, 46 % without (114).
    noise_cutoff_hz: float = 20.0
    max_noise_power_fraction: float = 0.5
    # QRS complexes (and P/T waves) repeat: each steep deflection's best correlation (±80 ms) with
    # another one of the window, median over deflections. DS1 through the front end: ≥ 0.84, also
    # in ventricular flutter (207); without it ≥ 0.76 (108, noisy); muscle-noise bursts: 0.3-0.8.
    min_qrs_similarity: float = 0.8

    def problems(self) -> list[str]:
        """Every out-of-range field as ``'<field>: why'``, so a config loader can report them all at once."""
        found = []
        fractions = (
            "rail_margin_fraction",
            "rail_max_fraction",
            "qrs_relative_slope",
            "max_noise_power_fraction",
            "min_qrs_similarity",
        )
        for name in fractions:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                found.append(f"{name}: {value!r} is not between 0 and 1")
        for name in ("flat_max_range_mv", "rail_max_run_s", "qrs_min_slope_mv_per_s", "noise_cutoff_hz"):
            value = getattr(self, name)
            if not value > 0.0:
                found.append(f"{name}: {value!r} must be > 0")
        if not self.max_peak_to_peak_mv > self.flat_max_range_mv:
            found.append(f"max_peak_to_peak_mv: {self.max_peak_to_peak_mv!r} must exceed flat_max_range_mv")
        if not self.min_qrs_per_minute >= 0.0:
            found.append(f"min_qrs_per_minute: {self.min_qrs_per_minute!r} must be ≥ 0")
        return found


def adc_rails_mv(frontend: AnalogFrontEnd) -> tuple[float, float]:
    """The electrode millivolts at ADC codes 0 and full scale: where leads-off lands."""
    low, high = frontend.counts_to_mv(np.array([0, frontend.adc_max]))
    return float(low), float(high)


def assess_window(
    mv: np.ndarray,
    fs: float,
    rails_mv: tuple[float, float] | None,
    settings: QualitySettings,
    qrs: QrsSettings | None = None,
) -> str | None:
    """None when the window is readable ECG; else a short reason naming the measured value and threshold.

    ``mv`` must have its missing samples filled already (a NaN raises ValueError): a gap has no
    quality of its own, and guessing here would hide the sampler's problem. ``rails_mv`` is None
    for recordings that did not come through an ADC (no rail check).
    """
    x, fs = _validated(mv, fs)
    if not settings.enabled:
        return None
    duration = x.size / fs
    if rails_mv is not None:
        reason = _check_rails(x, fs, rails_mv, settings)
        if reason:
            return reason
    p2p = float(x.max() - x.min())
    if p2p < settings.flat_max_range_mv:
        return (
            f"flat line: {p2p:.3f} mV peak-to-peak over {duration:.1f} s "
            f"(min {settings.flat_max_range_mv:g} mV)"
        )
    if p2p > settings.max_peak_to_peak_mv:
        return f"implausible amplitude: {p2p:.1f} mV peak-to-peak (max {settings.max_peak_to_peak_mv:g} mV)"

    needed = max(2, math.ceil(settings.min_qrs_per_minute * duration / 60.0 - 1e-9))
    deflections, slope = _deflections(x, fs, settings)
    count, threshold = _qrs_count(x, fs, slope, settings, qrs)
    if count < needed:
        return (
            f"no QRS complexes found: {count} detected beat(s) ≥ {threshold:.0f} mV/s "
            f"in {duration:.1f} s (need {needed})"
        )
    hf = noise_power_fraction(x, fs, settings.noise_cutoff_hz)
    if hf > settings.max_noise_power_fraction:
        return (
            f"gross noise: {100 * hf:.0f} % of signal power above {settings.noise_cutoff_hz:g} Hz "
            f"(max {100 * settings.max_noise_power_fraction:.0f} %)"
        )
    similarity = _similarity(x, fs, deflections)
    if similarity is not None and similarity < settings.min_qrs_similarity:
        return (
            f"gross noise: steep deflections do not repeat like QRS complexes "
            f"(similarity {similarity:.2f}, min {settings.min_qrs_similarity:g})"
        )
    return None


def _validated(mv: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
    """Reject inputs the checks cannot judge, loudly: a silent pass would let garbage through."""
    is_number = isinstance(fs, numbers.Real) and not isinstance(fs, bool)
    rate = float(fs) if is_number else math.nan
    if not math.isfinite(rate) or rate < MIN_FS_HZ:
        raise ValueError(f"sample rate {fs!r} Hz is not usable for quality checks (need ≥ {MIN_FS_HZ:g} Hz)")
    x = np.asarray(mv, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"a window must be one-dimensional, got shape {x.shape}")
    if x.size < MIN_WINDOW_S * rate:
        raise ValueError(f"window of {x.size} samples at {rate:g} Hz is shorter than {MIN_WINDOW_S:g} s")
    if not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise ValueError(f"window has {bad} NaN/inf samples: fill missing samples before the quality check")
    return x, rate


def _check_rails(x: np.ndarray, fs: float, rails_mv: tuple[float, float], s: QualitySettings) -> str | None:
    """Leads off drives the AD8232 output to a supply rail: many samples, or a long run, at a rail."""
    low, high = min(rails_mv), max(rails_mv)
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ValueError(f"ADC rails {rails_mv!r} mV must be two different finite values (low, high)")
    margin = s.rail_margin_fraction * (high - low)
    at_rail = (x <= low + margin) | (x >= high - margin)
    fraction = float(at_rail.mean())
    if fraction > s.rail_max_fraction:
        return (
            f"saturated: {100 * fraction:.0f} % of samples at the ADC rails "
            f"(max {100 * s.rail_max_fraction:.0f} %; leads off?)"
        )
    edges = np.diff(at_rail.astype(np.int8), prepend=0, append=0)
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    longest = runs.max() / fs if runs.size else 0.0
    if longest > s.rail_max_run_s:
        return (
            f"saturated: {longest:.2f} s without a break at an ADC rail "
            f"(max {s.rail_max_run_s:g} s; leads off?)"
        )
    return None


def _slope(x: np.ndarray, fs: float) -> np.ndarray:
    """|dx/dt| in mV/s over ~20 ms; zero where the span does not fit (the window's edges)."""
    k = max(1, round(_SLOPE_SPAN_S * fs / 2))
    slope = np.zeros_like(x)
    slope[k:-k] = np.abs(x[2 * k :] - x[: -2 * k]) * (fs / (2 * k))
    return slope


def _deflections(x: np.ndarray, fs: float, s: QualitySettings) -> tuple[np.ndarray, np.ndarray]:
    """Steep deflections (steepest point within ±200 ms, at least the slope floor), and the slope.

    QRS complexes and the steeper P and T waves: the similarity check asks whether they repeat.
    """
    slope = _slope(x, fs)
    h = max(1, round(_REFRACTORY_S * fs))
    local_max = _running_max(slope, h)
    peaks = np.flatnonzero((slope == local_max) & (slope >= s.qrs_min_slope_mv_per_s))
    if peaks.size > 1:  # equal neighbours on a quantised plateau: keep the first of each cluster
        peaks = peaks[np.r_[True, np.diff(peaks) > h]]
    return peaks, slope


def _qrs_count(
    x: np.ndarray, fs: float, slope: np.ndarray, s: QualitySettings, qrs: QrsSettings | None
) -> tuple[int, float]:
    """QRS complexes: the beats the QRS detector finds in the window (the beat stage's detector, run
    on the window alone), counted when steep enough: at least the slope floor and
    ``qrs_relative_slope`` times the window's typical steepest beats. The detector adapts to any
    signal, so in baseline wander and motion noise it finds "beats" too; steepness tells them apart.

    Returns (count, slope threshold in mV/s).
    """
    beats = QrsDetector(fs, qrs or QrsSettings()).process(0, x).seq
    if beats.size == 0:
        return 0, s.qrs_min_slope_mv_per_s
    half = max(1, round(_SEGMENT_HALF_S * fs))
    lo = np.clip(beats - half, 0, x.size)
    hi = np.clip(beats + half + 1, 0, x.size)
    heights = np.array([slope[a:b].max() if b > a else 0.0 for a, b in zip(lo, hi, strict=True)])
    top = np.sort(heights)[-_REFERENCE_TOP:]
    threshold = max(s.qrs_min_slope_mv_per_s, s.qrs_relative_slope * float(np.median(top)))
    return int(np.count_nonzero(heights >= threshold)), threshold


def _running_max(x: np.ndarray, half: int) -> np.ndarray:
    """max(x[i - half : i + half + 1]) for every i, in O(n) (van Herk / Gil-Werman blocks).

    A sliding-window view costs n x (2 half + 1) comparisons, 4x slower at 360 Hz.
    """
    width = 2 * half + 1
    padded = np.pad(x, half, constant_values=-np.inf)
    n = padded.size
    blocks = np.full(-(-n // width) * width, -np.inf)
    blocks[:n] = padded
    blocks = blocks.reshape(-1, width)
    prefix = np.maximum.accumulate(blocks, axis=1).ravel()  # max from each block's start to j
    suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()  # max from j to block end
    # A window [i, i + width) spans at most two blocks: the tail of one and the head of the next.
    return np.maximum(suffix[: n - width + 1], prefix[width - 1 : n])


def noise_power_fraction(x: np.ndarray, fs: float, cutoff_hz: float) -> float:
    """Share of the power above 1 Hz that lies above ``cutoff_hz`` (QRS energy sits at 5-20 Hz). The
    alarm engine asks the same of a ventricular run's signal: one notion of muscle noise."""
    taper = np.hanning(x.size)
    power = np.abs(np.fft.rfft((x - x.mean()) * taper)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / fs)
    total = float(power[freqs >= _HF_REFERENCE_HZ].sum())
    if total <= 0.0:
        return 0.0
    return float(power[freqs >= cutoff_hz].sum()) / total


def _similarity(x: np.ndarray, fs: float, complexes: np.ndarray) -> float | None:
    """Median over complexes of the best correlation with another complex (None if < 2 fit the window)."""
    half = max(1, round(_SEGMENT_HALF_S * fs))
    inside = complexes[(complexes >= half) & (complexes < x.size - half)]
    if inside.size < 2:
        return None
    segments = x[inside[:, None] + np.arange(-half, half + 1)]
    segments = segments - segments.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(segments, axis=1, keepdims=True)
    segments = segments / np.where(norms > 0, norms, 1.0)
    corr = segments @ segments.T
    np.fill_diagonal(corr, -1.0)
    return float(np.median(corr.max(axis=1)))


FAULT_KINDS = ("one_off", "both_off", "intermittent", "stuck", "clipped")


def simulate_lead_fault(
    ecg_mv: np.ndarray,
    fs: float,
    kind: str,
    frontend: AnalogFrontEnd | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """What the daemon reconstructs (mV) when a lead fault hits an ECG window, for tests and the bench.

    ``ecg_mv`` is clean electrode-level ECG; it goes through the front end and the fault acts on the
    AD8232 output voltage before the ADC, where it happens on the device:

    - ``one_off``: one electrode comes off in the first half of the window; the output runs to a rail
      with a 50-300 ms time constant and stays there.
    - ``both_off``: the output sits at a rail for the whole window (a code or two of flicker).
    - ``intermittent``: poor contact: 2-5 episodes of 0.3-1.5 s at a rail between stretches of ECG.
    - ``stuck``: the ADC returns one constant code (I2C or converter fault), not at a rail.
    - ``clipped``: a large electrode offset pushes the whole trace into a rail; peaks still show.
    """
    fe = frontend or AnalogFrontEnd()
    rng = rng or np.random.default_rng()
    filtered = fe.filter_mv(np.asarray(ecg_mv, dtype=np.float64), fs)
    volts = fe.offset_volts + fe.gain * filtered / 1000.0
    n = volts.size
    t = np.arange(n) / fs
    rail_high = bool(rng.integers(2))
    beyond = fe.adc_reference_volts * (1.5 if rail_high else -0.5)  # driven past the rail, so it clips
    if kind == "one_off":
        t0 = rng.uniform(0.0, 0.5) * t[-1]
        tau = rng.uniform(0.05, 0.3)
        ramp = np.where(t >= t0, 1.0 - np.exp(-(t - t0) / tau), 0.0)
        volts = volts + (beyond - fe.offset_volts) * ramp
        counts = fe.volts_to_counts(volts)
    elif kind == "both_off":
        flicker = rng.integers(0, 2, n)
        counts = (fe.adc_max - flicker if rail_high else flicker).astype(np.int16)
    elif kind == "intermittent":
        off = np.zeros(n, dtype=bool)
        for _ in range(int(rng.integers(2, 6))):
            start = rng.uniform(0.0, t[-1])
            off |= (t >= start) & (t < start + rng.uniform(0.3, 1.5))
        volts = np.where(off, beyond, volts)
        counts = fe.volts_to_counts(volts)
    elif kind == "stuck":
        counts = np.full(n, int(rng.integers(8, fe.adc_max - 8)), dtype=np.int16)
    elif kind == "clipped":
        shift = rng.uniform(0.95, 1.2) * fe.adc_reference_volts / 2
        counts = fe.volts_to_counts(volts + (shift if rail_high else -shift))
    else:
        raise ValueError(f"unknown lead fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
    return fe.counts_to_mv(counts)
