"""``ecgd classify``: the daemon's windowing and classifier over a recording.

Windows start at sample 0 and step by the hop, in the recording's own samples.
With a front end the recording first goes through the same AD8232 + 8-bit ADC
model the emulated device uses, so the results are what the monitor would see.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ecgd.analysis.classifier import WindowClassifier
from ecgd.analysis.model import Model
from ecgd.analysis.quality import QualitySettings, adc_rails_mv
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import Recording


def classify_recording(
    rec: Recording,
    model: Model,
    hop_seconds: float,
    frontend: AnalogFrontEnd | None = None,
    quality: QualitySettings | None = None,
    beats: np.ndarray | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per window. ``beats`` (sample numbers, sorted) are handed to a beat-aware model as the
    beat stage would; without them it detects the beats itself. Its windows also carry ``beat_seq``,
    ``beat_labels`` (N/S/V/Q per beat) and ``learning``."""
    fs = rec.fs
    window_n = round(model.metadata.window_seconds * fs)
    hop_n = max(1, round(hop_seconds * fs))
    if frontend is not None:
        mv = frontend.simulate_mv(rec.mv, fs)
        rails: tuple[float, float] | None = adc_rails_mv(frontend)
    else:
        mv = np.asarray(rec.mv, dtype=np.float32)
        rails = None
    classifier = WindowClassifier(model, fs, quality or QualitySettings(), rails, max_missing_fraction=0.0)
    for start in range(0, mv.size - window_n + 1, hop_n):
        seqs = None
        if beats is not None:
            lo, hi = np.searchsorted(beats, [start, start + window_n])
            seqs = beats[lo:hi]
        c = classifier.classify(mv[start : start + window_n], None, start, seqs)
        out: dict[str, Any] = {
            "start": start,
            "end": start + window_n,
            "label": c.label,
            "confidence": None if c.confidence is None else round(c.confidence, 4),
            "probabilities": c.probabilities,
        }
        if c.reason:
            out["reason"] = c.reason
        if c.beats is not None:
            out["beat_seq"] = c.beats.seq.tolist()
            out["beat_labels"] = str(c.beats)
            out["learning"] = c.learning
        yield out


def label_beats(
    mv: np.ndarray,
    fs: float,
    beat_seqs: np.ndarray,
    model: Model,
    quality: QualitySettings | None = None,
    rails_mv: tuple[float, float] | None = None,
    window_seconds: float = 10.0,
) -> np.ndarray:
    """N / S / V / Q for each beat of a recording (``ecgd beats`` and its WFDB annotation file).

    The beats (sample numbers, sorted, e.g. from the QRS detector) go through the daemon's classifier in
    consecutive windows, learning the patient's template as the monitor does. ``Q`` marks a beat that was
    not judged: in a window the quality gate rejected, or before the template could be learned. Beats
    after the last whole window are judged with a window ending at the recording's end.
    """
    if getattr(model, "kind", "waveform") != "beats":
        raise ValueError(f"{model.metadata.ident} is not a beat-aware model: it cannot label beats")
    beats = np.asarray(beat_seqs, dtype=np.int64)
    x = np.asarray(mv, dtype=np.float32)
    out = np.full(beats.size, "Q", dtype="<U1")
    n = round(window_seconds * fs)
    classifier = WindowClassifier(model, fs, quality or QualitySettings(), rails_mv, max_missing_fraction=0.0)
    starts = list(range(0, max(x.size - n, 0) + 1, n))
    if x.size >= n and starts[-1] + n < x.size:
        starts.append(x.size - n)  # the tail: an overlapping last window (its earlier beats keep labels)
    done = 0
    for start in starts:
        lo, hi = np.searchsorted(beats, [max(start, beats[done - 1] + 1 if done else start), start + n])
        if hi <= lo:
            continue
        c = classifier.classify(x[start : start + n], None, start, beats[np.searchsorted(beats, start) : hi])
        if c.beats is not None and c.beats.seq.size:
            # the classifier refines positions by ≤ 50 ms: map its beats back to the given ones
            j = np.clip(np.searchsorted(c.beats.seq, beats[lo:hi]), 1, max(c.beats.seq.size - 1, 1))
            if c.beats.seq.size == 1:
                j = np.zeros(hi - lo, dtype=np.int64)
                near = j
            else:
                near = np.where(
                    np.abs(c.beats.seq[j - 1] - beats[lo:hi]) <= np.abs(c.beats.seq[j] - beats[lo:hi]),
                    j - 1,
                    j,
                )
            close = np.abs(c.beats.seq[near] - beats[lo:hi]) <= round(0.06 * fs)
            out[lo:hi] = np.where(close, c.beats.labels[near], "Q")
        done = hi
    return out
