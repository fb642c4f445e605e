"""The real TFLite interpreter(s) on the real bundled model; bad models give clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import WAVEFORM_MODEL as BUNDLED_MODEL

from ecgd.analysis.model import ModelError, load_metadata, load_model
from ecgd.io.records import read_recording

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def window_mv() -> np.ndarray:
    rec = read_recording(REPO / "ecgd" / "demo" / "mitdb201_excerpt.hea")
    return rec.mv[:3600].astype(np.float32)


def test_bundled_model_loads_and_matches_its_metadata():
    model = load_model(BUNDLED_MODEL)
    meta = model.metadata
    assert model.window_samples == round(meta.sample_rate_hz * meta.window_seconds)
    assert set(meta.abnormal_labels) <= set(meta.labels)
    assert meta.input_units == "mV"


def test_prediction_is_a_probability_per_label(window_mv):
    model = load_model(BUNDLED_MODEL)
    probs = model.predict(window_mv)
    assert probs.shape == (len(model.labels),)
    assert np.all(probs >= 0) and abs(float(probs.sum()) - 1.0) < 1e-3
    # Deterministic: the same window gives the same answer.
    assert np.array_equal(probs, model.predict(window_mv))


@pytest.mark.parametrize("backend", ["ai_edge_litert", "tflite_runtime"])
def test_both_tflite_runtimes_give_the_same_answer(backend, window_mv):
    pytest.importorskip(f"{backend}.interpreter")
    reference = load_model(BUNDLED_MODEL, backend="ai_edge_litert").predict(window_mv)
    model = load_model(BUNDLED_MODEL, backend=backend)
    assert model.backend == backend
    probs = model.predict(window_mv)
    # Float models agree to rounding; int8 kernels of the two runtimes may round an output step apart.
    quant = model._out_q
    tolerance = 1e-5 if quant is None else 2.5 * quant[0]
    np.testing.assert_allclose(probs, reference, atol=tolerance)
    assert int(np.argmax(probs)) == int(np.argmax(reference))


def test_wrong_window_length_is_refused():
    model = load_model(BUNDLED_MODEL)
    with pytest.raises(ValueError, match="3600"):
        model.predict(np.zeros(1000, dtype=np.float32))


def _copy_model(tmp_path: Path, meta_changes: dict | None = None, data: bytes | None = None) -> Path:
    dst = tmp_path / "m.tflite"
    if data is None:
        shutil.copy(BUNDLED_MODEL, dst)
    else:
        dst.write_bytes(data)
    meta = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
    meta.update(meta_changes or {})
    dst.with_suffix(".json").write_text(json.dumps(meta))
    return dst


def test_garbage_file_is_not_a_model(tmp_path):
    path = _copy_model(tmp_path, data=b"this is not a flatbuffer at all" * 10)
    with pytest.raises(ModelError, match=r"m\.tflite: not a TFLite model"):
        load_model(path)


def test_truncated_model_is_refused_with_the_file_named(tmp_path):
    path = _copy_model(tmp_path, data=BUNDLED_MODEL.read_bytes()[:5000])
    with pytest.raises(ModelError, match=r"m\.tflite"):
        load_model(path)


def test_label_count_mismatch_names_both_values(tmp_path):
    path = _copy_model(tmp_path, {"labels": ["N", "V"], "abnormal_labels": ["V"]})
    with pytest.raises(ModelError, match=r"output tensor has 4 values but the metadata lists 2 labels"):
        load_model(path)


def test_window_mismatch_names_both_values(tmp_path):
    path = _copy_model(tmp_path, {"sample_rate_hz": 250})
    with pytest.raises(ModelError, match=r"input tensor holds 3600 samples .* 250 Hz × 10 s = 2500"):
        load_model(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_units": "ADC counts"}, "input_units"),
        ({"normalisation": "minmax"}, "normalisation"),
        ({"abnormal_labels": ["X"]}, r"\['X'\] are not in 'labels'"),
        ({"labels": "N,S"}, "'labels' must be list"),
    ],
)
def test_bad_metadata_is_refused(tmp_path, change, message):
    path = _copy_model(tmp_path, change)
    with pytest.raises(ModelError, match=message):
        load_model(path)


def test_missing_and_unparsable_metadata(tmp_path):
    path = tmp_path / "m.tflite"
    shutil.copy(BUNDLED_MODEL, path)
    with pytest.raises(ModelError, match="metadata file not found"):
        load_model(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_metadata(path.with_suffix(".json"))


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        load_model(tmp_path / "nope.tflite")
