"""A TFLite model plus its metadata: loading, checking and running one window.

The interpreter comes from LiteRT (``ai_edge_litert``) when installed, else
``tflite_runtime``, else full TensorFlow (``tensorflow.lite``), imported only
here and only when a model is loaded. Everything a model needs to be used
correctly (rate, window length, units, normalisation, labels) lives in the
metadata file beside it, and is checked against the tensors at load time.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
NORMALISATIONS = ("none", "zscore", "center")
KINDS = ("waveform", "beats")  # samples in (the 1.x CNNs) or beat/RR features in (2.x)


class ModelError(Exception):
    """A model or metadata file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    version: str
    sample_rate_hz: float
    window_seconds: float
    input_units: str
    normalisation: str
    labels: tuple[str, ...]
    abnormal_labels: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)

    @property
    def window_samples(self) -> int:
        return round(self.sample_rate_hz * self.window_seconds)

    @property
    def ident(self) -> str:
        return f"{self.name}@{self.version}"


def load_metadata(path: Path) -> ModelMetadata:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: model metadata file not found (it must sit beside the model)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read model metadata: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: model metadata is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{path}: model metadata must be a JSON object")
    problems = []

    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        value = raw.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"'{key}' must be {getattr(kind, '__name__', 'a number')}, got {value!r}")
        return value

    name, version = need("name", str), need("version", str)
    rate, seconds = need("sample_rate_hz", (int, float)), need("window_seconds", (int, float))
    units, norm = need("input_units", str), need("normalisation", str)
    labels, abnormal = need("labels", list), need("abnormal_labels", list)
    if not problems:
        if units != "mV":
            problems.append(f"'input_units' must be 'mV' (what the daemon delivers), got {units!r}")
        if raw.get("kind", "waveform") not in KINDS:
            problems.append(f"'kind' must be one of {', '.join(KINDS)}, got {raw.get('kind')!r}")
        elif raw.get("kind") == "beats":
            pass  # each feature graph carries its own standardisation (ecgd.analysis.beat_model)
        elif norm not in NORMALISATIONS:
            problems.append(f"'normalisation' must be one of {', '.join(NORMALISATIONS)}, got {norm!r}")
        if rate <= 0 or seconds <= 0:
            problems.append(f"'sample_rate_hz' and 'window_seconds' must be positive, got {rate}, {seconds}")
        if len(labels) < 2 or len(set(labels)) != len(labels) or not all(isinstance(x, str) for x in labels):
            problems.append(f"'labels' must be at least two distinct strings, got {labels!r}")
        elif not set(abnormal) <= set(labels):
            problems.append(f"'abnormal_labels' {sorted(set(abnormal) - set(labels))} are not in 'labels'")
    if problems:
        raise ModelError(f"{path}: invalid model metadata: " + "; ".join(problems))
    return ModelMetadata(
        name,
        version,
        float(rate),
        float(seconds),
        units,
        norm,
        tuple(labels),
        tuple(abnormal),
        raw.get("provenance", {}),
        raw.get("evaluation", {}),
    )


# What the TFLite runtimes print to fd 2 on every start, though nothing is wrong.
NATIVE_NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


@contextlib.contextmanager
def _native_stderr_without(noise: tuple[str, ...]) -> Iterator[None]:
    """Run native code with fd 2 captured, then pass on every line but the known ``noise``.

    The interpreter's C++ logging writes to fd 2 directly (``sys.stderr`` cannot catch it); stderr is
    for what the user needs to know, and an error the runtime prints must still reach them.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and line.strip() not in noise]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def interpreter_class(prefer: str | None = None) -> tuple[type, str]:
    """The first available TFLite interpreter (or the one named by ``prefer``)."""
    for backend in (prefer,) if prefer else BACKENDS:
        try:
            if backend == "ai_edge_litert":
                from ai_edge_litert.interpreter import Interpreter
            elif backend == "tflite_runtime":
                from tflite_runtime.interpreter import Interpreter
            elif backend == "tensorflow":
                import tensorflow as tf

                Interpreter = tf.lite.Interpreter
            else:
                raise ModelError(f"unknown TFLite backend {backend!r}; choose from {', '.join(BACKENDS)}")
        except ImportError:
            continue
        return Interpreter, backend
    raise ModelError("no TFLite interpreter installed: pip install ai-edge-litert (or tflite-runtime)")


def open_interpreter(path: Path, cls: type, num_threads: int = 1) -> Any:
    """A TFLite interpreter on ``path`` with its tensors allocated; ``ModelError`` naming the file and
    the problem when it cannot be read, is not a TFLite file, or the runtime refuses it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model: {exc.strerror}") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path}: not a TFLite model (no 'TFL3' identifier; {len(data)} bytes)")
    try:
        with _native_stderr_without(NATIVE_NOISE):
            interp = cls(model_content=data, num_threads=num_threads)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: the TFLite interpreter refused the model: {exc}") from None
    return interp


class MetadataFacts:
    """What every kind of model says of itself, from its metadata (the classifier reads these)."""

    metadata: ModelMetadata

    @property
    def labels(self) -> tuple[str, ...]:
        return self.metadata.labels

    @property
    def sample_rate_hz(self) -> float:
        return self.metadata.sample_rate_hz

    @property
    def window_samples(self) -> int:
        return self.metadata.window_samples


class Model(MetadataFacts):
    """One loaded model; ``predict`` takes a window in mV at the model's rate."""

    def __init__(
        self, path: Path, metadata: ModelMetadata, backend: str | None = None, num_threads: int = 1
    ) -> None:
        self.path = path
        self.metadata = metadata
        cls, self.backend = interpreter_class(backend)
        self._interp = open_interpreter(path, cls, num_threads)
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                f"{path}: expected one input and one output tensor, got {len(inputs)} and {len(outputs)}"
            )
        self._in, self._out = inputs[0], outputs[0]
        n_in, n_out = int(np.prod(self._in["shape"])), int(np.prod(self._out["shape"]))
        problems = []
        if n_in != metadata.window_samples:
            problems.append(
                f"input tensor holds {n_in} samples but the metadata says "
                f"{metadata.sample_rate_hz:g} Hz × {metadata.window_seconds:g} s = "
                f"{metadata.window_samples}"
            )
        if n_out != len(metadata.labels):
            problems.append(
                f"output tensor has {n_out} values but the metadata lists "
                f"{len(metadata.labels)} labels {list(metadata.labels)}"
            )
        for what, d in (("input", self._in), ("output", self._out)):
            if d["dtype"] not in (np.float32, np.int8, np.uint8):
                problems.append(f"{what} dtype {np.dtype(d['dtype']).name} is not float32, int8 or uint8")
        if problems:
            raise ModelError(f"{path}: model does not match its metadata: " + "; ".join(problems))
        self._in_q = self._quant(self._in)
        self._out_q = self._quant(self._out)
        self._buffer = np.zeros(self._in["shape"], dtype=self._in["dtype"])

    @staticmethod
    def _quant(d: dict[str, Any]) -> tuple[float, int] | None:
        if d["dtype"] == np.float32:
            return None
        scale, zero = d["quantization"]
        return (float(scale) or 1.0, int(zero))

    @property
    def input_dtype(self) -> str:
        return np.dtype(self._in["dtype"]).name

    def predict(self, window_mv: np.ndarray) -> np.ndarray:
        """Probabilities per label for one window (mV, model rate, no missing samples)."""
        x = np.asarray(window_mv, dtype=np.float32)
        if x.size != self.window_samples:
            raise ValueError(f"window has {x.size} samples, the model takes {self.window_samples}")
        norm = self.metadata.normalisation
        if norm != "none":
            x = x - x.mean()
            if norm == "zscore":
                x = x / max(float(x.std()), 1e-6)
        if self._in_q is None:
            self._buffer.reshape(-1)[:] = x
        else:
            scale, zero = self._in_q
            info = np.iinfo(self._buffer.dtype)
            self._buffer.reshape(-1)[:] = np.clip(np.round(x / scale) + zero, info.min, info.max)
        self._interp.set_tensor(self._in["index"], self._buffer)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out["index"]).reshape(-1)
        if self._out_q is not None:
            scale, zero = self._out_q
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def timed_predict(self, window_mv: np.ndarray) -> tuple[np.ndarray, float]:
        t = time.perf_counter()
        probs = self.predict(window_mv)
        return probs, (time.perf_counter() - t) * 1000.0


def load_model(
    tflite_path: str | Path, metadata_path: str | Path | None = None, backend: str | None = None
) -> Any:
    """Load and check a model; the metadata defaults to the model path with ``.json``.

    A waveform model gives a :class:`Model`; a ``"kind": "beats"`` bundle a
    :class:`ecgd.analysis.beat_model.BeatRhythmModel` (same ``metadata``/``labels``/``backend``).
    """
    path = Path(tflite_path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    meta_path = Path(metadata_path) if metadata_path else path.with_suffix(".json")
    meta = load_metadata(meta_path)
    if _kind(meta_path) == "beats":
        from ecgd.analysis.beat_model import load_beat_model

        return load_beat_model(path, meta_path, meta, backend)
    return Model(path, meta, backend)


def _kind(meta_path: Path) -> str:
    return str(json.loads(meta_path.read_text()).get("kind", "waveform"))
