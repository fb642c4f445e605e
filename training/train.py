"""Train, cross-validate, convert and (optionally) ship ecgd's default rhythm model.

    .venv-train/bin/python -m training.train --data /work/shared/data --out runs/v1 --ship

1. Patient-wise 5-fold cross-validation over MIT-BIH DS1 (:data:`training.data.FOLDS`): each fold's model is
   converted to float32 and int8 ``.tflite`` and scored through the daemon's path (``ecgd.offline``) on its
   held-out records, with and without the AD8232 + PCF8591 front end.
2. Class prior weights (a bias shift of the logits) are chosen on the out-of-fold predictions; the CV figure
   for them is nested (each fold scored with weights chosen on the other four folds).
3. The final model is trained on all of DS1 with the same recipe and seed, shifted, converted, checked and
   (with ``--ship``) written to ``ecgd/models/default.tflite`` + ``.json`` with the CV figures as its
   evaluation, and the figures to ``docs/model/``.

Everything is seeded; the run directory keeps the config, curves, per-window predictions and metrics.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from training import evaluate as ev
from training.augment import (
    CONTEXT,
    FE_CONTEXT,
    AugmentConfig,
    augment_windows,
    frontend_windows,
    plain_windows,
)
from training.data import DS1, FOLDS, WINDOW, Record, load_noise, load_records, window_index
from training.labels import ABNORMAL, LABELS, N_BEATS
from training.model import ModelConfig, apply_prior_shift, build_model

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"N": (95, 95), "S": (60, 60), "V": (90, 90), "AF": (85, 85)}  # Se %, +P % on held-out patients
VARIANTS = ("float32", "int8")
TRAINING_DATA = (
    "MIT-BIH Arrhythmia Database v1.0.0 (PhysioNet, doi:10.13026/C2F305, ODC-By 1.0), DS1 of de Chazal "
    "et al. 2004 (22 records, lead MLII; paced records excluded); noise from the MIT-BIH Noise Stress Test "
    "Database v1.0.0 (doi:10.13026/C2HS3T, ODC-By 1.0), records bw and ma. Cite: Moody GB, Mark RG. The "
    "impact of the MIT-BIH Arrhythmia Database. IEEE Eng in Med and Biol 20(3):45-50, 2001; Moody GB, "
    "Muldrow WE, Mark RG. A noise stress test for arrhythmia detectors. Computers in Cardiology 11:381-384, "
    "1984; Goldberger AL, Amaral LAN, Glass L, Hausdorff JM, Ivanov PCh, Mark RG, Mietus JE, Moody GB, "
    "Peng C-K, Stanley HE. PhysioBank, PhysioToolkit, and PhysioNet: Components of a new research resource "
    "for complex physiologic signals. Circulation 101(23):e215-e220, 2000."
)


@dataclass
class TrainConfig:
    """Everything that decides the result; written to the run directory as config.json."""

    seed: int = 0
    epochs: int = 14
    epoch_windows: int = 5000  # augmented windows drawn per epoch
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    index_hop: int = 180  # candidate window starts every 0.5 s
    class_shares: tuple[float, ...] = (0.4, 0.2, 0.2, 0.2)  # N, S, V, AF share of each epoch (oversampling)
    record_balance: float = 0.5  # within a class, weight windows by 1 / (windows of that record)^this
    synth_af_share: float = 0.5  # share of the AF draws rebuilt from N windows by augment.synthetic_af
    synth_s_share: float = 0.0  # share of the S draws rebuilt by augment.synthetic_s (0.4 tried: worse)
    folds: tuple[tuple[str, ...], ...] = FOLDS
    prior_grid: tuple[float, ...] = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)  # log weights tried for S, V, AF
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict:
        return asdict(self)


class Progress:
    """One line per step with elapsed time, so a long run on a shared machine can be followed."""

    def __init__(self, log_path: Path | None) -> None:
        self.t0 = time.monotonic()
        self.log_path = log_path

    def __call__(self, msg: str) -> None:
        line = f"[{(time.monotonic() - self.t0) / 60:5.1f} min] {msg}"
        print(line, flush=True)
        if self.log_path:
            with self.log_path.open("a") as f:
                f.write(line + "\n")


def sampling_weights(names: np.ndarray, ys: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """Probability of drawing each window: fixed class shares, records within a class evened out."""
    w = np.zeros(len(ys))
    for c, share in enumerate(cfg.class_shares):
        in_c = ys == c
        if not in_c.any():
            continue
        recs, counts = np.unique(names[in_c], return_counts=True)
        per_rec = dict(zip(recs, counts, strict=True))
        wc = np.array([per_rec[n] ** -cfg.record_balance for n in names[in_c]])
        w[in_c] = share * wc / wc.sum()
    return w / w.sum()


def grid_windows(records: dict[str, Record], margin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out windows on the daemon's grid (k * 10 s) that have ``margin`` samples of context."""
    names, starts, ys = window_index(records, hop=WINDOW)
    keep = (starts >= margin) & np.array(
        [starts[i] + WINDOW + margin <= records[n].mv.size for i, n in enumerate(names)], dtype=bool
    )
    return names[keep], starts[keep], ys[keep]


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean F1 over the classes present in ``y`` (a fold without AF is not marked down for it)."""
    f1 = []
    for c in np.unique(y):
        tp = np.sum((pred == c) & (y == c))
        denom = np.sum(pred == c) + np.sum(y == c)
        f1.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1))


def train_model(
    records: dict[str, Record],
    noise: dict[str, np.ndarray],
    cfg: TrainConfig,
    seed: int,
    progress: Progress,
    tag: str,
    val_records: dict[str, Record] | None = None,
):
    """Train one model on ``records``; returns (keras model, per-epoch history)."""
    import keras

    signals = {k: r.mv for k, r in records.items()}
    n_beats = {k: r.ann.beat_samples[np.isin(r.ann.beat_symbols, list(N_BEATS))] for k, r in records.items()}
    names, starts, ys = window_index(records, hop=cfg.index_hop, margin=CONTEXT)
    p = sampling_weights(names, ys, cfg)
    n_class = LABELS.index("N")
    p_n = np.where(ys == n_class, p, 0.0)
    p_n = p_n / p_n.sum() if p_n.sum() > 0 else None
    rng = np.random.default_rng(seed)
    model = build_model(cfg.model, seed=seed)
    steps = cfg.epochs * int(np.ceil(cfg.epoch_windows / cfg.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps, alpha=0.05)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
    )
    val = None
    if val_records:
        vsig = {k: r.mv for k, r in val_records.items()}
        vn, vs, vy = grid_windows(val_records, FE_CONTEXT)
        from ecgd.io.frontend import AnalogFrontEnd

        val = (
            plain_windows(vsig, vn, vs)[..., None],
            frontend_windows(vsig, vn, vs, AnalogFrontEnd())[..., None],
            vy,
        )
    history = []
    for epoch in range(1, cfg.epochs + 1):
        t = time.monotonic()
        idx = rng.choice(len(ys), cfg.epoch_windows, p=p)
        labels = ys[idx].copy()
        synth = np.full(idx.size, "", dtype=object)
        for cls, share in (("AF", cfg.synth_af_share), ("S", cfg.synth_s_share)):
            # Some AF and S draws become synthetic windows made from N windows of any training patient.
            c = LABELS.index(cls)
            if p_n is None or share <= 0:
                continue
            swap = (labels == c) & (rng.random(idx.size) < share) & (synth == "")
            if not (ys == c).any():  # no real window of the class in this training set: draw it all
                swap = (rng.random(idx.size) < cfg.class_shares[c]) & (synth == "")
            idx[swap] = rng.choice(len(ys), int(swap.sum()), p=p_n)
            labels[swap] = c
            synth[swap] = cls
        x = augment_windows(signals, noise, names[idx], starts[idx], rng, cfg.augment, None, synth, n_beats)
        y = keras.utils.to_categorical(labels, len(LABELS))
        t_aug = time.monotonic() - t
        h = model.fit(x, y, batch_size=cfg.batch_size, epochs=1, verbose=0, shuffle=True)
        rec = {"epoch": epoch, "loss": float(h.history["loss"][-1]), "aug_s": round(t_aug, 1)}
        msg = f"{tag} epoch {epoch:2d}/{cfg.epochs} loss {rec['loss']:.3f}"
        if val is not None:
            for key, xv in (("clean", val[0]), ("frontend", val[1])):
                pv = model.predict(xv, batch_size=256, verbose=0).argmax(axis=1)
                rec[f"val_f1_{key}"] = macro_f1(val[2], pv)
            msg += f"  held-out macro-F1 8-bit {rec['val_f1_frontend']:.3f} clean {rec['val_f1_clean']:.3f}"
        rec["seconds"] = round(time.monotonic() - t, 1)
        history.append(rec)
        progress(f"{msg}  ({rec['seconds']:.0f} s)")
    return model, history


def export_variants(
    model, out_dir: Path, calibration: list[str], metadata: dict, calibration_windows: int = 400
) -> dict[str, Path]:
    """Save the Keras model and convert it to float32 and int8 ``.tflite`` (with metadata beside each)."""
    from ecgd.convert import convert

    out_dir.mkdir(parents=True, exist_ok=True)
    keras_path = out_dir / "model.keras"
    model.save(keras_path)
    paths = {}
    for variant in VARIANTS:
        path = out_dir / f"{variant}.tflite"
        convert(
            str(keras_path),
            str(path),
            variant == "int8",
            calibration if variant == "int8" else None,
            metadata,
            max_calibration_windows=calibration_windows,
        )
        paths[variant] = path
    return paths


def score_fold(path: Path, variant: str, k: int, held: list[str], data: str, cv_rows: dict, progress) -> None:
    """One exported fold model on its held-out records, with and without the 8-bit front end."""
    for fe in ("pcf8591", "none"):
        rows = ev.classify_records(path, data, held, fe == "pcf8591")
        cv_rows[f"{variant}/{fe}"][str(k)] = rows
        m = ev.summarise(rows)
        progress(
            f"fold {k + 1} {variant:7s} front end {fe:7s}: macro-F1 {m['macro_f1']:.3f} "
            + " ".join(f"{c} {_p(m['per_class'][c]['se'])}/{_p(m['per_class'][c]['ppv'])}" for c in LABELS)
        )


def export_final(model, out: Path, calibration: list, meta: dict, data: str, progress=print) -> dict:
    """The shipped variants in ``out/final``, each scored on DS1 through the 8-bit front end (the
    training data: a sanity check only) and timed; the figures go to ``final_metrics.json``."""
    variants = export_variants(model, out / "final", calibration, meta)
    final = {}
    for v, path in variants.items():
        rows = ev.classify_records(path, data, DS1, True)
        final[v] = {
            "resubstitution_ds1_pcf8591": ev.summarise(rows),
            "timing": ev.time_inference(path),
            "bytes": path.stat().st_size,
        }
        progress(
            f"final {v}: {path.stat().st_size / 1024:.0f} KiB, "
            f"{final[v]['timing']['median_ms']:.2f} ms/window (median), DS1 resubstitution macro-F1 "
            f"{final[v]['resubstitution_ds1_pcf8591']['macro_f1']:.3f} (training data: a sanity check only)"
        )
    (out / "final_metrics.json").write_text(json.dumps(final, indent=1) + "\n")
    return final


def choose_prior(rows: list[dict], grid: tuple[float, ...]) -> tuple[np.ndarray, float]:
    """Log class weights (N fixed at 0) maximising macro-F1 of ``rows``; ties go to the smallest shift."""
    scored = [r for r in rows if r["probs"] is not None]
    if not scored:
        return np.zeros(len(LABELS)), 0.0
    logp = np.log(np.maximum(np.array([r["probs"] for r in scored]), 1e-5))
    truth = np.array([LABELS.index(r["truth"]) for r in scored])
    unread = [r for r in rows if r["probs"] is None]
    miss = np.bincount([LABELS.index(r["truth"]) for r in unread], minlength=len(LABELS))
    best, best_score = np.zeros(len(LABELS)), -1.0
    for combo in itertools.product(grid, repeat=len(LABELS) - 1):
        w = np.array((0.0, *combo))
        pred = np.argmax(logp + w, axis=1)
        f1 = []
        for c in range(len(LABELS)):
            tp = np.sum((pred == c) & (truth == c))
            denom = np.sum(pred == c) + np.sum(truth == c) + miss[c]
            f1.append(2 * tp / denom if denom else 0.0)
        score = float(np.mean(f1)) - 1e-4 * float(np.abs(w).sum())
        if score > best_score + 1e-12:
            best, best_score = w, score
    return best, best_score


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(seed=args.seed)
    if args.epochs:
        cfg.epochs = args.epochs
    if args.epoch_windows:
        cfg.epoch_windows = args.epoch_windows
    if args.pooling:
        cfg.model = dataclasses.replace(cfg.model, pooling=args.pooling)
    if args.dilations:
        cfg.model = dataclasses.replace(cfg.model, dilations=tuple(int(d) for d in args.dilations.split(",")))
    if args.synth_af is not None:
        cfg.synth_af_share = args.synth_af
    if args.synth_s is not None:
        cfg.synth_s_share = args.synth_s
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(out / "log.txt")
    command = " ".join(
        shlex.quote(a) for a in [".venv-train/bin/python", "-m", "training.train", *sys.argv[1:]]
    )
    (out / "config.json").write_text(json.dumps({"command": command, **cfg.to_dict()}, indent=1) + "\n")
    progress(f"run {out}: {command}")

    records = load_records(args.data, DS1)
    noise = load_noise(args.data)
    paths = {n: str(r.path) for n, r in records.items()}
    base_meta = _metadata(cfg, command, evaluation={"protocol": "per-fold model (see the run directory)"})
    histories: dict[str, list[dict]] = {}
    cv_rows: dict[str, dict[str, list[dict]]] = {
        f"{v}/{fe}": {} for v in VARIANTS for fe in ("pcf8591", "none")
    }

    folds = [] if args.no_cv else list(range(len(cfg.folds)))
    if args.folds:
        folds = [int(k) for k in args.folds.split(",")]
    for k in folds:
        held = cfg.folds[k]
        train_recs = {n: r for n, r in records.items() if n not in held}
        model, hist = train_model(
            train_recs,
            noise,
            cfg,
            cfg.seed + 1 + k,
            progress,
            f"fold {k + 1}/{len(cfg.folds)}",
            {n: records[n] for n in held},
        )
        histories[f"fold{k + 1}"] = hist
        fold_dir = out / f"fold{k + 1}"
        variants = export_variants(model, fold_dir, [paths[n] for n in train_recs], base_meta)
        for v, path in variants.items():
            score_fold(path, v, k, held, args.data, cv_rows, progress)
        (out / "cv_rows.json").write_text(json.dumps(cv_rows) + "\n")
        import keras

        keras.backend.clear_session()

    cv = summarise_cv(cv_rows, cfg, progress) if len(folds) == len(cfg.folds) else None
    if cv:
        (out / "cv_metrics.json").write_text(json.dumps(cv, indent=1) + "\n")
    if args.no_final:
        _plots(out, histories, cv, None)
        return 0

    chosen = cv["chosen_variant"] if cv else "float32"
    log_w = np.array(cv["prior_log_weights"]) if cv else np.zeros(len(LABELS))
    model, hist = train_model(records, noise, cfg, cfg.seed, progress, "final")
    histories["final"] = hist
    apply_prior_shift(model, log_w)
    evaluation = (
        _evaluation(cv, chosen) if cv else {"protocol": "no cross-validation run", "frontend": "pcf8591-8bit"}
    )
    meta = _metadata(cfg, command, evaluation)
    export_final(model, out, list(paths.values()), meta, args.data, progress)
    _plots(out, histories, cv, chosen)
    if args.ship:
        ship(out, progress)
    return 0


def ship(run_dir: Path, progress=print) -> None:
    """Publish a finished run: the chosen variant to ``ecgd/models/default.*``, its figures to ``docs/model``.

    Separate from training so that a run can be inspected first and shipped afterwards
    (``--ship-run runs/NAME``) without retraining.
    """
    cv_path = run_dir / "cv_metrics.json"
    chosen = json.loads(cv_path.read_text())["chosen_variant"] if cv_path.exists() else "float32"
    final = json.loads((run_dir / "final_metrics.json").read_text())[chosen]
    meta = json.loads((run_dir / "final" / f"{chosen}.json").read_text())
    meta["evaluation"]["model_bytes"] = final["bytes"]
    meta["evaluation"]["inference_ms_median"] = round(final["timing"]["median_ms"], 3)
    meta["provenance"]["ship_command"] = f".venv-train/bin/python -m training.train --ship-run {run_dir}"
    dest = REPO / "ecgd" / "models"
    shutil.copyfile(run_dir / "final" / f"{chosen}.tflite", dest / "default.tflite")
    (dest / "default.json").write_text(json.dumps(meta, indent=2) + "\n")
    docs = REPO / "docs" / "model"
    docs.mkdir(parents=True, exist_ok=True)
    for name in ("confusion.png", "per_class.png"):
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, docs / name)
    progress(f"shipped the {chosen} model of {run_dir} to {dest / 'default.tflite'}")


def summarise_cv(
    cv_rows: dict[str, dict[str, list[dict]]],
    cfg: TrainConfig,
    progress: Progress,
    variants: tuple[str, ...] | list[str] = VARIANTS,
) -> dict:
    """Pooled CV metrics per variant, nested prior-shift figures, and the variant to ship."""
    res: dict = {"folds": [list(f) for f in cfg.folds], "variants": {}}
    for v in variants:
        both = {k: cv_rows[f"{v}/pcf8591"][k] + cv_rows[f"{v}/none"][k] for k in cv_rows[f"{v}/pcf8591"]}
        nested: dict[str, list[dict]] = {"pcf8591": [], "none": []}
        fold_w = {}
        for k in both:
            others = [r for j, rows in both.items() if j != k for r in rows]
            w, _ = choose_prior(others, cfg.prior_grid)
            fold_w[k] = w.tolist()
            for fe in nested:
                nested[fe] += ev.reweight(cv_rows[f"{v}/{fe}"][k], w)
        w_all, _ = choose_prior([r for rows in both.values() for r in rows], cfg.prior_grid)
        entry = {"prior_log_weights": w_all.tolist(), "nested_fold_weights": fold_w}
        for fe in ("pcf8591", "none"):
            pooled = [r for rows in cv_rows[f"{v}/{fe}"].values() for r in rows]
            entry[f"argmax/{fe}"] = ev.summarise(pooled)
            entry[f"prior_nested/{fe}"] = ev.summarise(nested[fe])
            for how in ("argmax", "prior_nested"):
                progress(ev.format_table(entry[f"{how}/{fe}"], f"CV {v}, {how}, front end {fe}:"))
        # Whether a prior shift helps at all is itself judged on the nested figures: if it does not beat the
        # plain argmax out of fold, the shipped model gets none.
        use = entry["prior_nested/pcf8591"]["macro_f1"] > entry["argmax/pcf8591"]["macro_f1"]
        entry["decision"] = "prior_nested" if use else "argmax"
        res["variants"][v] = entry

    def score(v: str) -> tuple[float, bool]:
        e = res["variants"][v]
        return e[f"{e['decision']}/pcf8591"]["macro_f1"], v == "float32"

    chosen = max(variants, key=score)
    entry = res["variants"][chosen]
    res["chosen_variant"] = chosen
    res["decision"] = entry["decision"]
    res["prior_log_weights"] = (
        entry["prior_log_weights"] if entry["decision"] == "prior_nested" else [0.0] * 4
    )
    progress(
        f"chosen: {chosen}, {entry['decision']} (CV macro-F1, 8-bit front end), "
        f"prior log weights {res['prior_log_weights']}"
    )
    return res


def _evaluation(cv: dict, chosen: str) -> dict:
    entry = cv["variants"][chosen]

    def compact(m: dict) -> dict:
        return {
            c: {k: (round(x, 4) if isinstance(x, float) else x) for k, x in m["per_class"][c].items()}
            for c in LABELS
        }

    how = cv.get("decision", "prior_nested")
    fe, clean = entry[f"{how}/pcf8591"], entry[f"{how}/none"]
    return {
        "protocol": (
            "MIT-BIH DS1 patient-wise 5-fold cross-validation (folds by record: "
            + "; ".join(",".join(f) for f in cv["folds"])
            + "); each fold's model converted to .tflite and run through ecgd.offline.classify_recording on "
            "its held-out records, non-overlapping 10 s windows from sample 0, signal-quality gate on "
            "(unreadable = miss); window labels from the .atr reference annotations (training/labels.py); "
            + (
                "class prior weights chosen on the other folds (nested). "
                if how == "prior_nested"
                else "plain argmax (a prior shift chosen on the other folds scored lower, so none is used). "
            )
            + "DS2 not evaluated. The shipped model is retrained on all of DS1 with the same recipe."
        ),
        "frontend": "pcf8591-8bit",
        "per_class": compact(fe),
        "macro_f1": round(fe["macro_f1"], 4),
        "unreadable_windows": fe["unreadable"],
        "windows": fe["windows"],
        "without_frontend": {"per_class": compact(clean), "macro_f1": round(clean["macro_f1"], 4)},
        "variant": chosen,
        "prior_log_weights": [round(x, 3) for x in cv["prior_log_weights"]],
    }


def _metadata(cfg: TrainConfig, command: str, evaluation: dict) -> dict:
    from ecgd.convert import DEFAULT_METADATA

    return {
        **DEFAULT_METADATA,
        "labels": list(LABELS),
        "abnormal_labels": list(ABNORMAL),
        "provenance": {
            "training_data": TRAINING_DATA,
            "code": "training/ (labels, data, augment, model, train, ensemble, evaluate, plots)",
            "command": command,
            "seeds": {"final": cfg.seed, "folds": [cfg.seed + 1 + k for k in range(len(cfg.folds))]},
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "evaluation": evaluation,
    }


def _plots(out: Path, histories: dict, cv: dict | None, chosen: str | None, what: str = ".tflite") -> None:
    from training import plots

    if histories:
        plots.plot_curves(histories, out / "curves.png")
    if not cv:
        return
    v = chosen or cv["chosen_variant"]
    entry = cv["variants"][v]
    how = cv.get("decision", "prior_nested")
    plots.plot_confusion(
        entry[f"{how}/pcf8591"],
        out / "confusion.png",
        f"DS1 patient-wise 5-fold CV, {v} {what}, AD8232 + 8-bit PCF8591 (simulated)",
    )
    plots.plot_per_class(
        {"8-bit front end": entry[f"{how}/pcf8591"], "no front end": entry[f"{how}/none"]},
        out / "per_class.png",
        f"DS1 patient-wise 5-fold CV, {v} {what}, daemon inference path",
        TARGETS,
    )


def _p(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data", help="folder with mitdb/ and nstdb/")
    p.add_argument("--out", help="run directory (created)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="override the epochs per model")
    p.add_argument("--epoch-windows", type=int, help="override the windows drawn per epoch")
    p.add_argument(
        "--pooling", choices=("absolute", "relative", "mixed"), help="override the model's pooling"
    )
    p.add_argument("--dilations", help="dilations of the last convolutions, e.g. 2,4 (default 2,4,8)")
    p.add_argument("--synth-af", type=float, help="share of AF draws made synthetic (default 0.5)")
    p.add_argument("--synth-s", type=float, help="share of S draws made synthetic (default 0)")
    p.add_argument("--folds", help="only these folds (0-based, comma-separated); CV figures need all")
    p.add_argument("--no-cv", action="store_true", help="skip cross-validation (final model only)")
    p.add_argument("--no-final", action="store_true", help="cross-validation only")
    p.add_argument("--ship", action="store_true", help="copy the result to ecgd/models/ and docs/model/")
    p.add_argument("--ship-run", metavar="RUN_DIR", help="only ship this finished run (no training)")
    args = p.parse_args(argv)
    if args.ship_run:
        ship(Path(args.ship_run))
        return 0
    if not args.out:
        p.error("--out is required")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
