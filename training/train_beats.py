"""Train, cross-validate and ship the beat-aware model bundle ``ecgd-rhythm@2.9.0``.

    .venv/bin/python -m training.beat_data --out runs/f65 --waveforms     # features (no TF), ~2-4 min
    .venv-train/bin/python -m training.train_beats --features runs/f65 --out runs/b16 \
        --rr-exclude-v --members 3 --af-p-wave-max 0.5 --beat-wide-not-s 1.7 --blend \
        --af-threshold-from patients [--ship]                                          # ~31-44 min

1. Patient-wise 5-fold CV over the 80 patients with signals (MIT-BIH DS1 + SVDB; folds by record,
   the two AF records of DS1 in different folds) and, for the AF model, over LTAFDB's 84 patients
   (its own 5 folds by record, trained together with the signal folds). Each fold's two graphs are
   exported to TFLite and the held-out records scored through the daemon's path
   (:mod:`training.beat_eval`: 8-bit front end, reference beats and the QRS detector).
2. The shipped bundle is trained on everything with the same recipe and seed.

Beat model: standardised :data:`BEAT_FEATURES` -> dense 32 -> dense 32 -> softmax N/S/V (with
``--waveforms`` beside a convolutional branch on each beat's waveform, :func:`fit_waveform_beat`; with
``--blend``, as shipped since 2.8.0, the average of both kinds), class-balanced weights (capped), the V
beats of runs of >= 3 weighted ``run_weight`` more.
AF model: standardised
:data:`RR_FEATURES` of the RR of the ``af_context_s`` ending with each window -> dense 16 -> dense 8 ->
sigmoid (balanced). Thresholds by window macro-F1 on held-out predictions (nested); with
``--af-threshold-from patients`` (shipped since 2.9.0) the AF threshold by the patients it gets wrong,
LTAFDB's among them (:func:`choose_thresholds`). With
``--af-p-wave-max`` the bundle also carries the P-wave rule (``af_p_wave_max``: no AF while the normal
beats' P-wave coherence reaches it), and the thresholds are chosen with the rule applied (the tables
carry each beat's P-wave stretch; the normal beats are those the candidate thresholds call N). With
``--af-p-wave-min-ratio`` the bundle also carries its noise-robust companion (``af_p_wave_min_ratio``: no
AF while the normal beats' mean P wave reaches that share of the QRS); the tables carry no QRS amplitude,
so the thresholds are chosen without it, and the daemon-path scoring of each fold's bundle applies it.
Seeds are fixed (fold k: seed + 1 + k).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ecgd.analysis.beat_features import (
    BEAT_FEATURES,
    FIDUCIAL,
    WAVEFORM_HZ,
    WAVEFORM_SAMPLES,
    RelearnSettings,
)
from ecgd.analysis.beat_model import WAVEFORM_CHANNELS, wide_not_supraventricular
from ecgd.analysis.rhythm import RR_FEATURES, rr_between_kept, rr_features, span_p_wave_coherence
from training import beat_data, beat_eval
from training.labels import ABNORMAL, LABELS

REPO = Path(__file__).resolve().parent.parent
NAME, VERSION = "ecgd-rhythm", "2.9.1"
AF_RECORDS = ("mitdb/201", "mitdb/203")
TRAINING_DATA = (
    "MIT-BIH Arrhythmia Database v1.0.0 (doi:10.13026/C2F305), DS1 of de Chazal et al. 2004 (22 records, "
    "MLII); MIT-BIH Supraventricular Arrhythmia Database v1.0.0 (doi:10.13026/C2V30W, 58 records, ECG1); "
    "Long-Term AF Database v1.0.0 (doi:10.13026/C2QG6Q, 84 records, beat annotations only); all PhysioNet, "
    "ODC-By 1.0. Cite: Moody GB, Mark RG, IEEE EMB 20(3):45-50, 2001; Greenwald SD, Patil RS, Mark RG, "
    "Computers in Cardiology 1990:461-464; Petrutiu S, Sahakian AV, Swiryn S, Europace 9:466-470, 2007; "
    "Goldberger AL et al., Circulation 101(23):e215-e220, 2000."
)


@dataclass
class BeatTrainConfig:
    seed: int = 0
    folds: int = 5
    beat_epochs: int = 12
    af_epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 2e-3
    hidden: tuple[int, ...] = (32, 32)
    af_hidden: tuple[int, ...] = (16, 8)
    class_weight_cap: float = 20.0
    frontends: tuple[str, ...] = ("pcf8591",)  # feature tables trained on
    rr_exclude_v: bool = False  # AF features from the intervals between non-V beats (reference V in training)
    run_weight: float = 5.0  # sample weight of the V beats in runs of >= 3 (VT), against 1 for the others
    af_threshold_from: str = "all"  # "rhythm-labelled": on DS1's windows; "patients": see choose_thresholds
    af_context_s: float = beat_data.AF_CONTEXT_S  # AF decided on the RR of this span ending with the window
    members: int = 1  # MLPs per graph, each from its own seed, their outputs averaged in one graph
    af_p_wave_max: float | None = None  # no AF while the normal beats' P-wave coherence is >= this
    af_p_wave_min_ratio: float | None = None  # no AF while their mean P wave >= this × the QRS (bundle only)
    waveforms: bool = False  # the beat graph also sees each beat's waveform (tables from --waveforms)
    blend: bool = False  # with waveforms: the graph also averages in ``members`` features-only MLPs
    wide_not_s: float | None = None  # a beat this many times the template's QRS width is never S


WAVE_CLIP = 5.0  # the waveform input is clipped to ±this (template amplitudes): an artefact stays bounded
WAVE_LAYERS = ((8, 7), (16, 5), (16, 5))  # (filters, kernel) of the waveform branch's convolutions


class Trained(NamedTuple):
    """A trained graph and its feature standardisation; ``wave_clip`` when it also takes waveforms."""

    model: Any
    mean: np.ndarray
    std: np.ndarray
    wave_clip: float | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """A features-only graph's outputs for unstandardised rows ``x``."""
        return self.model.predict((x - self.mean) / self.std, batch_size=8192, verbose=0)


def patient_folds(rids: list[str], k: int, seed: int) -> list[list[str]]:
    """Records dealt to ``k`` folds in a seeded order; the DS1 AF records go to different folds."""
    rest = sorted(r for r in rids if r not in AF_RECORDS)
    rng = np.random.default_rng(seed)
    rest = [rest[i] for i in rng.permutation(len(rest))]
    folds: list[list[str]] = [[] for _ in range(k)]
    for i, r in enumerate([r for r in AF_RECORDS if r in rids] + rest):
        folds[i % k].append(r)
    return folds


def load_tables(features: Path, rids: list[str], tag: str) -> dict[str, dict[str, np.ndarray]]:
    return {r: dict(np.load(features / f"{r.replace('/', '_')}_{tag}.npz")) for r in rids}


def beat_xy(tables: dict[str, dict], rids: list[str], run_weight: float = 1.0):
    """Beat rows, classes and sample weights: ``run_weight`` for the V beats of a run (≥ 3 consecutive
    reference V beats), which are rare beside isolated PVCs but what a VT alarm needs, else 1."""
    xs, ys, ws = [], [], []
    for r in rids:
        t = tables[r]
        ok = (t["beat_y"] >= 0) & np.isfinite(t["beat_x"]).all(axis=1)
        xs.append(t["beat_x"][ok])
        ys.append(t["beat_y"][ok])
        ws.append(run_weights(t["beat_y"], run_weight)[ok])
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64), np.concatenate(ws)


def waveform_rows(tables: dict[str, dict], rids: list[str], run_weight: float):
    """:func:`beat_xy`'s rows with their waveforms (beats whose features and waveform are known)."""
    xs, ws, ys, wts = [], [], [], []
    for r in rids:
        t = tables[r]
        ok = (t["beat_y"] >= 0) & judged_rows(t, True)
        xs.append(t["beat_x"][ok])
        ws.append(t["beat_wave"][ok])
        ys.append(t["beat_y"][ok])
        wts.append(run_weights(t["beat_y"], run_weight)[ok])
    return np.concatenate(xs), np.concatenate(ws), np.concatenate(ys).astype(np.int64), np.concatenate(wts)


def judged_rows(t: dict, waveforms: bool) -> np.ndarray:
    """The table's beats the daemon judges (``BeatRhythmModel.judge``): features (and waveform) known."""
    ok = np.isfinite(t["beat_x"]).all(axis=1)
    return ok & np.isfinite(t["beat_wave"]).all(axis=(1, 2)) if waveforms else ok


def run_weights(y: np.ndarray, run_weight: float) -> np.ndarray:
    """Per beat: ``run_weight`` for the V beats of a run (≥ 3 consecutive reference V beats), else 1."""
    return np.where(ventricular_run_lengths(y) >= 3, run_weight, 1.0)


def class_weights(y: np.ndarray, cap: float) -> np.ndarray:
    """Per beat: its class's inverse frequency (N, S, V), capped at ``cap``."""
    counts = np.bincount(y, minlength=3).astype(np.float64)
    return np.minimum(counts.sum() / (3 * np.maximum(counts, 1)), cap)[y]


def ventricular_run_lengths(y: np.ndarray) -> np.ndarray:
    """For each beat, the length of the run of consecutive V beats (class 2) it belongs to (0: not V)."""
    is_v = np.asarray(y) == 2
    edges = np.diff(np.concatenate(([0], is_v.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = np.zeros(is_v.size, dtype=np.int64)
    for a, b in zip(starts, stops, strict=True):
        out[a:b] = b - a
    return out


def window_rr(t: dict, exclude_v: bool, context_s: float) -> tuple[np.ndarray, np.ndarray]:
    """A record's window RR features and their validity, from the beat rows (reference positions) of the
    ``context_s`` ending with each window (and the beat before them), as the daemon decides AF; with
    ``exclude_v`` the intervals next to reference V beats are left out."""
    xs, oks = [], []
    zero = np.zeros(len(RR_FEATURES), dtype=np.float32)
    seq = t["beat_seq"]
    stops = t["win_start"] + round(beat_data.WINDOW_S * beat_data.FS)
    for stop in stops:
        lo, hi = np.searchsorted(seq, [stop - round(context_s * beat_data.FS), stop])
        lo = max(lo - 1, 0)
        drop = t["beat_y"][lo:hi] == 2 if exclude_v else np.zeros(hi - lo, bool)
        r = rr_features(rr_between_kept(seq[lo:hi], drop, beat_data.FS)) if hi - lo > 1 else None
        xs.append(r if r is not None else zero)
        oks.append(r is not None)
    return np.array(xs, dtype=np.float32), np.array(oks)


def af_xy(
    tables: dict[str, dict],
    rids: list[str],
    ltaf: dict[str, dict],
    lnames: list[str],
    exclude_v: bool,
    context_s: float,
):
    xs, ys = [], []
    for r in rids:
        t = tables[r]
        wx, wok = window_rr(t, exclude_v, context_s)
        ok = wok & (t["win_y"] >= 0)
        xs.append(wx[ok])
        ys.append((t["win_y"][ok] == LABELS.index("AF")).astype(np.float32))
    for n in lnames:
        x, ok = ltafdb_rr(ltaf[n], exclude_v)
        xs.append(x[ok])
        ys.append(ltaf[n]["af"][ok].astype(np.float32))
    return np.concatenate(xs), np.concatenate(ys)


def ltafdb_rr(t: dict, exclude_v: bool) -> tuple[np.ndarray, np.ndarray]:
    """An LTAFDB table's RR features per window and which windows have enough beats, as the AF graph is
    trained on them: without the intervals next to V beats when ``exclude_v`` (``--rr-exclude-v``).
    Every reader goes through here, so none scores the graph on a series it never saw."""
    return (t["x_nov"], t["ok_nov"]) if exclude_v else (t["x"], t["ok"])


def ltafdb_held_out(p_af: np.ndarray, ok: np.ndarray, af: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LTAFDB patient's held-out P(AF) (0 where a window has too few beats to be judged) and truth,
    as :func:`choose_thresholds` takes them."""
    return np.where(ok, p_af, 0.0), af == 1


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=(n_in,))
    h = inp
    for width in hidden:
        h = keras.layers.Dense(width, activation="relu")(h)
    out = keras.layers.Dense(n_out, activation="softmax" if n_out > 1 else "sigmoid")(h)
    return keras.Model(inp, out)


def fit_beat_model(tables: dict[str, dict], rids: list[str], cfg: BeatTrainConfig, seed: int) -> Trained:
    """The beat graph of ``cfg`` on the beats of ``rids``: the MLP on the features, or with
    ``cfg.waveforms`` the MLP beside a convolutional branch on the waveforms."""
    if cfg.waveforms:
        return fit_waveform_beat(*waveform_rows(tables, rids, cfg.run_weight), cfg, seed)
    return fit_beat(*beat_xy(tables, rids, cfg.run_weight), cfg, seed)


def fit_waveform_beat(
    x: np.ndarray, wave: np.ndarray, y: np.ndarray, w: np.ndarray, cfg: BeatTrainConfig, seed: int
) -> Trained:
    """The beat MLP with a convolutional branch (:data:`WAVE_LAYERS`, global average) on the beat's
    waveform and its difference from the template, trained as :func:`fit_beat` (same weights, members,
    seeds); one graph with two inputs averaging the members. Why: the 13 features summarise a beat's
    shape in a few numbers, and wide or notched ventricular beats a template correlation calls alike
    are told apart by their shape (docs/model-history.md, "The beat's waveform")."""
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-3)
    weight = class_weights(y, cfg.class_weight_cap) * w
    inputs = [(x - mean) / std, np.clip(wave, -WAVE_CLIP, WAVE_CLIP)]

    def build(member_seed: int):
        return _waveform_net(inputs[0].shape[1:], inputs[1].shape[1:], cfg.hidden, member_seed)

    loss = "sparse_categorical_crossentropy"
    model = _members(build, inputs, y, weight, loss, cfg.beat_epochs, cfg, seed)
    if cfg.blend:

        def mlp(member_seed: int):
            return _mlp(x.shape[1], cfg.hidden, 3, member_seed)

        # --blend: alone the waveform graph found more ventricular beats and the MLP more
        # supraventricular ones (docs/model-history.md); their average ships since 2.8.0
        model = _average([model, _members(mlp, inputs[0], y, weight, loss, cfg.beat_epochs, cfg, seed)])
    return Trained(model, mean, std, WAVE_CLIP)


def _waveform_net(feature_shape: tuple, wave_shape: tuple, hidden: tuple[int, ...], seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    fi, wi = keras.Input(shape=feature_shape), keras.Input(shape=wave_shape)
    c = wi
    for i, (filters, kernel) in enumerate(WAVE_LAYERS):
        c = keras.layers.Conv1D(filters, kernel, activation="relu", padding="same")(c)
        if i < len(WAVE_LAYERS) - 1:
            c = keras.layers.MaxPooling1D(2)(c)
    h = keras.layers.Concatenate()([fi, keras.layers.GlobalAveragePooling1D()(c)])
    for width in hidden:
        h = keras.layers.Dense(width, activation="relu")(h)
    return keras.Model([fi, wi], keras.layers.Dense(3, activation="softmax")(h))


def predict_beats(beat: Trained, t: dict) -> tuple[np.ndarray, np.ndarray]:
    """A table's beat probabilities [beats, 3] (zeros where not judged) and which beats were judged."""
    waveforms = beat.wave_clip is not None
    ok = judged_rows(t, waveforms)
    pb = np.zeros((ok.size, 3), dtype=np.float32)
    if ok.any():
        rows = [(t["beat_x"][ok] - beat.mean) / beat.std]
        if waveforms:
            rows.append(np.clip(t["beat_wave"][ok], -beat.wave_clip, beat.wave_clip))
        pb[ok] = beat.model.predict(rows if waveforms else rows[0], batch_size=4096, verbose=0)
    return pb, ok


def fit_beat(x: np.ndarray, y: np.ndarray, w: np.ndarray, cfg: BeatTrainConfig, seed: int):
    """The beat MLP (N, S, V), classes weighted by their inverse frequency (capped), times ``w``."""
    weight = class_weights(y, cfg.class_weight_cap) * w
    return _fit(x, y, cfg.hidden, 3, "sparse_categorical_crossentropy", cfg.beat_epochs, weight, cfg, seed)


def fit_af(x: np.ndarray, y: np.ndarray, cfg: BeatTrainConfig, seed: int):
    """The AF MLP (P(AF)), both classes weighted to half the loss."""
    pos = max(float(y.mean()), 1e-3)
    weights = np.where(y > 0.5, 0.5 / pos, 0.5 / (1 - pos))
    return _fit(x, y, cfg.af_hidden, 1, "binary_crossentropy", cfg.af_epochs, weights, cfg, seed)


def _fit(
    x,
    y,
    hidden,
    n_out: int,
    loss: str,
    epochs: int,
    sample_weight: np.ndarray,
    cfg: BeatTrainConfig,
    seed: int,
):
    """Standardise, then :func:`_members` MLPs; returns the graph with the standardisation (mean, std)."""
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-3)

    def build(member_seed: int):
        return _mlp(x.shape[1], hidden, n_out, member_seed)

    return Trained(_members(build, (x - mean) / std, y, sample_weight, loss, epochs, cfg, seed), mean, std)


def _members(
    build, inputs, y, sample_weight: np.ndarray, loss: str, epochs: int, cfg: BeatTrainConfig, seed: int
):
    """Train ``cfg.members`` graphs from ``build(seed)`` (the first from ``seed``, as one graph always was,
    the others from seeds far from every fold's); returns one graph averaging their outputs, with the
    members' inputs. Why several: with one MLP the seed alone moves the CV more than most recipes do
    (docs/model-history.md), and the average of a few is steadier, at a few kB each."""
    import keras

    members = []
    for m in range(cfg.members):
        model = build(seed + 1000 * m)
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
        model.fit(
            inputs,
            y,
            sample_weight=sample_weight,
            batch_size=cfg.batch_size,
            epochs=epochs,
            verbose=0,
            shuffle=True,
        )
        members.append(model)
    return members[0] if len(members) == 1 else _average(members)


def _average(graphs):
    """One graph whose output is the mean of ``graphs``' outputs. Its inputs are those of the graph with
    the most; a graph with fewer reads the first of them (a features-only MLP beside the two-input
    waveform graph: features come first in both)."""
    import keras

    ins = [keras.Input(shape=tuple(t.shape[1:])) for t in max(graphs, key=lambda g: len(g.inputs)).inputs]

    def first(n: int):
        return ins[:n] if n > 1 else ins[0]

    return keras.Model(first(len(ins)), keras.layers.Average()([g(first(len(g.inputs))) for g in graphs]))


def to_tflite(model, path: Path) -> int:
    """Float32 TFLite (dynamic batch; the daemon fixes it once at load) via a SavedModel."""
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, verbose=False)  # Keras 3: converting a SavedModel is the stable path
        data = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
    path.write_bytes(data)
    return len(data)


def export_bundle(
    out: Path,
    beat,
    af,
    thr: dict[str, float],
    evaluation: dict,
    command: str,
    exclude_v: bool = False,
    context_s: float | None = None,
    relearn: dict | None = None,
    p_wave_max: float | None = None,
    wide_not_s: float | None = None,
    p_wave_min_ratio: float | None = None,
) -> Path:
    """``default.tflite`` (beats), ``default-af.tflite`` and ``default.json`` in ``out``; ``relearn`` is
    what the tables were made with (the daemon's defaults if not given)."""
    out.mkdir(parents=True, exist_ok=True)
    (bm, bmean, bstd, clip), (am, amean, astd, _) = beat, af
    b_bytes = to_tflite(bm, out / "default.tflite")
    a_bytes = to_tflite(am, out / "default-af.tflite")
    meta = {
        "name": NAME,
        "version": VERSION,
        "kind": "beats",
        "sample_rate_hz": 360,
        "window_seconds": 10,
        "input_units": "mV",
        "normalisation": "none",
        "labels": list(LABELS),
        "abnormal_labels": list(ABNORMAL),
        "beat_model": {
            "file": "default.tflite",
            "features": list(BEAT_FEATURES),
            "fiducial": FIDUCIAL,
            "mean": [round(float(v), 6) for v in bmean],
            "std": [round(float(v), 6) for v in bstd],
            "labels": ["N", "S", "V"],
            **({} if clip is None else {"waveform": waveform_contract(clip)}),
        },
        "af_model": {
            "file": "default-af.tflite",
            "features": list(RR_FEATURES),
            "mean": [round(float(v), 6) for v in amean],
            "std": [round(float(v), 6) for v in astd],
            "labels": ["AF"],
        },
        "af_threshold": thr["AF"],
        "af_rr_exclude_v": exclude_v,
        **({} if context_s is None else {"af_context_seconds": context_s}),
        **({} if p_wave_max is None else {"af_p_wave_max": p_wave_max}),
        **({} if p_wave_min_ratio is None else {"af_p_wave_min_ratio": p_wave_min_ratio}),
        "beat_thresholds": {"S": thr["S"], "V": thr["V"]},
        **({} if wide_not_s is None else {"beat_wide_not_s": wide_not_s}),
        "relearn": dataclasses.asdict(RelearnSettings()) if relearn is None else relearn,
        "provenance": {
            "training_data": TRAINING_DATA,
            "code": "training/beat_data.py, training/train_beats.py",
            "command": command,
        },
        "evaluation": {**evaluation, "model_bytes": b_bytes + a_bytes},
    }
    (out / "default.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out / "default.tflite"


def waveform_contract(clip: float) -> dict:
    """``beat_model.waveform``: the second input, as ``ecgd.analysis.beat_model`` checks it."""
    return {"samples": WAVEFORM_SAMPLES, "channels": WAVEFORM_CHANNELS, "rate_hz": WAVEFORM_HZ, "clip": clip}


RHYTHM_LABELLED = beat_eval.RHYTHM_LABELLED
AF_THRESHOLD_FROM = ("all", "rhythm-labelled", "patients")  # how choose_thresholds picks the AF threshold
THRESHOLD_GRID = {
    "S": (0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    "V": (0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    "AF": (0.3, 0.5, 0.7, 0.85, 0.9, 0.95, 0.98),
}


def oof_tables(
    tables: dict[str, dict],
    rid: str,
    beat: Trained,
    af: Trained,
    exclude_v: bool,
    context_s: float,
    wide_not_s: float | None = None,
) -> dict:
    """One held-out record's beat probabilities and window AF probabilities from its feature table
    (with ``wide_not_s``, the daemon's rule that a wide beat is never S applied to the beats)."""
    t = dict(tables[rid])
    t["win_x"], t["win_ok"] = window_rr(t, exclude_v, context_s)
    pb, ok = predict_beats(beat, t)
    pb = wide_not_supraventricular(t["beat_x"], pb, wide_not_s)
    pa = af.predict(t["win_x"])[:, 0]
    return {
        "pb": pb,
        "judged": ok,
        "win": t["beat_win"],
        "seq": t["beat_seq"],
        "p_wave": t["beat_p_wave"],
        "stops": t["win_start"] + round(beat_data.WINDOW_S * beat_data.FS),
        "span": round(context_s * beat_data.FS),
        "pa": pa,
        "win_ok": t["win_ok"],
        "y": t["win_y"],
        "rhythm_labelled": rid.startswith(RHYTHM_LABELLED),
    }


def beat_calls(o: dict, thr: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Which beats the thresholds call V and S (V first), as ``BeatRhythmModel.beat_labels``."""
    v = (o["pb"][:, 2] >= thr["V"]) & o["judged"]
    return v, (o["pb"][:, 1] >= thr["S"]) & o["judged"] & ~v


def atrial_wave(o: dict, thr: dict[str, float], p_wave_max: float | None) -> np.ndarray:
    """The windows whose AF span's normal beats (N at ``thr``) have a P wave: no AF there."""
    if p_wave_max is None:
        return np.zeros(o["y"].size, dtype=bool)
    v, sv = beat_calls(o, thr)
    normal = o["judged"] & ~v & ~sv
    coh = span_p_wave_coherence(o["seq"], normal, o["p_wave"], o["stops"], o["span"], beat_data.FS)
    return coh >= p_wave_max  # NaN (not judged) is not a P wave


def window_predictions(o: dict, thr: dict[str, float], vetoed: np.ndarray | None = None) -> np.ndarray:
    """The classifier's window rule on table probabilities: AF > V > S > N (AF windows: S beats are N),
    no AF in the windows ``vetoed`` by the P-wave rule (:func:`atrial_wave`)."""
    nw = o["y"].size
    v, sv = beat_calls(o, thr)
    any_v = np.zeros(nw, dtype=bool)
    any_s = np.zeros(nw, dtype=bool)
    any_v[o["win"][v]] = True
    any_s[o["win"][sv]] = True
    af = o["win_ok"] & (o["pa"] >= thr["AF"])
    if vetoed is not None:
        af &= ~vetoed
    return np.where(af, 3, np.where(any_v, 2, np.where(any_s, 1, 0)))


def choose_thresholds(
    oofs: list[dict],
    af_from: str = "all",
    p_wave_max: float | None = None,
    ltafdb: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[dict[str, float], float]:
    """The S / V / AF thresholds with the best window macro-F1 over ``oofs`` (ties: the first in the
    grid, i.e. the lowest), with the P-wave rule at ``p_wave_max`` as the daemon applies it. With
    ``af_from="rhythm-labelled"`` the AF threshold is chosen first, by the F1 of AF windows over the
    records with rhythm annotations only (SVDB has none here, so an AF call there is not known to be
    false), and S / V then (tried for 2.1.0, not kept: docs/model-history.md).

    With ``af_from="patients"`` S and V are chosen by macro-F1 for each AF threshold, and the AF
    threshold is the one with the fewest patients whose windows are more than 20 % wrong between AF
    and not AF, counted over the signal records (the window rule, P-wave rule included) and over
    ``ltafdb``'s patients (P(AF) of each window, 0 where it is not judged, and the truth): the signal
    records hold two patients in AF, LTAFDB 84 (ties: the better macro-F1, then the lower threshold)."""
    af_grid = THRESHOLD_GRID["AF"]
    if af_from == "rhythm-labelled":
        labelled = [o for o in oofs if o["rhythm_labelled"]]
        af_truth = np.concatenate([o["y"] for o in labelled]) == LABELS.index("AF")

        def af_f1(ta: float) -> float:
            said = np.concatenate([o["win_ok"] & (o["pa"] >= ta) for o in labelled])
            return 2 * np.sum(said & af_truth) / max(np.sum(said) + np.sum(af_truth), 1)

        af_grid = (max(af_grid, key=lambda ta: (af_f1(ta), -ta)),)
    truth = np.concatenate([o["y"] for o in oofs])
    keep = truth >= 0
    af = LABELS.index("AF")
    if af_from == "patients" and ltafdb is None:
        raise ValueError("af_from='patients' needs the LTAFDB patients' held-out P(AF) and truth")
    scored = [o["y"] >= 0 for o in oofs]
    af_truths = [(o["y"] == af)[k] for o, k in zip(oofs, scored, strict=True)]
    overall: tuple[dict[str, float], float] | None = None
    best: dict[float, tuple[dict[str, float], float, int]] = {}  # per AF threshold: S / V, F1, patients
    for ts in THRESHOLD_GRID["S"]:
        for tv in THRESHOLD_GRID["V"]:
            vetoed = [atrial_wave(o, {"S": ts, "V": tv}, p_wave_max) for o in oofs]
            for ta in af_grid:
                thr = {"S": ts, "V": tv, "AF": ta}
                calls = [window_predictions(o, thr, w) for o, w in zip(oofs, vetoed, strict=True)]
                pred = np.concatenate(calls)[keep]
                t = truth[keep]
                f1 = []
                for c in np.unique(t):
                    tp = np.sum((pred == c) & (t == c))
                    f1.append(2 * tp / max(np.sum(pred == c) + np.sum(t == c), 1))
                if overall is None or np.mean(f1) > overall[1] + 1e-9:
                    overall = thr, float(np.mean(f1))
                if ta not in best or np.mean(f1) > best[ta][1] + 1e-9:
                    wrong = 0
                    if af_from == "patients":
                        af_calls = [(c == af)[k] for c, k in zip(calls, scored, strict=True)]
                        wrong = sum(beat_eval.af_over_wrong(af_calls, af_truths))
                    best[ta] = (thr, float(np.mean(f1)), wrong)
    if ltafdb is not None and af_from == "patients":
        truths = [y for _, y in ltafdb]
        for ta, (thr, f1, wrong) in best.items():
            best[ta] = (thr, f1, wrong + sum(beat_eval.af_over_wrong([p >= ta for p, _ in ltafdb], truths)))
        ta = min(best, key=lambda a: (best[a][2], -round(best[a][1], 9), a))
        return best[ta][0], best[ta][1]
    assert overall is not None
    return overall


def run(args: argparse.Namespace) -> int:
    cfg = BeatTrainConfig(seed=args.seed)
    if args.beat_epochs:
        cfg.beat_epochs = args.beat_epochs
    if args.af_epochs:
        cfg.af_epochs = args.af_epochs
    if args.folds:
        cfg.folds = args.folds
    cfg.rr_exclude_v = args.rr_exclude_v
    if args.af_context:
        cfg.af_context_s = args.af_context
    if args.run_weight:
        cfg.run_weight = args.run_weight
    if args.members:
        cfg.members = args.members
    cfg.af_threshold_from = args.af_threshold_from
    cfg.af_p_wave_max = args.af_p_wave_max
    cfg.af_p_wave_min_ratio = args.af_p_wave_min_ratio
    cfg.waveforms = args.waveforms
    cfg.blend = args.blend
    cfg.wide_not_s = args.beat_wide_not_s
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    features = Path(args.features)
    relearn = beat_data.tables_relearn(features)
    command = " ".join(
        shlex.quote(a) for a in [".venv-train/bin/python", "-m", "training.train_beats", *sys.argv[1:]]
    )
    t0 = time.monotonic()

    def log(msg: str) -> None:
        line = f"[{(time.monotonic() - t0) / 60:5.1f} min] {msg}"
        print(line, flush=True)
        with (out / "log.txt").open("a") as f:
            f.write(line + "\n")

    rids = (
        args.records.split(",")
        if args.records
        else sorted(
            p.name[: -len("_pcf8591.npz")].replace("_", "/", 1) for p in features.glob("*_pcf8591.npz")
        )
    )
    lnames = sorted(p.stem[len("ltafdb_") :] for p in features.glob("ltafdb_*.npz"))
    tables = {tag: load_tables(features, rids, tag) for tag in cfg.frontends}
    stale = [r for t in tables.values() for r, table in t.items() if "beat_p_wave" not in table]
    if stale:
        raise SystemExit(
            f"{features}: the tables of {', '.join(sorted(set(stale))[:3])} … hold no P-wave stretches "
            "(made by an older training.beat_data): rerun python -m training.beat_data"
        )
    if cfg.waveforms and any("beat_wave" not in t for f in tables.values() for t in f.values()):
        raise SystemExit(f"--waveforms needs tables made with beat_data --waveforms; {features} has none")
    # each front end's tables as records of their own: the beat graph learns from all of them
    joined = {f"{tag}:{r}": t for tag, f in tables.items() for r, t in f.items()}
    ltaf = {n: dict(np.load(features / f"ltafdb_{n}.npz")) for n in lnames}
    for n, t in ltaf.items():
        made = float(t.get("context_s", beat_data.WINDOW_S))
        if made != cfg.af_context_s:
            raise SystemExit(
                f"{features}/ltafdb_{n}.npz holds RR features of {made:g}-s spans, this run wants "
                f"{cfg.af_context_s:g} s: rerun python -m training.beat_data --af-context "
                f"{cfg.af_context_s:g}"
            )
    folds = patient_folds(rids, cfg.folds, cfg.seed)
    lfolds = [lnames[k :: cfg.folds] for k in range(cfg.folds)]
    (out / "config.json").write_text(json.dumps({"command": command, **dataclasses.asdict(cfg)}, indent=1))
    log(f"{len(rids)} signal records, {len(lnames)} LTAFDB records; folds {folds}")
    # 1. per fold: train on the other folds, predict the held-out records' feature tables
    models, oof = [], {}
    af_y, af_p, af_ok = [], [], []
    ltaf_oof: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # held-out P(AF) (0: not judged), truth
    for k in [] if args.no_cv else range(cfg.folds):
        train = [r for r in rids if r not in folds[k]]
        ltrain = [n for n in lnames if n not in lfolds[k]]
        ax, ay = _cat(
            [af_xy(tables[t], train, ltaf, ltrain, cfg.rr_exclude_v, cfg.af_context_s) for t in cfg.frontends]
        )
        beat = fit_beat_model(
            joined, [f"{t}:{r}" for t in cfg.frontends for r in train], cfg, cfg.seed + 1 + k
        )
        af = fit_af(ax, ay, cfg, cfg.seed + 1 + k)
        models.append((beat, af))
        for r in folds[k]:
            oof[r] = oof_tables(
                tables["pcf8591"], r, beat, af, cfg.rr_exclude_v, cfg.af_context_s, cfg.wide_not_s
            )
        for n in lfolds[k]:  # AF on held-out LTAFDB patients' RR series
            x, ok = ltafdb_rr(ltaf[n], cfg.rr_exclude_v)
            af_y.append(ltaf[n]["af"])
            af_p.append(af.predict(x)[:, 0])
            af_ok.append(ok)
            ltaf_oof[n] = ltafdb_held_out(af_p[-1], ok, af_y[-1])
        log(f"fold {k + 1}: trained on {len(train)} patients' beats, {len(ax)} RR windows")
    # 2. nested thresholds (each fold's from the other folds' held-out predictions), 3. daemon-path scoring
    windows, windows_det, beats_ref, beats_det, fold_thr = [], [], [], [], []
    for k in range(len(models)):
        others = [oof[r] for j in range(cfg.folds) if j != k for r in folds[j]]
        others_ltaf = [ltaf_oof[n] for j in range(cfg.folds) if j != k for n in lfolds[j]]
        thr, f1 = choose_thresholds(others, cfg.af_threshold_from, cfg.af_p_wave_max, others_ltaf)
        fold_thr.append(thr)
        path = export_bundle(
            out / f"fold{k + 1}",
            *models[k],
            thr,
            {"protocol": "one CV fold"},
            command,
            cfg.rr_exclude_v,
            cfg.af_context_s,
            relearn,
            cfg.af_p_wave_max,
            cfg.wide_not_s,
            cfg.af_p_wave_min_ratio,
        )
        w, b = beat_eval.score_records(path, args.data, folds[k], "reference")
        windows += w
        beats_ref += b
        wm = beat_eval.window_metrics(w)
        log(
            f"fold {k + 1}: thresholds {thr} (other folds' F1 {f1:.3f}); held-out macro-F1 "
            f"{wm['macro_f1']:.3f} "
            + " ".join(f"{c} {_p(wm['per_class'][c]['se'])}/{_p(wm['per_class'][c]['ppv'])}" for c in LABELS)
        )
        if not args.no_detector:
            wd, bd = beat_eval.score_records(path, args.data, folds[k], "detector")
            windows_det += wd
            beats_det += bd
        (out / "cv_rows.json").write_text(
            json.dumps(
                {
                    "windows": windows,
                    "windows_detector": windows_det,
                    "beats_reference": beats_ref,
                    "beats_detector": beats_det,
                }
            )
            + "\n"
        )
    evaluation: dict = {"protocol": "no cross-validation run"}
    final_thr = {"S": 0.5, "V": 0.5, "AF": 0.5}
    if windows:
        final_thr, _ = choose_thresholds(
            list(oof.values()), cfg.af_threshold_from, cfg.af_p_wave_max, list(ltaf_oof.values())
        )
        wm = beat_eval.window_metrics(windows)
        bm = beat_eval.beat_metrics(beats_ref)
        bd = beat_eval.beat_metrics(beats_det) if beats_det else None
        afm_nested = None
        if af_y:
            lf = [n for k in range(cfg.folds) for n in lfolds[k]]
            thr_per = np.concatenate(
                [np.full(ltaf[n]["af"].size, fold_thr[k]["AF"]) for k in range(cfg.folds) for n in lfolds[k]]
            )
            assert len(lf) == len(af_y)
            afm_nested = beat_eval.af_metrics(
                np.concatenate(af_y), np.concatenate(af_p) - thr_per + 0.5, np.concatenate(af_ok), 0.5
            )
        log("CV (reference beats, 8-bit front end):\n" + beat_eval.format_report(wm, bm, afm_nested))
        if bd:
            log(
                f"beats through the QRS detector: VEB {_p(bd['VEB']['se'])}/{_p(bd['VEB']['ppv'])} "
                f"SVEB {_p(bd['SVEB']['se'])}/{_p(bd['SVEB']['ppv'])}"
            )
        evaluation = {
            "protocol": (
                f"patient-wise {cfg.folds}-fold CV over {len(rids)} patients (MIT-BIH DS1 + SVDB), "
                "each fold's TFLite bundle (thresholds chosen on the other folds' held-out predictions) "
                "scored through the daemon's path (ecgd.offline.classify_recording, 8-bit front end, "
                "quality gate on, non-overlapping 10-s windows, reference beat positions); AF also on "
                f"LTAFDB's {len(lnames)} patients' RR series (5 folds by patient)"
            ),
            "frontend": "pcf8591-8bit",
            "folds": folds,
            "fold_thresholds": fold_thr,
            "windows": wm["windows"],
            "per_class": wm["per_class"],
            "macro_f1": wm["macro_f1"],
            "confusion": wm["confusion"],
            "patients": wm["patients"],
            "patients_over_10pct": wm["patients_over_10pct"],
            "patients_over_20pct": wm["patients_over_20pct"],
            "per_patient_error": {r: round(v["error"], 4) for r, v in wm["per_patient"].items()},
            "beats_reference": {k: bm[k] for k in ("N", "SVEB", "VEB")},
            "beats_detector": {k: bd[k] for k in ("N", "SVEB", "VEB")} if bd else None,
            "stream": _stream_summary(windows_det) if windows_det else None,
            "af_ltafdb": afm_nested,
            "anchors": beat_eval.ANCHORS,
        }
        (out / "cv_metrics.json").write_text(json.dumps(evaluation, indent=1) + "\n")
        _plots(out, wm, evaluation)
    if args.no_final:
        return 0
    ax, ay = _cat(
        [af_xy(tables[t], rids, ltaf, lnames, cfg.rr_exclude_v, cfg.af_context_s) for t in cfg.frontends]
    )
    beat = fit_beat_model(joined, [f"{t}:{r}" for t in cfg.frontends for r in rids], cfg, cfg.seed)
    af = fit_af(ax, ay, cfg, cfg.seed)
    path = export_bundle(
        out / "final",
        beat,
        af,
        final_thr,
        evaluation,
        command,
        cfg.rr_exclude_v,
        cfg.af_context_s,
        relearn,
        cfg.af_p_wave_max,
        cfg.wide_not_s,
        cfg.af_p_wave_min_ratio,
    )
    size = json.loads((path.parent / "default.json").read_text())["evaluation"]["model_bytes"]
    log(f"final bundle {path.parent}: {size} bytes, thresholds {final_thr}")
    if args.ship:
        ship(out)
        log(f"shipped {out / 'final'} to ecgd/models/")
    return 0


def ship(run_dir: Path) -> None:
    dest = REPO / "ecgd" / "models"
    for name in ("default.tflite", "default-af.tflite", "default.json"):
        shutil.copyfile(run_dir / "final" / name, dest / name)
    docs = REPO / "docs" / "model"
    docs.mkdir(parents=True, exist_ok=True)
    for name in ("confusion.png", "per_patient.png"):
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, docs / name)


def _plots(out: Path, wm: dict, ev: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    m = np.array(wm["confusion"])
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.imshow(m / np.maximum(m.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    cols = wm["confusion_columns"]
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(LABELS)), LABELS)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(f"{NAME}@{VERSION}: patient-wise CV, {wm['windows']} windows")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)
    per = sorted(wm["per_patient"].items(), key=lambda kv: -kv[1]["error"])
    fig, ax = plt.subplots(figsize=(12, 3.6))
    ax.bar(range(len(per)), [100 * v["error"] for _, v in per], color="tab:red")
    ax.axhline(20, color="k", lw=0.8, ls="--")
    ax.axhline(10, color="k", lw=0.5, ls=":")
    ax.set_xticks(
        range(len(per)), [r.split("/")[0][0] + r.split("/")[1] for r, _ in per], rotation=90, fontsize=6
    )
    ax.set_ylabel("% windows wrong")
    ax.set_title(
        f"per-patient error (CV): {ev['patients_over_20pct']} of {ev['patients']} patients > 20 %, "
        f"{ev['patients_over_10pct']} > 10 % (m = mitdb, s = svdb)"
    )
    fig.tight_layout()
    fig.savefig(out / "per_patient.png", dpi=110)
    plt.close(fig)


def _stream_summary(rows: list[dict]) -> dict:
    """Window figures of the daemon's own path (the beat stage's beats, labelled as they come)."""
    wm = beat_eval.window_metrics(rows)
    keys = ("windows", "per_class", "macro_f1", "patients", "patients_over_10pct", "patients_over_20pct")
    return {
        **{k: wm[k] for k in keys},
        "per_patient_error": {r: round(v["error"], 4) for r, v in wm["per_patient"].items()},
    }


def width_ratio_limit(text: str) -> float:
    """``--beat-wide-not-s T``: a QRS width ratio above 1 (the bundle's loader refuses any other; say so
    before a run of many minutes, not after)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a width ratio above 1, such as 1.7")
    return value


class _Blend(argparse.Action):
    """``--blend`` is ``--waveforms`` and more: set both, so no caller has to remember the implication."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.blend = namespace.waveforms = True


def add_recipe_options(p: argparse.ArgumentParser) -> None:
    """The recipe's options that train_beats and screen share, defined once: what the beat graph sees,
    the wide-beat rule and how the AF threshold is chosen."""
    p.add_argument(
        "--af-threshold-from",
        choices=AF_THRESHOLD_FROM,
        default=AF_THRESHOLD_FROM[0],
        help="choose the AF threshold with the S/V ones on all windows (default), first on DS1's, or by "
        "the fewest patients > 20 %% wrong between AF and not, over the signal records and LTAFDB (shipped)",
    )
    p.add_argument(
        "--waveforms",
        action="store_true",
        help="the beat graph also sees each beat's waveform (tables from beat_data --waveforms)",
    )
    p.add_argument(
        "--blend",
        action=_Blend,
        help="--waveforms, and the graph also averages in as many features-only MLPs (shipped)",
    )
    p.add_argument(
        "--beat-wide-not-s",
        type=width_ratio_limit,
        help="a beat at least this many times the template's QRS width is never S (bundle "
        "`beat_wide_not_s`; default: no such rule)",
    )


def _cat(parts):
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(parts[0])))


def _p(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.train_beats", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--features", default="runs/features")
    p.add_argument("--out", default="runs/beats")
    p.add_argument("--records", help="comma-separated signal record ids (default: all feature tables)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beat-epochs", type=int)
    p.add_argument("--af-epochs", type=int)
    p.add_argument("--folds", type=int, help="number of patient folds (default 5)")
    p.add_argument("--rr-exclude-v", action="store_true", help="AF from the RR between non-V beats only")
    p.add_argument(
        "--af-context",
        type=float,
        help=f"seconds of RR series per AF decision (default {beat_data.AF_CONTEXT_S:g})",
    )
    p.add_argument("--run-weight", type=float, help="weight of V beats in runs of >= 3 (default 5)")
    p.add_argument("--members", type=int, help="MLPs averaged in each graph, one seed each (default 1)")
    p.add_argument(
        "--af-p-wave-max",
        type=float,
        help="no AF while the normal beats' P-wave coherence is at least this (bundle `af_p_wave_max`; "
        "default: no such rule)",
    )
    p.add_argument(
        "--af-p-wave-min-ratio",
        type=float,
        help="no AF while the normal beats' mean P wave (RMS, noise averaged out) is at least this share of "
        "the QRS amplitude (bundle `af_p_wave_min_ratio`; not used to choose the thresholds; default: no "
        "such rule)",
    )
    add_recipe_options(p)
    p.add_argument("--no-cv", action="store_true")
    p.add_argument("--no-final", action="store_true")
    p.add_argument("--no-detector", action="store_true", help="score beats with reference positions only")
    p.add_argument("--ship", action="store_true", help="copy the final bundle to ecgd/models/")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
