"""AD8232 + PCF8591 model: 8-bit codes, rails, the round trip to mV, and the board's band-pass."""

from __future__ import annotations

import numpy as np
import pytest

from ecgd.io.frontend import AnalogFrontEnd

FS = 360.0
LSB_V = 3.3 / 256


def lsb_mv(fe: AnalogFrontEnd) -> float:
    return fe.lsb_volts * 1000.0 / fe.gain


def sine_amplitude(y: np.ndarray, f: float, fs: float) -> float:
    """Least-squares amplitude of the ``f`` component of ``y``."""
    t = np.arange(y.size) / fs
    basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t), np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(coef[0], coef[1]))


# --- quantisation ---------------------------------------------------------------------------------


def test_eight_bit_converter_geometry(frontend):
    assert frontend.adc_max == 255
    assert frontend.lsb_volts == pytest.approx(LSB_V, rel=1e-12)


def test_every_code_is_reached_at_its_own_step(frontend):
    centres = (np.arange(256) + 0.5) * LSB_V
    codes = frontend.volts_to_counts(centres)
    assert codes.dtype == np.int16
    assert codes.tolist() == list(range(256))
    just_below = np.arange(1, 256) * LSB_V - 1e-9  # a hair below each step: the code before it
    assert frontend.volts_to_counts(just_below).tolist() == list(range(255))


def test_codes_saturate_at_the_rails(frontend):
    assert frontend.volts_to_counts(np.array([-1.0, -1e-6, 0.0])).tolist() == [0, 0, 0]
    assert frontend.volts_to_counts(np.array([3.3 - 1e-6, 3.3, 4.0, 100.0])).tolist() == [255] * 4
    assert int(frontend.volts_to_counts(1.65)) == 128  # scalar input works too


def test_large_inputs_clip_at_the_supply_rails(frontend):
    volts = frontend.mv_to_volts(np.array([-50.0, -1.6, 0.0, 1.6, 50.0]))
    assert volts[0] == 0.0 and volts[-1] == 3.3
    assert volts[1] == 0.0 and volts[3] == 3.3  # 1.6 mV * 1100 = 1.76 V from mid-supply: past the rail
    assert volts[2] == pytest.approx(1.65)
    counts = frontend.volts_to_counts(volts)
    assert counts.tolist() == [0, 0, 128, 255, 255]


def test_counts_to_mv_gives_the_code_centre(frontend):
    codes = np.arange(256)
    mv = frontend.counts_to_mv(codes)
    assert mv.dtype == np.float32
    expected = ((codes + 0.5) * LSB_V - 1.65) / 1100.0 * 1000.0
    assert np.allclose(mv, expected, rtol=0, atol=1e-6)
    assert np.allclose(np.diff(mv), lsb_mv(frontend), rtol=1e-4)


@pytest.mark.parametrize(
    "fe",
    [AnalogFrontEnd(), AnalogFrontEnd(gain=500.0, offset_volts=1.2, adc_reference_volts=2.5)],
    ids=["default", "other-chain"],
)
def test_round_trip_error_is_at_most_half_an_lsb_in_range(fe):
    lo = (0.0 - fe.offset_volts) * 1000.0 / fe.gain
    hi = (fe.adc_reference_volts - fe.offset_volts) * 1000.0 / fe.gain
    mv = np.linspace(lo, hi, 200_001)[1:-1]  # strictly inside the ADC's input range
    back = fe.counts_to_mv(fe.volts_to_counts(fe.mv_to_volts(mv)))
    err = np.abs(back.astype(np.float64) - mv)
    half = 0.5 * lsb_mv(fe)
    assert err.max() <= half * (1 + 1e-5)
    assert err.max() > 0.9 * half  # quantisation really happens: the bound is tight, not loose
    # outside the range the error grows: that is saturation, which the quality gate looks for
    outside = fe.counts_to_mv(fe.volts_to_counts(fe.mv_to_volts(np.array([hi + 1.0]))))
    assert outside[0] < hi and hi + 1.0 - outside[0] > 0.9


# --- band-pass ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fe", "corner"),
    [(AnalogFrontEnd(lowpass_hz=0), 0.5), (AnalogFrontEnd(highpass_hz=0), 40.0)],
    ids=["highpass", "lowpass"],
)
def test_each_two_pole_butterworth_is_3db_down_at_its_corner(fe, corner):
    h = fe.response(np.array([corner]))[0]
    assert 20 * np.log10(abs(h)) == pytest.approx(-3.0103, abs=1e-3)


def test_magnitudes_follow_the_butterworth_formula():
    f = np.array([0.05, 0.1, 0.25, 1.0, 2.0, 10.0, 20.0, 80.0, 160.0, 400.0])
    hp = np.abs(AnalogFrontEnd(lowpass_hz=0).response(f))
    lp = np.abs(AnalogFrontEnd(highpass_hz=0).response(f))
    r_hp = (f / 0.5) ** 2
    r_lp = (f / 40.0) ** 2
    assert np.allclose(hp, r_hp / np.sqrt(1 + r_hp**2), rtol=1e-9)
    assert np.allclose(lp, 1 / np.sqrt(1 + r_lp**2), rtol=1e-9)
    # two poles: 40 dB per decade far from the corner
    far = np.abs(AnalogFrontEnd(highpass_hz=0).response(np.array([400.0, 4000.0])))
    assert 20 * np.log10(far[1] / far[0]) == pytest.approx(-40.0, abs=0.1)
    both = np.abs(AnalogFrontEnd().response(f))
    assert np.allclose(both, hp * lp, rtol=1e-12)


def test_response_is_unity_when_both_filters_are_disabled():
    fe = AnalogFrontEnd(highpass_hz=0, lowpass_hz=0)
    assert np.array_equal(fe.response(np.array([0.0, 1.0, 100.0])), np.ones(3))
    x = np.sin(np.arange(100) / 3.0) + 2.0
    y = fe.filter_mv(x, FS)
    assert np.array_equal(y, x) and y is not x


def test_filter_removes_dc(frontend):
    x = np.full(int(30 * FS), 7.5)
    y = frontend.filter_mv(x, FS)
    assert y.shape == x.shape
    assert np.abs(y).max() < 1e-9


def test_filter_removes_an_offset_under_a_sine_and_keeps_the_sine(frontend):
    t = np.arange(int(60 * FS)) / FS
    x = 3.0 + 1.0 * np.sin(2 * np.pi * 10.0 * t)
    y = frontend.filter_mv(x, FS)
    mid = slice(int(5 * FS), int(55 * FS))
    assert abs(y[mid].mean()) < 1e-3
    gain = sine_amplitude(y[mid], 10.0, FS)
    assert gain == pytest.approx(1.0, abs=0.01)
    assert gain == pytest.approx(abs(frontend.response(np.array([10.0]))[0]), rel=1e-3)


@pytest.mark.parametrize("f", [0.1, 0.5, 40.0, 100.0])
def test_filtered_sines_are_scaled_by_the_analog_response(frontend, f):
    t = np.arange(int(80 * FS)) / FS
    y = frontend.filter_mv(np.sin(2 * np.pi * f * t), FS)
    mid = slice(int(20 * FS), int(60 * FS))
    expected = abs(frontend.response(np.array([f]))[0])
    assert sine_amplitude(y[mid], f, FS) == pytest.approx(expected, rel=0.02, abs=1e-3)


def test_filter_handles_tiny_and_empty_signals(frontend):
    assert frontend.filter_mv(np.array([]), FS).size == 0
    one = frontend.filter_mv(np.array([2.0]), FS)
    assert one.shape == (1,) and abs(one[0]) < 1e-12  # a single sample is all DC


def test_lowpass_only_board_keeps_dc():
    fe = AnalogFrontEnd(highpass_hz=0)
    y = fe.filter_mv(np.full(int(20 * FS), 1.0), FS)
    assert np.allclose(y, 1.0, atol=1e-6)


# --- the whole chain ------------------------------------------------------------------------------


def test_simulated_chain_on_real_ecg(frontend, demo_recording):
    mv = demo_recording.mv[: int(60 * FS)]
    counts = frontend.simulate_counts(mv, demo_recording.fs)
    assert counts.dtype == np.int16
    assert counts.min() >= 0 and counts.max() <= 255
    assert len(np.unique(counts)) > 40  # an ECG uses a good part of the 8-bit range
    back = frontend.simulate_mv(mv, demo_recording.fs)
    filtered = frontend.filter_mv(mv, demo_recording.fs)
    inside = (counts > 0) & (counts < 255)
    assert inside.mean() > 0.95
    assert np.abs(back[inside] - filtered[inside]).max() <= 0.5 * lsb_mv(frontend) * (1 + 1e-5)
