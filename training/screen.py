"""Screen a training recipe on the feature tables alone: the patient-wise CV of ``train_beats`` without
TFLite export or the daemon's path, ~6 min instead of ~55, to choose between recipes.

    .venv-train/bin/python -m training.screen --features runs/f60 --af-context 60 --run-weight 5

Same folds, seeds, models, nested thresholds and window rule as :mod:`training.train_beats`; the
windows are the tables' (non-overlapping 10 s, reference beat positions), so figures are close to but
not the daemon path's. Prints one table row: window Se / +P per class, macro-F1, patients over 20 %
wrong, beat-level VEB / SVEB, the share of V beats inside runs of >= 3 found (what a VT alarm needs; at
the V threshold and, as the alarm counts them, also at its ``ventricular_probability``) and AF on
LTAFDB's held-out patients. ``--neighbours`` tries the previous and next beat's shape and prematurity
as extra beat features (table rows shifted; not a feature of the daemon); ``--rr-exclude-v``
decides AF from the intervals between beats the reference does not call V (``train_beats
--rr-exclude-v``; the daemon uses its own V labels); ``--af-p-wave-max L`` applies the P-wave rule as
``train_beats --af-p-wave-max`` does, both when the thresholds are chosen and when the windows are called.
``--waveforms`` gives the beat MLP a small convolutional branch on each beat's waveform and its difference
from the template (``train_beats --waveforms``; tables made with ``beat_data --waveforms``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ecgd.analysis.alarms import AlarmSettings
from training import beat_eval, train_beats
from training.labels import LABELS

NEIGHBOUR_COLUMNS = (6, 9, 12, 0)  # corr_qrs, width_ratio, resid_rel, rr_pre_local
ALARM_P_V = AlarmSettings().ventricular_probability  # a beat at this P(V) counts in a run for the vtach alarm


def with_neighbours(t: dict) -> dict:
    """A table whose beat rows also hold the previous and next row's shape and prematurity (1: none)."""
    x = t["beat_x"]
    ones = np.ones((1, x.shape[1]), dtype=x.dtype)
    prev, nxt = np.vstack((ones, x[:-1])), np.vstack((x[1:], ones))
    cols = list(NEIGHBOUR_COLUMNS)
    return {**t, "beat_x": np.hstack((x, prev[:, cols], nxt[:, cols])).astype(np.float32)}


def recipe(args: argparse.Namespace) -> train_beats.BeatTrainConfig:
    """The training configuration the options describe (``train_beats``' defaults for the rest)."""
    cfg = train_beats.BeatTrainConfig(
        seed=args.seed,
        run_weight=args.run_weight,
        af_context_s=args.af_context,
        members=args.members,
        waveforms=args.waveforms,
        blend=args.blend,
        wide_not_s=args.beat_wide_not_s,
    )
    if args.folds:  # parsed before, but never applied: the tiny test ran 5 folds on 3 patients
        cfg.folds = args.folds
    if args.epochs:
        cfg.beat_epochs = cfg.af_epochs = args.epochs
    if args.beat_epochs:
        cfg.beat_epochs = args.beat_epochs
    if args.hidden:
        cfg.hidden = args.hidden
    return cfg


def hidden_layers(text: str) -> tuple[int, ...]:
    """``--hidden 64,64``: the beat MLP's hidden layer sizes."""
    try:
        sizes = tuple(int(n) for n in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not layer sizes such as 64,64")
    return sizes


def screen(args: argparse.Namespace) -> dict:
    cfg = recipe(args)
    features = Path(args.features)
    rids = sorted(p.name[: -len("_pcf8591.npz")].replace("_", "/", 1) for p in features.glob("*_pcf8591.npz"))
    tables = train_beats.load_tables(features, rids, "pcf8591")
    if args.waveforms and not all("beat_wave" in t for t in tables.values()):
        raise SystemExit(f"--waveforms needs tables made with beat_data --waveforms; {features} has none")
    if args.waveforms and args.neighbours:
        raise SystemExit("--waveforms takes the beat's own waveform, not its neighbours' columns")
    if args.neighbours:
        tables = {r: with_neighbours(t) for r, t in tables.items()}
    lnames = sorted(p.stem[len("ltafdb_") :] for p in features.glob("ltafdb_*.npz"))
    ltaf = {n: dict(np.load(features / f"ltafdb_{n}.npz")) for n in lnames}
    for n, t in ltaf.items():
        if float(t.get("context_s", 10.0)) != cfg.af_context_s:
            raise SystemExit(f"ltafdb_{n}.npz was made for another --af-context than {cfg.af_context_s:g}")
    folds = train_beats.patient_folds(rids, cfg.folds, cfg.seed)
    lfolds = [lnames[k :: cfg.folds] for k in range(cfg.folds)]
    oof, ltaf_rows = {}, []
    for k in range(cfg.folds):
        train = [r for r in rids if r not in folds[k]]
        ltrain = [n for n in lnames if n not in lfolds[k]]
        ax, ay = train_beats.af_xy(tables, train, ltaf, ltrain, args.rr_exclude_v, cfg.af_context_s)
        beat = train_beats.fit_beat_model(tables, train, cfg, cfg.seed + 1 + k)
        af = train_beats.fit_af(ax, ay, cfg, cfg.seed + 1 + k)
        for r in folds[k]:
            oof[r] = train_beats.oof_tables(
                tables, r, beat, af, args.rr_exclude_v, cfg.af_context_s, cfg.wide_not_s
            )
        for n in lfolds[k]:
            x, ok = train_beats.ltafdb_rr(ltaf[n], args.rr_exclude_v)
            ltaf_rows.append((k, af.predict(x)[:, 0], ok, ltaf[n]["af"]))
        print(f"fold {k + 1} trained", file=sys.stderr, flush=True)
    rows, counts, fold_af = [], np.zeros(8, dtype=np.int64), []
    for k in range(cfg.folds):
        others = [oof[r] for j in range(cfg.folds) if j != k for r in folds[j]]
        others_ltaf = [train_beats.ltafdb_held_out(p, ok, af) for j, p, ok, af in ltaf_rows if j != k]
        how = args.af_threshold_from
        thr, _ = train_beats.choose_thresholds(others, how, args.af_p_wave_max, others_ltaf)
        fold_af.append(thr["AF"])
        for r in folds[k]:
            o = oof[r]
            pred = train_beats.window_predictions(o, thr, train_beats.atrial_wave(o, thr, args.af_p_wave_max))
            rows += [
                {"record": r, "truth": LABELS[y], "pred": LABELS[p]}
                for y, p in zip(o["y"], pred, strict=True)
                if y >= 0
            ]
            y = tables[r]["beat_y"]
            v, s = train_beats.beat_calls(o, thr)
            in_run = train_beats.ventricular_run_lengths(y) >= 3
            alarm_v = v | ((o["pb"][:, 2] >= ALARM_P_V) & o["judged"])  # as the vtach alarm counts a beat
            counts += [
                np.sum(y == 2),
                np.sum(v & (y >= 0)),
                np.sum(v & (y == 2)),
                np.sum(y == 1),
                np.sum(s & (y >= 0)),
                np.sum(s & (y == 1)),
                np.sum(v & in_run),
                np.sum(alarm_v & in_run),
            ]
    n_run = sum(int(np.sum(train_beats.ventricular_run_lengths(tables[r]["beat_y"]) >= 3)) for r in rids)
    wm = beat_eval.window_metrics(rows)
    said = np.concatenate([(p >= fold_af[k]) & ok for k, p, ok, _ in ltaf_rows])
    truth = np.concatenate([af == 1 for *_, af in ltaf_rows])
    return {
        "per_class": {c: (wm["per_class"][c]["se"], wm["per_class"][c]["ppv"]) for c in LABELS},
        "macro_f1": wm["macro_f1"],
        "patients_over_20pct": wm["patients_over_20pct"],
        "VEB": (counts[2] / max(counts[0], 1), counts[2] / max(counts[1], 1)),
        "SVEB": (counts[5] / max(counts[3], 1), counts[5] / max(counts[4], 1)),
        "v_in_runs": counts[6] / max(n_run, 1),
        "v_in_runs_alarm": counts[7] / max(n_run, 1),
        "ltafdb": (np.mean(said[truth]), np.mean(~said[~truth])),
    }


def row(name: str, m: dict) -> str:
    def pair(v) -> str:
        return f"{100 * (v[0] or 0):.1f} / {100 * (v[1] or 0):.1f}"

    cells = [pair(m["per_class"][c]) for c in LABELS]
    cells += [f"{m['macro_f1']:.3f}", str(m["patients_over_20pct"]), pair(m["VEB"]), pair(m["SVEB"])]
    cells += [f"{100 * m['v_in_runs']:.1f}", f"{100 * m['v_in_runs_alarm']:.1f}", pair(m["ltafdb"])]
    return f"| {name} | " + " | ".join(cells) + " |"


HEADER = (
    "| recipe | N | S | V | AF | macro-F1 | patients > 20 % | VEB | SVEB | V in runs Se "
    f"| ... at P(V) ≥ {ALARM_P_V:g} "
    "| LTAFDB AF Se / Sp |\n"
    "|---|---|---|---|---|---:|---:|---|---|---:|---:|---|"
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.screen", description=__doc__.split("\n\n")[0])
    p.add_argument("--features", default="runs/features")
    p.add_argument("--af-context", type=float, default=10.0, help="the LTAFDB tables' span (beat_data)")
    p.add_argument("--run-weight", type=float, default=1.0)
    p.add_argument("--neighbours", action="store_true")
    p.add_argument("--rr-exclude-v", action="store_true", help="AF from the RR between reference non-V beats")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--members", type=int, default=1, help="MLPs averaged in each graph (train_beats)")
    p.add_argument("--folds", type=int, help="patient folds (default 5)")
    p.add_argument(
        "--af-p-wave-max", type=float, help="no AF while the normal beats' P-wave coherence is at least this"
    )
    p.add_argument("--epochs", type=int, help="epochs of both models (default: train_beats')")
    p.add_argument("--beat-epochs", type=int, help="epochs of the beat model alone")
    p.add_argument(
        "--hidden",
        type=hidden_layers,
        help="the beat MLP's hidden layers, e.g. 64,64 (default: train_beats')",
    )
    train_beats.add_recipe_options(p)
    p.add_argument("--name", help="the row's name (default: the options)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    name = args.name or (
        f"AF {args.af_context:g} s, run weight {args.run_weight:g}"
        + (", neighbours" if args.neighbours else "")
        + (", AF RR without V beats" if args.rr_exclude_v else "")
        + (f", {args.members} members" if args.members > 1 else "")
        + (f", P-wave rule {args.af_p_wave_max:g}" if args.af_p_wave_max is not None else "")
        + (f", hidden {','.join(map(str, args.hidden))}" if args.hidden else "")
        + (f", beat epochs {args.beat_epochs}" if args.beat_epochs else "")
        + (", waveforms" if args.waveforms and not args.blend else "")
        + (", waveform graph and MLP blended" if args.blend else "")
        + (f", wide beats not S at {args.beat_wide_not_s:g}" if args.beat_wide_not_s else "")
        + (f", AF threshold from {args.af_threshold_from}" if args.af_threshold_from != "all" else "")
    )
    print(HEADER)
    print(row(name, screen(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
