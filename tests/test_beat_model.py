"""The bundled beat-aware model (ecgd-rhythm 2.x) through the real TFLite interpreter and the classifier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ecg_synth import FS, synth_ecg

from ecgd.analysis.beat_features import (
    BEAT_FEATURES,
    FIDUCIAL,
    WAVEFORM_HZ,
    WAVEFORM_SAMPLES,
    RelearnSettings,
)
from ecgd.analysis.beat_model import WAVEFORM_CHANNELS, BeatRhythmModel
from ecgd.analysis.classifier import UNCLASSIFIED, WindowClassifier
from ecgd.analysis.model import ModelError, load_model
from ecgd.analysis.quality import QualitySettings
from ecgd.config import BUNDLED_MODEL


@pytest.fixture(scope="module")
def model() -> BeatRhythmModel:
    m = load_model(BUNDLED_MODEL)
    assert isinstance(m, BeatRhythmModel)
    return m


def windows(clf: WindowClassifier, x: np.ndarray, beats_s: np.ndarray | None = None, seconds: float = 10.0):
    n = round(seconds * FS)
    seqs = None if beats_s is None else np.round(beats_s * FS).astype(np.int64)
    out = []
    for start in range(0, x.size - n + 1, n):
        inside = None if seqs is None else seqs[(seqs >= start) & (seqs < start + n)]
        out.append(clf.classify(x[start : start + n].astype(np.float32), None, start, inside))
    return out


def test_bundle_is_the_shipped_version_and_within_budget(model: BeatRhythmModel):
    assert model.metadata.ident == "ecgd-rhythm@2.9.1"
    assert model.labels == ("N", "S", "V", "AF")
    assert model.metadata.beat is not None and model.metadata.beat.features == BEAT_FEATURES
    assert model.total_bytes <= 500_000
    assert model.needs_waveforms  # since 2.8.0 it also sees each beat's waveform
    assert model.input_dtype == "float32 features and waveforms"  # as the start record says
    assert load_model(FEATURES_BUNDLE).input_dtype == "float32 features"
    wave = np.zeros((70, WAVEFORM_SAMPLES, WAVEFORM_CHANNELS), dtype=np.float32)
    p = model.beat_probs(np.ones((70, len(BEAT_FEATURES)), dtype=np.float32), wave)  # > one batch of 64
    assert p.shape == (70, 3) and np.allclose(p.sum(axis=1), 1.0, atol=1e-3)
    assert np.allclose(p[0], p[69])


def test_relearn_settings_other_than_the_trained_ones_are_named(model: BeatRhythmModel):
    """The bundle records the relearn settings of its training tables; the daemon names each one that
    the configuration changes (a different rule moves the morphology features the graph learned)."""
    meta = model.metadata
    assert meta.trained_relearn == RelearnSettings()  # 2.9.1 was trained on the default tables
    assert meta.relearn_differences(RelearnSettings()) == []
    differ = meta.relearn_differences(RelearnSettings(former_templates=0, learn_seconds=30.0))
    assert differ == ["learn_seconds 30.0 (trained with 60.0)", "former_templates 0 (trained with 2)"]


def test_a_bundle_with_bad_relearn_settings_is_refused(tmp_path: Path):
    for name in ("default.tflite", "default-af.tflite"):
        shutil.copyfile(BUNDLED_MODEL.parent / name, tmp_path / name)
    meta = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
    meta["relearn"]["former_templates"] = 99
    (tmp_path / "default.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"'relearn': former_templates: 99"):
        load_model(tmp_path / "default.tflite")


def test_a_bundle_for_other_features_is_refused(tmp_path: Path):
    for name in ("default.tflite", "default-af.tflite"):
        shutil.copyfile(BUNDLED_MODEL.parent / name, tmp_path / name)
    meta = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
    meta["beat_model"]["features"] = list(reversed(meta["beat_model"]["features"]))
    (tmp_path / "default.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"beat_model\.features"):
        load_model(tmp_path / "default.tflite")
    meta["beat_model"]["features"] = list(BEAT_FEATURES)
    del meta["beat_model"]["fiducial"]  # a bundle before 2.4.0: its beats were cut at the largest deflection
    (tmp_path / "default.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"'beat_model\.fiducial' 'largest_deflection'"):
        load_model(tmp_path / "default.tflite")
    meta["beat_model"]["fiducial"] = FIDUCIAL
    (tmp_path / "default-af.tflite").write_bytes(b"not a model")
    (tmp_path / "default.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="not a TFLite model"):
        load_model(tmp_path / "default.tflite")


def test_wide_qrs_patient_is_normal_after_learning_not_ventricular(model: BeatRhythmModel):
    """Bundle branch block: every beat wide. Judged against their own template, the windows are N."""
    beats = np.arange(0.5, 120, 0.8)
    x = synth_ecg(beats, np.ones(beats.size, dtype=bool), 121)
    clf = WindowClassifier(model, FS, QualitySettings(), None, 0.0, relearn=RelearnSettings(learn_seconds=30))
    out = windows(clf, x, beats)
    assert out[0].learning and not out[-1].learning
    late = out[4:]
    assert [c.label for c in late] == ["N"] * len(late)
    assert all(set(str(c.beats)) == {"N"} for c in late)


def test_a_premature_wide_beat_is_ventricular(model: BeatRhythmModel):
    beats = list(np.arange(0.5, 90, 0.8))
    wide = np.zeros(len(beats), dtype=bool)
    k = 100
    beats[k] -= 0.3
    wide[k] = True
    beats_a = np.array(beats)
    x = synth_ecg(beats_a, wide, 91)
    clf = WindowClassifier(model, FS, QualitySettings(), None, 0.0)
    out = windows(clf, x, beats_a)
    where = int(beats_a[k] // 10)
    assert out[where].label == "V"
    assert str(out[where].beats).count("V") == 1
    assert [c.label for i, c in enumerate(out) if i != where and i > 0] == ["N"] * (len(out) - 2)


def test_irregular_rhythm_is_af_and_regular_is_not(model: BeatRhythmModel):
    """A constructed, uniformly irregular rhythm (RR 0.45-1.05 s) without P waves, as in AF, against a
    regular one. The AF graph is trained balanced and its threshold chosen by the patients it gets wrong
    (README, Model), not fitted to such a rhythm, so it need not be AF in every window; what must hold
    is that irregularity, not the beats' shapes, drives P(AF)."""
    reg = np.arange(0.5, 100, 0.85)
    x = synth_ecg(reg, np.zeros(reg.size, dtype=bool), 101)
    out = windows(WindowClassifier(model, FS, QualitySettings(), None, 0.0), x, reg)
    assert not any(c.label == "AF" for c in out)
    regular_p = max(c.probabilities["AF"] for c in out)
    assert regular_p < 0.05
    # Known limitation (README): a beat in the first 0.25 s of a window has its P wave cut off and can
    # be called V; here one window starts exactly on a beat.
    assert sum(c.label == "N" for c in out[1:]) >= len(out) - 2
    af_windows, windows_seen = 0, 0
    for seed in (3, 4, 5, 6):
        x, af_beats = _irregular(seed, p_waves=False)
        out = windows(WindowClassifier(model, FS, QualitySettings(), None, 0.0), x, af_beats)
        assert all(c.probabilities["AF"] > max(0.5, 100 * regular_p) for c in out[2:])  # 8+ beats in
        assert all(c.p_wave_coherence < 0.2 for c in out[2:])  # no atrial wave locked to the beats
        assert all("S" not in str(c.beats) for c in out if c.label == "AF")  # no "ectopy" within AF
        af_windows += sum(c.label == "AF" for c in out[1:])
        windows_seen += len(out) - 1
    assert af_windows >= 0.5 * windows_seen


def _irregular(seed: int, p_waves: bool) -> tuple[np.ndarray, np.ndarray]:
    rr = np.random.default_rng(seed).uniform(0.45, 1.05, 200)
    beats = 0.5 + np.cumsum(rr)
    beats = beats[beats < 100]
    return synth_ecg(beats, np.zeros(beats.size, dtype=bool), 101, p_waves=p_waves), beats


def test_an_irregular_rhythm_with_a_p_wave_before_every_beat_is_not_af(model: BeatRhythmModel):
    """The RR series alone calls it AF (P(AF) as high as without the P waves); the atrial wave locked to
    the beats (``af_p_wave_max``) says it is not: a sinus rhythm with atrial ectopy, not fibrillation."""
    p_max = model.metadata.af_p_wave_max
    assert p_max is not None
    for seed in (3, 4):
        out = windows(WindowClassifier(model, FS, QualitySettings(), None, 0.0), *_irregular(seed, True))
        assert all(c.probabilities["AF"] > 0.5 for c in out[2:])
        assert all(c.p_wave_coherence >= p_max for c in out[2:])
        assert not any(c.label == "AF" for c in out)


def test_without_the_p_wave_rule_in_the_bundle_the_rr_series_alone_decides(tmp_path: Path):
    """A bundle without the P-wave rules (before 2.5.0) decides AF as it was trained to: on the RR."""
    m = load_model(_bundle_with(tmp_path, af_p_wave_max=None, af_p_wave_min_ratio=None))
    out = windows(WindowClassifier(m, FS, QualitySettings(), None, 0.0), *_irregular(4, True))
    assert all(c.p_wave_coherence is None and c.p_wave_to_qrs is None for c in out)
    assert sum(c.label == "AF" for c in out) >= 5


def _muscle_noise(seconds: float, rms_mv: float, seed: int = 1) -> np.ndarray:
    """Band-limited noise (5-40 Hz, what passes the AD8232's band) before the beats, as a moving patient's."""
    n = round(seconds * FS)
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(size=n))
    freqs = np.fft.rfftfreq(n, 1 / FS)
    x = np.fft.irfft(np.where((freqs > 5) & (freqs < 40), spectrum, 0), n)
    return rms_mv * x / x.std()


def test_in_muscle_noise_a_p_wave_before_every_beat_still_vetoes_af_and_fibrillation_stays_af(tmp_path: Path):
    """The irregular rhythm with P waves in 0.05 mV of muscle-band noise: the noise fills the P-wave
    stretches, so their coherence falls below ``af_p_wave_max`` and the RR series would make it AF; the
    P wave averaged over the span's beats is still there against the QRS (``af_p_wave_min_ratio``): not
    AF. Without that rule in the bundle it is AF; the same rhythm without P waves, in the same noise, is
    AF with it."""
    ruled = load_model(_bundle_with(tmp_path / "ruled", af_p_wave_min_ratio=0.015))
    meta = ruled.metadata
    assert meta.af_p_wave_max is not None and meta.af_p_wave_min_ratio == 0.015
    x, beats = _irregular(4, True)
    noisy = x + _muscle_noise(101, 0.05)
    out = windows(WindowClassifier(ruled, FS, QualitySettings(), None, 0.0), noisy, beats)
    assert all(c.p_wave_coherence < meta.af_p_wave_max for c in out[2:])  # the coherence is fooled ...
    assert all(c.p_wave_to_qrs >= meta.af_p_wave_min_ratio for c in out[2:])  # ... the mean P wave is not
    assert all(c.probabilities["AF"] > meta.af_threshold for c in out[2:])
    assert not any(c.label == "AF" for c in out)
    without = load_model(_bundle_with(tmp_path / "without", af_p_wave_min_ratio=None))
    out = windows(WindowClassifier(without, FS, QualitySettings(), None, 0.0), noisy, beats)
    assert all(c.p_wave_to_qrs is None for c in out)
    assert sum(c.label == "AF" for c in out[2:]) >= 6
    x, beats = _irregular(4, False)
    fibrillation = x + _muscle_noise(101, 0.05)
    out = windows(WindowClassifier(ruled, FS, QualitySettings(), None, 0.0), fibrillation, beats)
    assert all(c.p_wave_to_qrs < meta.af_p_wave_min_ratio for c in out[2:])
    assert sum(c.label == "AF" for c in out[2:]) >= 6


@pytest.mark.parametrize("bad", [0, 1, "0.01", True])
def test_a_p_wave_ratio_limit_out_of_range_is_refused(tmp_path: Path, bad):
    with pytest.raises(ModelError, match="af_p_wave_min_ratio"):
        load_model(_bundle_with(tmp_path, af_p_wave_min_ratio=bad))


@pytest.mark.parametrize("bad", [0, 1.5, "0.5", True])
def test_a_p_wave_limit_out_of_range_is_refused(tmp_path: Path, bad):
    with pytest.raises(ModelError, match="af_p_wave_max"):
        load_model(_bundle_with(tmp_path, af_p_wave_max=bad))


def test_the_demo_patient_in_atrial_fibrillation_is_af_on_the_daemon_path(model: BeatRhythmModel):
    """MIT-BIH 201's excerpt (ecgd/demo) starts in AF: its first windows are AF through the stream path
    (8-bit front end, beats labelled as they come, AF on the RR of the context). In-sample (201 is in the
    training data): a behaviour check, not a measure of accuracy."""
    from ecgd.config import BUNDLED_DEMO_RECORD
    from ecgd.io.frontend import AnalogFrontEnd
    from ecgd.io.records import read_recording
    from ecgd.offline import classify_recording

    rec = read_recording(BUNDLED_DEMO_RECORD.with_suffix(""))
    out = list(classify_recording(rec, model, 10.0, AnalogFrontEnd()))
    assert sum(w["label"] == "AF" for w in out[:10]) >= 8


def test_the_classifier_detects_beats_itself_without_a_beat_stage(model: BeatRhythmModel):
    beats = np.arange(0.5, 60, 0.8)
    x = synth_ecg(beats, np.zeros(beats.size, dtype=bool), 61)
    out = windows(WindowClassifier(model, FS, QualitySettings(), None, 0.0), x)
    assert all(c.label == "N" for c in out[1:])
    assert sum(c.beats.seq.size for c in out) == pytest.approx(beats.size, abs=2)


def test_a_flat_line_is_not_a_rhythm(model: BeatRhythmModel):
    clf = WindowClassifier(model, FS, QualitySettings(enabled=False), None, 0.0)
    c = clf.classify(np.zeros(3600, dtype=np.float32), None, 0)
    assert c.label == UNCLASSIFIED and c.reason == "no beats detected"


def test_relearn_starts_learning_again(model: BeatRhythmModel):
    beats = np.arange(0.5, 40, 0.8)
    x = synth_ecg(beats, np.zeros(beats.size, dtype=bool), 41)
    clf = WindowClassifier(model, FS, QualitySettings(), None, 0.0, relearn=RelearnSettings(learn_seconds=20))
    assert not windows(clf, x, beats)[-1].learning
    clf.relearn()
    assert clf.classify(x[:3600].astype(np.float32), None, 40 * 360).learning


def _bundle_with(tmp_path: Path, **fields) -> Path:
    """A copy of the bundled model with metadata fields replaced (None: removed)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in ("default.tflite", "default-af.tflite"):
        shutil.copyfile(BUNDLED_MODEL.parent / name, tmp_path / name)
    meta = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
    for key, value in fields.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    (tmp_path / "default.json").write_text(json.dumps(meta))
    return tmp_path / "default.tflite"


@pytest.mark.parametrize("bad", [5, 81, "30"])
def test_an_af_context_out_of_range_is_refused(tmp_path: Path, bad):
    with pytest.raises(ModelError, match="af_context_seconds"):
        load_model(_bundle_with(tmp_path, af_context_seconds=bad))


@pytest.mark.parametrize("context", [None, 30])
def test_af_is_decided_on_the_rr_series_of_the_context(tmp_path: Path, monkeypatch, context):
    """Both paths (the stream's labelled beats and window by window) hand the AF graph the intervals of
    the ``af_context_seconds`` ending with the window, or of the window alone without it."""
    from ecgd.analysis import classifier as classifier_module
    from ecgd.io.records import Recording
    from ecgd.offline import classify_recording

    model = load_model(_bundle_with(tmp_path, af_context_seconds=context))
    seen: list[int] = []
    real = classifier_module.rr_features

    def counting(rr):
        seen.append(int(np.asarray(rr).size))
        return real(rr)

    monkeypatch.setattr(classifier_module, "rr_features", counting)
    beats = np.arange(0.5, 90, 0.8)
    x = synth_ecg(beats, np.zeros(beats.size, dtype=bool), 91).astype(np.float32)
    per_window = 10 / 0.8
    want = (30 if context else 10) / 0.8
    stream = list(classify_recording(Recording(x, FS, "synthetic", "ECG"), model, 10.0))
    late = seen[4:]  # windows whose context lies after the first beats (learning, the first window)
    assert len(stream) == 9 and late
    assert all(abs(n - want) <= 1.5 for n in late), (late, per_window)
    seen.clear()
    windows(WindowClassifier(model, FS, QualitySettings(), None, 0.0), x, beats)
    assert all(abs(n - want) <= 1.5 for n in seen[4:]), seen


def _sinus_with_pvcs(seconds: float = 120.0) -> tuple[np.ndarray, np.ndarray]:
    """Sinus at 75 bpm with a premature wide beat (coupling 0.5 s, compensatory pause 1.1 s) every
    fourth beat after the first minute (the patient's template is learned on sinus beats first)."""
    rr = np.concatenate((np.full(75, 0.8), np.tile([0.8, 0.8, 0.5, 1.1], 20)))
    beats = 0.5 + np.concatenate(([0.0], np.cumsum(rr)))
    beats = beats[beats < seconds - 1]
    wide = np.zeros(beats.size, dtype=bool)
    wide[76:] = (np.arange(76, beats.size) - 76) % 4 == 2
    return beats, wide


@pytest.mark.parametrize("exclude", [False, True])
def test_af_rr_leaves_out_the_intervals_of_v_beats_when_the_model_was_trained_so(
    tmp_path: Path, monkeypatch, exclude
):
    """``af_rr_exclude_v``: both paths hand the AF graph only the intervals between two beats not
    labelled V, so a PVC's coupling interval and pause do not look like an irregular rhythm."""
    from ecgd.analysis import classifier as classifier_module
    from ecgd.io.records import Recording
    from ecgd.offline import classify_recording

    model = load_model(_bundle_with(tmp_path, af_rr_exclude_v=exclude))
    seen: list[np.ndarray] = []
    real = classifier_module.rr_features

    def keeping(rr):
        seen.append(np.asarray(rr, dtype=np.float64))
        return real(rr)

    monkeypatch.setattr(classifier_module, "rr_features", keeping)
    beats, wide = _sinus_with_pvcs()
    x = synth_ecg(beats, wide, 120).astype(np.float32)
    for run in ("stream", "windows"):
        seen.clear()
        if run == "stream":
            out = list(classify_recording(Recording(x, FS, "synthetic", "ECG"), model, 10.0))
        else:
            out = windows(WindowClassifier(model, FS, QualitySettings(), None, 0.0), x, beats)
        labels = [c["label"] if isinstance(c, dict) else c.label for c in out[-3:]]
        assert labels == ["V"] * 3, run  # the PVCs are labelled V
        last = seen[-1]  # the last window's minute of RR, with a PVC every fourth beat
        irregular = (last < 0.7) | (last > 0.9)
        if exclude:
            assert not irregular.any() and last.size >= 8, (run, last)
        else:
            assert irregular.sum() >= 10, (run, last)


def _beat_model_with(edit) -> dict:
    """The bundled model's ``beat_model`` metadata changed by ``edit``."""
    beat = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())["beat_model"]
    edit(beat)
    return beat


# the previous release, 2.7.0: a beat graph on the features alone (the shipped one also takes the waveform)
FEATURES_BUNDLE = Path(__file__).parent / "models" / "beats-2.7.0" / "default.tflite"


@pytest.mark.parametrize("source", [BUNDLED_MODEL, FEATURES_BUNDLE], ids=["waveform", "features-only"])
def test_a_bundle_whose_metadata_and_graph_disagree_on_the_waveform_input_is_refused(tmp_path: Path, source):
    """The waveform input is part of the contract: a graph with it and metadata without (or the
    reverse) would be fed the wrong tensors, so it is refused at load, naming what the graph has."""
    model = load_model(source)
    assert isinstance(model, BeatRhythmModel)
    p = model.beat_probs(
        np.ones((3, len(BEAT_FEATURES)), np.float32),
        np.zeros((3, WAVEFORM_SAMPLES, WAVEFORM_CHANNELS), np.float32) if model.needs_waveforms else None,
    )
    assert p.shape == (3, 3) and np.allclose(p.sum(axis=1), 1.0, atol=1e-3)  # as it is, it loads and runs
    for name in ("default.tflite", "default-af.tflite"):
        shutil.copyfile(source.parent / name, tmp_path / name)
    meta = json.loads(source.with_suffix(".json").read_text())
    if model.needs_waveforms:
        del meta["beat_model"]["waveform"]
        want = r"expected one \[batch, features\] input and one output tensor; the graph has .*\[1, 78, 2\]"
    else:
        meta["beat_model"]["waveform"] = {
            "samples": WAVEFORM_SAMPLES,
            "channels": WAVEFORM_CHANNELS,
            "rate_hz": WAVEFORM_HZ,
            "clip": 5.0,
        }
        want = r"expected a \[batch, features\] and a \[batch, samples, 2\] input"
    (tmp_path / "default.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=want):
        load_model(tmp_path / "default.tflite")


def test_a_waveform_graph_without_waveforms_is_an_error_not_a_guess():
    """Fed features alone, a two-input graph raises instead of running on zeros."""
    model = load_model(BUNDLED_MODEL)
    assert isinstance(model, BeatRhythmModel)
    with pytest.raises(ValueError, match=r"needs each beat's waveform \[2, 78, 2\]"):
        model.beat_probs(np.ones((2, len(BEAT_FEATURES)), np.float32))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"samples": 81}, r"'beat_model\.waveform' \{'samples': 81\} is not the waveform this ecgd computes"),
        ({"rate_hz": 128}, r"\{'rate_hz': 128\} is not the waveform"),
        ({"clip": 0}, r"'beat_model\.waveform\.clip' must be a number > 0, got 0"),
        ({"clip": "5"}, r"'beat_model\.waveform\.clip' must be a number > 0, got '5'"),
    ],
)
def test_a_waveform_other_than_the_one_this_ecgd_computes_is_refused(tmp_path: Path, change, message):
    wave = {"samples": WAVEFORM_SAMPLES, "channels": 2, "rate_hz": WAVEFORM_HZ, "clip": 5.0}
    with pytest.raises(ModelError, match=message):
        edit = _beat_model_with(lambda beat: beat.update(waveform={**wave, **change}))
        load_model(_bundle_with(tmp_path, beat_model=edit))


def test_a_wide_beat_is_never_s_when_the_bundle_says_so():
    """``beat_wide_not_s``: a beat at least that many times the template's QRS width has its P(S)
    counted as P(V); narrower beats and bundles without the field are untouched."""
    from ecgd.analysis.beat_model import WIDTH_RATIO, wide_not_supraventricular

    x = np.ones((3, len(BEAT_FEATURES)), np.float32)
    x[:, WIDTH_RATIO] = (1.0, 1.69, 1.7)
    p = np.array([[0.2, 0.7, 0.1]] * 3, np.float32)
    out = wide_not_supraventricular(x, p, 1.7)
    np.testing.assert_allclose(out, [[0.2, 0.7, 0.1], [0.2, 0.7, 0.1], [0.2, 0.0, 0.8]])
    assert wide_not_supraventricular(x, p, None) is p


@pytest.mark.parametrize("bad", [1.0, 0.5, "2", True])
def test_a_bad_wide_beat_limit_is_refused(tmp_path: Path, bad):
    with pytest.raises(ModelError, match=r"'beat_wide_not_s' must be a number > 1"):
        load_model(_bundle_with(tmp_path, beat_wide_not_s=bad))


def test_the_bundles_wide_beat_limit_reaches_the_beat_probabilities(tmp_path: Path):
    from ecgd.analysis.beat_model import WIDTH_RATIO

    x = np.ones((2, len(BEAT_FEATURES)), np.float32)
    x[:, BEAT_FEATURES.index("rr_pre_local")] = 0.6  # premature
    x[1, WIDTH_RATIO] = 3.0
    with_rule = load_model(_bundle_with(tmp_path, beat_wide_not_s=2.0))
    assert isinstance(with_rule, BeatRhythmModel) and with_rule.metadata.wide_not_s == 2.0
    p = with_rule.beat_probs(x, np.zeros((2, WAVEFORM_SAMPLES, WAVEFORM_CHANNELS), np.float32))
    assert p[1, 1] == 0.0 and p[0, 1] > 0.0
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-3)
