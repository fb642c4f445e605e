"""``ecgd classify`` and ``ecgd beats``: the daemon's stages over a recording.

Windows start at sample 0 and step by the hop, in the recording's own samples.
With a front end the recording first goes through the same AD8232 + 8-bit ADC
model the emulated device uses, so the results are what the monitor would see.
The beat stage is fed in the daemon's blocks (``BLOCK_S`` of samples) and told
about unreadable windows at the same point as in the daemon (when the window's
last sample has arrived), so heart rates and beats match what the monitor reported.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecgd.analysis.beat_features import RelearnSettings
from ecgd.analysis.beat_labels import BeatLabeller, LabelledBeats, TemplateChange, beats_known
from ecgd.analysis.beats import BLOCK_S, Beat, BeatSettings, BeatTracker, WindowBeats
from ecgd.analysis.classifier import UNCLASSIFIED, UNREADABLE, Classification, WindowClassifier
from ecgd.analysis.model import Model
from ecgd.analysis.qrs import QrsSettings
from ecgd.analysis.quality import QualitySettings, adc_rails_mv, assess_window
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import Recording

ENDED = "recording ended before the beats at the window's end were detected"


def _signal(rec: Recording, frontend: AnalogFrontEnd | None) -> tuple[np.ndarray, tuple[float, float] | None]:
    if frontend is not None:
        return frontend.simulate_mv(rec.mv, rec.fs), adc_rails_mv(frontend)
    return np.asarray(rec.mv, dtype=np.float32), None


def _valid(rec: Recording) -> np.ndarray | None:
    """Where a recording has samples (NaN: WFDB's invalid value, e.g. gaps in ecgd's own recordings).
    None when it has them all, so complete recordings go exactly the way they always did."""
    ok = np.isfinite(rec.mv)
    return None if ok.all() else ok


def _without_gaps(rec: Recording, valid: np.ndarray | None) -> Recording:
    """Gaps as 0 mV for the stages that need numbers; ``valid`` keeps them out of every judgement."""
    if valid is None:
        return rec
    return Recording(np.where(valid, rec.mv, 0.0), rec.fs, rec.name, rec.channel_name)


@dataclass(frozen=True)
class Fed:
    """A block fed to the beat stage (and the labeller): the beats it confirmed and those labelled now.
    ``x`` is empty for the labeller's flush at a recording's end."""

    first: int
    x: np.ndarray
    beats: list[Beat]
    labelled: LabelledBeats | None


@dataclass(frozen=True)
class Screened:
    """A window judged as soon as its last sample is in (``verdict`` None: readable, its verdict waits
    for its labelled beats); ``redone``: the beats from a seq on that the tracker replaced."""

    first: int
    stop: int
    verdict: Classification | None
    redone: tuple[int, list[Beat]] | None


@dataclass(frozen=True)
class Released:
    """A window, in window order, once the beats before its end are final (and labelled, if it waits)."""

    first: int
    stop: int
    verdict: Classification | None


def drive(
    mv: np.ndarray,
    fs: float,
    window_n: int,
    hop_n: int,
    judge: Callable[[int, int], Classification | None],
    tracker: BeatTracker,
    valid: np.ndarray | None = None,
    labeller: BeatLabeller | None = None,
    finish: bool = True,
) -> Iterator[Fed | Screened | Released]:
    """The daemon worker's loop over a recording, as events: feed ``tracker`` (and ``labeller``) block
    by block, judge each window once its last sample is in and tell the tracker (unreadable: no beats
    there; readable: the detector may run again), and release each window once its beats are known.
    ``finish``: at the end, label the waiting beats without their next beat and release every window
    still held (a recording's end; the alarm replay stops where the daemon would still be waiting)."""
    block = max(1, round(BLOCK_S * fs))
    starts = iter(range(0, mv.size - window_n + 1, hop_n) if window_n else ())
    start = next(starts, None)
    held: deque[tuple[int, int, Classification | None]] = deque()
    for first in range(0, mv.size, block):
        ok = None if valid is None else valid[first : first + block]
        x = mv[first : first + block]
        new = tracker.feed(first, x, ok)
        labelled = None
        if labeller is not None:
            labelled = labeller.feed(first, x, ok, [b.seq for b in new], tracker.confirmed_until())
        yield Fed(first, x, new, labelled)
        while start is not None and start + window_n <= tracker.fed_until:
            c = judge(start, start + window_n)
            redone = None
            if c is not None and c.label == UNREADABLE:
                tracker.unreadable(start, start + window_n)
            elif c is None or c.probabilities is not None:
                redone = tracker.readable(start, start + window_n)
                if redone is not None and labeller is not None:
                    labeller.replace_from(redone[0], [b.seq for b in redone[1]])
            yield Screened(start, start + window_n, c, redone)
            held.append((start, start + window_n, c))
            start = next(starts, None)
        while held and beats_known(tracker, labeller, held[0][1], labels=held[0][2] is None):
            yield Released(*held.popleft())
    if not finish:
        return
    if labeller is not None:
        yield Fed(mv.size, mv[:0], [], labeller.flush())  # the last beats, labelled without their next beat
    for h in held:
        yield Released(*h)


def judged_windows(
    mv: np.ndarray,
    fs: float,
    window_n: int,
    hop_n: int,
    judge: Callable[[int, int], Classification | None],
    tracker: BeatTracker,
    on_beats: Callable[[int | None, list[Beat]], None] | None = None,
    valid: np.ndarray | None = None,
    labeller: BeatLabeller | None = None,
    verdict: Callable[[int, int], Classification] | None = None,
    on_labels: Callable[[LabelledBeats], None] | None = None,
) -> Iterator[tuple[int, int, Classification, WindowBeats]]:
    """Each window of :func:`drive` with its verdict and beat figures, once they are final.

    ``judge`` returning None: the window is readable and ``verdict(first, stop)`` draws its verdict
    from the beat labels once they are in (a beat-aware model, as in the daemon).
    ``on_beats(from_seq, beats)``: new beats; ``from_seq`` is not None when they replace the beats
    from that seq on (the detector ran again after an unreadable stretch); ``on_labels``: the beats
    the labeller labelled."""
    for ev in drive(mv, fs, window_n, hop_n, judge, tracker, valid, labeller):
        if isinstance(ev, Fed):
            if on_labels is not None and ev.labelled is not None and len(ev.labelled):
                on_labels(ev.labelled)
            if on_beats is not None and ev.beats:
                on_beats(None, ev.beats)
        elif isinstance(ev, Screened):
            if ev.redone is not None and on_beats is not None:
                on_beats(*ev.redone)
        else:
            c = ev.verdict
            if c is None:
                assert verdict is not None
                c = verdict(ev.first, ev.stop)
            yield ev.first, ev.stop, c, _figures(tracker, ev.first, ev.stop, c)


def _figures(tracker: BeatTracker, a: int, b: int, c: Classification) -> WindowBeats:
    if c.label == UNREADABLE:
        return WindowBeats.none("window unreadable")
    if c.probabilities is None and c.reason is not None:
        return WindowBeats.none("window not classified")
    if tracker.final_until() < b:
        return WindowBeats.none(ENDED)
    return tracker.window(a, b)


def classify_recording(
    rec: Recording,
    model: Model,
    hop_seconds: float,
    frontend: AnalogFrontEnd | None = None,
    quality: QualitySettings | None = None,
    qrs: QrsSettings | None = None,
    beats: BeatSettings | None = None,
    beat_positions: np.ndarray | None = None,
    relearn: RelearnSettings | None = None,
    template_changes: list[TemplateChange] | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per window. A beat-aware model judges the beat stage's beats as they come (the daemon's
    :class:`BeatLabeller`) and each window from its labelled beats; with ``beat_positions`` (sample
    numbers, sorted: e.g. the reference annotations, for evaluation) it judges those instead, window by
    window. Its windows also carry ``beat_seq``, ``beat_labels`` (N/S/V/Q per beat), ``learning``,
    ``p_wave_coherence`` and ``p_wave_to_qrs``;
    the stream's template changes are appended to ``template_changes`` once the last window is out."""
    fs = rec.fs
    window_n = round(model.metadata.window_seconds * fs)
    hop_n = max(1, round(hop_seconds * fs))
    valid = _valid(rec)
    mv, rails = _signal(_without_gaps(rec, valid), frontend)
    classifier = WindowClassifier(
        model, fs, quality or QualitySettings(), rails, max_missing_fraction=0.0, qrs=qrs, relearn=relearn
    )
    keep_s = max(model.metadata.window_seconds, classifier.af_context_samples / fs) + hop_seconds + 10.0
    tracker = BeatTracker(fs, qrs, beats, keep_s=keep_s)
    labeller = None
    if classifier.beat_aware and beat_positions is None:  # the daemon's way: the stream's beats, labelled
        labeller = BeatLabeller(model, fs, relearn, keep_s=keep_s)

    def judge(a: int, b: int) -> Classification | None:
        ok = None if valid is None else valid[a:b]
        if labeller is not None:
            return classifier.screen(mv[a:b], ok)
        seqs = None
        if beat_positions is not None:
            lo, hi = np.searchsorted(beat_positions, [a, b])
            seqs = beat_positions[lo:hi]
        return classifier.classify(mv[a:b], ok, a, seqs)

    def verdict(a: int, b: int) -> Classification:
        assert labeller is not None
        missing = 0 if valid is None else int(b - a - np.count_nonzero(valid[a:b]))
        return classifier.verdict_from(labeller, a, b, missing)

    windows = judged_windows(
        mv, fs, window_n, hop_n, judge, tracker, valid=valid, labeller=labeller, verdict=verdict
    )
    for a, b, c, figures in windows:
        out: dict[str, Any] = {
            "start": a,
            "end": b,
            "label": c.label,
            "confidence": None if c.confidence is None else round(c.confidence, 4),
            "probabilities": c.probabilities,
        }
        if c.reason:
            out["reason"] = c.reason
        out.update(figures.fields())
        if c.beats is not None:
            out["beat_seq"] = c.beats.seq.tolist()
            out["beat_labels"] = str(c.beats)
            out["learning"] = c.learning
            pw = c.p_wave_coherence
            out["p_wave_coherence"] = None if pw is None else round(pw, 3)
            ratio = c.p_wave_to_qrs
            out["p_wave_to_qrs"] = None if ratio is None else round(ratio, 4)
        yield out
    if labeller is not None and template_changes is not None:
        template_changes.extend(labeller.template_changes)


def beats_of_recording(
    rec: Recording,
    window_seconds: float,
    hop_seconds: float,
    frontend: AnalogFrontEnd | None = None,
    quality: QualitySettings | None = None,
    qrs: QrsSettings | None = None,
    beats: BeatSettings | None = None,
    model: Model | None = None,
    relearn: RelearnSettings | None = None,
    template_changes: list[TemplateChange] | None = None,
) -> list[dict[str, Any]]:
    """Every beat the daemon would count: detected, and inside at least one window the quality gate
    passed (an unreadable stretch has no beats). ``rr_ms`` is null for the first beat, after a gap
    and after a stretch whose beats were left out. With a beat-aware ``model`` each beat has the
    ``label`` the daemon's labeller gives it (N/S/V/Q), in the daemon's order, and the times the
    patient's dominant beat changed for good (the daemon's ``template_changed`` records) are appended
    to ``template_changes``."""
    fs = rec.fs
    window_n = round(window_seconds * fs)
    hop_n = max(1, round(hop_seconds * fs))
    valid = _valid(rec)
    mv, rails = _signal(_without_gaps(rec, valid), frontend)
    q = quality or QualitySettings()
    found: list[Beat] = []
    readable: list[tuple[int, int]] = []
    tracker = BeatTracker(fs, qrs, beats, keep_s=window_seconds + hop_seconds + 10.0)
    labeller = None
    labels: dict[int, tuple[str, float, float]] = {}  # seq -> label, P(S), P(V)
    if model is not None and getattr(model, "kind", "waveform") == "beats":
        labeller = BeatLabeller(model, fs, relearn)

    def on_labels(lb: LabelledBeats) -> None:
        judged = zip(lb.labels.tolist(), lb.probs[:, 1].tolist(), lb.probs[:, 2].tolist(), strict=True)
        labels.update(zip(lb.seq.tolist(), judged, strict=True))

    def judge(a: int, b: int) -> Classification:
        if valid is not None and not valid[a:b].all():  # as classify: a window with gaps is not judged
            return Classification(UNCLASSIFIED, None, None, "samples missing", 0, None)
        reason = assess_window(mv[a:b], fs, rails, q, qrs) if q.enabled else None
        if reason is not None:
            return Classification(UNREADABLE, None, None, reason, 0, None)
        readable.append((a, b))
        return Classification("readable", None, {}, None, 0, None)

    n = mv.size
    if n < window_n:
        raise ValueError(f"recording of {n / fs:.1f} s is shorter than one window ({window_seconds:g} s)")

    def on_beats(from_seq: int | None, new: list[Beat]) -> None:
        if from_seq is not None:
            found[:] = [b for b in found if b.seq < from_seq]
        found.extend(new)

    for _ in judged_windows(
        mv, fs, window_n, hop_n, judge, tracker, on_beats, valid, labeller, None, on_labels
    ):
        pass
    tail = n - window_n
    if tail % hop_n:  # the hops missed the recording's last samples: one more window ends at its end
        judge(tail, n)
    if labeller is not None and template_changes is not None:
        template_changes.extend(labeller.template_changes)
    found.sort(key=lambda b: b.seq)
    seqs = np.array([b.seq for b in found], dtype=np.int64)
    keep = np.zeros(seqs.size, bool)
    for a, b in readable:
        keep[np.searchsorted(seqs, a) : np.searchsorted(seqs, b)] = True
    out = []
    previous_kept = False
    for beat, k in zip(found, keep, strict=True):
        if k:
            rr = beat.rr_ms if previous_kept else None
            out.append(
                {
                    "sample": beat.seq,
                    "time_s": round(beat.seq / fs, 4),
                    "rr_ms": None if rr is None else round(rr, 1),
                    "amplitude_mv": round(beat.amplitude_mv, 3),
                    "width_ms": None if beat.width_ms is None else round(beat.width_ms, 1),
                    **(_label_fields(labels.get(beat.seq)) if labeller is not None else {}),
                }
            )
        previous_kept = bool(k)
    return out


def _label_fields(judged: tuple[str, float, float] | None) -> dict[str, object]:
    """A beat's label and the model's P(S), P(V) (null for a beat not judged): the alarm rules count a beat
    as ventricular from P(V) as well as from the label, so a reader can see why a run was or was not one."""
    if judged is None:
        return {"label": "Q", "p_s": None, "p_v": None}
    label, p_s, p_v = judged
    if np.isnan(p_v):
        return {"label": label, "p_s": None, "p_v": None}
    return {"label": label, "p_s": round(p_s, 3), "p_v": round(p_v, 3)}
