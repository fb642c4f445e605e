"""Score a ``.tflite`` model through the daemon's own inference path, EC57 style, per record and gross.

Windows come from :func:`ecgd.offline.classify_recording` (non-overlapping 10 s windows from sample 0, the
signal-quality gate, the model's metadata) so the figures are what ``ecgd classify`` and the monitor would
report. A window the gate calls ``unreadable`` is a miss for its true class and a false positive for none.
Needs no TensorFlow: runs in the daemon's venv as well.

    python -m training.evaluate ecgd/models/default.tflite --data /work/shared/data --frontend pcf8591
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from training.labels import LABELS, label_for_window

UNREADABLE = "unreadable"


def classify_records(
    model_path: str | Path,
    data_dir: str | Path,
    records: Sequence[str],
    frontend: bool,
    hop_seconds: float = 10.0,
    backend: str | None = None,
) -> list[dict]:
    """One row per scored window: record, start, truth, prediction, probabilities (daemon path)."""
    from ecgd.analysis.model import load_model
    from ecgd.io.frontend import AnalogFrontEnd
    from ecgd.io.records import read_recording
    from ecgd.offline import classify_recording
    from training.data import mlii_channel
    from training.labels import read_annotations

    model = load_model(model_path, backend=backend)
    fe = AnalogFrontEnd() if frontend else None
    rows = []
    for name in records:
        path = Path(data_dir) / "mitdb" / name
        rec = read_recording(path, channel=mlii_channel(path))
        ann = read_annotations(path)
        for w in classify_recording(rec, model, hop_seconds, fe):
            truth = label_for_window(ann, w["start"], w["end"])
            if truth is None:
                continue
            rows.append(
                {
                    "record": name,
                    "start": int(w["start"]),
                    "truth": truth,
                    "pred": w["label"],
                    "probs": [float(w["probabilities"][k]) for k in LABELS] if w["probabilities"] else None,
                }
            )
    return rows


def reweight(rows: Iterable[dict], log_weights: Sequence[float] | None) -> list[dict]:
    """Predictions after multiplying the probabilities by exp(log_weights) (what a prior shift does)."""
    out = []
    w = np.exp(np.asarray(log_weights if log_weights is not None else np.zeros(len(LABELS))))
    for r in rows:
        r = dict(r)
        if r["probs"] is not None:
            r["pred"] = LABELS[int(np.argmax(np.maximum(np.asarray(r["probs"]), 1e-5) * w))]
        out.append(r)
    return out


def confusion(rows: Iterable[dict]) -> np.ndarray:
    """Counts [true label, predicted label or unreadable] (rows: LABELS; columns: LABELS + unreadable)."""
    cols = [*LABELS, UNREADABLE]
    m = np.zeros((len(LABELS), len(cols)), dtype=np.int64)
    for r in rows:
        pred = r["pred"] if r["pred"] in cols else UNREADABLE
        m[LABELS.index(r["truth"]), cols.index(pred)] += 1
    return m


def metrics_from_confusion(m: np.ndarray) -> dict:
    """Sensitivity (Se), positive predictivity (+P) and F1 per class; macro-F1 over the four classes."""
    per_class = {}
    f1s = []
    for i, lab in enumerate(LABELS):
        tp = int(m[i, i])
        fn = int(m[i].sum() - tp)
        fp = int(m[:, i].sum() - tp)
        se = tp / (tp + fn) if tp + fn else None
        ppv = tp / (tp + fp) if tp + fp else None
        f1 = 2 * tp / (2 * tp + fn + fp) if tp + fn + fp else None
        per_class[lab] = {"se": se, "ppv": ppv, "f1": f1, "tp": tp, "fn": fn, "fp": fp, "n": tp + fn}
        f1s.append(f1 or 0.0)
    total = int(m.sum())
    return {
        "per_class": per_class,
        "macro_f1": float(np.mean(f1s)),
        "accuracy": float(np.trace(m[:, : len(LABELS)]) / total) if total else None,
        "unreadable": int(m[:, -1].sum()),
        "windows": total,
        "confusion": m.tolist(),
        "confusion_columns": [*LABELS, UNREADABLE],
    }


def summarise(rows: list[dict]) -> dict:
    """Gross metrics plus the same per record."""
    out = metrics_from_confusion(confusion(rows))
    out["per_record"] = {
        rec: metrics_from_confusion(confusion([r for r in rows if r["record"] == rec]))
        for rec in sorted({r["record"] for r in rows})
    }
    for v in out["per_record"].values():
        v.pop("confusion_columns")
    return out


def format_table(metrics: dict, title: str = "") -> str:
    """A markdown table of Se/+P per class, for logs and the README."""
    lines = [title] if title else []
    lines += ["| class | windows | Se % | +P % | F1 |", "|---|---:|---:|---:|---:|"]
    for lab, c in metrics["per_class"].items():
        lines.append(f"| {lab} | {c['n']} | {_pct(c['se'])} | {_pct(c['ppv'])} | {_num(c['f1'])} |")
    lines.append(
        f"macro-F1 {metrics['macro_f1']:.3f}, accuracy {_pct(metrics['accuracy'])} %, "
        f"unreadable {metrics['unreadable']} of {metrics['windows']} windows"
    )
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def time_inference(model_path: str | Path, n: int = 200, seed: int = 0, backend: str | None = None) -> dict:
    """Milliseconds per window through ``Model.timed_predict`` (one interpreter thread, like the daemon)."""
    from ecgd.analysis.model import load_model

    model = load_model(model_path, backend=backend)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, model.window_samples).astype(np.float32)
    for _ in range(10):
        model.predict(x)
    ms = np.array([model.timed_predict(x)[1] for _ in range(n)])
    return {
        "backend": model.backend,
        "windows": n,
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
    }


def main(argv: list[str] | None = None) -> int:
    from training.data import DS1

    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help=".tflite with its .json beside it")
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--records", default=",".join(DS1), help="comma-separated record names (default DS1)")
    p.add_argument("--frontend", choices=("none", "pcf8591"), default="pcf8591")
    p.add_argument("--backend", choices=("ai_edge_litert", "tflite_runtime", "tensorflow"))
    p.add_argument("--out", help="write metrics JSON here")
    args = p.parse_args(argv)
    rows = classify_records(
        args.model, args.data, args.records.split(","), args.frontend == "pcf8591", backend=args.backend
    )
    m = summarise(rows)
    m["timing"] = time_inference(args.model, backend=args.backend)
    print(format_table(m, f"{args.model} on {args.records} (front end: {args.frontend})"))
    print(f"inference: median {m['timing']['median_ms']:.2f} ms per window ({m['timing']['backend']})")
    if args.out:
        Path(args.out).write_text(json.dumps(m, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
