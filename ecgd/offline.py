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
