"""Time the beat-aware window analysis on a real recording: what one 10-s window costs the worker.

    nice -n 10 .venv/bin/python bench/beat_bench.py [--record ../shared/data/mitdb/208] [--model M.tflite]

Runs MIT-BIH 208 (frequent PVCs, couplets, fusion: a busy record) through the 8-bit front end, then each
10-s window with the daemon's 2-s hop through the stages separately: the QRS detector, the beat features
against the patient's template (BeatAnalyzer), the two TFLite graphs, and the whole
``WindowClassifier.classify``. Prints a table (median, p95, max ms per window) and the share of one core
at 360 Hz (window cost / hop). No assertions: the figures go into README with this command.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from ecgd.analysis.beat_detect import detect_beats
from ecgd.analysis.beat_features import BeatAnalyzer
from ecgd.analysis.classifier import WindowClassifier
from ecgd.analysis.model import load_model
from ecgd.analysis.quality import QualitySettings, adc_rails_mv
from ecgd.analysis.rhythm import rr_features
from ecgd.config import BUNDLED_MODEL
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import read_recording

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--record", default=str(REPO.parent / "shared" / "data" / "mitdb" / "208"))
    p.add_argument("--model", default=str(BUNDLED_MODEL))
    p.add_argument("--windows", type=int, default=300)
    args = p.parse_args()
    rec = read_recording(args.record)
    fs, n, hop = rec.fs, round(10 * rec.fs), round(2 * rec.fs)
    fe = AnalogFrontEnd()
    mv = fe.simulate_mv(rec.mv, fs)
    model = load_model(args.model)
    starts = list(range(0, mv.size - n + 1, hop))[: args.windows]
    t_det, t_feat, t_graph, t_all = [], [], [], []
    analyzer = BeatAnalyzer(fs)
    for s in starts:
        w = mv[s : s + n]
        t = time.perf_counter()
        beats = detect_beats(w, fs) + s
        t_det.append(time.perf_counter() - t)
        t = time.perf_counter()
        f = analyzer.analyse(s, w, beats)
        r = rr_features(f.rr_s)
        t_feat.append(time.perf_counter() - t)
        t = time.perf_counter()
        x = f.x[~np.isnan(f.x).any(axis=1)]
        model.beat_probs(x)
        if r is not None:
            model.af_prob(r)
        t_graph.append(time.perf_counter() - t)
    clf = WindowClassifier(model, fs, QualitySettings(), adc_rails_mv(fe), 0.05)
    for s in starts:
        t = time.perf_counter()
        clf.classify(mv[s : s + n], None, s)
        t_all.append(time.perf_counter() - t)
    print(
        f"# {model.metadata.ident} on {Path(args.record).name}, {len(starts)} windows of 10 s, hop 2 s, "
        f"{platform.machine()}, {platform.python_version()}, backend {model.backend}"
    )
    print("| stage | median ms | p95 ms | max ms | share of a core at a 2-s hop |")
    print("|---|---:|---:|---:|---:|")
    for name, ts in (
        ("QRS detector (window)", t_det),
        ("beat features + RR features", t_feat),
        ("two TFLite graphs", t_graph),
        ("whole WindowClassifier.classify (incl. quality gate)", t_all),
    ):
        a = np.array(ts) * 1000
        print(
            f"| {name} | {np.median(a):.2f} | {np.percentile(a, 95):.2f} | {a.max():.2f} | "
            f"{np.mean(a) / 2000 * 100:.2f} % |"
        )


if __name__ == "__main__":
    main()
