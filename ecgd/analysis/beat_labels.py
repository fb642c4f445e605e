"""Every beat of the beat stage labelled N / S / V / Q as it becomes final: the alarms' ventricular beats.

The beat stage (the streaming QRS detector) confirms each beat within its delay. This stage judges it
with the beat-aware model against the patient's dominant beat (:class:`BeatAnalyzer`, the features the
model was trained on) once the beat after it is final too, because the compensatory pause is one of the
features, or once ``POST_WAIT_S`` has passed without one. Labels therefore trail the beats by about one
RR interval: the sixth beat of a ventricular run at 160/min is labelled ≈ 0.4 s after the seventh is
confirmed. ``Q`` is a beat that could not be judged: no template yet (the first beats), samples missing
around it, or its signal already gone.

Same code online (the daemon's worker, fed the blocks the beat stage reads) and offline (``ecgd alarms``).
Numpy on the beats of a block; one model invocation per block that completes beats; no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecgd.analysis.beat_features import (
    MAX_LAG_S,
    POST_S,
    PRE_S,
    REFINE_S,
    BeatAnalyzer,
    RelearnSettings,
    p_wave_samples,
)
from ecgd.analysis.beats import BeatTracker
from ecgd.analysis.gaps import longest_run

POST_WAIT_S = 2.0  # no next beat this long after a beat: judge it without its post-RR (a pause, asystole)
HISTORY_S = 8.0  # signal kept for the beats still waiting (≥ POST_WAIT_S + the detector's delay + a segment)
# the analyser moves a position by ≤ REFINE_S; a row further than this from a beat is another beat
MATCH_S = REFINE_S + 0.01
MAX_GAP_S = 0.05  # missing samples around a beat are bridged (linearly) up to this run; a longer run: Q


@dataclass(frozen=True)
class TemplateChange:
    """The patient's dominant beat changed for good and became the template (``PatientTemplate``)."""

    seq: int  # the newest beat judged when it was taken over
    qrs_width_ms: float  # the new template's QRS width
    previous_qrs_width_ms: float  # the replaced one's

    def describe(self) -> str:
        """One wording for the daemon's record and the offline commands' line."""
        return (
            f"the patient's dominant beat changed for good and became the template (QRS width "
            f"{self.previous_qrs_width_ms:.0f} -> {self.qrs_width_ms:.0f} ms)"
        )


@dataclass(frozen=True)
class LabelledBeats:
    """Labelled beats in time order: the beat stage's positions, labels and the model's probabilities."""

    seq: np.ndarray  # int64 sample numbers (as the beat stage reported them)
    labels: np.ndarray  # "N" | "S" | "V" | "Q"
    probs: np.ndarray  # float32 [beats, 3]: P(N), P(S), P(V); NaN for a beat not judged (Q)
    learning: np.ndarray  # bool per beat: judged while the patient's dominant beat was being learned
    until: int  # every beat before this seq has been labelled (the labels' horizon)
    p_wave: np.ndarray  # float32 [beats, P samples]: each beat's P-wave stretch (NaN: not judged)

    @staticmethod
    def empty(until: int, p_samples: int = 0) -> LabelledBeats:
        return LabelledBeats(
            np.zeros(0, np.int64),
            np.zeros(0, "<U1"),
            np.zeros((0, 3), np.float32),
            np.zeros(0, bool),
            until,
            np.zeros((0, p_samples), np.float32),
        )

    def __len__(self) -> int:
        return int(self.seq.size)

    def take(self, mask: np.ndarray) -> LabelledBeats:
        return LabelledBeats(
            self.seq[mask],
            self.labels[mask],
            self.probs[mask],
            self.learning[mask],
            self.until,
            self.p_wave[mask],
        )

    @staticmethod
    def join(parts: list[LabelledBeats], until: int) -> LabelledBeats:
        """The parts' beats in time order (stable: the first part's beat wins a tie)."""
        full = [p for p in parts if len(p)]
        if not full:
            return LabelledBeats.empty(until, parts[0].p_wave.shape[1] if parts else 0)
        seq = np.concatenate([p.seq for p in full])
        order = np.argsort(seq, kind="stable")
        return LabelledBeats(
            seq[order],
            np.concatenate([p.labels for p in full])[order],
            np.concatenate([p.probs for p in full])[order],
            np.concatenate([p.learning for p in full])[order],
            until,
            np.concatenate([p.p_wave for p in full])[order],
        )


def beats_known(tracker: BeatTracker, labeller: BeatLabeller | None, stop: int, labels: bool = True) -> bool:
    """Every beat before ``stop`` is final and, when ``labels`` (a window judged from its labelled
    beats) and there is a labeller, labelled: a window ending at ``stop`` can have its record."""
    if tracker.final_until() < stop:
        return False
    return not labels or labeller is None or labeller.until >= stop


class BeatLabeller:
    """Stateful per patient (template, RR history); fed contiguous blocks and the beats they confirmed.

    It keeps the beats it labelled for ``keep_s`` so a window's verdict can be drawn from them
    (:meth:`window`): the window's beat labels are then these labels, the beats the alarms saw."""

    def __init__(
        self,
        model,
        fs: float,
        relearn: RelearnSettings | None = None,
        first_seq: int = 0,
        keep_s: float = 90.0,
    ) -> None:
        if getattr(model, "kind", "waveform") != "beats":
            raise ValueError(f"{model.metadata.ident} is not a beat-aware model: it cannot label beats")
        self.model = model
        self.fs = float(fs)
        self.analyzer = BeatAnalyzer(self.fs, relearn, model.needs_waveforms)
        self._before = round((PRE_S + REFINE_S + MAX_LAG_S) * self.fs) + 2  # signal needed before a beat
        self._after = round((POST_S + REFINE_S + MAX_LAG_S) * self.fs) + 2  # ... and after it
        self._wait = round(POST_WAIT_S * self.fs)
        self._keep = round(HISTORY_S * self.fs)
        self._keep_done = round(keep_s * self.fs)
        self._x = np.zeros(0, np.float32)
        self._ok = np.zeros(0, bool)
        self._x0 = first_seq
        self._pending: list[int] = []
        self._until = first_seq  # beats before this are labelled
        self._p_samples = p_wave_samples(self.fs)
        self._done = LabelledBeats.empty(first_seq, self._p_samples)  # labelled beats of the last keep_s
        self.template_changes: list[TemplateChange] = []  # every takeover, oldest first (kept: a few a day)

    @property
    def until(self) -> int:
        return self._until

    @property
    def qrs_mv(self) -> float:
        """The patient's QRS amplitude (the dominant beat's peak-to-peak; 0 until one is learned)."""
        return self.analyzer.template.amp

    def relearn(self, model=None, settings: RelearnSettings | None = None) -> None:
        """Learn the patient's dominant beat again from the next beats (``ecgd relearn``; a reload, with
        its model and settings)."""
        if model is not None:
            self.model = model
            self.analyzer.waveforms = model.needs_waveforms
        self.analyzer.relearn(settings)

    def replace_from(self, from_seq: int, seqs: Sequence[int]) -> None:
        """The beat stage ran its detector again from ``from_seq``: waiting beats from there are replaced
        (beats already labelled stay: their labels were given)."""
        start = max(from_seq, self._until)
        self._pending = [s for s in self._pending if s < start] + sorted(int(s) for s in seqs if s >= start)

    def feed(
        self,
        first_seq: int,
        mv: np.ndarray,
        valid: np.ndarray | None,
        beats: Sequence[int],
        confirmed_until: int,
    ) -> LabelledBeats:
        """The block ``[first_seq, first_seq + len(mv))``, the beats it confirmed and the beat stage's
        ``confirmed_until`` (``BeatTracker.confirmed_until``: every ordinary beat before it has been
        reported); returns the beats labelled now."""
        self._append(first_seq, np.asarray(mv, np.float32), valid)
        fresh = sorted(int(s) for s in beats)
        late = [s for s in fresh if s < self._until]  # search-back behind the labels' horizon: unjudged
        self._pending = sorted(set(self._pending) | {s for s in fresh if s >= self._until})
        return self._label(self._ready(confirmed_until), late, confirmed_until)

    def flush(self) -> LabelledBeats:
        """Label every waiting beat now, without its next beat (a stop, a reload, a recording's end)."""
        end = self._x0 + self._x.size
        return self._label(list(self._pending), [], end, flushing=True)

    def window(self, first_seq: int, stop_seq: int) -> tuple[LabelledBeats, int | None]:
        """The labelled beats in ``[first_seq, stop_seq)`` and the last labelled beat before them (its
        interval to the first one is the window's first RR), once ``until >= stop_seq``."""
        d = self._done
        lo, hi = np.searchsorted(d.seq, [first_seq, stop_seq])
        prev = int(d.seq[lo - 1]) if lo > 0 else None
        inside = np.zeros(d.seq.size, bool)
        inside[lo:hi] = True
        return d.take(inside), prev

    # -- internals ------------------------------------------------------------------------------
    def _append(self, first_seq: int, x: np.ndarray, valid: np.ndarray | None) -> None:
        ok = np.ones(x.size, bool) if valid is None else np.asarray(valid, bool)
        end = self._x0 + self._x.size
        if first_seq != end:  # samples never fed (lost before they were read): missing, or a restart
            gap = first_seq - end
            if 0 < gap < self._keep:
                x = np.concatenate((np.zeros(gap, np.float32), x))
                ok = np.concatenate((np.zeros(gap, bool), ok))
            else:
                self._x, self._ok, self._x0 = np.zeros(0, np.float32), np.zeros(0, bool), first_seq
        self._x = np.concatenate((self._x, x))
        self._ok = np.concatenate((self._ok, ok))
        drop = self._x.size - self._keep
        if drop > 0:
            self._x, self._ok, self._x0 = self._x[drop:], self._ok[drop:], self._x0 + drop

    def _label(
        self, ready: list[int], late: list[int], confirmed_until: int, flushing: bool = False
    ) -> LabelledBeats:
        parts = []
        if ready:
            parts.append(self._judge(ready, flushing))
            del self._pending[: len(ready)]
        if late:
            n = len(late)
            parts.append(
                LabelledBeats(
                    np.asarray(late, np.int64),
                    np.full(n, "Q", "<U1"),
                    np.full((n, 3), np.nan, np.float32),
                    np.full(n, self.analyzer.template.learning, bool),
                    0,
                    np.full((n, self._p_samples), np.nan, np.float32),
                )
            )
        self._until = max(self._until, self._horizon(confirmed_until))
        out = LabelledBeats.join(parts, self._until)
        if len(out):
            done = LabelledBeats.join([self._done, out], self._until)
            self._done = done.take(done.seq >= done.seq[-1] - self._keep_done)
        return out

    def _ready(self, confirmed_until: int) -> list[int]:
        """The waiting beats that can be judged now, oldest first (a prefix of the waiting list)."""
        end = self._x0 + self._x.size
        out = []
        for i, s in enumerate(self._pending):
            if s >= confirmed_until:
                break
            nxt = self._pending[i + 1] if i + 1 < len(self._pending) else None
            if nxt is not None and nxt < confirmed_until:
                if nxt + self._after > end:
                    break
            elif confirmed_until - s < self._wait or s + self._after > end:
                break
            out.append(s)
        return out

    def _horizon(self, confirmed_until: int) -> int:
        """Labels are complete up to the first beat still waiting (or the beat stage's horizon)."""
        return self._pending[0] if self._pending else confirmed_until

    def _judge(self, ready: list[int], flushing: bool = False) -> LabelledBeats:
        """Features and labels of ``ready``; the next waiting beat (if final) goes in as their context."""
        n_ready = len(ready)
        beats = list(ready)
        if not flushing and len(self._pending) > n_ready:
            beats.append(self._pending[n_ready])  # its position gives the last ready beat's post-RR
        seqs = np.asarray(beats, np.int64)
        labels = np.full(n_ready, "Q", "<U1")
        probs = np.full((n_ready, 3), np.nan, np.float32)
        p_wave = np.full((n_ready, self._p_samples), np.nan, np.float32)
        learning = self.analyzer.template.learning
        end = self._x0 + self._x.size
        lo = max(self._x0, int(seqs[0]) - self._before)
        hi = min(end, int(seqs[-1]) + self._after)
        inside = seqs[seqs >= self._x0 + self._before // 2]  # a beat whose signal is gone is not judged
        if inside.size and hi > lo:
            template = self.analyzer.template
            changes, width = template.changes, template.width
            f = self.analyzer.analyse(
                lo, self._bridged(lo, hi), inside, history_before=int(inside[0]) - round(0.1 * self.fs)
            )
            if template.changes > changes:
                ms = 1000.0 / self.fs
                self.template_changes.append(TemplateChange(int(inside[-1]), template.width * ms, width * ms))
            learning = f.learning
            judged, judged_probs = self.model.judge(f)
            row_labels = np.full(f.seq.size, "Q", "<U1")
            row_probs = np.full((f.seq.size, 3), np.nan, np.float32)
            if judged.any():
                row_probs[judged] = judged_probs
                row_labels[judged] = self.model.beat_labels(judged_probs)
            if f.seq.size:
                mine = seqs[:n_ready]
                j = np.clip(np.searchsorted(f.seq, mine), 0, f.seq.size - 1)
                k = np.clip(j - 1, 0, f.seq.size - 1)
                near = np.where(np.abs(f.seq[k] - mine) < np.abs(f.seq[j] - mine), k, j)
                close = np.abs(f.seq[near] - mine) <= round(MATCH_S * self.fs)
                close &= np.array([self._segment_ok(int(b)) for b in mine], dtype=bool)  # ≤ a few per block
                labels = np.where(close, row_labels[near], "Q")
                probs = np.where(close[:, None], row_probs[near], np.nan).astype(np.float32)
                p_wave = np.where(close[:, None], f.p_wave[near], np.nan).astype(np.float32)
        return LabelledBeats(seqs[:n_ready], labels, probs, np.full(n_ready, learning, bool), 0, p_wave)

    def _bridged(self, lo: int, hi: int) -> np.ndarray:
        """The signal ``[lo, hi)`` with its missing samples linearly bridged (as the window classifier
        does); a beat with a longer gap than ``MAX_GAP_S`` near it is not judged (``_segment_ok``)."""
        x, ok = self._x[lo - self._x0 : hi - self._x0], self._ok[lo - self._x0 : hi - self._x0]
        if ok.all() or not ok.any():
            return x
        idx = np.arange(x.size)
        return np.interp(idx, idx[ok], x[ok]).astype(np.float32)

    def _segment_ok(self, s: int) -> bool:
        i0, i1 = s - self._before - self._x0, s + self._after - self._x0
        if i0 < 0:
            return False
        missing = ~self._ok[i0 : min(i1, self._ok.size)]
        return longest_run(missing) <= round(MAX_GAP_S * self.fs)
