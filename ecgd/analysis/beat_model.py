"""The beat-aware model bundle (``"kind": "beats"``): a beat classifier and an AF detector on features.

Two small TFLite graphs take feature vectors, not samples: the beat model the
:data:`~ecgd.analysis.beat_features.BEAT_FEATURES` of each beat (-> N, S, V), the AF model the
:data:`~ecgd.analysis.rhythm.RR_FEATURES` of a window's RR series (-> P(AF)). A beat graph may also take
each beat's waveform (``beat_model.waveform`` in the metadata: the beat's segment and its difference
from the patient's template, :attr:`~ecgd.analysis.beat_features.BeatFeatures.waveform`), a second
input of [batch, samples, 2] (the bundled model's since 2.8.0; 2.7.0 and before took the features
alone). With
``beat_wide_not_s`` a beat much wider than the template is never S (:func:`wide_not_supraventricular`).
The metadata names the feature order and their standardisation (mean, std), checked against the code's
feature lists at load time, so a model trained on other features cannot be run silently. The beat
graph's batch is fixed once at load (padding instead of re-allocating tensors per window).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ecgd.analysis.beat_features import (
    BEAT_FEATURES,
    FIDUCIAL,
    WAVEFORM_HZ,
    WAVEFORM_SAMPLES,
    BeatFeatures,
    RelearnSettings,
)
from ecgd.analysis.model import (
    MetadataFacts,
    ModelError,
    ModelMetadata,
    interpreter_class,
    open_interpreter,
)
from ecgd.analysis.rhythm import RR_FEATURES

BEAT_CLASSES: tuple[str, ...] = ("N", "S", "V")
MAX_AF_CONTEXT_S = 80.0  # the labeller keeps 90 s of labelled beats: a context plus a hop must fit
OLD_FIDUCIAL = "largest_deflection"  # what bundles before 2.4.0 (no such field) were cut around
BEAT_BATCH = 64  # beats per invocation (a 10-s window holds ≤ 50 even at 300/min; more are chunked)


@dataclass(frozen=True)
class FeatureGraph:
    """One feature graph's part of the metadata."""

    file: str
    features: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    labels: tuple[str, ...]
    waveform_clip: float | None = None  # a second input, the beat's waveform, clipped to ±this (None: none)


WAVEFORM_CHANNELS = 2  # the beat over the template's amplitude, and its difference from the template


@dataclass(frozen=True)
class BeatRhythmMetadata(ModelMetadata):
    beat: FeatureGraph | None = None
    af: FeatureGraph | None = None
    af_threshold: float = 0.5
    beat_thresholds: dict[str, float] | None = None  # a beat is S / V when its probability ≥ this
    wide_not_s: float | None = None  # a beat this many times the template's QRS width is never S (None: off)
    af_rr_exclude_v: bool = False  # AF features from the RR intervals between non-V beats only
    af_context_s: float | None = None  # seconds of RR ending with the window per AF decision (None: window)
    af_p_wave_max: float | None = None  # no AF while the normal beats' P-wave coherence is ≥ this (None: off)
    # no AF while their mean P wave (RMS, noise averaged out) is ≥ this × the QRS (None: off; noise-robust)
    af_p_wave_min_ratio: float | None = None
    trained_relearn: RelearnSettings | None = None  # the relearn settings of the tables it learned from

    def relearn_differences(self, running: RelearnSettings) -> list[str]:
        """Each relearn setting that differs from the one the graphs were trained with, as
        ``'name VALUE (trained with VALUE)'``: the beat features then follow another rule than the model
        learned (a changed ``former_templates`` moves ``corr_qrs`` and its neighbours)."""
        if self.trained_relearn is None:
            return []
        now, then = asdict(running), asdict(self.trained_relearn)
        return [f"{k} {now[k]!r} (trained with {v!r})" for k, v in then.items() if now[k] != v]


def _trained_relearn(raw: Any, problems: list[str]) -> RelearnSettings | None:
    """The metadata's ``relearn`` (absent in older bundles): known fields only, each in range."""
    if raw is None:
        return None
    known = {f.name for f in fields(RelearnSettings)}
    try:
        settings = RelearnSettings(**{k: v for k, v in dict(raw).items() if k in known})
        found = settings.problems()
    except (TypeError, ValueError) as exc:
        found = [repr(exc)]
    if found:
        problems.append("'relearn': " + "; ".join(found))
        return None
    return settings


def _with_waveform(fg: FeatureGraph, raw: Any, problems: list[str]) -> FeatureGraph:
    """``beat_model.waveform``: the waveform this ecgd computes (samples, channels, rate), and its clip."""
    want = {"samples": WAVEFORM_SAMPLES, "channels": WAVEFORM_CHANNELS, "rate_hz": WAVEFORM_HZ}
    if not isinstance(raw, dict):
        problems.append("'beat_model.waveform' must be an object (samples, channels, rate_hz, clip)")
        return fg
    differ = {k: raw.get(k) for k, v in want.items() if raw.get(k) != v}
    if differ:
        problems.append(f"'beat_model.waveform' {differ} is not the waveform this ecgd computes {want}")
    clip = raw.get("clip")
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0:
        problems.append(f"'beat_model.waveform.clip' must be a number > 0, got {clip!r}")
        return fg
    return dataclasses.replace(fg, waveform_clip=float(clip))


def parse_metadata(path: Path, raw: dict[str, Any], base: ModelMetadata) -> BeatRhythmMetadata:
    problems = []

    def graph(key: str, features: tuple[str, ...]) -> FeatureGraph | None:
        g = raw.get(key)
        if not isinstance(g, dict):
            problems.append(f"'{key}' must be an object (file, features, mean, std, labels)")
            return None
        try:
            fg = FeatureGraph(
                str(g["file"]),
                tuple(g["features"]),
                np.asarray(g["mean"], dtype=np.float32),
                np.asarray(g["std"], dtype=np.float32),
                tuple(g["labels"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"'{key}': {exc!r}")
            return None
        if fg.features != features:
            problems.append(
                f"'{key}.features' {list(fg.features)} are not the features this ecgd computes "
                f"{list(features)}"
            )
        if key == "beat_model" and g.get("fiducial", OLD_FIDUCIAL) != FIDUCIAL:
            problems.append(
                f"'beat_model.fiducial' {g.get('fiducial', OLD_FIDUCIAL)!r}: its beats were cut around "
                f"another point than this ecgd's {FIDUCIAL!r} (retrain on tables made by this version)"
            )
        if key == "beat_model" and "waveform" in g:
            fg = _with_waveform(fg, g["waveform"], problems)
        if fg.mean.shape != (len(features),) or fg.std.shape != (len(features),) or np.any(fg.std <= 0):
            problems.append(f"'{key}.mean'/'std' must hold {len(features)} values (std > 0)")
        return fg

    beat = graph("beat_model", BEAT_FEATURES)
    af = graph("af_model", RR_FEATURES)
    if beat is not None and beat.labels != BEAT_CLASSES:
        problems.append(f"'beat_model.labels' must be {list(BEAT_CLASSES)}, got {list(beat.labels)}")
    if base.labels != ("N", "S", "V", "AF"):
        problems.append(f"'labels' must be ['N', 'S', 'V', 'AF'] for a beats model, got {list(base.labels)}")
    thr = raw.get("af_threshold", 0.5)
    if not isinstance(thr, (int, float)) or not 0 < thr < 1:
        problems.append(f"'af_threshold' must be a number in (0, 1), got {thr!r}")
    ctx = raw.get("af_context_seconds")
    if ctx is not None and (
        not isinstance(ctx, (int, float)) or not base.window_seconds <= ctx <= MAX_AF_CONTEXT_S
    ):
        problems.append(
            f"'af_context_seconds' must be a number from window_seconds ({base.window_seconds:g}) to "
            f"{MAX_AF_CONTEXT_S:g}, got {ctx!r}"
        )
    p_max = raw.get("af_p_wave_max")
    if p_max is not None and (
        isinstance(p_max, bool) or not isinstance(p_max, (int, float)) or not 0 < p_max <= 1
    ):
        problems.append(f"'af_p_wave_max' must be a number in (0, 1] or absent, got {p_max!r}")
    ratio = raw.get("af_p_wave_min_ratio")
    if ratio is not None and (
        isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1
    ):
        problems.append(f"'af_p_wave_min_ratio' must be a number in (0, 1) or absent, got {ratio!r}")
    wide = raw.get("beat_wide_not_s")
    if wide is not None and (isinstance(wide, bool) or not isinstance(wide, (int, float)) or not wide > 1):
        problems.append(f"'beat_wide_not_s' must be a number > 1 (a QRS width ratio) or absent, got {wide!r}")
    relearn = _trained_relearn(raw.get("relearn"), problems)
    if problems:
        raise ModelError(f"{path}: invalid model metadata: " + "; ".join(problems))
    fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
    return BeatRhythmMetadata(
        **fields,
        beat=beat,
        af=af,
        af_threshold=float(thr),
        beat_thresholds=raw.get("beat_thresholds"),
        wide_not_s=None if wide is None else float(wide),
        af_rr_exclude_v=bool(raw.get("af_rr_exclude_v", False)),
        af_context_s=None if ctx is None else float(ctx),
        af_p_wave_max=None if p_max is None else float(p_max),
        af_p_wave_min_ratio=None if ratio is None else float(ratio),
        trained_relearn=relearn,
    )


class _Graph:
    """A fixed-batch feature graph: [batch, features] float32 in (and, for a beat graph with a waveform,
    [batch, samples, 2]), [batch, classes] probabilities out."""

    def __init__(self, path: Path, spec: FeatureGraph, cls: type, num_threads: int, batch: int) -> None:
        self._interp = open_interpreter(path, cls, num_threads)
        ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        want = [2] if spec.waveform_clip is None else [2, 3]
        if sorted(len(i["shape"]) for i in ins) != want or len(outs) != 1:
            shapes = " and ".join(str(list(i["shape"])) for i in ins)
            expected = "one [batch, features] input"
            if len(want) == 2:
                expected = "a [batch, features] and a [batch, samples, 2] input"
            raise ModelError(
                f"{path}: expected {expected} and one output tensor; the graph has "
                f"{shapes or 'no input'} and {len(outs)} output(s)"
            )
        if int(ins[0].get("shape_signature", ins[0]["shape"])[0]) == -1 and batch > 1:
            # a dynamic batch: fix it once here (re-allocating per window would cost more than the graph)
            for i in ins:
                self._interp.resize_tensor_input(i["index"], [batch, *(int(v) for v in i["shape"][1:])])
            self._interp.allocate_tensors()
            ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        by_rank = {len(i["shape"]): i for i in ins}  # the graph's own input order is the converter's
        self._in, self._wave_in, self._out = by_rank[2], by_rank.get(3), outs[0]
        batch, n_feat = (int(v) for v in self._in["shape"])
        n_out = int(self._out["shape"][-1])
        wave_ok = self._wave_in is None or (
            [int(v) for v in self._wave_in["shape"]] == [batch, WAVEFORM_SAMPLES, WAVEFORM_CHANNELS]
            and self._wave_in["dtype"] == np.float32
        )
        if (
            n_feat != len(spec.features)
            or n_out != len(spec.labels)
            or self._in["dtype"] != np.float32
            or not wave_ok
        ):
            raise ModelError(
                f"{path}: model does not match its metadata: inputs "
                f"{' and '.join(str(list(i['shape'])) for i in ins)} "
                f"{np.dtype(self._in['dtype']).name}, output {n_out} values; the metadata says float32 "
                f"[batch, {len(spec.features)}]"
                + ("" if spec.waveform_clip is None else f" and [batch, {WAVEFORM_SAMPLES}, 2]")
                + f" -> {len(spec.labels)} ({', '.join(spec.labels)})"
            )
        self.batch = batch
        self.spec = spec
        self.bytes = path.stat().st_size
        self._buf = np.zeros((batch, n_feat), dtype=np.float32)
        self._wave_buf = np.zeros((batch, WAVEFORM_SAMPLES, WAVEFORM_CHANNELS), dtype=np.float32)

    def __call__(self, x: np.ndarray, wave: np.ndarray | None = None) -> np.ndarray:
        x = (np.asarray(x, dtype=np.float32) - self.spec.mean) / self.spec.std
        if self._wave_in is not None:
            if wave is None or wave.shape != (x.shape[0], WAVEFORM_SAMPLES, WAVEFORM_CHANNELS):
                raise ValueError(
                    f"this beat graph needs each beat's waveform [{x.shape[0]}, {WAVEFORM_SAMPLES}, 2]"
                )
            clip = self.spec.waveform_clip
            wave = np.clip(np.asarray(wave, dtype=np.float32), -clip, clip)
        out = np.zeros((x.shape[0], len(self.spec.labels)), dtype=np.float32)
        for i in range(0, x.shape[0], self.batch):
            part = x[i : i + self.batch]
            self._buf[:] = 0.0
            self._buf[: part.shape[0]] = part
            self._interp.set_tensor(self._in["index"], self._buf)
            if self._wave_in is not None:
                self._wave_buf[:] = 0.0
                self._wave_buf[: part.shape[0]] = wave[i : i + self.batch]
                self._interp.set_tensor(self._wave_in["index"], self._wave_buf)
            self._interp.invoke()
            out[i : i + part.shape[0]] = self._interp.get_tensor(self._out["index"])[: part.shape[0]]
        return out


class BeatRhythmModel(MetadataFacts):
    """The loaded bundle; the same attributes the daemon reads from a waveform :class:`Model`."""

    kind = "beats"

    def __init__(
        self,
        path: Path,
        metadata: BeatRhythmMetadata,
        backend: str | None = None,
        num_threads: int = 1,
        meta_dir: Path | None = None,
    ) -> None:
        """``path`` is the beat graph (the file ``model.path`` names); the AF graph is the metadata's
        ``af_model.file``, relative to the metadata file's folder."""
        self.path = path
        self.metadata = metadata
        cls, self.backend = interpreter_class(backend)
        assert metadata.beat is not None and metadata.af is not None
        af_path = (meta_dir or path.parent) / metadata.af.file
        self.beat_graph = _Graph(path, metadata.beat, cls, num_threads, BEAT_BATCH)
        self.af_graph = _Graph(af_path, metadata.af, cls, num_threads, 1)

    @property
    def input_dtype(self) -> str:
        return "float32 features and waveforms" if self.needs_waveforms else "float32 features"

    @property
    def total_bytes(self) -> int:
        return self.beat_graph.bytes + self.af_graph.bytes

    @property
    def needs_waveforms(self) -> bool:
        """The beat graph also takes each beat's waveform (``BeatAnalyzer(waveforms=True)``)."""
        return self.beat_graph.spec.waveform_clip is not None

    def beat_probs(self, x: np.ndarray, wave: np.ndarray | None = None) -> np.ndarray:
        """[beats, 3] probabilities (N, S, V) for [beats, len(BEAT_FEATURES)] features (and, when the
        graph takes it, [beats, samples, 2] waveforms)."""
        if x.shape[0] == 0:
            return np.zeros((0, len(BEAT_CLASSES)), dtype=np.float32)
        return wide_not_supraventricular(x, self.beat_graph(x, wave), self.metadata.wide_not_s)

    def judge(self, f: BeatFeatures) -> tuple[np.ndarray, np.ndarray]:
        """Which of an analysed window's beats can be judged (features, and the waveform if the graph
        takes it, all known: a template exists) and their [judged, 3] probabilities."""
        judged = ~np.isnan(f.x).any(axis=1)
        wave = None
        if self.needs_waveforms:
            if f.waveform is None:
                raise ValueError("this beat graph needs the beats' waveforms: BeatAnalyzer(waveforms=True)")
            judged &= ~np.isnan(f.waveform).any(axis=(1, 2))
            wave = f.waveform[judged]
        return judged, self.beat_probs(f.x[judged], wave)

    def af_prob(self, r: np.ndarray) -> float:
        return float(self.af_graph(np.asarray(r, dtype=np.float32)[None, :])[0, -1])

    def beat_labels(self, probs: np.ndarray) -> np.ndarray:
        """N / S / V per beat: S or V when its probability reaches the metadata's threshold (V first)."""
        thr = self.metadata.beat_thresholds
        if not thr:
            return np.asarray(BEAT_CLASSES)[np.argmax(probs, axis=1)] if probs.size else np.array([], str)
        out = np.full(probs.shape[0], "N", dtype="<U1")
        out[probs[:, 1] >= thr["S"]] = "S"
        out[probs[:, 2] >= thr["V"]] = "V"
        return out


WIDTH_RATIO = BEAT_FEATURES.index("width_ratio")


def wide_not_supraventricular(x: np.ndarray, probs: np.ndarray, limit: float | None) -> np.ndarray:
    """The beat probabilities with P(S) counted as P(V) for each beat whose QRS is at least ``limit``
    times as wide as the patient's template (``width_ratio``). Why: a supraventricular beat is
    conducted normally, so a complex that wide is ventricular unless aberrant, and a graph that learned
    80 patients' beats can call an unfamiliar wide complex ``S`` (a constructed wide-complex
    tachycardia: docs/model-history.md); calling a rare aberrant beat ``V`` costs less than a missed VT."""
    if limit is None or probs.shape[0] == 0:
        return probs
    wide = np.asarray(x)[:, WIDTH_RATIO] >= limit
    out = probs.copy()
    out[wide, 2] += out[wide, 1]
    out[wide, 1] = 0.0
    return out


def load_beat_model(path: Path, meta_path: Path, base: ModelMetadata, backend: str | None) -> BeatRhythmModel:
    raw = json.loads(meta_path.read_text())
    return BeatRhythmModel(path, parse_metadata(meta_path, raw, base), backend, meta_dir=meta_path.parent)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - t) * 1000.0
