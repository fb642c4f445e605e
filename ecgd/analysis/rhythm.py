"""RR-interval irregularity features for the atrial-fibrillation decision of one window.

Only beat times go in, so the same function scores a 360 Hz recording through the QRS detector and the
128 Hz beat annotations of the Long-Term AF Database (which has no signals): the AF model learns from 84
patients' RR series that way. Every measure is defined on short series (8-15 beats, one 10-s window) and
is scale-free where it can be (divided by the mean RR), so heart rate alone does not decide AF.
"""

from __future__ import annotations

import numpy as np

RR_FEATURES: tuple[str, ...] = (
    "cv",  # standard deviation / mean of the RR intervals
    "rmssd_rel",  # root mean square of successive differences / mean RR
    "mad_drr_rel",  # median |ΔRR| / mean RR (robust to one ectopic beat)
    "pnn50",  # share of |ΔRR| > 50 ms
    "tpr",  # turning-point ratio (≈ 2/3 for a random series, low for a regular or trended one)
    "cosen",  # coefficient of sample entropy (Lake & Moorman 2011), m = 1, r = 30 ms
    "near_median",  # share of RR within 10 % of the median RR (high with ectopy on a regular rhythm)
    "mean_rr_s",  # mean RR in seconds
)
MIN_RR = 7  # fewer intervals than this (8 beats): no AF decision, the window cannot be AF
MAX_RR_S = 3.0  # a longer interval is a gap (missed beats, unreadable signal), not a rhythm


def rr_features(rr_s: np.ndarray) -> np.ndarray | None:
    """The :data:`RR_FEATURES` of one window's RR intervals (seconds), or ``None`` if too few."""
    rr = np.asarray(rr_s, dtype=np.float64)
    rr = rr[(rr > 0.2) & (rr < MAX_RR_S)]
    if rr.size < MIN_RR:
        return None
    mean = float(rr.mean())
    drr = np.diff(rr)
    turning = (drr[:-1] * drr[1:]) < 0
    out = np.array(
        [
            rr.std() / mean,
            np.sqrt(np.mean(drr**2)) / mean,
            np.median(np.abs(drr)) / mean,
            np.mean(np.abs(drr) > 0.05),
            turning.sum() / max(rr.size - 2, 1),
            _cosen(rr),
            np.mean(np.abs(rr - np.median(rr)) < 0.1 * np.median(rr)),
            mean,
        ],
        dtype=np.float32,
    )
    return out


def _cosen(rr: np.ndarray, r: float = 0.03) -> float:
    """Coefficient of sample entropy with m = 1 and tolerance ``r`` seconds, for short series.

    SampEn = -ln(A/B) counts template matches of length 2 (A) and 1 (B); with no match at all the
    conventional zero counts are replaced by one, so a very irregular 10-s series gets a large,
    finite value. CoSEn = SampEn - ln(2r) - ln(mean RR).
    """
    n = rr.size
    d1 = np.abs(rr[:-1, None] - rr[None, :-1])  # length-1 templates (first n-1, as SampEn does)
    both = d1[:-1, :-1]
    d2 = np.maximum(both, np.abs(rr[1:-1, None] - rr[None, 1:-1]))
    off1 = ~np.eye(n - 1, dtype=bool)
    off2 = ~np.eye(n - 2, dtype=bool)
    b = max(int(np.sum((d1 < r) & off1)), 1)
    a = max(int(np.sum((d2 < r) & off2)), 1)
    return float(-np.log(a / b) - np.log(2 * r) - np.log(rr.mean()))


def rr_between_kept(beat_seq: np.ndarray, drop: np.ndarray, fs: float) -> np.ndarray:
    """RR intervals (s) between consecutive beats neither of which is dropped.

    With ventricular ectopic beats dropped, a regular rhythm with frequent PVCs keeps only its regular
    intervals (the coupling interval and the compensatory pause go), while AF stays irregular: the
    irregularity measures then see the rhythm, not the ectopy.
    """
    seq = np.asarray(beat_seq, dtype=np.int64)
    if seq.size < 2:
        return np.zeros(0, dtype=np.float32)
    ok = ~drop[:-1] & ~drop[1:]
    return (np.diff(seq)[ok] / fs).astype(np.float32)


P_WAVE_MIN_BEATS = 8  # fewer normal beats with a clear P-wave stretch: no judgement of the atrial wave
P_WAVE_MIN_RR_S = 0.45  # a shorter pre-RR puts the previous beat's T wave into the P-wave stretch


def p_wave_coherence(
    beat_seq: np.ndarray, is_normal: np.ndarray, p_wave: np.ndarray, prev_seq: int | None, fs: float
) -> float | None:
    """How much of the atrial activity before the normal beats is one wave locked to them: the energy
    of the mean P-wave stretch over the mean energy of the stretches (``BeatFeatures.p_wave``), of the
    beats labelled N whose pre-RR is at least ``P_WAVE_MIN_RR_S``; ``None`` with fewer than
    ``P_WAVE_MIN_BEATS`` of them.

    A P wave before every beat, as in sinus rhythm with or without ectopy, gives a value near 1; atrial
    activity that is not locked to the QRS (the f waves of AF, noise) averages out, to about 1/beats. The
    RR series cannot tell frequent ectopy from AF everywhere; the atrial wave can.
    """
    seq = np.asarray(beat_seq, dtype=np.int64)
    if seq.size == 0:
        return None
    stretches = np.asarray(p_wave, dtype=np.float64)
    coherence = span_p_wave_coherence(  # one span: the beats, after the one at prev_seq (never used)
        np.concatenate(([prev_seq if prev_seq is not None else _NO_BEAT], seq)),
        np.concatenate(([False], np.asarray(is_normal, bool))),
        np.vstack((np.full((1, stretches.shape[1]), np.nan), stretches)),
        np.array([seq[-1] + 1]),
        int(seq[-1] + 1 - seq[0]),
        fs,
    )[0]
    return None if np.isnan(coherence) else float(coherence)


_NO_BEAT = -(1 << 62)  # the position before a record's first beat: its pre-RR is long enough


def p_wave_to_qrs(
    beat_seq: np.ndarray,
    is_normal: np.ndarray,
    p_wave: np.ndarray,
    prev_seq: int | None,
    fs: float,
    qrs_mv: float,
) -> float | None:
    """The P wave the normal beats share, against the patient's QRS: the RMS of their mean P-wave stretch,
    less what unlocked activity leaves in a mean of n stretches (an unbiased estimate of the locked wave's
    energy), over ``qrs_mv`` (the dominant beat's QRS peak-to-peak); the beats :func:`p_wave_coherence`
    takes, ``None`` with fewer than ``P_WAVE_MIN_BEATS`` of them or no QRS amplitude.

    Why beside the coherence: noise before the beats (a moving patient's muscle) inflates the stretches'
    energy, so the coherence of a sinus rhythm falls to AF's (DS1 with NSTDB muscle noise at 6 dB: 0.1-0.3),
    while the noise averages out of the mean and the sinus P wave stays (about 2-3 % of the QRS there,
    clean or noisy; AF under 1 %)."""
    seq = np.asarray(beat_seq, dtype=np.int64)
    if seq.size == 0 or not qrs_mv > 0:
        return None
    before = np.concatenate(([prev_seq if prev_seq is not None else _NO_BEAT], seq[:-1]))
    stretches = np.asarray(p_wave, dtype=np.float64)
    use = _p_wave_beats(seq, before, is_normal, stretches, fs)
    n = int(use.sum())
    if n < P_WAVE_MIN_BEATS:
        return None
    v = stretches[use]
    energy = float(np.mean(np.sum(v * v, axis=1)))  # mean energy of a stretch
    locked = (n * float(np.sum(v.mean(axis=0) ** 2)) - energy) / (n - 1)
    return float(np.sqrt(max(locked, 0.0) / v.shape[1])) / qrs_mv


def _p_wave_beats(
    seq: np.ndarray, before: np.ndarray, is_normal: np.ndarray, stretches: np.ndarray, fs: float
) -> np.ndarray:
    """The beats whose P-wave stretch is judged: labelled N, ``P_WAVE_MIN_RR_S`` after the beat before
    (a shorter pre-RR puts that beat's T wave in the stretch), and no sample missing."""
    return np.asarray(is_normal, bool) & (seq - before >= P_WAVE_MIN_RR_S * fs) & ~np.isnan(stretches).any(1)


def span_p_wave_coherence(
    seq: np.ndarray, is_normal: np.ndarray, p_wave: np.ndarray, stops: np.ndarray, span: int, fs: float
) -> np.ndarray:
    """:func:`p_wave_coherence` of the beats in ``[stop - span, stop)`` for each of ``stops`` (NaN: not
    judged), from running sums over all the beats ``seq``, so training can apply the rule to every
    window of a record and every candidate threshold without a loop per window."""
    seq = np.asarray(seq, dtype=np.int64)
    before = np.concatenate(([_NO_BEAT], seq[:-1]))
    stretches = np.asarray(p_wave, dtype=np.float64)
    use = _p_wave_beats(seq, before, is_normal, stretches, fs)
    v = np.where(use[:, None], stretches, 0.0)
    sum_v = np.vstack((np.zeros((1, v.shape[1])), np.cumsum(v, axis=0)))
    sum_e = np.concatenate(([0.0], np.cumsum(np.sum(v * v, axis=1))))
    count = np.concatenate(([0], np.cumsum(use)))
    lo, hi = np.searchsorted(seq, np.asarray(stops) - span), np.searchsorted(seq, stops)
    n, energy, total = count[hi] - count[lo], sum_e[hi] - sum_e[lo], sum_v[hi] - sum_v[lo]
    # a flat line (mean energy ≤ 1e-12) has no atrial wave to speak of either way
    judged = (n >= P_WAVE_MIN_BEATS) & (energy > 1e-12 * np.maximum(n, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(judged, np.sum(total * total, axis=1) / (n * energy), np.nan)
