"""How the AF threshold trades sensitivity for false AF: a run's fold bundles on their held-out tables.

    .venv/bin/python -m training.af_thresholds --run runs/b3 --features runs/f60

Each fold's AF graph (TFLite, the daemon's interpreter; no TensorFlow) scores its held-out patients'
windows: LTAFDB's RR series (Se / Sp per 10-s window), MIT-BIH DS1's windows (the only signal records
with rhythm annotations here: Se / +P of AF windows, false AF windows) and SVDB's (no rhythm labels:
AF calls, true or not). Table windows: non-overlapping 10 s, reference beat positions; the RR series as
the run's AF graph was trained on them (its ``af_context_s``, and without the intervals next to the
reference's V beats when it was trained ``--rr-exclude-v``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from training import beat_eval, train_beats
from training.labels import LABELS

GRID = (0.5, 0.7, 0.85, 0.9, 0.95, 0.98, 0.99)


def window_inputs(config: dict, t: dict) -> tuple[np.ndarray, np.ndarray]:
    """One signal record's RR windows as the run's AF graph was trained on them (its ``config.json``):
    its ``af_context_s`` and, trained ``--rr-exclude-v``, without the intervals next to V beats. Fed
    otherwise, the graph would be scored on inputs it never saw."""
    exclude_v = bool(config.get("rr_exclude_v", False))
    return train_beats.window_rr(t, exclude_v, config.get("af_context_s", 10.0))


def held_out_probabilities(run: Path, features: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """P(AF) and truth per held-out window, one pair per patient: ``"ltafdb"``, ``"mitdb"`` and ``"svdb"``
    (truth all False)."""
    from ecgd.analysis.model import load_model

    cv = json.loads((run / "cv_metrics.json").read_text())
    config = json.loads((run / "config.json").read_text())
    lnames = sorted(p.stem[len("ltafdb_") :] for p in features.glob("ltafdb_*.npz"))
    k_folds = len(cv["folds"])
    exclude_v = bool(config.get("rr_exclude_v", False))
    out: dict[str, list] = {"ltafdb": [], "mitdb": [], "svdb": []}
    for k, rids in enumerate(cv["folds"]):
        graph = load_model(run / f"fold{k + 1}" / "default.tflite").af_graph

        def prob(x: np.ndarray, ok: np.ndarray, graph=graph) -> np.ndarray:
            p = np.array([float(graph(x[i : i + 1])[0, -1]) for i in range(x.shape[0])])
            return np.where(ok, p, 0.0)

        for n in lnames[k::k_folds]:
            t = dict(np.load(features / f"ltafdb_{n}.npz"))
            out["ltafdb"].append((prob(*train_beats.ltafdb_rr(t, exclude_v)), t["af"] == 1))
        for r in rids:
            t = dict(np.load(features / f"{r.replace('/', '_')}_pcf8591.npz"))
            x, ok = window_inputs(config, t)
            keep = t["win_y"] >= 0
            out[r.split("/")[0]].append((prob(x, ok)[keep], t["win_y"][keep] == LABELS.index("AF")))
    return out


def table(probs: dict[str, list[tuple[np.ndarray, np.ndarray]]]) -> str:
    """Per threshold: LTAFDB's windows pooled and its patients more than 20 % wrong (what
    ``train_beats --af-threshold-from patients`` counts there), DS1's AF windows, SVDB's AF calls."""
    lp, ly = (np.concatenate(a) for a in zip(*probs["ltafdb"], strict=True))
    mp, my = (np.concatenate(a) for a in zip(*probs["mitdb"], strict=True))
    sp = np.concatenate([p for p, _ in probs["svdb"]])
    rows = [
        "| AF threshold | LTAFDB Se / Sp (%) | LTAFDB patients > 20 % wrong | DS1 AF windows Se / +P (%) "
        "| DS1 false AF windows | SVDB AF calls |",
        "|---:|---|---:|---|---:|---:|",
    ]
    for thr in GRID:
        said_l, said_m = lp >= thr, mp >= thr
        tp, fp = int(np.sum(said_m & my)), int(np.sum(said_m & ~my))
        wrong = sum(
            beat_eval.af_over_wrong([p >= thr for p, _ in probs["ltafdb"]], [y for _, y in probs["ltafdb"]])
        )
        rows.append(
            f"| {thr:g} | {100 * said_l[ly].mean():.1f} / {100 * (~said_l[~ly]).mean():.1f} | {wrong} of "
            f"{len(probs['ltafdb'])} | "
            f"{100 * tp / max(int(my.sum()), 1):.1f} / {100 * tp / max(tp + fp, 1):.1f} | "
            f"{fp} of {int((~my).sum())} | {int(np.sum(sp >= thr))} of {sp.size} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.af_thresholds", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a training.train_beats run directory")
    p.add_argument("--features", type=Path, required=True, help="the feature tables it was trained on")
    args = p.parse_args(argv)
    print(table(held_out_probabilities(args.run, args.features)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
