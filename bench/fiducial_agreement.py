"""Does a beat get the same fiducial point from the detector's position as from the reference's?

    .venv/bin/python bench/fiducial_agreement.py [--records mitdb/119,svdb/865,...]

The beat features are cut around a fiducial point found near the given beat position. The model is
trained at the reference annotations' positions and runs at the streaming QRS detector's, so the two
must lead to the same point. For each record (8-bit front end, the beat stage in the worker's 0.2-s
blocks), each reference beat with a detection within 150 ms is moved to its fiducial from both
positions; the table gives the share of beats whose two fiducials differ by more than the template
match's lag (±14 ms), for the shipped rule (the centre of the QRS slope energy, ``beat_features.qrs_centres``)
and for the rule before 2.4.0 (the largest deflection from the local median within 50 ms).
No assertions: the figures are in docs/model-history.md (2.4.0), with this command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ecgd.analysis.beat_features import MAX_LAG_S, qrs_centres  # noqa: E402
from ecgd.analysis.beats import BLOCK_S, BeatTracker  # noqa: E402
from ecgd.io.frontend import AnalogFrontEnd  # noqa: E402
from training.beat_data import FS, load_signal_record  # noqa: E402

RECORDS = "mitdb/106,mitdb/108,mitdb/119,mitdb/203,mitdb/207,mitdb/208,svdb/801,svdb/860,svdb/865"


def largest_deflection(x: np.ndarray, rel: np.ndarray, half: int) -> np.ndarray:
    """The fiducial rule before 2.4.0, for comparison."""
    idx = np.clip(rel[:, None] + np.arange(-half, half + 1)[None, :], 0, x.size - 1)
    seg = x[idx]
    return idx[np.arange(rel.size), np.argmax(np.abs(seg - np.median(seg, axis=1, keepdims=True)), axis=1)]


def detected(mv: np.ndarray) -> np.ndarray:
    tracker, block, found = BeatTracker(FS), round(BLOCK_S * FS), []
    for a in range(0, mv.size, block):
        found += [b.seq for b in tracker.feed(a, mv[a : a + block])]
    return np.unique(np.asarray(found, dtype=np.int64))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--records", default=RECORDS)
    args = p.parse_args()
    lag = round(MAX_LAG_S * FS)
    print(
        "| record | beats matched | differ > 14 ms: centre of slope energy | largest deflection (< 2.4.0) |"
    )
    print("|---|---:|---:|---:|")
    for rid in args.records.split(","):
        rec = load_signal_record(args.data, rid)
        mv = AnalogFrontEnd().simulate_mv(rec.mv, FS).astype(np.float64)
        det, ref = detected(mv), rec.ann.beat_samples
        j = np.clip(np.searchsorted(det, ref), 1, det.size - 1)
        near = np.where(np.abs(det[j - 1] - ref) <= np.abs(det[j] - ref), j - 1, j)
        ok = np.abs(det[near] - ref) <= round(0.15 * FS)
        d, r = det[near[ok]], ref[ok]
        centre = qrs_centres(mv, d, FS) - qrs_centres(mv, r, FS)
        old = largest_deflection(mv, d, round(0.05 * FS)) - largest_deflection(mv, r, round(0.05 * FS))
        print(
            f"| {rid} | {ok.sum()} | {100 * np.mean(np.abs(centre) > lag):.1f} % "
            f"| {100 * np.mean(np.abs(old) > lag):.1f} % |",
            flush=True,
        )


if __name__ == "__main__":
    main()
