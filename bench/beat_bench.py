"""Time the beat-aware analysis as the daemon's worker runs it, on a real recording.

    nice -n 10 .venv/bin/python bench/beat_bench.py [--record ../shared/data/mitdb/208] [--seconds 600]

Runs MIT-BIH 208 (frequent PVCs, couplets, fusion: a busy record) through the 8-bit front end in the
worker's 0.2-s blocks: the beat stage (QRS detector), the streaming beat labeller (beat features
against the patient's template + the beat graph, each beat once), and every 2 s the 10-s window's
verdict (the quality gate, then AF from the RR series + the AF graph and the label rule, from the
labelled beats). Prints a table (median, p95, max ms per call) and each stage's share of one core at
360 Hz (time spent / signal time). No assertions: the figures go into README with this command.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from ecgd.analysis.beat_labels import BeatLabeller
from ecgd.analysis.beats import BLOCK_S, BeatTracker
from ecgd.analysis.classifier import WindowClassifier
from ecgd.analysis.model import load_model
from ecgd.analysis.quality import QualitySettings, adc_rails_mv
from ecgd.config import BUNDLED_MODEL
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import read_recording

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--record", default=str(REPO.parent / "shared" / "data" / "mitdb" / "208"))
    p.add_argument("--model", default=str(BUNDLED_MODEL))
    p.add_argument("--seconds", type=float, default=600.0, help="signal to run (from the start)")
    args = p.parse_args()
    rec = read_recording(args.record)
    fs = rec.fs
    fe = AnalogFrontEnd()
    mv = fe.simulate_mv(rec.mv, fs)[: round(args.seconds * fs)]
    model = load_model(args.model)
    block, window, hop = round(BLOCK_S * fs), round(10 * fs), round(2 * fs)
    tracker = BeatTracker(fs)
    labeller = BeatLabeller(model, fs)
    clf = WindowClassifier(model, fs, QualitySettings(), adc_rails_mv(fe), 0.05)
    t_det, t_lab, t_gate, t_verdict = [], [], [], []
    pending: list[int] = []  # window ends whose verdict waits for the labels
    next_stop = window
    for a in range(0, mv.size, block):
        x = mv[a : a + block]
        t = time.perf_counter()
        new = tracker.feed(a, x)
        t_det.append(time.perf_counter() - t)
        t = time.perf_counter()
        labeller.feed(a, x, None, [b.seq for b in new], tracker.confirmed_until())
        t_lab.append(time.perf_counter() - t)
        while next_stop <= a + x.size:
            t = time.perf_counter()
            refused = clf.screen(mv[next_stop - window : next_stop])
            t_gate.append(time.perf_counter() - t)
            if refused is None:
                pending.append(next_stop)
            next_stop += hop
        while pending and labeller.until >= pending[0] and tracker.final_until() >= pending[0]:
            stop = pending.pop(0)
            t = time.perf_counter()
            clf.verdict_from(labeller, stop - window, stop, 0)
            t_verdict.append(time.perf_counter() - t)
    signal_s = mv.size / fs
    print(
        f"# {model.metadata.ident} on {Path(args.record).name}, {signal_s:.0f} s in {len(t_det)} blocks of "
        f"{BLOCK_S:g} s, {len(t_gate)} windows of 10 s at a 2-s hop, {len(tracker.beats)} beats kept, "
        f"{platform.machine()}, Python {platform.python_version()}, backend {model.backend}"
    )
    print("| stage | calls | median ms | p95 ms | max ms | share of a core at 360 Hz |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ts in (
        ("beat stage: QRS detector (per block)", t_det),
        ("beat labeller: features + beat graph (per block)", t_lab),
        ("window: quality gate", t_gate),
        ("window: AF features + AF graph + label rule", t_verdict),
    ):
        a = np.array(ts) * 1000
        print(
            f"| {name} | {a.size} | {np.median(a):.2f} | {np.percentile(a, 95):.2f} | {a.max():.2f} | "
            f"{a.sum() / 1000 / signal_s * 100:.2f} % |"
        )
    window_ms = np.median(np.array(t_gate) * 1000) + np.median(np.array(t_verdict) * 1000)
    print(f"\nwindow analysis (gate + verdict, medians): {window_ms:.2f} ms")


if __name__ == "__main__":
    main()
