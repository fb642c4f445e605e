"""Turn one window of samples into one classification, the same way online and offline.

The daemon and ``ecgd classify`` share this so that offline results are what
the monitor would report: missing-sample tolerance, signal-quality gate (an
unreadable window never reaches the model), resampling to the model's rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ecgd.analysis.beat_features import BeatAnalyzer, RelearnSettings, p_wave_samples
from ecgd.analysis.beat_labels import BeatLabeller, LabelledBeats
from ecgd.analysis.gaps import longest_run
from ecgd.analysis.model import Model
from ecgd.analysis.qrs import QrsSettings
from ecgd.analysis.quality import QualitySettings, assess_window
from ecgd.analysis.rhythm import p_wave_coherence, p_wave_to_qrs, rr_between_kept, rr_features

UNREADABLE = "unreadable"
UNCLASSIFIED = "unclassified"
SKIPPED = "skipped"


@dataclass(frozen=True)
class BeatLabels:
    """The beats of one window: absolute sample numbers and labels N / S / V / Q (Q: not judged)."""

    seq: np.ndarray  # int64
    labels: np.ndarray  # str

    def __str__(self) -> str:
        return "".join(self.labels.tolist())


@dataclass(frozen=True)
class Classification:
    label: str
    confidence: float | None
    probabilities: dict[str, float] | None
    reason: str | None
    missing: int
    inference_ms: float | None
    beats: BeatLabels | None = None  # beat-aware models only
    learning: bool | None = None  # the patient's dominant beat was still being learned
    p_wave_coherence: float | None = None  # the AF span's normal beats' P-wave coherence (when judged)
    p_wave_to_qrs: float | None = None  # their mean P wave's RMS over the QRS amplitude (when judged)


class AtrialWave(NamedTuple):
    """What the AF span's normal beats show of a P wave (``rhythm``): None where not judged or not used."""

    coherence: float | None = None
    to_qrs: float | None = None

    def vetoes_af(self, metadata) -> bool:
        """A P wave before the beats: the bundle's ``af_p_wave_max`` (coherence) or its noise-robust
        companion ``af_p_wave_min_ratio`` (the mean P wave against the QRS) is reached."""
        p_max, r_min = metadata.af_p_wave_max, metadata.af_p_wave_min_ratio
        return (p_max is not None and self.coherence is not None and self.coherence >= p_max) or (
            r_min is not None and self.to_qrs is not None and self.to_qrs >= r_min
        )


class WindowClassifier:
    """One window in, one :class:`Classification` out; stateful only for a beat-aware model (the
    patient's template and beat history, so feed it the windows of one patient in order)."""

    def __init__(
        self,
        model: Model,
        input_rate_hz: float,
        quality: QualitySettings,
        rails_mv: tuple[float, float] | None,
        max_missing_fraction: float,
        max_gap_seconds: float = 0.0,
        qrs: QrsSettings | None = None,
        relearn: RelearnSettings | None = None,
    ) -> None:
        self.model = model
        self.input_rate_hz = input_rate_hz
        self.quality = quality
        self.rails_mv = rails_mv
        self.max_missing_fraction = max_missing_fraction
        self.max_gap_samples = int(max_gap_seconds * input_rate_hz)
        self.qrs = qrs  # the beat stage's detector settings: the quality gate counts QRS with it
        self.beat_aware = getattr(model, "kind", "waveform") == "beats"
        self.analyzer = (
            BeatAnalyzer(input_rate_hz, relearn, model.needs_waveforms) if self.beat_aware else None
        )
        self._detector = None
        self._next_seq = 0
        # window path: the labelled beats of the AF context before the current window
        self._rhythm = LabelledBeats.empty(0, p_wave_samples(input_rate_hz))

    def relearn(self) -> None:
        """Forget the patient's dominant beat and learn it again (``ecgd relearn``)."""
        if self.analyzer is not None:
            self.analyzer.relearn()

    def classify(
        self,
        mv: np.ndarray,
        valid: np.ndarray | None = None,
        first_seq: int | None = None,
        beat_seqs: np.ndarray | None = None,
    ) -> Classification:
        """``first_seq``: the window's first sample number (default: right after the previous window);
        ``beat_seqs``: the window's beats (absolute sample numbers) from the beat stage, else the
        classifier runs the QRS detector over the window itself. Both matter to beat-aware models only."""
        n = mv.size
        if first_seq is None:
            first_seq = self._next_seq
        self._next_seq = first_seq + n
        refused, mv = self._screen(mv, valid)
        if refused is not None:
            return refused
        missing = 0 if valid is None else int(n - np.count_nonzero(valid))
        if self.beat_aware:
            return self._classify_beats(mv, missing, first_seq, beat_seqs)
        x = self._resample(mv)
        probs, ms = self.model.timed_predict(x)
        best = int(np.argmax(probs))
        labels = self.model.labels
        return Classification(
            labels[best],
            float(probs[best]),
            {label: round(float(p), 4) for label, p in zip(labels, probs, strict=False)},
            None,
            missing,
            ms,
        )

    def screen(self, mv: np.ndarray, valid: np.ndarray | None = None) -> Classification | None:
        """The checks before any model (missing samples, the quality gate): a verdict for a window that
        cannot be classified, None for one that can (the daemon's beat-aware path: its beats are
        labelled by the stream, :meth:`from_labels`)."""
        return self._screen(mv, valid)[0]

    def _screen(self, mv: np.ndarray, valid: np.ndarray | None) -> tuple[Classification | None, np.ndarray]:
        """The refusal (or None) and the window with its short gaps bridged."""
        n = mv.size
        missing = 0 if valid is None else int(n - np.count_nonzero(valid))
        allowed = int(self.max_missing_fraction * n)
        if missing == n:
            why = f"all {n} samples missing (no signal acquired)"
            return Classification(UNCLASSIFIED, None, None, why, missing, None), mv
        if missing > allowed:
            why = f"{missing} of {n} samples missing (tolerance {allowed})"
            return Classification(UNCLASSIFIED, None, None, why, missing, None), mv
        if missing:
            assert valid is not None
            gap = longest_run(~valid)
            if gap > self.max_gap_samples:
                why = (
                    f"{missing} of {n} samples missing, {gap / self.input_rate_hz * 1000:.0f} ms in one gap "
                    f"(tolerance {self.max_gap_samples / self.input_rate_hz * 1000:.0f} ms)"
                )
                return Classification(UNCLASSIFIED, None, None, why, missing, None), mv
            idx = np.arange(n)
            mv = np.interp(idx, idx[valid], mv[valid]).astype(np.float32)
        if self.quality.enabled:
            reason = assess_window(mv, self.input_rate_hz, self.rails_mv, self.quality, self.qrs)
            if reason is not None:
                return Classification(UNREADABLE, None, None, reason, missing, None), mv
        return None, mv

    @property
    def af_context_samples(self) -> int:
        """The span of beats (samples, ending at the window's end) whose RR series decides AF: the model's
        ``af_context_seconds``, or the window itself."""
        meta = self.model.metadata
        seconds = getattr(meta, "af_context_s", None) or meta.window_seconds
        return round(seconds * self.input_rate_hz)

    def verdict_from(self, labeller: BeatLabeller, first: int, stop: int, missing: int) -> Classification:
        """A readable window's verdict from the beats ``labeller`` labelled (once ``labeller.until >=
        stop``): the window's beats, and the beats of the AF context before its end."""
        context = None
        if self.af_context_samples > stop - first:
            context = labeller.window(stop - self.af_context_samples, stop)
        return self.from_labels(*labeller.window(first, stop), missing, context, labeller.qrs_mv)

    def from_labels(
        self,
        beats: LabelledBeats,
        prev_seq: int | None,
        missing: int,
        context: tuple[LabelledBeats, int | None] | None = None,
        qrs_mv: float = 0.0,
    ) -> Classification:
        """A readable window's verdict from the beats the stream labelled (``BeatLabeller.window``): the
        window's beat labels are the beats the alarms saw, and its count is the beat stage's. AF is
        decided from the RR series of ``context`` (the beats of a longer span ending with the window,
        and the beat before them) when given, else from the window's; ``qrs_mv``: the patient's QRS
        amplitude (the template's), which the P wave is measured against."""
        t0 = time.perf_counter()
        rr, p_wave = self._af_inputs(*(context if context is not None else (beats, prev_seq)), qrs_mv)
        judged = beats.labels != "Q"
        return self._decide(
            beats.seq,
            beats.labels.copy(),
            beats.probs[judged],
            rr,
            missing,
            t0,
            bool(beats.learning[-1]) if len(beats) else False,  # as the window ends
            "no beats detected"
            if beats.seq.size == 0
            else "no beat could be judged (learning the patient's "
            "dominant beat, or samples missing around every beat)",
            p_wave,
        )

    def _af_inputs(
        self, rhythm: LabelledBeats, prev_seq: int | None, qrs_mv: float
    ) -> tuple[np.ndarray, AtrialWave]:
        """What AF is decided on, from the labelled beats of its span (and the beat at ``prev_seq``
        before them): their RR series, and the P wave of their normal beats by the measures the model
        vetoes AF with (``af_p_wave_max``, ``af_p_wave_min_ratio``)."""
        rr = self._rr(rhythm.seq, rhythm.labels == "V", prev_seq)
        meta = self.model.metadata
        args = (rhythm.seq, rhythm.labels == "N", rhythm.p_wave, prev_seq, self.input_rate_hz)
        return rr, AtrialWave(
            None if meta.af_p_wave_max is None else p_wave_coherence(*args),
            None if meta.af_p_wave_min_ratio is None else p_wave_to_qrs(*args, qrs_mv),
        )

    def _rr(self, seq: np.ndarray, is_v: np.ndarray, prev_seq: int | None) -> np.ndarray:
        """RR intervals (s) of beats ``seq`` (and the beat at ``prev_seq`` before them); between non-V
        beats only when the model was trained so."""
        if prev_seq is not None:
            seq, is_v = np.concatenate(([prev_seq], seq)), np.concatenate(([False], is_v))
        if self.model.metadata.af_rr_exclude_v:
            return rr_between_kept(seq, is_v, self.input_rate_hz)
        return (np.diff(seq) / self.input_rate_hz).astype(np.float32)

    def _classify_beats(
        self, mv: np.ndarray, missing: int, first_seq: int, beat_seqs: np.ndarray | None
    ) -> Classification:
        """Beat labels from features against the patient's template, AF from the RR series, and the
        window label from them by the rule AF > V > S > N, so beat and window output agree."""
        t0 = time.perf_counter()
        assert self.analyzer is not None
        model = self.model
        if beat_seqs is None:
            beat_seqs = self._detect(first_seq, mv)
        f = self.analyzer.analyse(first_seq, mv, np.asarray(beat_seqs, dtype=np.int64))
        judged, probs = model.judge(f)
        labels = np.full(f.seq.size, "Q", dtype="<U1")
        labels[judged] = model.beat_labels(probs)
        all_probs = np.full((f.seq.size, 3), np.nan, np.float32)
        all_probs[judged] = probs
        stop = first_seq + mv.size
        window = LabelledBeats(f.seq, labels, all_probs, np.full(f.seq.size, f.learning), stop, f.p_wave)
        rr, p_wave = self._window_path_rhythm(window, f.rr_s, stop, self.analyzer.template.amp)
        why = (
            "no beats detected" if f.seq.size == 0 else "learning the patient's dominant beat (too few beats)"
        )
        return self._decide(f.seq, labels, probs, rr, missing, t0, f.learning, why, p_wave)

    def _window_path_rhythm(
        self, window: LabelledBeats, rr_s: np.ndarray, stop: int, qrs_mv: float
    ) -> tuple[np.ndarray, AtrialWave]:
        """The AF decision's inputs (:meth:`_af_inputs`) on the window-by-window path: the window's
        beats and, with an AF context longer than the window, the beats of the earlier windows within it
        (kept here)."""
        prev = None
        if rr_s.size == len(window) and len(window):  # the previous window's last beat opens the first RR
            prev = int(window.seq[0] - round(float(rr_s[0]) * self.input_rate_hz))
        span = self.af_context_samples
        if span <= round(self.model.metadata.window_seconds * self.input_rate_hz):
            return self._af_inputs(window, prev, qrs_mv)
        earlier = self._rhythm.take(self._rhythm.seq < (window.seq[0] if len(window) else stop))
        joined = LabelledBeats.join([earlier, window], stop)
        keep = joined.seq >= stop - span
        self._rhythm = joined.take(keep)
        first = int(np.argmax(keep)) if keep.any() else len(joined)
        before = int(joined.seq[first - 1]) if first > 0 else prev
        return self._af_inputs(self._rhythm, before, qrs_mv)

    def _decide(
        self,
        seq: np.ndarray,
        labels: np.ndarray,
        probs: np.ndarray,
        rr: np.ndarray,
        missing: int,
        t0: float,
        learning: bool,
        why_none: str,
        p_wave: AtrialWave,
    ) -> Classification:
        """AF from the window's RR series, unless the normal beats have a P wave (``af_p_wave_max``,
        ``af_p_wave_min_ratio``), then the window label by the rule AF > V > S > N."""
        model = self.model
        judged = labels != "Q"
        r = rr_features(rr)
        p_af = model.af_prob(r) if r is not None and judged.any() else 0.0
        is_af = r is not None and p_af >= model.metadata.af_threshold and not p_wave.vetoes_af(model.metadata)
        if is_af:
            labels[labels == "S"] = "N"  # irregular by definition in AF: no supraventricular "ectopy"
        beats = BeatLabels(seq, labels)
        ms = (time.perf_counter() - t0) * 1000.0
        wave = {"p_wave_coherence": p_wave.coherence, "p_wave_to_qrs": p_wave.to_qrs}
        if not judged.any():
            return Classification(UNCLASSIFIED, None, None, why_none, missing, ms, beats, learning, **wave)
        pj = probs
        evidence = {
            "N": round(float(pj[:, 0].min()) * (1.0 - p_af), 4),
            "S": round(float(pj[:, 1].max()), 4),
            "V": round(float(pj[:, 2].max()), 4),
            "AF": round(p_af, 4),
        }
        if is_af:
            label = "AF"
        elif (labels == "V").any():
            label = "V"
        elif (labels == "S").any():
            label = "S"
        else:
            label = "N"
        return Classification(label, evidence[label], evidence, None, missing, ms, beats, learning, **wave)

    def _detect(self, first_seq: int, mv: np.ndarray) -> np.ndarray:
        """The window's beats from the QRS detector (for ``ecgd classify`` and a daemon without a beat
        stage): a fresh detector per window, its delay run out on the window's own samples."""
        from ecgd.analysis.beat_detect import detect_beats

        return detect_beats(mv, self.input_rate_hz) + first_seq

    def _resample(self, mv: np.ndarray) -> np.ndarray:
        """Linear resampling to the model's rate (the AD8232's 40 Hz low-pass makes aliasing moot)."""
        target = self.model.window_samples
        if mv.size == target:
            return mv
        t_out = np.arange(target) / self.model.sample_rate_hz
        t_in = np.arange(mv.size) / self.input_rate_hz
        return np.interp(t_out, t_in, mv).astype(np.float32)
