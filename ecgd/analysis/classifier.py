"""Turn one window of samples into one classification, the same way online and offline.

The daemon and ``ecgd classify`` share this so that offline results are what
the monitor would report: missing-sample tolerance, signal-quality gate (an
unreadable window never reaches the model), resampling to the model's rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgd.analysis.model import Model
from ecgd.analysis.qrs import QrsSettings
from ecgd.analysis.quality import QualitySettings, assess_window

UNREADABLE = "unreadable"
UNCLASSIFIED = "unclassified"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Classification:
    label: str
    confidence: float | None
    probabilities: dict[str, float] | None
    reason: str | None
    missing: int
    inference_ms: float | None


class WindowClassifier:
    def __init__(
        self,
        model: Model,
        input_rate_hz: float,
        quality: QualitySettings,
        rails_mv: tuple[float, float] | None,
        max_missing_fraction: float,
        max_gap_seconds: float = 0.0,
        qrs: QrsSettings | None = None,
    ) -> None:
        self.model = model
        self.input_rate_hz = input_rate_hz
        self.quality = quality
        self.rails_mv = rails_mv
        self.max_missing_fraction = max_missing_fraction
        self.max_gap_samples = int(max_gap_seconds * input_rate_hz)
        self.qrs = qrs  # the beat stage's detector settings: the quality gate counts QRS with it

    def classify(self, mv: np.ndarray, valid: np.ndarray | None = None) -> Classification:
        n = mv.size
        missing = 0 if valid is None else int(n - np.count_nonzero(valid))
        allowed = int(self.max_missing_fraction * n)
        if missing == n:
            return Classification(
                UNCLASSIFIED, None, None, f"all {n} samples missing (no signal acquired)", missing, None
            )
        if missing > allowed:
            return Classification(
                UNCLASSIFIED,
                None,
                None,
                f"{missing} of {n} samples missing (tolerance {allowed})",
                missing,
                None,
            )
        if missing:
            assert valid is not None
            gap = _longest_run(~valid)
            if gap > self.max_gap_samples:
                return Classification(
                    UNCLASSIFIED,
                    None,
                    None,
                    f"{missing} of {n} samples missing, {gap / self.input_rate_hz * 1000:.0f} ms in one gap "
                    f"(tolerance {self.max_gap_samples / self.input_rate_hz * 1000:.0f} ms)",
                    missing,
                    None,
                )
            idx = np.arange(n)
            mv = np.interp(idx, idx[valid], mv[valid]).astype(np.float32)
        if self.quality.enabled:
            reason = assess_window(mv, self.input_rate_hz, self.rails_mv, self.quality, self.qrs)
            if reason is not None:
                return Classification(UNREADABLE, None, None, reason, missing, None)
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

    def _resample(self, mv: np.ndarray) -> np.ndarray:
        """Linear resampling to the model's rate (the AD8232's 40 Hz low-pass makes aliasing moot)."""
        target = self.model.window_samples
        if mv.size == target:
            return mv
        t_out = np.arange(target) / self.model.sample_rate_hz
        t_in = np.arange(mv.size) / self.input_rate_hz
        return np.interp(t_out, t_in, mv).astype(np.float32)


def _longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True."""
    edges = np.diff(flags.astype(np.int8), prepend=0, append=0)
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return int(runs.max()) if runs.size else 0
