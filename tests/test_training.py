"""A tiny end-to-end training run (excerpts of two records, one short epoch) through conversion and the
daemon's inference path, plus the ``ecgd convert`` contract when TensorFlow is missing.

The TensorFlow tests skip cleanly in the daemon's venv; run them with ``.venv-train/bin/python -m pytest``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(
    0, str(REPO)
)  # training/ is a top-level folder of the repo, not part of the installed package

from ecgd import convert as convert_mod  # noqa: E402

DATA = Path(os.environ.get("ECGD_SHARED_DATA", REPO.parent / "shared" / "data"))
needs_data = pytest.mark.skipif(
    not (DATA / "mitdb" / "203.hea").exists(), reason="MIT-BIH data not available"
)


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    convert_mod.add_convert_arguments(parser)
    return parser.parse_args([str(tmp_path / "missing.keras"), str(tmp_path / "out.tflite"), *extra])


def test_convert_without_tensorflow_exits_69(tmp_path: Path, monkeypatch, capsys) -> None:
    """The daemon's venv has no TensorFlow: the command must say which extra to install and exit 69."""
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes ``import tensorflow`` raise ImportError
    assert convert_mod.run_convert(_args(tmp_path)) == 69
    assert "pip install 'ecgd[train]'" in capsys.readouterr().err
    assert not (tmp_path / "out.tflite").exists()


def test_convert_rejects_bad_metadata_before_tensorflow(tmp_path: Path, capsys) -> None:
    code = convert_mod.run_convert(_args(tmp_path, "--labels", "N,S", "--abnormal", "V"))
    assert code == 65
    assert "abnormal labels ['V']" in capsys.readouterr().err


@needs_data
@pytest.mark.train
def test_tiny_training_run_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="training needs the [train] extra (TensorFlow)")
    from ecgd.analysis.model import load_model
    from training import evaluate as ev
    from training.data import load_noise, load_record
    from training.train import Progress, TrainConfig, export_variants, score_fold, train_model

    # Excerpts: 203 (AF with V beats) and 209 (N, S) first 3 minutes; 119 first 3 minutes (V) held out.
    records = {
        n: dataclasses.replace(r, mv=r.mv[: 180 * 360])
        for n in ("203", "209")
        for r in [load_record(DATA, n)]
    }
    held = {"119": dataclasses.replace(load_record(DATA, "119"), mv=load_record(DATA, "119").mv[: 180 * 360])}
    cfg = TrainConfig(epochs=1, epoch_windows=32, batch_size=32, index_hop=720)
    model, history = train_model(records, load_noise(DATA), cfg, 0, Progress(None), "tiny", held)
    assert len(history) == 1 and np.isfinite(history[0]["loss"])
    assert 0.0 <= history[0]["val_f1_frontend"] <= 1.0

    meta = {**convert_mod.DEFAULT_METADATA, "provenance": {"training_data": "test"}, "evaluation": {}}
    paths = export_variants(model, tmp_path, [str(DATA / "mitdb" / "203")], meta, calibration_windows=16)
    for variant, path in paths.items():
        assert json.loads(path.with_suffix(".json").read_text())["labels"] == ["N", "S", "V", "AF"]
        assert path.stat().st_size < 500_000
        loaded = load_model(path)
        assert loaded.input_dtype == ("int8" if variant == "int8" else "float32")
        p = loaded.predict(held["119"].mv[:3600])
        assert p.shape == (4,) and abs(float(p.sum()) - 1.0) < 0.03

    rows = ev.classify_records(paths["float32"], DATA, ["209"], frontend=True)
    metrics = ev.summarise(rows)
    assert metrics["windows"] == len(rows) > 0
    assert set(metrics["per_class"]) == {"N", "S", "V", "AF"}

    # The fold scoring that train.py and ensemble.py share: both front ends, rows kept per fold.
    cv_rows: dict = collections.defaultdict(dict)
    said: list[str] = []
    score_fold(paths["float32"], "float32", 2, ["209"], DATA, cv_rows, said.append)
    assert set(cv_rows) == {"float32/pcf8591", "float32/none"}
    assert cv_rows["float32/pcf8591"]["2"] == rows
    assert len(said) == 2 and said[0].startswith("fold 3 float32 front end pcf8591: macro-F1 ")


def _feature_tables(out: Path, *options: str) -> int:
    """``python -m training.beat_data`` on the shared data into ``out``."""
    from training import beat_data

    return beat_data.main(["--data", str(DATA), "--out", str(out), *options])


def test_metrics_from_confusion() -> None:
    """EC57-style Se and +P with unreadable windows as misses that are no class's false positive."""
    from training.evaluate import confusion, metrics_from_confusion

    rows = [
        {"truth": "N", "pred": "N"},
        {"truth": "N", "pred": "V"},
        {"truth": "V", "pred": "V"},
        {"truth": "V", "pred": "unreadable"},
        {"truth": "AF", "pred": "AF"},
    ]
    m = metrics_from_confusion(confusion(rows))
    assert m["per_class"]["N"]["se"] == 0.5 and m["per_class"]["N"]["ppv"] == 1.0
    assert m["per_class"]["V"]["se"] == 0.5 and m["per_class"]["V"]["ppv"] == 0.5
    assert m["per_class"]["S"]["se"] is None
    assert m["unreadable"] == 1 and m["windows"] == 5


@needs_data
@pytest.mark.train
def test_tiny_beat_model_run_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The 2.x pipeline on three patients and two LTAFDB records: feature tables, 2-fold CV with nested
    thresholds through the daemon's path, the final bundle loads in the daemon's loader."""
    pytest.importorskip("tensorflow", reason="training needs the [train] extra (TensorFlow)")
    from ecgd.analysis.beat_model import BeatRhythmModel
    from ecgd.analysis.model import load_model
    from training import beat_data, train_beats

    feats, out = tmp_path / "features", tmp_path / "run"
    records = "mitdb/203,mitdb/119,svdb/800"
    made = _feature_tables(
        feats,
        "--records",
        records,
        "--ltafdb",
        "00,01",
        "--ltafdb-windows",
        "200",
        "--relearn",
        "former_templates=1",
        "--waveforms",
    )
    assert made == 0
    t = np.load(feats / "mitdb_119_pcf8591.npz")
    assert t["beat_x"].shape[1] == len(beat_data.BEAT_FEATURES) and (t["beat_y"] == 2).sum() > 300
    assert t["beat_wave"].shape == (t["beat_y"].size, 78, 2)  # one row per beat row, ~120 Hz, 2 channels
    assert np.array_equal(np.isnan(t["beat_wave"]).all(axis=(1, 2)), np.isnan(t["beat_x"]).all(axis=1))
    assert (
        train_beats.main(
            [
                "--data",
                str(DATA),
                "--features",
                str(feats),
                "--out",
                str(out),
                "--folds",
                "2",
                "--beat-epochs",
                "1",
                "--af-epochs",
                "1",
                "--no-detector",
                "--run-weight",
                "4",
                "--members",
                "2",
                "--rr-exclude-v",
                "--af-p-wave-max",
                "0.5",
                "--blend",
                "--beat-wide-not-s",
                "1.7",
                "--af-threshold-from",
                "patients",
            ]
        )
        == 0
    )
    cv = json.loads((out / "cv_metrics.json").read_text())
    assert cv["patients"] == 3 and cv["windows"] > 400
    assert set(cv["per_patient_error"]) == set(records.split(","))
    model = load_model(out / "final" / "default.tflite")
    assert isinstance(model, BeatRhythmModel) and model.total_bytes < 500_000
    assert model.needs_waveforms and model.metadata.beat is not None
    assert model.metadata.beat.waveform_clip == train_beats.WAVE_CLIP
    assert model.metadata.wide_not_s == 1.7  # the rule the thresholds were chosen with travels with them
    assert model.metadata.beat_thresholds is not None
    assert model.metadata.af_context_s == beat_data.AF_CONTEXT_S and model.metadata.af_p_wave_max == 0.5
    assert model.metadata.trained_relearn is not None and model.metadata.trained_relearn.former_templates == 1
    fold = load_model(out / "fold1" / "default.tflite")  # beat_eval scores each fold with its own settings
    assert fold.metadata.trained_relearn is not None and fold.metadata.trained_relearn.former_templates == 1
    config = json.loads((out / "config.json").read_text())
    assert config["run_weight"] == 4.0 and config["members"] == 2 and config["rr_exclude_v"] is True
    assert config["waveforms"] is True and config["blend"] is True and config["wide_not_s"] == 1.7
    assert (
        config["af_threshold_from"] == "patients"
    )  # chosen so (choose_thresholds refuses it without LTAFDB)
    from training import af_thresholds, screen

    # af_thresholds scores the AF graph on the RR it was trained on: here without the V beats' intervals
    t119 = dict(np.load(feats / "mitdb_119_pcf8591.npz"))  # bigeminy: V beats in most windows
    x, ok = af_thresholds.window_inputs(config, t119)
    with_v, _ = train_beats.window_rr(t119, False, config["af_context_s"])
    assert ok.any() and np.array_equal(x, train_beats.window_rr(t119, True, config["af_context_s"])[0])
    assert not np.array_equal(x[ok], with_v[ok])

    curve = af_thresholds.table(af_thresholds.held_out_probabilities(out, feats)).splitlines()
    assert len(curve) == 2 + len(af_thresholds.GRID) and curve[2].startswith("| 0.5 |")
    args = ["--features", str(feats), "--af-context", str(beat_data.AF_CONTEXT_S), "--folds", "2"]
    tiny = ["--epochs", "1", "--beat-epochs", "1", "--hidden", "8", "--name", "tiny"]
    shipped = ["--af-p-wave-max", "0.5", "--beat-wide-not-s", "1.7", "--af-threshold-from", "patients"]
    assert screen.main([*args, *tiny, *shipped]) == 0
    cells = capsys.readouterr().out.splitlines()[-1].split(" | ")
    assert cells[0] == "| tiny" and len(cells) == 12
    assert float(cells[-2]) >= float(cells[-3])  # the alarm counts a beat at P(V) >= 0.5 or labelled V
    assert screen.main([*args, "--epochs", "1", "--hidden", "8", "--waveforms", "--members", "2"]) == 0
    cells = capsys.readouterr().out.splitlines()[-1].split(" | ")
    assert cells[0].endswith(", waveforms") and len(cells) == 12 and 0 <= float(cells[5]) <= 1


def test_screen_options_reach_the_recipe_and_bad_layers_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``training.screen --hidden/--beat-epochs`` change the configuration it trains, nothing else."""
    from training import screen, train_beats

    default = train_beats.BeatTrainConfig()
    cfg = screen.recipe(screen.parser().parse_args(["--hidden", "64,64", "--beat-epochs", "24"]))
    assert cfg.hidden == (64, 64) and cfg.beat_epochs == 24
    assert cfg.af_epochs == default.af_epochs and cfg.af_hidden == default.af_hidden
    assert screen.recipe(screen.parser().parse_args([])).hidden == default.hidden
    for bad in ("64,x", "0", ""):
        with pytest.raises(SystemExit):
            screen.parser().parse_args(["--hidden", bad])
        assert "is not layer sizes" in capsys.readouterr().err
    assert screen.recipe(screen.parser().parse_args(["--beat-wide-not-s", "1.7"])).wide_not_s == 1.7
    blend = screen.recipe(screen.parser().parse_args(["--blend"]))
    assert blend.blend and blend.waveforms and not default.blend  # --blend is --waveforms and more
    options = argparse.ArgumentParser()
    train_beats.add_recipe_options(options)  # the same options in train_beats
    parsed = vars(options.parse_args(["--blend"]))
    assert parsed == {"waveforms": True, "blend": True, "beat_wide_not_s": None, "af_threshold_from": "all"}
    assert vars(options.parse_args(["--waveforms"]))["blend"] is False
    for bad in ("1", "0.9", "wide"):  # refused before training, not by the loader after it
        with pytest.raises(SystemExit):
            screen.parser().parse_args(["--beat-wide-not-s", bad])
        assert "is not a width ratio above 1" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            train_beats.main(["--beat-wide-not-s", bad])
        assert "is not a width ratio above 1" in capsys.readouterr().err


@pytest.mark.train
def test_members_are_averaged_in_one_graph() -> None:
    """``--members``: several MLPs from their own seeds, one graph whose output is their mean."""
    pytest.importorskip("tensorflow", reason="training needs the [train] extra (TensorFlow)")
    import keras

    from training.train_beats import BeatTrainConfig, fit_beat

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 13)).astype(np.float32), rng.integers(0, 3, 300)
    graph, mean, std, _ = fit_beat(x, y, np.ones(300), BeatTrainConfig(members=3, beat_epochs=1), seed=4)
    subs = [layer for layer in graph.layers if isinstance(layer, keras.Model)]
    assert len(subs) == 3
    z = (x - mean) / std
    each = [m.predict(z, verbose=0) for m in subs]
    np.testing.assert_allclose(graph.predict(z, verbose=0), np.mean(each, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(each[0], each[1])  # their own seeds
    single, *_ = fit_beat(x, y, np.ones(300), BeatTrainConfig(beat_epochs=1), seed=4)
    np.testing.assert_allclose(single.predict(z, verbose=0), each[0], rtol=1e-5, atol=1e-6)  # as before


@pytest.mark.train
def test_blend_averages_the_waveform_graph_and_the_mlp() -> None:
    """``--blend``: one two-input graph whose output is the mean of the waveform graph's and the
    features-only MLP's (each itself the mean of its members)."""
    pytest.importorskip("tensorflow", reason="training needs the [train] extra (TensorFlow)")
    import keras

    from training.train_beats import BeatTrainConfig, fit_waveform_beat

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 13)).astype(np.float32), rng.integers(0, 3, 300)
    wave = rng.normal(size=(300, 78, 2)).astype(np.float32)
    cfg = BeatTrainConfig(members=2, beat_epochs=1, waveforms=True, blend=True)
    graph, mean, std, clip = fit_waveform_beat(x, wave, y, np.ones(300), cfg, seed=4)
    subs = {len(m.inputs): m for m in graph.layers if isinstance(m, keras.Model)}
    assert sorted(subs) == [1, 2] and len(graph.inputs) == 2
    z = [(x - mean) / std, np.clip(wave, -clip, clip)]
    both = (subs[2].predict(z, verbose=0) + subs[1].predict(z[0], verbose=0)) / 2
    np.testing.assert_allclose(graph.predict(z, verbose=0), both, rtol=1e-5, atol=1e-6)
    assert not np.allclose(subs[2].predict(z, verbose=0), subs[1].predict(z[0], verbose=0))


def test_ventricular_run_lengths() -> None:
    from training.train_beats import ventricular_run_lengths

    y = np.array([0, 2, 0, 2, 2, 2, 1, 2, 2])
    assert ventricular_run_lengths(y).tolist() == [0, 1, 0, 3, 3, 3, 0, 2, 2]
    assert ventricular_run_lengths(np.zeros(0, int)).size == 0


def test_window_rr_takes_the_context_before_each_window_end() -> None:
    """The AF features of a window come from the beats of ``context_s`` ending with it, as the daemon's."""
    from ecgd.analysis.rhythm import rr_features
    from training.train_beats import window_rr

    fs = 360
    beats = np.round(np.arange(0.4, 60, 0.75) * fs).astype(np.int64)
    beats[40:] += np.round(np.random.default_rng(1).uniform(-0.2, 0.2, beats.size - 40) * fs).astype(np.int64)
    t = {
        "beat_seq": np.sort(beats),
        "beat_y": np.zeros(beats.size, np.int8),
        "win_start": np.arange(6) * 10 * fs,
    }
    x10, ok10 = window_rr(t, False, 10.0)
    x30, ok30 = window_rr(t, False, 30.0)
    assert ok10.all() and ok30[2:].all()
    stop = 60 * fs
    inside = t["beat_seq"][t["beat_seq"] >= stop - 30 * fs]
    before = t["beat_seq"][t["beat_seq"] < stop - 30 * fs][-1:]
    want = rr_features(np.diff(np.concatenate((before, inside))) / fs)
    assert np.allclose(x30[-1], want) and not np.allclose(x10[-1], want)


def test_tables_without_p_wave_stretches_are_refused(tmp_path: Path) -> None:
    """Tables from before the P-wave stretches were kept cannot choose thresholds with the rule."""
    from training import beat_data, train_beats

    feats = tmp_path / "f"
    feats.mkdir()
    beat_data.write_tables_info(feats, beat_data.relearn_settings([]), [])
    np.savez(feats / "mitdb_100_pcf8591.npz", beat_x=np.zeros((1, len(beat_data.BEAT_FEATURES))))
    with pytest.raises(SystemExit, match="hold no P-wave stretches"):
        train_beats.main(["--data", str(DATA), "--features", str(feats), "--out", str(tmp_path / "run")])


def test_screen_waveforms_need_tables_with_waveforms(tmp_path: Path) -> None:
    from training import beat_data, screen

    feats = tmp_path / "f"
    feats.mkdir()
    np.savez(feats / "mitdb_100_pcf8591.npz", beat_x=np.zeros((1, len(beat_data.BEAT_FEATURES))))
    with pytest.raises(SystemExit, match="needs tables made with beat_data --waveforms"):
        screen.main(["--features", str(feats), "--waveforms"])


def test_ltafdb_tables_of_another_context_are_refused(tmp_path: Path) -> None:
    from training import train_beats

    if not (DATA / "ltafdb" / "00.atr").exists():
        pytest.skip("LTAFDB annotations not available")
    feats = tmp_path / "f"
    assert (
        _feature_tables(
            feats, "--no-signals", "--ltafdb", "00", "--ltafdb-windows", "20", "--af-context", "30"
        )
        == 0
    )
    with pytest.raises(SystemExit, match="30-s spans"):
        train_beats.main(
            [
                "--data",
                str(DATA),
                "--features",
                str(feats),
                "--out",
                str(tmp_path / "run"),
                "--af-context",
                "60",
            ]
        )


def test_worst_patients_names_their_largest_confusions() -> None:
    from training.beat_eval import worst_patients

    rows = [{"record": "a", "truth": "N", "pred": "V"}] * 3 + [{"record": "a", "truth": "N", "pred": "N"}]
    rows += [{"record": "b", "truth": "S", "pred": "N"}, {"record": "b", "truth": "S", "pred": "S"}] * 2
    assert worst_patients(rows, 2) == "a 75 % (N → V 3); b 50 % (S → N 2)"


def test_the_report_gives_each_database_its_own_row() -> None:
    """DS1 is MIT-BIH as the held-out DS2 is; SVDB's errors must not hide in (or behind) the pooled row."""
    from training.beat_eval import by_database

    rows = [{"record": "mitdb/101", "truth": "N", "pred": "N"}] * 9 + [
        {"record": "mitdb/101", "truth": "N", "pred": "V"}
    ]
    rows += [{"record": "mitdb/201", "truth": "AF", "pred": "AF"}] * 4
    rows += [{"record": "svdb/852", "truth": "S", "pred": "V"}] * 3 + [
        {"record": "svdb/852", "truth": "N", "pred": "AF"}
    ]
    empty = [[0] * 5 for _ in range(4)]
    beats = [
        {"record": "mitdb/101", "matched": [[10, 0, 1, 0, 0], *empty[1:]], "unmatched": [0, 0, 0, 0]},
        {"record": "svdb/852", "matched": [empty[0], [0, 1, 3, 0, 0], *empty[2:]], "unmatched": [0, 0, 0, 0]},
    ]
    lines = by_database(rows, beats).splitlines()
    mitdb, svdb = lines[2].split(" | "), lines[3].split(" | ")
    assert mitdb[:3] == ["| mitdb", "2", "14"] and svdb[:3] == ["| svdb", "1", "4"]
    assert mitdb[3] == "90.0 / 100.0" and mitdb[5] == "– / 0.0" and mitdb[6] == "100.0 / 100.0"
    assert mitdb[8] == "0, 0" and svdb[8] == "1, 1"  # 101: 10 % wrong, not more; 852: all wrong
    assert mitdb[9] == "– / 0.0" and svdb[10] == "25.0 / 100.0 |"  # VEB: 101's false one; SVEB: 1 of 4
    assert lines[4].startswith("mitdb: no S, V windows by the reference, so its S, V calls count as false")
    assert lines[5].startswith("svdb: no V, AF windows by the reference")


def test_beat_errors_are_told_by_patient_with_what_the_beats_were_taken_for() -> None:
    from training.beat_eval import beat_error_patients

    def row(rid: str, matched: list[list[int]], unmatched: list[int]) -> dict:
        return {"record": rid, "matched": matched, "unmatched": unmatched}

    # rows: reference N, S, V, other; columns: labelled N, S, V, Q, not detected
    a = row("a", [[50, 0, 4, 0, 0], [0, 6, 9, 0, 0], [0, 0, 10, 0, 0], [0, 0, 3, 0, 0]], [0, 0, 2, 0])
    b = row("b", [[60, 2, 1, 0, 0], [3, 5, 0, 1, 0], [5, 1, 8, 0, 2], [0, 0, 0, 0, 0]], [0, 0, 0, 0])
    lines = beat_error_patients([b, a], 2).splitlines()
    # a reference beat outside N/S/V (fusion) labelled V is not a false VEB, as in the gross +P
    assert lines[0] == "false VEB 16: a 15 (N 4, S 9, no reference beat 2); b 1 (N 1)"
    assert lines[1] == "missed VEB 8: b 8 (as N 5, as S 1, not detected 2)"
    assert lines[2] == "false SVEB 3: b 3 (N 2, V 1)"
    assert lines[3] == "missed SVEB 13: a 9 (as V 9); b 4 (as N 3, as Q 1)"


def test_af_is_also_scored_on_the_rhythm_annotated_records_alone() -> None:
    from training.beat_eval import rhythm_labelled_af

    rows = [{"record": "mitdb/201", "truth": "AF", "pred": "AF"}] * 3
    rows += [
        {"record": "mitdb/201", "truth": "AF", "pred": "N"},
        {"record": "mitdb/100", "truth": "V", "pred": "AF"},
    ]
    rows += [{"record": "svdb/859", "truth": "V", "pred": "AF"}] * 5  # no rhythm annotations: left out
    af = rhythm_labelled_af(rows)
    assert (af["patients"], af["windows"], af["af_windows"]) == (2, 5, 4)
    assert (af["se"], af["ppv"]) == (0.75, 0.75)


def _one_beat_windows(pa: list[float], y: list[int], labelled: bool) -> dict:
    """Held-out predictions of a record whose windows hold one normal beat each: only P(AF) differs."""
    n = len(y)
    return {
        "pb": np.tile([1.0, 0.0, 0.0], (n, 1)),
        "judged": np.ones(n, bool),
        "win": np.arange(n),
        "pa": np.array(pa),
        "win_ok": np.ones(n, bool),
        "y": np.array(y),
        "rhythm_labelled": labelled,
    }


def test_the_af_threshold_can_be_chosen_on_rhythm_labelled_records_only() -> None:
    """SVDB has no rhythm annotations: with ``rhythm-labelled`` its AF calls do not push the threshold up."""
    from training.train_beats import choose_thresholds

    record = _one_beat_windows
    ds1 = record([0.92, 0.93, 0.1, 0.2], [3, 3, 0, 0], True)
    svdb = record([0.91] * 10, [0] * 10, False)  # irregular ectopy, or an unannotated AF
    assert choose_thresholds([ds1, svdb])[0]["AF"] == 0.95
    assert choose_thresholds([ds1, svdb], "rhythm-labelled")[0]["AF"] == 0.3


def test_the_af_threshold_can_be_chosen_by_the_patients_it_gets_wrong() -> None:
    """Two AF patients among the signal records cannot speak for AF: with ``patients`` the LTAFDB
    patients' held-out windows count too, each patient once, and a threshold that misses most of three
    AF patients' windows loses to one that calls AF in one patient with irregular ectopy."""
    from training.train_beats import choose_thresholds

    record = _one_beat_windows
    ds1 = record([0.99, 0.99, 0.1, 0.2], [3, 3, 0, 0], True)
    svdb = record([0.91] * 10, [0] * 10, False)
    ltafdb = [(np.array([0.8] * 8 + [0.1] * 2), np.array([True] * 8 + [False] * 2)) for _ in range(3)]
    assert choose_thresholds([ds1, svdb])[0]["AF"] == 0.95
    assert choose_thresholds([ds1, svdb], "patients", ltafdb=ltafdb)[0]["AF"] == 0.3
    easy = [(np.array([0.99] * 8 + [0.1] * 2), y) for _, y in ltafdb]  # LTAFDB agrees with 0.95
    assert choose_thresholds([ds1, svdb], "patients", ltafdb=easy)[0]["AF"] == 0.95


def test_a_patient_counts_when_more_than_a_fifth_of_its_windows_are_wrong_between_af_and_not() -> None:
    """Both the threshold choice and beat_eval's report count patients by one rule; S called V is no AF
    error, and exactly 20 % is not over the target."""
    from training.beat_eval import af_wrong_patients
    from training.train_beats import choose_thresholds

    def rows(rid: str, pairs: list[tuple[str, str]]) -> list[dict]:
        return [{"record": rid, "truth": t, "pred": p} for t, p in pairs]

    table = rows("a", [("AF", "AF")] * 4 + [("AF", "N")])  # 20 %: not over
    table += rows("b", [("AF", "AF")] * 3 + [("N", "AF")] * 2)  # 40 %
    table += rows("c", [("S", "V")] * 5)  # all wrong, none between AF and not
    assert af_wrong_patients(table) == ["b"]
    with pytest.raises(ValueError, match="LTAFDB"):
        choose_thresholds([_one_beat_windows([0.9], [3], True)], "patients")


def test_thresholds_are_chosen_with_the_p_wave_rule_the_daemon_applies() -> None:
    """Irregular sinus rhythm with a P wave before every beat scores AF-like on its RR series; with the
    rule the AF threshold need not climb over it to keep the true AF."""
    from ecgd.analysis.beat_features import p_wave_samples
    from training.train_beats import choose_thresholds

    rng = np.random.default_rng(5)
    wave = rng.normal(size=p_wave_samples(360.0))

    def record(pa: list[float], y: list[int], p_wave: bool) -> dict:
        w, per = len(y), 10
        seq = (np.arange(w)[:, None] * 3600 + 180 + 360 * np.arange(per)[None, :]).ravel()
        noise = rng.normal(scale=0.3 if p_wave else 1.0, size=(seq.size, wave.size))
        return {
            "pb": np.tile([1.0, 0.0, 0.0], (seq.size, 1)),
            "judged": np.ones(seq.size, bool),
            "win": np.repeat(np.arange(w), per),
            "seq": seq,
            "p_wave": (noise + (wave if p_wave else 0.0)).astype(np.float32),
            "stops": (np.arange(w) + 1) * 3600,
            "span": 3600,
            "pa": np.array(pa),
            "win_ok": np.ones(w, bool),
            "y": np.array(y),
            "rhythm_labelled": True,
        }

    af = record([0.92, 0.93, 0.1, 0.2], [3, 3, 0, 0], p_wave=False)
    sinus = record([0.97] * 10, [0] * 10, p_wave=True)
    assert choose_thresholds([af, sinus])[0]["AF"] == 0.98
    assert choose_thresholds([af, sinus], p_wave_max=0.5)[0]["AF"] == 0.3


def test_tables_say_the_relearn_settings_they_were_made_with(tmp_path: Path) -> None:
    from training import beat_data

    with pytest.raises(SystemExit, match=r"made by an older training\.beat_data"):
        beat_data.tables_relearn(tmp_path)
    beat_data.write_tables_info(tmp_path, beat_data.relearn_settings(["change_beats=90"]), ["--out", "x"])
    assert beat_data.tables_relearn(tmp_path)["change_beats"] == 90


def test_beat_data_relearn_overrides_go_through_the_config_loader() -> None:
    from training import beat_data

    s = beat_data.relearn_settings(["former_templates=0", "change_beats=120"])
    assert (s.former_templates, s.change_beats, s.learn_seconds) == (0, 120, 60.0)
    with pytest.raises(SystemExit, match=r"relearn\.change_beats: 5"):
        beat_data.relearn_settings(["change_beats=5"])
    with pytest.raises(SystemExit, match=r"did you mean relearn\.former_templates"):
        beat_data.relearn_settings(["former_template=1"])
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        beat_data.relearn_settings(["former_templates"])
