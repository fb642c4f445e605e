"""Combine the models of several training runs into one graph (logit average) and score it the same way.

    .venv-train/bin/python -m training.ensemble --runs runs/v1 runs/v4 --out runs/ens --ship

Different recipes fail on different patients (see training/README.md): an absolute-pooling CNN keeps S
and N apart but misses AF in an unseen patient; a mixed-pooling CNN trained with synthetic AF finds AF but
calls more normal windows abnormal. Averaging their logits is cheap (two ~0.5 ms models) and, as int8,
still far below the 500 kB budget.

For each fold the members' fold models (never trained on the held-out records) are combined, converted
(float32 and int8, calibrated on the fold's training records) and scored through the daemon's path, so the
CV figures are those of a combined .tflite, not of averaged scores. The final model combines the runs'
final models (their baked prior shifts undone), with the prior shift chosen on the ensemble's own
out-of-fold predictions. Variants larger than the size budget are not shipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from training.data import DS1, load_records
from training.labels import LABELS
from training.model import apply_prior_shift
from training.train import (
    VARIANTS,
    Progress,
    TrainConfig,
    _metadata,
    _plots,
    export_final,
    export_variants,
    score_fold,
    ship,
    summarise_cv,
)

MAX_BYTES = 500_000


def load_member(path: Path, undo_log_weights: list[float] | None = None):
    """A trained model as a logits sub-model (its baked prior shift removed)."""
    import keras

    model = keras.models.load_model(path, compile=False)
    if undo_log_weights is not None:
        apply_prior_shift(model, -np.asarray(undo_log_weights))
    return model


def equivalent_command(run_dir: Path, data: str) -> str:
    """The ``training.train`` command that reproduces a member run with today's code and defaults.

    Spelled out from the run's recorded config (older runs predate some options; their values then are
    the defaults of the time: absolute pooling, dilations 2,4, no synthetic windows).
    """
    cfg = json.loads((run_dir / "config.json").read_text())
    model = cfg.get("model", {})
    args = [
        ".venv-train/bin/python", "-m", "training.train", "--data", data, "--out", str(run_dir),
        "--seed", str(cfg.get("seed", 0)),
        "--pooling", model.get("pooling", "absolute"),
        "--dilations", ",".join(str(d) for d in model.get("dilations", (2, 4))),
        "--synth-af", str(cfg.get("synth_af_share", 0.0)),
        "--synth-s", str(cfg.get("synth_s_share", 0.0)),
    ]  # fmt: skip
    return " ".join(shlex.quote(a) for a in args)


def build_ensemble(members: list, name: str = "ecgd_rhythm_ensemble"):
    """Input → each member's logits → average → identity ``logits`` layer (for the prior shift) → softmax."""
    import keras
    from keras import layers

    inp = keras.Input(shape=members[0].input_shape[1:], name="ecg_mv")
    outs = []
    for i, m in enumerate(members):
        sub = keras.Model(m.inputs, m.get_layer("logits").output, name=f"member{i}")
        outs.append(sub(inp))
    avg = layers.Average(name="mean_logits")(outs) if len(outs) > 1 else outs[0]
    n = len(LABELS)
    shift = layers.Dense(n, name="logits", kernel_initializer="identity", bias_initializer="zeros")
    out = layers.Softmax(name="probabilities")(shift(avg))
    model = keras.Model(inp, out, name=name)
    shift.trainable = False
    return model


def run(args: argparse.Namespace) -> int:
    import keras

    cfg = TrainConfig()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(out / "log.txt")
    runs = [Path(r) for r in args.runs]
    command = " ".join(
        shlex.quote(a) for a in [".venv-train/bin/python", "-m", "training.ensemble", *sys.argv[1:]]
    )
    member_commands = [equivalent_command(r, args.data) for r in runs]
    config = {"command": command, "members": [str(r) for r in runs], "member_commands": member_commands}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    progress(f"ensemble {out}: {command}")
    records = load_records(args.data, DS1)
    paths = {n: str(r.path) for n, r in records.items()}
    base_meta = _metadata(cfg, command, {"protocol": "per-fold ensemble (see the run directory)"})
    cv_rows: dict[str, dict[str, list[dict]]] = {
        f"{v}/{fe}": {} for v in VARIANTS for fe in ("pcf8591", "none")
    }
    sizes: dict[str, int] = {}
    for k, held in enumerate(cfg.folds):
        model = build_ensemble([load_member(r / f"fold{k + 1}" / "model.keras") for r in runs])
        train_paths = [paths[n] for n in records if n not in held]
        variants = export_variants(model, out / f"fold{k + 1}", train_paths, base_meta)
        for v, path in variants.items():
            sizes[v] = max(sizes.get(v, 0), path.stat().st_size)
            score_fold(path, v, k, held, args.data, cv_rows, progress)
        (out / "cv_rows.json").write_text(json.dumps(cv_rows) + "\n")
        keras.backend.clear_session()

    allowed = [v for v in VARIANTS if sizes[v] <= MAX_BYTES]
    cv = summarise_cv(
        {k: r for k, r in cv_rows.items() if k.split("/")[0] in allowed}, cfg, progress, allowed
    )
    cv["variant_bytes"] = sizes
    (out / "cv_metrics.json").write_text(json.dumps(cv, indent=1) + "\n")
    chosen = cv["chosen_variant"]

    members = []
    for r in runs:
        baked = json.loads((r / "cv_metrics.json").read_text())["prior_log_weights"]
        members.append(load_member(r / "final" / "model.keras", baked))
    model = build_ensemble(members)
    apply_prior_shift(model, np.asarray(cv["prior_log_weights"]))
    from training.train import _evaluation

    evaluation = _evaluation(cv, chosen)
    evaluation["protocol"] = (
        f"Ensemble (logit average) of the models of {', '.join(str(r) for r in runs)}. "
        + evaluation["protocol"].replace(
            "each fold's model", "each fold's ensemble of the members' fold models"
        )
    )
    meta = _metadata(cfg, command, evaluation)
    meta["version"] = args.version
    meta["provenance"]["member_commands"] = member_commands
    ship_command = command if "--ship" in command.split() else command + " --ship"
    meta["provenance"]["command"] = " && ".join([*member_commands, ship_command])
    meta["provenance"]["seeds"] = "members: final seed 0, fold k seed k+1 (see their config.json)"
    export_final(model, out, list(paths.values()), meta, args.data, progress)
    _plots(out, {}, cv, chosen, "ensemble .tflite")
    if args.ship:
        ship(out, progress)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.ensemble", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", required=True, help="finished training runs (with folds and final)")
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--out", required=True)
    p.add_argument("--ship", action="store_true", help="copy the result to ecgd/models/ and docs/model/")
    p.add_argument(
        "--version", default="1.1.0", help="model version in the metadata (1.0.0 was run v1 alone)"
    )
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
