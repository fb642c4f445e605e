"""Per-beat features against the patient's own dominant beat: the "arrhythmia relearn" of bedside monitors.

A beat is judged by its RR context (prematurity against this patient's recent rhythm, compensatory
pause) and by its shape compared with this patient's dominant beat (correlation, QRS width, amplitude,
energy), never by absolute width or amplitude: a patient whose every beat is wide (bundle branch block)
has a wide template, so their beats are normal *for them*. :class:`PatientTemplate` learns the dominant
beat during the first ``learn_seconds`` of beats (the largest cluster of alike beats, the narrowest when
two are large, as in bigeminy) and then follows it slowly with beats that match it. A lasting change of
the dominant beat is taken over, and the replaced beats stay known as this patient's (``formers``): a
beat is judged against whichever of them it is most like.

:class:`BeatAnalyzer` is the stateful stage fed one window at a time (overlapping windows are fine: a
beat updates the state once). The daemon and the offline commands (and the training code) use the same
class, so features online and offline are the same numbers. Pure numpy on blocks; no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

BEAT_FEATURES: tuple[str, ...] = (
    "rr_pre_local",  # pre-RR / local RR (median of the last 16 intervals): prematurity
    "rr_post_local",  # post-RR / local RR (1 when the next beat is not yet seen)
    "rr_post_pre",  # post-RR / pre-RR: the compensatory pause (1 when unknown)
    "has_post",  # 1 if the post-RR interval is known
    "rr_pre_base",  # pre-RR / the patient's learned RR baseline
    "rr_local_s",  # local RR in seconds (rate context)
    "corr_qrs",  # correlation with the template over the QRS (-100..+120 ms), best lag within ±14 ms
    "corr_wide",  # correlation over P-QRS-T (-250..+400 ms)
    "corr_p",  # correlation over the P-wave stretch (-250..-80 ms)
    "width_ratio",  # QRS width / template QRS width
    "amp_ratio",  # QRS peak-to-peak / template's
    "energy_ratio",  # QRS energy / template's (log2)
    "resid_rel",  # RMS of (beat - template) over the QRS / template RMS
)
PRE_S, POST_S = 0.25, 0.40  # the beat segment around the fiducial point
WAVEFORM_HZ = 120.0  # BeatFeatures.waveform's rate
# its samples: block means of 3 at 360 Hz (the rate the model is trained at); other rates are interpolated
# onto the same instants, so a waveform graph sees one shape whatever the front end's rate
WAVEFORM_SAMPLES = round((PRE_S + POST_S) * WAVEFORM_HZ)
QRS_S = (-0.10, 0.12)
P_S = (-0.25, -0.08)
REFINE_S = 0.08  # the fiducial is the centre of the QRS's slope energy within this of the given position
MAX_LAG_S = 0.014
SMOOTH_S = 0.014  # box smoothing before a slope is taken: takes out the 8-bit steps and noise
# How a beat's position becomes its fiducial point (``qrs_centres``); a bundle's ``beat_model.fiducial`` must
# name it, since a graph trained on segments cut at another point would be fed other features.
FIDUCIAL = "qrs_slope_energy_centre"
MORPHOLOGY = slice(6, 13)  # corr_qrs … resid_rel: the columns judged against a template
LOCAL_RR = 16


@dataclass(frozen=True)
class RelearnSettings:
    """How the patient's dominant beat is learned and followed."""

    learn_seconds: float = 60.0  # beats of this much signal are learned before the template is final
    min_beats: int = 6  # fewer beats than this: no template yet, beats are `Q` (unknown)
    cluster_corr: float = 0.9  # beats this alike (QRS correlation) form one cluster
    adapt_rate: float = 0.03  # after learning, each matching beat moves the template this much
    pool_beats: int = 240  # at most this many beats are kept for learning
    change_fraction: float = 0.6  # this share of the recent beats alike and unlike the template: relearn
    change_beats: int = 60  # ... judged over this many recent beats (0: never relearn on its own)
    change_max_bpm: float = 100.0  # ... only when that new dominant beat comes slower than this
    former_templates: int = 2  # dominant beats replaced by a change stay known as this patient's (0: none)

    def problems(self) -> list[str]:
        """Every out-of-range field as ``'<field>: why'`` (the config loader reports them all at once)."""
        found = []
        if not 0.0 <= self.learn_seconds <= 3600.0:
            found.append(f"learn_seconds: {self.learn_seconds!r} is not between 0 and 3600")
        if not 3 <= self.min_beats <= self.pool_beats:
            found.append(f"min_beats: {self.min_beats!r} must be at least 3 and at most pool_beats")
        if not 0.5 <= self.cluster_corr < 1.0:
            found.append(f"cluster_corr: {self.cluster_corr!r} is not between 0.5 and 1")
        if not 0.0 <= self.adapt_rate <= 0.5:
            found.append(f"adapt_rate: {self.adapt_rate!r} is not between 0 and 0.5")
        if not 10 <= self.pool_beats <= 2000:
            found.append(f"pool_beats: {self.pool_beats!r} is not between 10 and 2000")
        if not 0.5 < self.change_fraction <= 1.0:
            found.append(f"change_fraction: {self.change_fraction!r} is not above 0.5 and at most 1")
        if not (self.change_beats == 0 or 20 <= self.change_beats <= 2000):
            found.append(f"change_beats: {self.change_beats!r} is neither 0 (off) nor between 20 and 2000")
        if not 30.0 <= self.change_max_bpm <= 300.0:
            found.append(f"change_max_bpm: {self.change_max_bpm!r} is not between 30 and 300")
        if not 0 <= self.former_templates <= 8:
            found.append(f"former_templates: {self.former_templates!r} is not between 0 and 8")
        return found


class TemplateShape(NamedTuple):
    """A dominant beat as the morphology features use it: its segment, QRS width (samples), amplitude
    and energy."""

    wave: np.ndarray
    width: float
    amp: float
    energy: float


@dataclass(frozen=True)
class _RecentBeats:
    """Recent beats as parallel arrays: segments, whether each matched the template, pre-RR (s) and
    prematurity (pre-RR / local RR)."""

    seg: np.ndarray
    match: np.ndarray
    rr: np.ndarray
    prem: np.ndarray

    def then(self, newer: _RecentBeats, keep: int) -> _RecentBeats:
        """These beats followed by ``newer``, the last ``keep`` of them."""
        pairs = (
            (self.seg, newer.seg),
            (self.match, newer.match),
            (self.rr, newer.rr),
            (self.prem, newer.prem),
        )
        return _RecentBeats(*(np.concatenate(pair) for pair in pairs)).last(keep)

    def last(self, keep: int) -> _RecentBeats:
        return _RecentBeats(self.seg[-keep:], self.match[-keep:], self.rr[-keep:], self.prem[-keep:])


@dataclass
class PatientTemplate:
    """The patient's dominant beat (segment around the fiducial), its QRS width, amplitude and RR."""

    fs: float
    settings: RelearnSettings = field(default_factory=RelearnSettings)
    wave: np.ndarray | None = None
    width: float = 0.0  # samples
    amp: float = 0.0
    energy: float = 0.0
    rr_s: float = 0.0
    learned_s: float = 0.0
    changes: int = 0  # how often the dominant beat changed after learning and was taken over
    _pool: list[np.ndarray] = field(default_factory=list)
    _pool_rr: list[float] = field(default_factory=list)
    formers: list[TemplateShape] = field(default_factory=list)  # replaced by a change, newest first
    _recent: _RecentBeats | None = None  # the last change_beats beats after learning (see _changed)
    _since_check: int = 0

    @property
    def ready(self) -> bool:
        return self.wave is not None

    @property
    def learning(self) -> bool:
        return self.learned_s < self.settings.learn_seconds

    def reset(self) -> None:
        """Start learning again (``ecgd relearn``, a reload)."""
        self.wave, self.width, self.amp, self.energy, self.rr_s, self.learned_s = (
            None,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        )
        self._pool.clear()
        self._pool_rr.clear()
        self.formers.clear()
        self._recent = None
        self._since_check = 0

    def learn(self, segments: np.ndarray, pre_rr_s: np.ndarray, span_s: float) -> None:
        """Add beats to the learning pool and rebuild the template from its dominant cluster."""
        s = self.settings
        for seg, rr in zip(segments, pre_rr_s, strict=True):
            self._pool.append(seg)
            self._pool_rr.append(float(rr))
        del self._pool[: -s.pool_beats], self._pool_rr[: -s.pool_beats]
        self.learned_s += span_s
        if len(self._pool) >= s.min_beats:
            self._set(*_dominant(np.array(self._pool), np.array(self._pool_rr), self.fs, s.cluster_corr))

    def follow(
        self,
        segments: np.ndarray,
        corr: np.ndarray,
        width_ratio: np.ndarray,
        rr_s: np.ndarray,
        prematurity: np.ndarray,
    ) -> None:
        """After learning: move slowly towards beats that match the template (not the model's labels, so
        a misclassification cannot drag the template away); a lasting change of the dominant beat is
        taken over (:meth:`_changed`, counted in ``changes``)."""
        if self.wave is None:
            return
        a = self.settings.adapt_rate
        match = (corr >= self.settings.cluster_corr) & (np.abs(width_ratio - 1) < 0.25)
        for seg, rr in zip(segments[match], rr_s[match], strict=True):
            self.wave = (1 - a) * self.wave + a * seg
            if 0.25 < rr < 3.0:
                self.rr_s = (1 - a) * self.rr_s + a * rr
        if match.any():
            self._reshape()
        self._changed(segments, match, rr_s, prematurity)

    def _changed(self, segments: np.ndarray, match: np.ndarray, rr_s: np.ndarray, prem: np.ndarray) -> bool:
        """Take over a new dominant beat: when ``change_fraction`` of the last ``change_beats`` beats are
        one alike cluster that does not match the template, comes on time (not premature) and slower
        than ``change_max_bpm``. A patient's QRS can change for good (posture, a drifting electrode, a new
        conduction pattern, a template learned in noise); a template that only follows beats like itself
        would then call every beat abnormal for the rest of the stay. Ectopy does not qualify: ventricular
        bigeminy is half the beats and premature; a VT is faster than ``change_max_bpm``."""
        s = self.settings
        if s.change_beats == 0:
            return False
        new = _RecentBeats(segments, match, rr_s, prem)
        r = new.last(s.change_beats) if self._recent is None else self._recent.then(new, s.change_beats)
        self._recent = r
        self._since_check += segments.shape[0]
        if len(r.match) < s.change_beats or self._since_check < s.change_beats // 4:
            return False
        self._since_check = 0
        if r.match.mean() > 1.0 - s.change_fraction:
            return False
        members = _largest_cluster(r.seg, self.fs, s.cluster_corr) & ~r.match
        if members.sum() < s.change_fraction * len(r.match):
            return False
        rr = r.rr[members]
        rr = rr[(rr > 0.25) & (rr < 3.0)]
        if rr.size == 0 or np.median(rr) < 60.0 / s.change_max_bpm or np.median(r.prem[members]) < 0.9:
            return False
        if s.former_templates:
            self.formers.insert(0, TemplateShape(self.wave, self.width, self.amp, self.energy))
            del self.formers[s.former_templates :]
        self.wave = np.median(r.seg[members], axis=0)
        self.rr_s = float(np.median(rr))
        self._reshape()
        self._recent = None
        self.changes += 1
        return True

    def _reshape(self) -> None:
        w, amp, e = _shape(self.wave[None, :], self.fs)
        self.width, self.amp, self.energy = float(w[0]), float(amp[0]), float(e[0])

    def _set(self, wave: np.ndarray, rr_s: float) -> None:
        self.wave = wave
        w, a, e = _shape(wave[None, :], self.fs)
        self.width, self.amp, self.energy, self.rr_s = float(w[0]), float(a[0]), float(e[0]), rr_s


@dataclass(frozen=True)
class BeatFeatures:
    """The features of one window's beats, in the window's order."""

    seq: np.ndarray  # int64, absolute sample numbers (refined fiducial points)
    x: np.ndarray  # float32 [beats, len(BEAT_FEATURES)]; NaN rows when there is no template yet
    rr_s: np.ndarray  # the window's RR intervals (seconds), the previous window's last beat included
    learning: bool  # the template was still being learned when these beats were judged
    p_wave: np.ndarray  # float32 [beats, P_S samples]: each beat's P-wave stretch, its line removed (AF)
    # float32 [beats, samples, 2] with ``BeatAnalyzer(waveforms=True)``: the beat's segment and its
    # difference from the patient's current template, over the template's amplitude, at ~120 Hz
    waveform: np.ndarray | None = None


def waveform_step(fs: float) -> int:
    """Samples averaged into one waveform sample: ~120 Hz, as SVDB's 128 Hz carries no more."""
    return max(1, round(fs / WAVEFORM_HZ))


class BeatAnalyzer:
    """Stateful per patient: beat history for RR context and the :class:`PatientTemplate`."""

    def __init__(self, fs: float, settings: RelearnSettings | None = None, waveforms: bool = False) -> None:
        """``waveforms``: also give each beat's waveform (``BeatFeatures.waveform``; the training tables'
        input for a waveform beat model, ``training.beat_data --waveforms``)."""
        self.fs = float(fs)
        self.waveforms = waveforms
        self.settings = settings or RelearnSettings()
        self.template = PatientTemplate(self.fs, self.settings)
        self._hist = np.zeros(0, dtype=np.int64)  # recent beat seqs (before the latest window's end)
        self._updated_to = -1  # beats up to this seq have updated the template
        pre, post = round(PRE_S * fs), round(POST_S * fs)
        self._offsets = np.arange(-pre, post)
        self._pre = pre
        self._lag = max(1, round(MAX_LAG_S * fs))

    def relearn(self, settings: RelearnSettings | None = None) -> None:
        """Learn again from the next window's beats (all of them, also those an overlapping window saw),
        with new ``settings`` if given (a reload)."""
        if settings is not None:
            self.settings = settings
            self.template = PatientTemplate(self.fs, settings)
        self.template.reset()
        self._updated_to = -1

    def analyse(
        self, first_seq: int, mv: np.ndarray, beat_seqs: np.ndarray, history_before: int | None = None
    ) -> BeatFeatures:
        """Features of the beats at ``beat_seqs`` (absolute) in the window ``mv`` from ``first_seq``.

        Beats remembered from earlier calls count as RR history when they lie before ``history_before``
        (default ``first_seq``): a caller that hands over only the newest beats of a longer stretch
        (the streaming :class:`~ecgd.analysis.beat_labels.BeatLabeller`) keeps the earlier ones as context.
        """
        x = np.asarray(mv, dtype=np.float64)
        n = x.size
        rel = qrs_centres(x, np.asarray(beat_seqs, dtype=np.int64) - first_seq, self.fs)
        rel = rel[(rel >= 0) & (rel < n)]
        rel = np.unique(rel)
        rel = rel[np.concatenate(([True], np.diff(rel) > round(0.15 * self.fs)))] if rel.size else rel
        seqs = rel + first_seq
        before = self._hist[self._hist < (first_seq if history_before is None else history_before)]
        allb = np.concatenate((before, seqs))
        rr_all = np.diff(allb) / self.fs
        k0 = before.size
        nb = seqs.size
        pre = np.full(nb, np.nan)
        post = np.full(nb, np.nan)
        local = np.full(nb, np.nan)
        idx = k0 + np.arange(nb)
        has_pre = idx >= 1
        pre[has_pre] = rr_all[idx[has_pre] - 1]
        post[: max(nb - 1, 0)] = rr_all[idx[: max(nb - 1, 0)]]
        if rr_all.size:  # median of the (up to) LOCAL_RR intervals before each beat, gaps (≥ 3 s) left out
            ctx = np.concatenate((np.full(LOCAL_RR, np.nan), np.where(rr_all < 3.0, rr_all, np.nan)))
            win = np.lib.stride_tricks.sliding_window_view(ctx, LOCAL_RR)[idx]  # intervals i-16 .. i-1
            some = ~np.isnan(win).all(axis=1)
            if some.any():
                local[some] = np.nanmedian(win[some], axis=1)
        pre[pre >= 3.0] = np.nan
        rr_win = rr_all[max(k0 - 1, 0) :] if k0 else rr_all
        segments = self._segments(x, rel)
        t = self.template
        learning = t.learning
        fresh = seqs > self._updated_to
        if not t.ready:  # bootstrap from this window's own beats
            t.learn(segments[fresh], np.nan_to_num(pre[fresh], nan=0.0), self._span(seqs[fresh]))
            self._updated_to = int(seqs[fresh].max()) if fresh.any() else self._updated_to
            fresh = np.zeros(nb, dtype=bool)
        feats, current = self._features(segments, pre, post, local)
        waveform = self._waveform(segments) if self.waveforms else None  # before the template moves
        if fresh.any():
            if t.learning:
                t.learn(segments[fresh], np.nan_to_num(pre[fresh], nan=0.0), self._span(seqs[fresh]))
            elif t.ready:
                cq, wr = current[fresh, 0], current[fresh, 3]  # against the current template
                t.follow(
                    segments[fresh],
                    np.nan_to_num(cq),
                    np.nan_to_num(wr),
                    np.nan_to_num(pre[fresh]),
                    feats[fresh, BEAT_FEATURES.index("rr_pre_local")],
                )
            self._updated_to = int(seqs[fresh].max())
        self._hist = np.concatenate((before, seqs))[-2 * LOCAL_RR :]
        return BeatFeatures(
            seqs.astype(np.int64),
            feats,
            rr_win.astype(np.float32),
            learning,
            self._p_wave(segments),
            waveform,
        )

    def _span(self, seqs: np.ndarray) -> float:
        """Seconds of rhythm these beats represent (for the learning period)."""
        if seqs.size == 0:
            return 0.0
        prev = self._hist[self._hist < seqs[0]]
        start = prev[-1] if prev.size else seqs[0]
        return float(seqs[-1] - start) / self.fs

    def _p_wave(self, seg: np.ndarray) -> np.ndarray:
        """The P-wave stretch (``P_S``) of each segment minus its least-squares line: the atrial wave
        before the beat, without the baseline's drift (:func:`ecgd.analysis.rhythm.p_wave_coherence`)."""
        p0, p1 = (self._pre + round(s * self.fs) for s in P_S)
        p = seg[:, p0:p1]
        t = np.arange(p1 - p0) - (p1 - p0 - 1) / 2.0
        centred = p - p.mean(axis=1, keepdims=True)
        slope = (centred @ t) / float(t @ t)
        return (centred - slope[:, None] * t[None, :]).astype(np.float32)

    def _waveform(self, seg: np.ndarray) -> np.ndarray:
        """Each segment and its difference from the current template, over the template's amplitude,
        block-averaged to ~120 Hz and put on the 360-Hz grid's instants (NaN without a template)."""
        t, k = self.template, waveform_step(self.fs)
        n = seg.shape[1] // k
        out = np.full((seg.shape[0], WAVEFORM_SAMPLES, 2), np.nan, dtype=np.float32)
        if t.wave is None or not t.amp > 0 or seg.shape[0] == 0:
            return out
        beat = seg[:, : n * k].reshape(seg.shape[0], n, k).mean(axis=2) / t.amp
        diff = beat - t.wave[: n * k].reshape(n, k).mean(axis=1) / t.amp
        if n != WAVEFORM_SAMPLES or k != waveform_step(360.0):
            beat, diff = (self._onto_grid(a, k) for a in (beat, diff))
        out[:, :, 0] = beat
        out[:, :, 1] = diff
        return out

    def _onto_grid(self, blocks: np.ndarray, k: int) -> np.ndarray:
        """Block means of ``k`` samples at this rate, linearly interpolated to the instants of the block
        means at 360 Hz (the training tables' rate)."""
        k360 = waveform_step(360.0)
        have = (np.arange(blocks.shape[1]) * k + (k - 1) / 2.0) / self.fs
        want = (np.arange(WAVEFORM_SAMPLES) * k360 + (k360 - 1) / 2.0) / 360.0
        i = np.clip(np.searchsorted(have, want) - 1, 0, blocks.shape[1] - 2)
        frac = np.clip((want - have[i]) / (have[i + 1] - have[i]), 0.0, 1.0)
        return blocks[:, i] * (1.0 - frac) + blocks[:, i + 1] * frac

    def _segments(self, x: np.ndarray, rel: np.ndarray) -> np.ndarray:
        idx = np.clip(rel[:, None] + self._offsets[None, :], 0, x.size - 1)
        seg = x[idx] if rel.size else np.zeros((0, self._offsets.size))
        return seg - np.median(seg, axis=1, keepdims=True)

    def _features(
        self, seg: np.ndarray, pre: np.ndarray, post: np.ndarray, local: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The beats' features, and their morphology columns against the current template alone (what
        the template follows). The morphology is judged against the known dominant beat each beat is
        most like (the current template, or one a lasting change replaced: intermittent conduction such
        as intermittent pre-excitation or bundle branch block alternates between two normal beats)."""
        t = self.template
        nb = seg.shape[0]
        out = np.full((nb, len(BEAT_FEATURES)), np.nan, dtype=np.float32)
        if nb == 0 or not t.ready:
            return out, out[:, MORPHOLOGY]
        assert t.wave is not None
        base = t.rr_s if t.rr_s > 0 else np.nan
        local = np.where(np.isnan(local), base, local)
        local = np.where(np.isnan(local), pre, local)
        has_post = ~np.isnan(post)
        pre_f = np.where(np.isnan(pre), local, pre)
        out[:, 0] = pre_f / local
        out[:, 1] = np.where(has_post, post / local, 1.0)
        out[:, 2] = np.where(has_post, post / pre_f, 1.0)
        out[:, 3] = has_post
        out[:, 4] = pre_f / base if base == base else 1.0
        out[:, 5] = local
        current = self._morphology(seg, t.wave, t.width, t.amp, t.energy)
        best = current.copy()
        for shape in t.formers:
            other = self._morphology(seg, *shape)
            better = other[:, 0] > best[:, 0]
            best[better] = other[better]
        out[:, MORPHOLOGY] = best
        out = np.nan_to_num(out, nan=1.0, posinf=10.0, neginf=-10.0)
        return out, np.nan_to_num(current, nan=1.0, posinf=10.0, neginf=-10.0)

    def _morphology(
        self, seg: np.ndarray, wave: np.ndarray, width: float, amp: float, energy: float
    ) -> np.ndarray:
        """The 7 morphology features (``corr_qrs`` … ``resid_rel``) of the beats against one template."""
        nb = seg.shape[0]
        out = np.empty((nb, 7), dtype=np.float64)
        q0, q1 = (self._pre + round(s * self.fs) for s in QRS_S)
        p0, p1 = (self._pre + round(s * self.fs) for s in P_S)
        lag = self._lag
        tq = wave[q0:q1]
        # every lag at once: [beats, lags, QRS samples] views of the segments (lags -lag..+lag)
        views = np.lib.stride_tricks.sliding_window_view(seg[:, q0 - lag : q1 + lag], q1 - q0, axis=1)
        a = views - views.mean(axis=2, keepdims=True)
        b = tq - tq.mean()
        den = np.sqrt(np.sum(a * a, axis=2) * np.sum(b * b))
        corr = np.where(den > 1e-12, (a @ b) / np.maximum(den, 1e-12), 0.0)
        best_i = np.argmax(corr, axis=1)
        out[:, 0] = corr[np.arange(nb), best_i]
        best_lag = best_i - lag
        cols = (np.arange(seg.shape[1])[None, :] + best_lag[:, None]) % seg.shape[1]  # np.roll(s, -lag)
        aligned = seg[np.arange(nb)[:, None], cols]
        out[:, 1] = _corr_rows(aligned, wave)
        out[:, 2] = _corr_rows(aligned[:, p0:p1], wave[p0:p1])
        w, a_, e = _shape(aligned, self.fs)
        out[:, 3] = w / max(width, 1.0)
        out[:, 4] = a_ / max(amp, 1e-3)
        out[:, 5] = np.log2(np.maximum(e, 1e-9) / max(energy, 1e-9))
        d = aligned[:, q0:q1] - tq[None, :]
        out[:, 6] = np.sqrt(np.mean(d**2, axis=1)) / max(float(np.sqrt(np.mean(tq**2))), 1e-3)
        return out


def qrs_centres(x: np.ndarray, rel: np.ndarray, fs: float, steps: int = 8) -> np.ndarray:
    """Move each position to the centre of the QRS's slope energy: mean shift on the squared slope (a
    ``SMOOTH_S`` box first) with a ±``REFINE_S`` kernel, kept within ±``REFINE_S`` of where it started.
    The same beat then gets the same fiducial wherever the detector or an annotator put it; the largest
    deflection, used before 2.4.0, flips between R and S when they are alike (``bench/fiducial_agreement.py``:
    20-39 % of the beats of MIT-BIH 119, 208, SVDB 860, 865 moved by more than the template match's
    ±14 ms between the reference's and the detector's positions, ≤ 3.2 % with this)."""
    if rel.size == 0:
        return rel
    half, smooth = round(REFINE_S * fs), max(1, round(SMOOTH_S * fs))
    xp = np.concatenate((x[:1], x))  # the slope over `smooth` samples is a box-smoothed derivative
    slope = np.zeros(x.size)
    slope[smooth // 2 : smooth // 2 + x.size - smooth + 1] = (xp[smooth:] - xp[:-smooth]) / smooth
    energy = slope * slope
    offs = np.arange(-half, half + 1)
    p = rel.astype(np.float64)
    for _ in range(steps):
        idx = np.clip(np.round(p).astype(np.int64)[:, None] + offs[None, :], 0, x.size - 1)
        w = energy[idx]
        total = w.sum(axis=1)
        moved = (w * idx).sum(axis=1) / np.maximum(total, 1e-300)
        p = np.clip(np.where(total > 0, moved, p), rel - half, rel + half)
    return np.clip(np.round(p).astype(np.int64), 0, x.size - 1)


def p_wave_samples(fs: float) -> int:
    """Samples in a beat's P-wave stretch (``BeatFeatures.p_wave``) at rate ``fs``."""
    return round(P_S[1] * fs) - round(P_S[0] * fs)


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with ``b``."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean()
    den = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b))
    return np.where(den > 1e-12, (a @ b) / np.maximum(den, 1e-12), 0.0)


def _shape(seg: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QRS width, peak-to-peak and energy per row.

    The width is where the QRS's squared slope (after a 14 ms box smoothing that takes out 8-bit steps
    and noise) accumulates from 10 % to 90 %: an equivalent duration that does not jump when one noisy
    sample crosses a threshold, so a beat and an averaged template are measured alike.
    """
    pre = round(PRE_S * fs)
    q0, q1 = (pre + round(s * fs) for s in QRS_S)
    q = seg[:, q0:q1]
    k = max(1, round(SMOOTH_S * fs))
    c = np.cumsum(np.pad(q, ((0, 0), (1, 0))), axis=1)
    sm = (c[:, k:] - c[:, :-k]) / k
    d2 = np.diff(sm, axis=1) ** 2
    cum = np.cumsum(d2, axis=1)
    cum = cum / np.maximum(cum[:, -1:], 1e-12)
    width = (np.argmax(cum >= 0.9, axis=1) - np.argmax(cum >= 0.1, axis=1) + 1).astype(np.float64)
    qc = q - q.mean(axis=1, keepdims=True)
    return width, q.max(axis=1) - q.min(axis=1), np.sum(qc * qc, axis=1)


def _alike(seg: np.ndarray, fs: float, corr: float) -> np.ndarray:
    """[beats, beats] True where two beats' QRS complexes correlate at least ``corr``."""
    pre = round(PRE_S * fs)
    q0, q1 = (pre + round(s * fs) for s in QRS_S)
    q = seg[:, q0:q1]
    q = q - q.mean(axis=1, keepdims=True)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-9)
    return (q @ q.T) >= corr


def _largest_cluster(seg: np.ndarray, fs: float, corr: float) -> np.ndarray:
    """The beats alike the beat that has the most alike beats."""
    alike = _alike(seg, fs, corr)
    return alike[int(np.argmax(alike.sum(axis=1)))]


def _dominant(seg: np.ndarray, pre_rr: np.ndarray, fs: float, corr: float) -> tuple[np.ndarray, float]:
    """The dominant beat: mean of the largest cluster of alike QRS complexes; when a second cluster is
    nearly as large (bigeminy), the one with the narrower QRS and the longer preceding RR."""
    alike = _alike(seg, fs, corr)
    left = np.ones(len(seg), dtype=bool)
    clusters = []
    for _ in range(3):
        counts = (alike & left[None, :]).sum(axis=1) * left
        if counts.max() <= 0:
            break
        c = int(np.argmax(counts))
        members = alike[c] & left
        clusters.append(members)
        left &= ~members
    biggest = max(int(m.sum()) for m in clusters)
    large = [m for m in clusters if m.sum() >= 0.6 * biggest]

    def score(m: np.ndarray) -> tuple[float, float]:
        w, _, _ = _shape(np.median(seg[m], axis=0)[None, :], fs)
        rr = pre_rr[m]
        rr = rr[rr > 0]
        return (float(w[0]), -float(np.median(rr)) if rr.size else 0.0)

    best = min(large, key=score)
    rr = pre_rr[best]
    rr = rr[(rr > 0.25) & (rr < 3.0)]
    return np.median(seg[best], axis=0), float(np.median(rr)) if rr.size else 0.0
