"""One window → one classification: missing-sample rules, the quality gate, resampling."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import WAVEFORM_MODEL as BUNDLED_MODEL

from ecgd.analysis.classifier import UNCLASSIFIED, UNREADABLE, WindowClassifier
from ecgd.analysis.model import load_model
from ecgd.analysis.quality import QualitySettings, adc_rails_mv
from ecgd.io.frontend import AnalogFrontEnd


@pytest.fixture(scope="module")
def model():
    return load_model(BUNDLED_MODEL)


@pytest.fixture
def window(demo_recording) -> np.ndarray:
    fe = AnalogFrontEnd()
    return fe.simulate_mv(demo_recording.mv[:7200], 360.0)[3600:].astype(np.float32)


def classifier(model, rate=360.0, **kw) -> WindowClassifier:
    kw.setdefault("max_missing_fraction", 0.02)
    kw.setdefault("max_gap_seconds", 0.05)
    return WindowClassifier(model, rate, QualitySettings(), adc_rails_mv(AnalogFrontEnd()), **kw)


def test_complete_window_is_classified_by_the_model(model, window):
    c = classifier(model).classify(window, np.ones(window.size, bool))
    assert c.label in model.labels and c.missing == 0 and c.reason is None
    assert c.probabilities[c.label] == pytest.approx(c.confidence, abs=1e-3)
    assert c.inference_ms > 0


def test_scattered_missing_samples_are_interpolated_and_counted(model, window):
    valid = np.ones(window.size, bool)
    valid[np.arange(10, window.size, 100)] = False  # 36 isolated missing samples (1 %)
    damaged = window.copy()
    damaged[~valid] = 99.0  # whatever the ring holds there must not reach the model
    c = classifier(model).classify(damaged, valid)
    reference = classifier(model).classify(window, np.ones(window.size, bool))
    assert c.missing == 36 and c.label == reference.label
    assert c.confidence == pytest.approx(reference.confidence, abs=0.05)


def test_a_gap_longer_than_the_tolerance_is_not_classified(model, window):
    valid = np.ones(window.size, bool)
    valid[1000:1020] = False  # 20 samples = 56 ms in one gap
    c = classifier(model).classify(window, valid)
    assert c.label == UNCLASSIFIED and c.probabilities is None
    assert c.reason == "20 of 3600 samples missing, 56 ms in one gap (tolerance 50 ms)"


def test_too_many_missing_samples_are_not_classified(model, window):
    valid = np.ones(window.size, bool)
    valid[::40] = False  # 90 scattered = 2.5 %
    c = classifier(model).classify(window, valid)
    assert c.label == UNCLASSIFIED and c.reason == "90 of 3600 samples missing (tolerance 72)"


def test_no_samples_at_all(model, window):
    c = classifier(model).classify(window, np.zeros(window.size, bool))
    assert c.label == UNCLASSIFIED and "all 3600 samples missing" in c.reason


def test_unreadable_window_never_reaches_the_model(model):
    flat = np.full(3600, 0.1, dtype=np.float32)
    calls = []
    c = classifier(model)
    real = model.predict
    model.predict = lambda x: calls.append(1) or real(x)
    try:
        result = c.classify(flat, np.ones(3600, bool))
    finally:
        del model.predict
    assert result.label == UNREADABLE and result.reason.startswith("flat line")
    assert calls == []


def test_another_sampling_rate_is_resampled_to_the_model_rate(model, demo_recording):
    fe = AnalogFrontEnd()
    mv360 = fe.simulate_mv(demo_recording.mv[:7200], 360.0)[3600:]
    t = np.arange(2500) / 250.0
    mv250 = np.interp(t, np.arange(3600) / 360.0, mv360).astype(np.float32)
    at360 = classifier(model).classify(mv360.astype(np.float32))
    at250 = classifier(model, rate=250.0).classify(mv250)
    assert at250.label == at360.label
    assert at250.confidence == pytest.approx(at360.confidence, abs=0.1)
