#!/usr/bin/env python3
"""How many missing samples can a window lose before the label changes?

The daemon fills short gaps (≤ windows.max_gap_seconds) by linear interpolation
for the model only, and refuses windows with more than windows.max_missing_fraction
missing. This measures what that interpolation does to the bundled model's labels:
every non-overlapping 10-s window of the 22 DS1 records of MIT-BIH (through the
AD8232 + 8-bit PCF8591 model, as the monitor sees them) is classified intact and
again with a fraction of its samples removed the way late wake-ups remove them
(scattered single slots, and short runs of up to 5), and the labels are compared.

    .venv/bin/python bench/missing_tolerance.py [--data ../shared/data/mitdb]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_false_alarms import DS1  # noqa: E402  (bench/ is not a package)

FRACTIONS = (0.01, 0.02, 0.05, 0.10)


def drop_mask(n: int, fraction: float, max_run: int, rng: np.random.Generator) -> np.ndarray:
    """valid flags with about ``fraction`` of the samples missing, in runs of 1..max_run slots."""
    valid = np.ones(n, dtype=bool)
    target = int(fraction * n)
    while np.count_nonzero(~valid) < target:
        run = int(rng.integers(1, max_run + 1))
        start = int(rng.integers(1, n - run - 1))  # never the ends: interpolation needs both sides
        valid[start : start + run] = False
    return valid


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mitdb"))
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    from ecgd.analysis.classifier import WindowClassifier
    from ecgd.analysis.model import load_model
    from ecgd.analysis.quality import QualitySettings, adc_rails_mv
    from ecgd.config import BUNDLED_MODEL
    from ecgd.io.frontend import AnalogFrontEnd
    from ecgd.io.records import read_recording

    model = load_model(BUNDLED_MODEL, BUNDLED_MODEL.with_suffix(".json"))
    fe = AnalogFrontEnd()
    rng = np.random.default_rng(args.seed)
    clf = WindowClassifier(
        model, 360.0, QualitySettings(), adc_rails_mv(fe), max_missing_fraction=0.5, max_gap_seconds=1.0
    )
    cases = [(f, 1) for f in FRACTIONS] + [(f, 5) for f in FRACTIONS]
    agree = {c: 0 for c in cases}
    unreadable_changed = {c: 0 for c in cases}
    windows = 0
    for name in DS1:
        rec = read_recording(Path(args.data) / f"{name}.hea", 0)
        mv = fe.simulate_mv(rec.mv, rec.fs)
        n = round(model.metadata.window_seconds * rec.fs)
        for start in range(0, mv.size - n + 1, n):
            x = mv[start : start + n]
            ref = clf.classify(x).label
            windows += 1
            for fraction, run in cases:
                got = clf.classify(x, drop_mask(n, fraction, run, rng)).label
                agree[(fraction, run)] += got == ref
                unreadable_changed[(fraction, run)] += (got == "unreadable") != (ref == "unreadable")
        print(f"  {name}: {windows} windows so far", file=sys.stderr)
    print(f"\n{windows} windows (DS1, 10 s, non-overlapping, AD8232 + 8-bit front end), seed {args.seed}\n")
    print("| samples missing | in runs of | same label as intact | quality verdict changed |")
    print("|---:|---:|---:|---:|")
    for fraction, run in cases:
        a = agree[(fraction, run)]
        print(
            f"| {fraction * 100:g} % | 1{'' if run == 1 else f'–{run}'} | {a / windows * 100:.2f} % "
            f"({windows - a} differ) | {unreadable_changed[(fraction, run)]} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
