"""Score a beat-aware bundle through the daemon's path: windows, beats (EC57 style) and per-patient error.

    .venv/bin/python -m training.beat_eval ecgd/models/default.tflite --records mitdb/119,svdb/800
    .venv/bin/python -m training.beat_eval --cv runs/b1 --beats detector --out runs/b1/cv_stream.json
    .venv/bin/python -m training.beat_eval --rows runs/b3/cv_rows.json --beats detector   # no scoring
    .venv/bin/python -m training.beat_eval --cv runs/b14 --beats detector --af-threshold 0.7  # another one

Windows come from :func:`ecgd.offline.classify_recording` (non-overlapping 10-s windows from sample 0,
the signal-quality gate on, one :class:`~ecgd.analysis.classifier.WindowClassifier` per record, so the
patient's template is learned as the daemon learns it), with the 8-bit front end. Beats come from the
reference annotations (``--beats reference``, judged window by window) or from the beat stage
(``--beats detector``: what ``ecgd classify`` and the daemon do, the streaming QRS detector with every
beat labelled once as it comes and each window judged from its labelled beats). ``--cv RUN`` scores a
``training.train_beats`` run's fold bundles, each on its own held-out patients (patient-wise CV).
Needs no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from training.evaluate import confusion, metrics_from_confusion
from training.labels import LABELS, label_for_window

MATCH_S = 0.15  # a detected beat within this of a reference beat is that beat (EC57)
PATIENT_WRONG = 0.20  # the per-patient target: no patient with more than this of its windows wrong
BEAT_CLASSES = ("N", "S", "V")
ANCHORS = {
    "de Chazal 2004": {"VEB": (77.7, 81.9), "SVEB": (75.9, 38.5)},
    "Zhang 2014": {"VEB": (85.5, 92.7), "SVEB": (79.1, 36.0)},
}


def score_records(
    model_path: str | Path,
    data_dir: str | Path,
    rids: Sequence[str],
    beats: str = "reference",
    af_threshold: float | None = None,
) -> tuple[list[dict], list[dict]]:
    """Window rows and per-record beat confusion rows for ``rids`` through the daemon's path, with the
    relearn settings the bundle was trained with (its metadata's ``relearn``; the defaults if absent);
    ``af_threshold`` in place of the bundle's (how another AF threshold would have scored)."""
    import dataclasses

    from ecgd.analysis.model import load_model
    from ecgd.io.frontend import AnalogFrontEnd
    from ecgd.io.records import Recording
    from ecgd.offline import classify_recording
    from training.beat_data import FS, beat_class, load_signal_record

    model = load_model(model_path)
    if af_threshold is not None:
        model.metadata = dataclasses.replace(model.metadata, af_threshold=af_threshold)
    relearn = getattr(model.metadata, "trained_relearn", None)
    windows, beat_rows = [], []
    for rid in rids:
        rec = load_signal_record(data_dir, rid)
        ann = rec.ann
        ref = ann.beat_samples if beats == "reference" else None
        recording = Recording(rec.mv, FS, rid, "ECG")
        found_seq, found_lab = [], []
        frontend = AnalogFrontEnd()
        for w in classify_recording(recording, model, 10.0, frontend, beat_positions=ref, relearn=relearn):
            if w.get("beat_seq") is not None:
                found_seq.append(np.asarray(w["beat_seq"], dtype=np.int64))
                found_lab.append(np.asarray(list(w["beat_labels"])))
            truth = label_for_window(ann, w["start"], w["end"])
            if truth is None:
                continue
            windows.append(
                {
                    "record": rid,
                    "start": int(w["start"]),
                    "truth": truth,
                    "pred": w["label"],
                    "learning": w.get("learning"),
                }
            )
        seq = np.concatenate(found_seq) if found_seq else np.zeros(0, dtype=np.int64)
        lab = np.concatenate(found_lab) if found_lab else np.zeros(0, dtype="<U1")
        ref_cls = beat_class(ann.beat_symbols)
        beat_rows.append({"record": rid, **beat_confusion(ann.beat_samples, ref_cls, seq, lab, FS)})
    return windows, beat_rows


def beat_confusion(
    ref_seq: np.ndarray, ref_cls: np.ndarray, seq: np.ndarray, labels: np.ndarray, fs: float
) -> dict:
    """Matched beats [reference N/S/V/other][output N/S/V/Q/missed] plus unmatched outputs per label."""
    m = np.zeros((4, 5), dtype=np.int64)  # rows N S V other; cols N S V Q missed
    extra = np.zeros(4, dtype=np.int64)  # outputs matching no reference beat: N S V Q
    cols = {"N": 0, "S": 1, "V": 2, "Q": 3}
    tol = round(MATCH_S * fs)
    used = np.zeros(ref_seq.size, dtype=bool)
    out_ref = np.full(seq.size, -1)
    if ref_seq.size and seq.size:
        j = np.clip(np.searchsorted(ref_seq, seq), 1, ref_seq.size - 1)
        near = np.where(np.abs(ref_seq[j - 1] - seq) <= np.abs(ref_seq[j] - seq), j - 1, j)
        ok = np.abs(ref_seq[near] - seq) <= tol
        for i in np.flatnonzero(ok):  # one output per reference beat
            if not used[near[i]]:
                used[near[i]] = True
                out_ref[i] = near[i]
    for i, r in enumerate(out_ref):
        c = cols.get(str(labels[i]), 3)
        if r < 0:
            extra[c] += 1
        else:
            row = int(ref_cls[r]) if ref_cls[r] >= 0 else 3
            m[row, c] += 1
    for r in np.flatnonzero(~used):
        m[int(ref_cls[r]) if ref_cls[r] >= 0 else 3, 4] += 1
    return {"matched": m.tolist(), "unmatched": extra.tolist()}


def beat_metrics(rows: Iterable[dict]) -> dict:
    """EC57-style gross VEB and SVEB Se / +P (and N), over the summed confusion of all records.

    Se = reference beats of the class labelled as it / all reference beats of the class (missed ones
    count against); +P = outputs of the class that are that class / all outputs of the class, unmatched
    detections included (reference beats outside N/S/V, e.g. fusion or paced, are not counted).
    """
    m = np.zeros((4, 5), dtype=np.int64)
    extra = np.zeros(4, dtype=np.int64)
    for r in rows:
        m += np.asarray(r["matched"])
        extra += np.asarray(r["unmatched"])
    out = {"confusion": m.tolist(), "unmatched": extra.tolist()}
    for name, c in (("N", 0), ("SVEB", 1), ("VEB", 2)):
        tp = int(m[c, c])
        se_den = int(m[c].sum())
        ppv_den = int(m[:3, c].sum() + extra[c])
        out[name] = {
            "se": tp / se_den if se_den else None,
            "ppv": tp / ppv_den if ppv_den else None,
            "n": se_den,
            "tp": tp,
        }
    return out


def beat_error_patients(rows: Iterable[dict], n: int = 6) -> str:
    """Where the gross VEB and SVEB figures lose: the ``n`` patients with the most false and the most
    missed beats of each class, with what they were taken for. Why: a gross figure over 80 patients is
    often a few patients' story (one patient's supraventricular tachycardia called V), which decides
    whether a change to the model or to a rule is the one to try."""
    per = [(r["record"], np.asarray(r["matched"]), np.asarray(r["unmatched"])) for r in rows]
    lines = []
    for name, c in (("VEB", 2), ("SVEB", 1)):
        others = [k for k in range(3) if k != c]
        false = [
            (
                int(m[others, c].sum() + extra[c]),
                rid,
                [*((BEAT_CLASSES[o], m[o, c]) for o in others), ("no reference beat", extra[c])],
            )
            for rid, m, extra in per
        ]
        labelled_as = [(f"as {lab}", k) for k, lab in enumerate((*BEAT_CLASSES, "Q")) if k != c]
        missed = [
            (
                int(m[c].sum() - m[c, c]),
                rid,
                [*((lab, m[c, k]) for lab, k in labelled_as), ("not detected", m[c, 4])],
            )
            for rid, m, _ in per
        ]
        lines += [_patients_line(f"false {name}", false, n), _patients_line(f"missed {name}", missed, n)]
    return "\n".join(lines)


def _patients_line(what: str, counted: list[tuple[int, str, list]], n: int) -> str:
    """``what`` and its total, then the ``n`` patients with the most, each with its non-zero parts."""
    top = [
        f"{rid} {k} (" + ", ".join(f"{part} {int(v)}" for part, v in parts if v) + ")"
        for k, rid, parts in sorted(counted, key=lambda x: -x[0])[:n]
        if k
    ]
    return f"{what} {sum(k for k, _, _ in counted)}" + (": " + "; ".join(top) if top else "")


def window_metrics(rows: list[dict]) -> dict:
    """Window Se / +P per class, macro-F1, and the per-patient error distribution."""
    out = metrics_from_confusion(confusion(rows))
    per = {}
    for rid in sorted({r["record"] for r in rows}):
        rr = [r for r in rows if r["record"] == rid]
        wrong = sum(r["pred"] != r["truth"] for r in rr)
        per[rid] = {"windows": len(rr), "wrong": wrong, "error": wrong / len(rr)}
    err = np.array([v["error"] for v in per.values()])
    out["per_patient"] = per
    out["patients"] = len(per)
    out["patients_over_10pct"] = int(np.sum(err > 0.10))
    out["patients_over_20pct"] = int(np.sum(err > PATIENT_WRONG))
    return out


def af_metrics(y: np.ndarray, p: np.ndarray, ok: np.ndarray, threshold: float) -> dict:
    """AF per window: Se and Sp (windows with too few beats are called not-AF)."""
    pred = ok & (p >= threshold)
    y = y.astype(bool)
    tp, fn = int(np.sum(pred & y)), int(np.sum(~pred & y))
    tn, fp = int(np.sum(~pred & ~y)), int(np.sum(pred & ~y))
    return {
        "se": tp / max(tp + fn, 1),
        "sp": tn / max(tn + fp, 1),
        "ppv": tp / max(tp + fp, 1),
        "af_windows": tp + fn,
        "other_windows": tn + fp,
    }


def format_report(wm: dict, bm: dict, af: dict | None = None) -> str:
    lines = ["| class | windows | Se % | +P % |", "|---|---:|---:|---:|"]
    for lab in LABELS:
        c = wm["per_class"][lab]
        lines.append(f"| {lab} | {c['n']} | {_p(c['se'])} | {_p(c['ppv'])} |")
    lines.append(
        f"macro-F1 {wm['macro_f1']:.3f}; patients with > 10 % windows wrong: {wm['patients_over_10pct']}"
        f", > 20 %: {wm['patients_over_20pct']} of {wm['patients']}"
    )
    lines.append("| beats | reference | Se % | +P % |")
    lines.append("|---|---:|---:|---:|")
    for k in ("N", "SVEB", "VEB"):
        lines.append(f"| {k} | {bm[k]['n']} | {_p(bm[k]['se'])} | {_p(bm[k]['ppv'])} |")
    if af:
        lines.append(f"AF per 10-s window (LTAFDB RR): Se {_p(af['se'])} %, Sp {_p(af['sp'])} %")
    return "\n".join(lines)


RHYTHM_LABELLED = ("mitdb/",)  # records whose rhythm is annotated (SVDB's is not, in this data)


def rhythm_labelled_af(rows: list[dict]) -> dict:
    """AF Se / +P over the windows of rhythm-annotated records only. In SVDB every window's truth is
    N/S/V by construction (no rhythm annotations), so an AF call there counts as false even where the
    patient may be in AF; this figure is the one the reference can vouch for."""
    kept = [r for r in rows if r["record"].startswith(RHYTHM_LABELLED)]
    wm = window_metrics(kept)
    af = wm["per_class"]["AF"]
    return {
        "patients": wm["patients"],
        "windows": len(kept),
        "af_windows": af["n"],
        "se": af["se"],
        "ppv": af["ppv"],
    }


def format_rhythm_labelled_af(af: dict) -> str:
    return (
        f"AF on the {af['patients']} rhythm-annotated patients ({af['windows']} windows, "
        f"{af['af_windows']} AF): Se {_p(af['se'])} %, +P {_p(af['ppv'])} %"
    )


def af_over_wrong(calls: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> list[bool]:
    """Per patient (its windows' AF calls and AF truths): more than ``PATIENT_WRONG`` of its windows
    wrong between AF and not AF, what ``train_beats --af-threshold-from patients`` minimises."""
    return [t.size > 0 and float(np.mean(c != t)) > PATIENT_WRONG for c, t in zip(calls, truths, strict=True)]


def af_wrong_patients(rows: list[dict]) -> list[str]:
    """The patients of ``rows`` that :func:`af_over_wrong` counts."""
    rids = sorted({r["record"] for r in rows})
    per = {rid: [r for r in rows if r["record"] == rid] for rid in rids}
    calls = [np.array([r["pred"] == "AF" for r in per[rid]]) for rid in rids]
    truths = [np.array([r["truth"] == "AF" for r in per[rid]]) for rid in rids]
    return [rid for rid, over in zip(rids, af_over_wrong(calls, truths), strict=True) if over]


def worst_patients(rows: list[dict], n: int = 8) -> str:
    """The ``n`` patients with the most windows wrong, each with its two largest confusions."""
    wm = window_metrics(rows)
    worst = sorted(wm["per_patient"].items(), key=lambda kv: -kv[1]["error"])[:n]
    parts = []
    for rid, v in worst:
        pairs: dict[tuple[str, str], int] = {}
        for r in rows:
            if r["record"] == rid and r["pred"] != r["truth"]:
                pairs[(r["truth"], r["pred"])] = pairs.get((r["truth"], r["pred"]), 0) + 1
        top = sorted(pairs.items(), key=lambda kv: -kv[1])[:2]
        parts.append(
            f"{rid} {100 * v['error']:.0f} % (" + ", ".join(f"{a} → {b} {c}" for (a, b), c in top) + ")"
        )
    return "; ".join(parts)


def by_database(windows: list[dict], beats: list[dict]) -> str:
    """The report's figures for each database (``mitdb/…``, ``svdb/…``) on its own. Why: the held-out
    patients a hospital would score on are MIT-BIH's DS2, recorded as DS1 was (360 Hz, annotated
    rhythm); SVDB's 128-Hz Holter patients are most of the 80 and most of its errors, so the pooled
    figures alone would not say what to expect there."""
    lines = [
        "| database | patients | windows | N | S | V | AF | macro-F1 | patients > 10 %, > 20 % wrong "
        "| VEB | SVEB |",
        "|---|---:|---:|---|---|---|---|---:|---|---|---|",
    ]
    notes = []
    for db in sorted({r["record"].split("/")[0] for r in windows}):
        w = [r for r in windows if r["record"].split("/")[0] == db]
        wm = window_metrics(w)
        absent = [c for c in LABELS if not wm["per_class"][c]["n"]]
        if absent:
            notes.append(
                f"{db}: no {', '.join(absent)} windows by the reference, so its {', '.join(absent)} calls "
                "count as false and its macro-F1 counts F1 0 for them"
            )
        bm = beat_metrics(r for r in beats if r["record"].split("/")[0] == db)
        cls = [f"{_p(wm['per_class'][c]['se'])} / {_p(wm['per_class'][c]['ppv'])}" for c in LABELS]
        eb = [f"{_p(bm[k]['se'])} / {_p(bm[k]['ppv'])}" for k in ("VEB", "SVEB")]
        lines.append(
            f"| {db} | {wm['patients']} | {len(w)} | {' | '.join(cls)} | {wm['macro_f1']:.3f} | "
            f"{wm['patients_over_10pct']}, {wm['patients_over_20pct']} | {' | '.join(eb)} |"
        )
    return "\n".join(lines + notes)


def _af_patients_line(rows: list[dict]) -> str:
    wrong = af_wrong_patients(rows)
    listed = f" ({', '.join(wrong)})" if wrong else ""
    return f"patients > 20 % wrong between AF and not AF: {len(wrong)}{listed}"


def _p(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def main(argv: list[str] | None = None) -> int:
    from training.beat_data import signal_records

    p = argparse.ArgumentParser(prog="python -m training.beat_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", help="the bundle's .tflite (its .json beside it)")
    p.add_argument("--cv", type=Path, help="a train_beats run: each fold's bundle on its held-out patients")
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--records", help="comma-separated ids (default: all 80)")
    p.add_argument("--beats", choices=("reference", "detector"), default="reference")
    p.add_argument("--out", help="write metrics JSON here")
    p.add_argument(
        "--af-threshold", type=float, help="score with this AF threshold in place of the bundles' own"
    )
    p.add_argument(
        "--rows", type=Path, help="report a train_beats run's cv_rows.json again (no scoring); with --beats"
    )
    args = p.parse_args(argv)
    if args.rows is not None:
        saved = json.loads(args.rows.read_text())
        windows = saved["windows" if args.beats == "reference" else "windows_detector"]
        beats = saved["beats_reference" if args.beats == "reference" else "beats_detector"]
        print(format_report(window_metrics(windows), beat_metrics(beats)))
        print(format_rhythm_labelled_af(rhythm_labelled_af(windows)))
        print(_af_patients_line(windows))
        print("\nby database:\n" + by_database(windows, beats))
        print("\nmost windows wrong: " + worst_patients(windows))
        print("\nbeats, by patient:\n" + beat_error_patients(beats))
        return 0
    if (args.model is None) == (args.cv is None):
        p.error("give a model or --cv RUN")
    if args.cv is not None:
        folds = json.loads((args.cv / "cv_metrics.json").read_text())["folds"]
        windows, beats = [], []
        for k, rids in enumerate(folds):
            bundle = args.cv / f"fold{k + 1}" / "default.tflite"
            w, b = score_records(bundle, args.data, rids, args.beats, args.af_threshold)
            windows += w
            beats += b
            print(f"# fold {k + 1}: {len(rids)} patients, {len(w)} windows", file=sys.stderr, flush=True)
    else:
        rids = args.records.split(",") if args.records else list(signal_records(args.data))
        windows, beats = score_records(args.model, args.data, rids, args.beats, args.af_threshold)
    wm, bm = window_metrics(windows), beat_metrics(beats)
    print(format_report(wm, bm))
    print(format_rhythm_labelled_af(rhythm_labelled_af(windows)))
    print(_af_patients_line(windows))
    print("\nby database:\n" + by_database(windows, beats))
    print("\nbeats, by patient:\n" + beat_error_patients(beats))
    if args.out:
        Path(args.out).write_text(json.dumps({"windows": wm, "beats": bm}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
