"""The 1D CNN: per-window standardisation inside the graph, so the daemon feeds plain millivolts."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from training.data import WINDOW


@dataclass(frozen=True)
class ModelConfig:
    """Width and depth; the defaults give ~83k parameters (~340 kB as float32 .tflite, ~120 kB as int8)."""

    filters: tuple[int, ...] = (16, 24, 32, 48, 64, 64)
    kernels: tuple[int, ...] = (9, 7, 5, 5, 3, 3)
    dilations: tuple[int, ...] = (2, 4, 8)
    pooling: str = "mixed"  # "absolute": avg+max of the features; "relative", "mixed": see build_model
    dense: int = 32
    dropout: float = 0.3
    n_classes: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


def build_model(cfg: ModelConfig | None = None, seed: int = 0):
    """Standardise → conv blocks (each halving the rate) → dilated convs → pooling → dense → softmax.

    The standardisation is ``LayerNormalization`` over time without scale or offset: exactly the per-window
    z-score, built from ops every TFLite runtime has, so no custom layer is needed to reload the model.
    A strided first convolution and five poolings take 3600 samples to 56 steps of ~0.18 s; the last
    convolutions are dilated so that a unit sees several RR intervals, which the AF class needs.
    """
    import keras
    from keras import layers

    cfg = cfg or ModelConfig()
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=(WINDOW, 1), name="ecg_mv")
    x = layers.LayerNormalization(axis=(1, 2), center=False, scale=False, epsilon=1e-4, name="standardise")(
        inp
    )
    for i, (f, k) in enumerate(zip(cfg.filters, cfg.kernels, strict=True)):
        stride = 2 if i == 0 else 1  # 360 Hz is oversampled for a 40 Hz band: halve it at once
        x = layers.Conv1D(f, k, strides=stride, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i < len(cfg.filters) - 1:
            x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
    for j, d in enumerate(cfg.dilations):
        x = layers.Conv1D(
            cfg.filters[-1], 3, dilation_rate=d, padding="same", use_bias=False, name=f"dil{j}"
        )(x)
        x = layers.BatchNormalization(name=f"dbn{j}")(x)
        x = layers.ReLU(name=f"drelu{j}")(x)
    if cfg.pooling in ("relative", "mixed"):
        # Each feature standardised over the window's own time course, then its most extreme excursions:
        # "how unlike this window's typical beat is its most unusual beat". Meant to make a patient whose
        # every beat is wide (bundle branch block) look like any other regular rhythm, not like PVCs.
        z = layers.LayerNormalization(axis=1, center=False, scale=False, epsilon=1e-3, name="relative")(x)
        neg = layers.Rescaling(-1.0, name="negate")(z)
        pooled = [layers.GlobalMaxPooling1D()(z), layers.GlobalMaxPooling1D()(neg)]
        if cfg.pooling == "mixed":  # plus the absolute summaries, for what only absolute shape tells
            pooled += [layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)]
        x = layers.Concatenate(name="pool")(pooled)
    else:
        x = layers.Concatenate(name="pool")(
            [layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)]
        )
    x = layers.Dropout(cfg.dropout, seed=seed)(x)
    x = layers.Dense(cfg.dense, activation="relu", name="fc")(x)
    x = layers.Dropout(cfg.dropout, seed=seed + 1)(x)
    logits = layers.Dense(cfg.n_classes, name="logits")(x)
    out = layers.Softmax(name="probabilities")(logits)
    return keras.Model(inp, out, name="ecgd_rhythm_cnn")


def apply_prior_shift(model, log_weights: np.ndarray) -> None:
    """Add ``log_weights`` to the logits' bias: softmax(z + log w) = renormalised w * p.

    This bakes class weights chosen on the validation folds into the shipped graph, so the daemon's plain
    argmax already uses them and no threshold has to travel in the metadata.
    """
    layer = model.get_layer("logits")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + np.asarray(log_weights, dtype=bias.dtype)])
