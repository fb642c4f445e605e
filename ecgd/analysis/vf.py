"""Ventricular fibrillation / flutter from the signal alone, where no beat detector can help.

VF and flutter have no organised QRS: the ECG becomes a coarse, fast, nearly sinusoidal oscillation
(flutter 4-6 Hz, fibrillation 3-9 Hz and less regular). The measure here is Kuo & Dillman's *VF filter
leakage* (1978; compared in Amann, Tratnig & Unterkofler, "Reliability of old and new ventricular
fibrillation detection algorithms", Biomed Eng Online 2005): estimate the signal's mean half-period N
from |x| and |dx|, add the signal to itself shifted by N (a notch at that frequency) and measure how much
survives. A sinusoid leaves almost nothing (leakage near 0); spiky QRS complexes leak most of their
energy (≥ 0.5). Two guards make it a *coarse fast* oscillation: the estimated frequency must lie in the
VF band, and the amplitude must be that of a heart, not of front-end noise or mains hum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VfMeasure:
    """One window's numbers (so a record can say why it called VF)."""

    leakage: float  # 0 (a pure sinusoid) … 1
    frequency_hz: float  # from the mean half-period
    amplitude_mv: float  # 5th-95th percentile span (one spike cannot set it)

    def is_vf(self, max_leakage: float, min_amplitude_mv: float, band_hz: tuple[float, float]) -> bool:
        lo, hi = band_hz
        return (
            self.leakage < max_leakage
            and self.amplitude_mv >= min_amplitude_mv
            and lo <= self.frequency_hz <= hi
        )


def measure(mv: np.ndarray, fs: float) -> VfMeasure | None:
    """The VF-filter leakage of one window (None when it has no usable oscillation at all)."""
    x = np.asarray(mv, dtype=np.float64)
    x = x - x.mean()
    dx = np.abs(np.diff(x))
    sdx = float(dx.sum())
    if x.size < 4 or sdx <= 0.0:
        return None
    half = int(np.floor(np.pi * float(np.abs(x).sum()) / sdx + 0.5))
    if half < 1 or half >= x.size // 2:
        return None
    a, b = x[half:], x[:-half]
    denom = float(np.abs(a).sum() + np.abs(b).sum())
    leakage = float(np.abs(a + b).sum()) / denom if denom > 0 else 1.0
    k5, k95 = int(0.05 * (x.size - 1)), int(0.95 * (x.size - 1))
    part = np.partition(x, (k5, k95))  # the 5th/95th percentiles (nearest rank), without a full sort
    return VfMeasure(leakage, fs / (2.0 * half), float(part[k95] - part[k5]))
