"""The shipped model bundle and its metadata agree with each other and with the daemon's contract.

Uses the TFLite interpreter directly (tflite-runtime, else LiteRT), so it runs in the daemon's venv and does
not depend on ``ecgd.analysis.model``: a broken model file is caught here even if the loader changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecgd.analysis.beat_features import BEAT_FEATURES
from ecgd.analysis.rhythm import RR_FEATURES

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "ecgd" / "models" / "default.tflite"
METADATA = MODEL.with_suffix(".json")
REQUIRED = ("name", "version", "kind", "sample_rate_hz", "window_seconds", "input_units", "labels")


def _interpreter_class() -> type:
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        Interpreter = pytest.importorskip(
            "ai_edge_litert.interpreter", reason="needs tflite-runtime or ai-edge-litert"
        ).Interpreter
    return Interpreter


@pytest.fixture(scope="module")
def metadata() -> dict:
    return json.loads(METADATA.read_text())


def _graph(metadata: dict, key: str):
    interp = _interpreter_class()(model_path=str(MODEL.parent / metadata[key]["file"]))
    interp.allocate_tensors()
    return interp


def _run(interp, *xs: np.ndarray) -> np.ndarray:
    """Each array to the graph input of its rank (features [batch, n]; a waveform [batch, samples, 2])."""
    inputs, out = interp.get_input_details(), interp.get_output_details()[0]
    assert sorted(len(i["shape"]) for i in inputs) == sorted(x.ndim for x in xs)
    for x in xs:
        (inp,) = [i for i in inputs if len(i["shape"]) == x.ndim]
        interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    for x in xs:
        (inp,) = [i for i in inputs if len(i["shape"]) == x.ndim]
        interp.set_tensor(inp["index"], x.astype(np.float32))
    interp.invoke()
    return interp.get_tensor(out["index"])


def test_metadata_fields(metadata: dict) -> None:
    for key in (*REQUIRED, "abnormal_labels", "provenance", "evaluation", "beat_model", "af_model"):
        assert key in metadata, key
    assert metadata["kind"] == "beats" and metadata["input_units"] == "mV"
    assert metadata["labels"] == ["N", "S", "V", "AF"]
    assert set(metadata["abnormal_labels"]) == {"S", "V", "AF"}
    assert metadata["beat_model"]["features"] == list(BEAT_FEATURES)
    assert metadata["af_model"]["features"] == list(RR_FEATURES)
    for key, n in (("beat_model", len(BEAT_FEATURES)), ("af_model", len(RR_FEATURES))):
        assert len(metadata[key]["mean"]) == n and all(s > 0 for s in metadata[key]["std"])
    assert 0 < metadata["af_threshold"] < 1
    assert all(0 < metadata["beat_thresholds"][k] < 1 for k in ("S", "V"))
    for source in ("ODC-By", "Supraventricular", "Long-Term AF"):
        assert source in metadata["provenance"]["training_data"]


def test_graphs_match_metadata_and_give_probabilities(metadata: dict) -> None:
    rng = np.random.default_rng(0)
    beat = _graph(metadata, "beat_model")
    wave = metadata["beat_model"].get("waveform")  # a second input: each beat's waveform
    extra = [rng.normal(0, 1, (20, wave["samples"], wave["channels"]))] if wave else []
    p = _run(beat, rng.normal(0, 1, (20, len(BEAT_FEATURES))), *extra)
    assert p.shape == (20, 3) and np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0, atol=1e-3)
    af = _graph(metadata, "af_model")
    q = _run(af, rng.normal(0, 1, (5, len(RR_FEATURES))))
    assert q.shape == (5, 1) and np.all((q >= 0) & (q <= 1))


def test_size_budget(metadata: dict) -> None:
    """All models together ≤ 500 kB (the timing budget is measured by bench/beat_bench.py)."""
    files = {metadata["beat_model"]["file"], metadata["af_model"]["file"]}
    total = sum((MODEL.parent / f).stat().st_size for f in files)
    assert total <= 500_000
    assert metadata["evaluation"]["model_bytes"] == total


def test_evaluation_is_the_patient_wise_cross_validation(metadata: dict) -> None:
    ev = metadata["evaluation"]
    assert ev["patients"] == 80 and "patient-wise" in ev["protocol"]
    assert set(ev["per_class"]) == {"N", "S", "V", "AF"}
    assert ev["patients_over_20pct"] <= ev["patients_over_10pct"] <= ev["patients"]
    assert {"VEB", "SVEB"} <= set(ev["beats_reference"])
    assert ev["af_ltafdb"]["af_windows"] > 10_000
