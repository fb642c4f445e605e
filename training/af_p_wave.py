"""What a P-wave rule would do to a run's AF calls: the atrial wave locked to the normal beats.

    .venv/bin/python -m training.af_p_wave --run runs/b8

For every held-out window of a train_beats run (``cv_rows.json``, the daemon's path), the P-wave
coherence of the AF span that ends with it (``rhythm.p_wave_coherence``: the reference's N beats, their
stretches cut by the daemon's ``BeatAnalyzer`` through the 8-bit front end) beside the window's truth
and the run's label. Printed: the coherence of the windows that are AF, and of those the run called AF
wrongly, and for each limit how many of either a rule "no AF while the coherence is at least the limit"
would take away. Only two patients with signals are in AF here (MIT-BIH 201 and 203; LTAFDB has no
signals), so the rule's limit is set with a margin above what they show, not fitted (README, Model).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from ecgd.analysis.rhythm import p_wave_coherence
from training.beat_data import FS, WINDOW_S, analysed_windows, beat_class, load_signal_record

LIMITS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def window_coherence(data: str, rid: str, starts: list[int], context_s: float) -> dict[int, float | None]:
    """The coherence of the ``context_s`` ending with each window (start sample at 360 Hz)."""
    rec = load_signal_record(data, rid)
    n = round(WINDOW_S * FS)
    seq, normal, stretches = [], [], []
    for _, f, near in analysed_windows(rec, frontend=True):
        seq.append(f.seq)
        normal.append(beat_class(rec.ann.beat_symbols[near]) == 0)
        stretches.append(f.p_wave)
    s, ok, p = np.concatenate(seq), np.concatenate(normal), np.concatenate(stretches)
    out: dict[int, float | None] = {}
    for start in starts:
        end = start + n
        lo, hi = np.searchsorted(s, [end - round(context_s * FS), end])
        prev = int(s[lo - 1]) if lo > 0 else None
        out[start] = p_wave_coherence(s[lo:hi], ok[lo:hi], p[lo:hi], prev, FS)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.af_p_wave", description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a train_beats run (without the rule)")
    p.add_argument("--data", default="/work/shared/data")
    args = p.parse_args(argv)
    rows = json.loads((args.run / "cv_rows.json").read_text())["windows_detector"]
    context_s = float(json.loads((args.run / "config.json").read_text()).get("af_context_s", WINDOW_S))
    by_record: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_record[r["record"]].append(r)
    truth_af, false_af, af_by_record = [], [], defaultdict(list)
    for rid, rs in sorted(by_record.items()):
        coh = window_coherence(args.data, rid, [r["start"] for r in rs], context_s)
        for r in rs:
            c = coh[r["start"]]
            if r["truth"] == "AF":
                truth_af.append(c)
                af_by_record[rid].append(c)
            elif r["pred"] == "AF":
                false_af.append(c)
        print(f"{rid}: {len(rs)} windows", file=sys.stderr, flush=True)
    judged = lambda v: np.array([c for c in v if c is not None])  # noqa: E731
    t, f = judged(truth_af), judged(false_af)
    print(f"P-wave coherence of the {context_s:g} s ending with each window (run {args.run}, daemon path)\n")
    print("| windows | count | not judged (< 8 N beats) | 5th | 50th | 95th percentile | max |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, all_, v in (("AF (reference)", truth_af, t), ("called AF, not AF", false_af, f)):
        q = np.percentile(v, [5, 50, 95]) if v.size else [np.nan] * 3
        print(
            f"| {name} | {len(all_)} | {len(all_) - v.size} | {q[0]:.2f} | {q[1]:.2f} | {q[2]:.2f} "
            f"| {v.max():.2f} |"
        )
    for rid, v in sorted(af_by_record.items()):
        vv = judged(v)
        print(f"| AF in {rid} | {len(v)} | {len(v) - vv.size} | | {np.median(vv):.2f} | | {vv.max():.2f} |")
    print("\n| no AF at coherence ≥ | AF windows lost | false AF calls taken away |")
    print("|---:|---:|---:|")
    for limit in LIMITS:
        print(
            f"| {limit:g} | {int((t >= limit).sum())} of {len(truth_af)} "
            f"| {int((f >= limit).sum())} of {len(false_af)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
