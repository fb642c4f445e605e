"""``ecgd convert``: a trained Keras model or SavedModel → ``.tflite`` plus the metadata the daemon reads.

TensorFlow is imported only inside :func:`convert`, so the daemon (which has only the TFLite runtime) can
import this module, list the command and print a clear message when the ``[train]`` extra is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

EX_OK = 0
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
TRAIN_EXTRA_HINT = "TensorFlow is not installed: needs the [train] extra: pip install 'ecgd[train]'"

DEFAULT_METADATA: dict = {
    "name": "ecgd-rhythm-cnn",
    "version": "1.0.0",
    "sample_rate_hz": 360,
    "window_seconds": 10,
    "input_units": "mV",
    "normalisation": "none",
    "labels": ["N", "S", "V", "AF"],
    "abnormal_labels": ["S", "V", "AF"],
}
REQUIRED_KEYS = tuple(DEFAULT_METADATA)
NORMALISATIONS = ("none", "zscore", "center")


class ConvertError(Exception):
    """A conversion that cannot be done, with the reason a person can act on."""

    def __init__(self, message: str, exit_code: int = EX_DATAERR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def metadata_path_for(out: str | Path) -> Path:
    """Where the metadata of ``out`` lives: same directory, same stem, ``.json``."""
    return Path(out).with_suffix(".json")


def check_metadata(metadata: dict) -> None:
    """Reject metadata the daemon would refuse, before spending time on a conversion."""
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise ConvertError(f"metadata lacks {', '.join(missing)}")
    labels = list(metadata["labels"])
    if not labels or len(set(labels)) != len(labels):
        raise ConvertError(f"labels must be non-empty and distinct, got {labels}")
    extra = set(metadata["abnormal_labels"]) - set(labels)
    if extra:
        raise ConvertError(f"abnormal labels {sorted(extra)} are not among the labels {labels}")
    if metadata["normalisation"] not in NORMALISATIONS:
        raise ConvertError(
            f"normalisation must be one of {NORMALISATIONS}, got {metadata['normalisation']!r}"
        )
    if float(metadata["sample_rate_hz"]) <= 0 or float(metadata["window_seconds"]) <= 0:
        raise ConvertError("sample_rate_hz and window_seconds must be positive")


def window_samples(metadata: dict) -> int:
    return round(float(metadata["sample_rate_hz"]) * float(metadata["window_seconds"]))


def calibration_windows(
    records: list[str], metadata: dict, max_windows: int = 400, seed: int = 0
) -> Iterator[np.ndarray]:
    """Representative inputs for int8 calibration: windows of the records, raw and through the front end.

    Both versions are used because the daemon feeds either, and their ranges differ (the board's high-pass
    removes the electrode offset, the 8-bit ADC clips at about ±1.5 mV).
    """
    from ecgd.io.frontend import AnalogFrontEnd
    from ecgd.io.records import read_recording

    n = window_samples(metadata)
    fs = float(metadata["sample_rate_hz"])
    fe = AnalogFrontEnd()
    rng = np.random.default_rng(seed)
    windows: list[np.ndarray] = []
    for path in records:
        rec = read_recording(path)
        if abs(rec.fs - fs) > 1e-6:
            raise ConvertError(f"{path}: calibration record at {rec.fs} Hz, the model wants {fs} Hz")
        chains = (rec.mv, fe.simulate_mv(rec.mv, fs)) if metadata["input_units"] == "mV" else (rec.mv,)
        for sig in chains:
            starts = np.arange(0, sig.size - n + 1, n)
            windows += [np.asarray(sig[s : s + n], dtype=np.float32) for s in starts]
    if not windows:
        raise ConvertError("the calibration records hold no whole window")
    picks = rng.permutation(len(windows))[:max_windows]
    for i in picks:
        yield _normalise(windows[i], metadata["normalisation"])


def _normalise(x: np.ndarray, how: str) -> np.ndarray:
    if how == "zscore":
        return (x - x.mean()) / (x.std() + 1e-6)
    if how == "center":
        return x - x.mean()
    return x


def convert(
    src: str,
    out: str,
    int8: bool,
    calibration: list[str] | None,
    metadata: dict,
    *,
    max_calibration_windows: int = 400,
) -> None:
    """Convert ``src`` (``.keras``/``.h5`` file or SavedModel directory) to ``out`` and write its metadata.

    With ``int8`` the model is fully quantised (int8 input and output, scale/zero-point in the tensors), with
    ``calibration`` records as the representative dataset. The result is loaded back and its tensor shapes
    checked against the metadata, so a mismatch fails here and not on the bedside device.
    """
    check_metadata(metadata)
    if int8 and not calibration:
        raise ConvertError("--int8 needs --calibration records for the representative dataset")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ConvertError(TRAIN_EXTRA_HINT, EX_UNAVAILABLE) from exc
    src_path = Path(src)
    if not src_path.exists():
        raise ConvertError(f"{src}: no such model", EX_NOINPUT)
    n = window_samples(metadata)
    with tempfile.TemporaryDirectory(prefix="ecgd-convert-") as tmp:
        saved = src_path
        if src_path.is_file():
            import keras

            model = keras.models.load_model(src_path, compile=False)
            saved = Path(tmp) / "saved_model"
            model.export(str(saved), verbose=False)  # Keras 3: converting a SavedModel is the stable path
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        if int8:
            cal = list(calibration or [])

            def representative() -> Iterator[list[np.ndarray]]:
                for w in calibration_windows(cal, metadata, max_calibration_windows):
                    yield [w.reshape(1, n, 1)]

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        blob = converter.convert()
    _check_tensors(tf, blob, metadata)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(blob)
    metadata_path_for(out_path).write_text(json.dumps(metadata, indent=2) + "\n")


def _check_tensors(tf, blob: bytes, metadata: dict) -> None:
    try:  # LiteRT: what the daemon runs; tf.lite.Interpreter is deprecated
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    interp = Interpreter(model_content=blob)
    inp = interp.get_input_details()
    outp = interp.get_output_details()
    if len(inp) != 1 or len(outp) != 1:
        raise ConvertError(f"the model must have one input and one output, has {len(inp)} and {len(outp)}")
    n_in = int(np.prod(inp[0]["shape"]))
    if n_in != window_samples(metadata):
        raise ConvertError(
            f"input has {n_in} elements, metadata says {metadata['sample_rate_hz']} Hz x "
            f"{metadata['window_seconds']} s = {window_samples(metadata)}"
        )
    n_out = int(np.prod(outp[0]["shape"]))
    if n_out != len(metadata["labels"]):
        raise ConvertError(f"output has {n_out} elements for {len(metadata['labels'])} labels")


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ecgd convert`` (kept here so the CLI only wires the sub-command)."""
    d = DEFAULT_METADATA
    parser.add_argument("src", metavar="SAVED_MODEL_OR_KERAS_FILE", help="trained model to convert")
    parser.add_argument("out", metavar="OUT.tflite", help="output; the metadata goes beside it as OUT.json")
    parser.add_argument("--int8", action="store_true", help="full-integer quantisation (needs --calibration)")
    parser.add_argument(
        "--calibration",
        nargs="+",
        action="extend",
        metavar="RECORD",
        help="recordings (WFDB, CSV/.npy not supported here) for int8 calibration; comma lists allowed",
    )
    parser.add_argument("--labels", default=",".join(d["labels"]), help="comma-separated output labels")
    parser.add_argument("--abnormal", default=",".join(d["abnormal_labels"]), help="labels that are abnormal")
    parser.add_argument("--rate", type=float, default=d["sample_rate_hz"], help="sample rate in Hz")
    parser.add_argument("--window", type=float, default=d["window_seconds"], help="window length in seconds")
    parser.add_argument("--name", default=d["name"])
    parser.add_argument("--version", default=d["version"])
    parser.add_argument("--normalisation", choices=NORMALISATIONS, default=d["normalisation"])
    parser.add_argument(
        "--metadata", metavar="JSON", help="extra metadata (provenance, evaluation) merged into the output"
    )


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def run_convert(args: argparse.Namespace) -> int:
    """Entry point of ``ecgd convert``: returns a sysexits code (69 when TensorFlow is missing)."""
    metadata = dict(DEFAULT_METADATA)
    if args.metadata:
        try:
            metadata.update(json.loads(Path(args.metadata).read_text()))
        except (OSError, ValueError) as exc:
            print(f"ecgd convert: cannot read {args.metadata}: {exc}", file=sys.stderr)
            return EX_NOINPUT
    metadata.update(
        name=args.name,
        version=args.version,
        sample_rate_hz=_number(args.rate),
        window_seconds=_number(args.window),
        normalisation=args.normalisation,
        labels=[s.strip() for s in args.labels.split(",") if s.strip()],
        abnormal_labels=[s.strip() for s in args.abnormal.split(",") if s.strip()],
    )
    calibration = [p for item in (args.calibration or []) for p in item.split(",") if p]
    try:
        convert(args.src, args.out, args.int8, calibration or None, metadata)
    except ConvertError as exc:
        print(f"ecgd convert: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {args.out} and {metadata_path_for(args.out)}")
    return EX_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecgd convert", description=__doc__)
    add_convert_arguments(parser)
    return run_convert(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
