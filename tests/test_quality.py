"""The quality gate passes real ECG (also arrhythmic and noisy) and flags what the model must not see."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from pathlib import Path

import numpy as np
import pytest

from ecgd.analysis.quality import (
    FAULT_KINDS,
    QualitySettings,
    adc_rails_mv,
    assess_window,
    simulate_lead_fault,
)
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import Recording, read_recording

DATA = Path(os.environ.get("ECGD_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
FS = 360.0
WINDOW = 3600  # 10 s at 360 Hz
FE = AnalogFrontEnd()
RAILS = adc_rails_mv(FE)
DEFAULTS = QualitySettings()

needs_data = pytest.mark.skipif(not (DATA / "mitdb").is_dir(), reason=f"no MIT-BIH data in {DATA}")


@functools.cache
def _record(db: str, name: str, channel: int = 0) -> Recording:
    return read_recording(DATA / db / name, channel)


def _excerpt(db: str, name: str, first_window: int, count: int, channel: int = 0) -> np.ndarray:
    """``count`` consecutive 10-s windows of electrode millivolts, starting at window ``first_window``."""
    mv = _record(db, name, channel).mv
    return mv[first_window * WINDOW : (first_window + count) * WINDOW].astype(np.float32)


def _windows(mv: np.ndarray) -> list[np.ndarray]:
    return [mv[i : i + WINDOW] for i in range(0, mv.size - WINDOW + 1, WINDOW)]


def _kind(reason: str | None) -> str | None:
    return reason.split(":")[0] if reason else None


def _numbers(reason: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", reason)]


def _clean_ecg() -> np.ndarray:
    """A synthetic, obviously readable ECG-like trace for tests that need no data files."""
    t = np.arange(WINDOW) / FS
    beats = np.arange(0.4, 10.0, 0.8)
    qrs = np.exp(-(((t[:, None] - beats) / 0.012) ** 2)).sum(axis=1)
    twave = 0.25 * np.exp(-(((t[:, None] - beats - 0.3) / 0.06) ** 2)).sum(axis=1)
    return (1.2 * qrs + twave).astype(np.float32)


# --- real ECG passes -------------------------------------------------------------------------------

# (record, first window, why it is here); 6 windows = 1 min each
CLEAN = [
    ("101", 6, "normal sinus rhythm"),
    ("108", 20, "big P waves, noisy baseline, first-degree block"),
    ("114", 0, "V5 lead: small QRS, most high-frequency power of DS1"),
    ("203", 30, "very noisy, multiform PVCs, atrial flutter/fibrillation"),
    ("207", 156, "ventricular flutter: must not be mistaken for noise"),
    ("208", 60, "frequent PVCs and couplets"),
]


@needs_data
@pytest.mark.parametrize(("name", "first", "why"), CLEAN, ids=[c[0] for c in CLEAN])
@pytest.mark.parametrize("frontend", [True, False], ids=["frontend", "raw"])
def test_real_ecg_is_readable(name: str, first: int, why: str, frontend: bool) -> None:
    mv = _excerpt("mitdb", name, first, 6)
    if frontend:
        mv = FE.simulate_mv(mv, FS)
    reasons = [assess_window(w, FS, RAILS if frontend else None, DEFAULTS) for w in _windows(mv)]
    assert reasons == [None] * 6, f"{name} ({why})"


# --- noise only is flagged ---------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("channel", [0, 1])
def test_muscle_noise_is_gross_noise(channel: int, scale: float) -> None:
    """NSTDB ``ma``: muscle noise recorded where no ECG is visible, around its recorded amplitude."""
    mv = FE.simulate_mv(scale * _excerpt("nstdb", "ma", 60, 4, channel), FS)
    kinds = {_kind(assess_window(w, FS, RAILS, DEFAULTS)) for w in _windows(mv)}
    assert kinds <= {"gross noise", "no QRS complexes found"}
    assert "gross noise" in kinds


@needs_data
@pytest.mark.parametrize("frontend", [True, False], ids=["frontend", "raw"])
@pytest.mark.parametrize("channel", [0, 1])
def test_baseline_wander_has_no_qrs(channel: int, frontend: bool) -> None:
    """NSTDB ``bw``: electrode motion and breathing, slow: no steep deflections."""
    mv = _excerpt("nstdb", "bw", 20, 4, channel)
    if frontend:
        mv = FE.simulate_mv(mv, FS)
    kinds = [_kind(assess_window(w, FS, RAILS if frontend else None, DEFAULTS)) for w in _windows(mv)]
    assert set(kinds) <= {"no QRS complexes found", "flat line", "gross noise"}, kinds  # motion: steep, too
    assert kinds.count("no QRS complexes found") >= 3, kinds


# --- lead faults and the ADC -------------------------------------------------------------------------

EXPECTED_FAULT = {
    "one_off": "saturated",
    "both_off": "saturated",
    "intermittent": "saturated",
    "clipped": "saturated",
    "stuck": "flat line",
}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_lead_faults_are_flagged(kind: str, seed: int) -> None:
    ecg = _clean_ecg()
    assert assess_window(FE.simulate_mv(ecg, FS), FS, RAILS, DEFAULTS) is None
    faulty = simulate_lead_fault(ecg, FS, kind, FE, np.random.default_rng(seed))
    reason = assess_window(faulty, FS, RAILS, DEFAULTS)
    assert _kind(reason) == EXPECTED_FAULT[kind], reason
    if EXPECTED_FAULT[kind] == "saturated":
        assert "leads off?" in reason


def test_both_electrodes_off_reports_the_measured_fraction() -> None:
    at_rail = FE.counts_to_mv(np.full(WINDOW, FE.adc_max))
    reason = assess_window(at_rail, FS, RAILS, DEFAULTS)
    assert reason == "saturated: 100 % of samples at the ADC rails (max 20 %; leads off?)"


def test_a_long_stay_at_a_rail_is_flagged_even_when_the_fraction_is_small() -> None:
    counts = FE.simulate_counts(_clean_ecg(), FS)
    counts[1000:1300] = 0  # 0.83 s at the low rail: 8 % of the window
    reason = assess_window(FE.counts_to_mv(counts), FS, RAILS, DEFAULTS)
    assert reason is not None and reason.startswith("saturated: 0.8")
    assert "max 0.4 s" in reason


def test_rails_can_be_given_in_any_order_and_must_differ() -> None:
    at_rail = FE.counts_to_mv(np.zeros(WINDOW, dtype=np.int16))
    assert _kind(assess_window(at_rail, FS, RAILS[::-1], DEFAULTS)) == "saturated"
    with pytest.raises(ValueError, match="rails"):
        assess_window(at_rail, FS, (1.0, 1.0), DEFAULTS)


def test_without_a_front_end_a_constant_is_a_flat_line_not_saturation() -> None:
    at_rail = FE.counts_to_mv(np.zeros(WINDOW, dtype=np.int16))
    assert _kind(assess_window(at_rail, FS, None, DEFAULTS)) == "flat line"


def test_flat_line_names_range_duration_and_threshold() -> None:
    x = np.full(WINDOW, 0.3, dtype=np.float32)
    x[::7] += 0.02  # 0.02 mV of ripple
    reason = assess_window(x, FS, None, DEFAULTS)
    assert reason == "flat line: 0.020 mV peak-to-peak over 10.0 s (min 0.05 mV)"


def test_implausible_amplitude_names_the_peak_to_peak() -> None:
    x = 20.0 * _clean_ecg()  # a unit error, or an electrode pop: 20x the millivolts
    reason = assess_window(x, FS, None, DEFAULTS)
    assert _kind(reason) == "implausible amplitude"
    assert _numbers(reason)[:2] == pytest.approx([round(float(np.ptp(x)), 1), 12.0])


def test_no_qrs_reason_names_count_threshold_and_need() -> None:
    t = np.arange(WINDOW) / FS
    x = (0.4 * np.sin(2 * np.pi * 0.3 * t)).astype(np.float32)  # slow wander: no steep deflection
    reason = assess_window(x, FS, None, DEFAULTS)
    assert reason == "no QRS complexes found: 0 detected beat(s) ≥ 8 mV/s in 10.0 s (need 2)"


def test_broadband_noise_reason_names_the_high_frequency_share() -> None:
    x = np.random.default_rng(3).normal(0.0, 0.2, WINDOW).astype(np.float32)
    reason = assess_window(x, FS, None, DEFAULTS)
    assert _kind(reason) == "gross noise"
    share, cutoff, limit = _numbers(reason)
    assert share > limit == 50 and cutoff == 20


# --- settings -----------------------------------------------------------------------------------------


def test_disabled_gate_passes_everything() -> None:
    off = dataclasses.replace(DEFAULTS, enabled=False)
    assert assess_window(np.zeros(WINDOW, dtype=np.float32), FS, RAILS, off) is None


def test_thresholds_come_from_the_settings() -> None:
    x = FE.simulate_mv(_clean_ecg(), FS)
    assert assess_window(x, FS, RAILS, DEFAULTS) is None
    strict = dataclasses.replace(DEFAULTS, flat_max_range_mv=5.0)
    assert assess_window(x, FS, RAILS, strict).endswith("(min 5 mV)")


def test_settings_report_all_problems() -> None:
    assert DEFAULTS.problems() == []
    bad = QualitySettings(rail_max_fraction=1.5, qrs_min_slope_mv_per_s=0.0, min_qrs_similarity=-0.1)
    problems = bad.problems()
    assert len(problems) == 3
    assert any(p.startswith("rail_max_fraction:") for p in problems)


# --- input errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_missing_samples_must_be_filled_first(bad: float) -> None:
    x = FE.simulate_mv(_clean_ecg(), FS)
    x[100] = bad
    with pytest.raises(ValueError, match="fill missing samples"):
        assess_window(x, FS, RAILS, DEFAULTS)


@pytest.mark.parametrize("fs", [0.0, -360.0, float("nan"), float("inf"), 50.0, None, "360"])
def test_unusable_sample_rate_is_rejected(fs: object) -> None:
    with pytest.raises(ValueError, match="sample rate"):
        assess_window(_clean_ecg(), fs, None, DEFAULTS)  # type: ignore[arg-type]


def test_window_shape_and_length_are_checked() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        assess_window(np.zeros((2, WINDOW)), FS, None, DEFAULTS)
    with pytest.raises(ValueError, match="shorter than"):
        assess_window(np.zeros(100), FS, None, DEFAULTS)


def test_other_rates_and_lengths_work() -> None:
    """fs and length are parameters: a 250 Hz, 8-s window of the same ECG is judged the same."""
    ecg = _clean_ecg()
    n = 8 * 250
    resampled = np.interp(np.arange(n) / 250.0, np.arange(ecg.size) / FS, ecg).astype(np.float32)
    assert assess_window(resampled, 250.0, None, DEFAULTS) is None
    assert _kind(assess_window(np.zeros(n), 250.0, None, DEFAULTS)) == "flat line"


def test_unknown_fault_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown lead fault"):
        simulate_lead_fault(_clean_ecg(), FS, "unplugged")
