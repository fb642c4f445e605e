"""The shipped model and its metadata agree with each other and with the daemon's contract.

Uses the TFLite interpreter directly (tflite-runtime, else LiteRT), so it runs in the daemon's venv and does
not depend on ``ecgd.analysis.model``: a broken model file is caught here even if the loader changes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "ecgd" / "models" / "default.tflite"
METADATA = MODEL.with_suffix(".json")
DATA = Path(os.environ.get("ECGD_SHARED_DATA", REPO.parent / "shared" / "data")) / "mitdb"
REQUIRED = ("name", "version", "sample_rate_hz", "window_seconds", "input_units", "normalisation", "labels")


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


@pytest.fixture(scope="module")
def interpreter():
    interp = _interpreter_class()(model_path=str(MODEL))
    interp.allocate_tensors()
    return interp


def _predict(interp, window_mv: np.ndarray) -> np.ndarray:
    """One window through the interpreter, quantising as the daemon does for integer tensors."""
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x = window_mv.astype(np.float32)
    if inp["dtype"] != np.float32:
        scale, zero = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        x = np.clip(np.round(x / scale) + zero, info.min, info.max)
    interp.set_tensor(inp["index"], x.astype(inp["dtype"]).reshape(inp["shape"]))
    interp.invoke()
    y = interp.get_tensor(out["index"]).reshape(-1)
    if out["dtype"] != np.float32:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)


def test_metadata_fields(metadata: dict) -> None:
    for key in (*REQUIRED, "abnormal_labels", "provenance", "evaluation"):
        assert key in metadata, key
    assert metadata["input_units"] == "mV"
    assert metadata["normalisation"] in ("none", "zscore", "center")
    assert metadata["labels"] == ["N", "S", "V", "AF"]
    assert set(metadata["abnormal_labels"]) <= set(metadata["labels"])
    assert "N" not in metadata["abnormal_labels"]
    assert "ODC-By" in metadata["provenance"]["training_data"]


def test_tensors_match_metadata(metadata: dict, interpreter) -> None:
    inp = interpreter.get_input_details()
    out = interpreter.get_output_details()
    assert len(inp) == 1 and len(out) == 1
    assert int(np.prod(inp[0]["shape"])) == round(metadata["sample_rate_hz"] * metadata["window_seconds"])
    assert int(np.prod(out[0]["shape"])) == len(metadata["labels"])
    assert inp[0]["dtype"] in (np.float32, np.int8, np.uint8)
    assert out[0]["dtype"] in (np.float32, np.int8, np.uint8)


def test_size_and_speed_budget(metadata: dict, interpreter) -> None:
    """≤ 500 kB on disk; inference far below the 10 s hop (the 20 ms budget is measured in the bench)."""
    assert MODEL.stat().st_size <= 500_000
    n = round(metadata["sample_rate_hz"] * metadata["window_seconds"])
    x = np.random.default_rng(0).normal(0.0, 0.2, n)
    _predict(interpreter, x)
    t = time.perf_counter()
    for _ in range(5):
        _predict(interpreter, x)
    assert (time.perf_counter() - t) / 5 < 0.2  # generous: shared machines stall; see training/README.md


def test_outputs_are_probabilities(metadata: dict, interpreter) -> None:
    n = round(metadata["sample_rate_hz"] * metadata["window_seconds"])
    rng = np.random.default_rng(1)
    for x in (np.zeros(n), rng.normal(0.0, 0.5, n), np.full(n, 3.0)):
        p = _predict(interpreter, x)
        assert p.shape == (len(metadata["labels"]),)
        assert np.all(np.isfinite(p)) and np.all(p >= -1e-6)
        assert abs(float(p.sum()) - 1.0) < 0.02


@pytest.mark.skipif(not (DATA / "203.hea").exists(), reason="MIT-BIH data not available")
@pytest.mark.parametrize(
    ("record", "start", "expected"), [("203", 72000, "AF"), ("115", 0, "N"), ("119", 0, "V")]
)
def test_obvious_training_windows(
    metadata: dict, interpreter, record: str, start: int, expected: str
) -> None:
    """Smoke test on windows the model was trained on (not an evaluation: see the metadata for that)."""
    from ecgd.io.records import read_recording

    n = round(metadata["sample_rate_hz"] * metadata["window_seconds"])
    mv = read_recording(DATA / record).mv[start : start + n]
    p = _predict(interpreter, mv)
    assert metadata["labels"][int(np.argmax(p))] == expected
