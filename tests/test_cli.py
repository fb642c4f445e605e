"""The command line: check-config, classify, exit codes (sysexits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import rule_label

from ecgd.analysis.model import load_model
from ecgd.cli import main
from ecgd.config import BUNDLED_MODEL
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import read_recording
from ecgd.offline import classify_recording

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "ecgd" / "demo" / "mitdb201_excerpt"


def ecgd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecgd", *args], capture_output=True, text=True, timeout=120)


def test_check_config_prints_effective_settings():
    r = ecgd("check-config", "--config", str(REPO / "config" / "demo.yaml"))
    assert r.returncode == 0, r.stderr
    assert "kind: emulated" in r.stdout and "hop_seconds: 2.0" in r.stdout
    assert "model ok: ecgd-rhythm@2.9.1" in r.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sampling:\n  rate_hz: fast\n", "sampling.rate_hz: must be a number, got 'fast'"),
        ("windows:\n  hop_seconds: -1\n", "windows.hop_seconds: -1 is out of range"),
        ("device:\n  chanel: 1\n", "device.chanel: unknown key; did you mean device.channel?"),
        ("device: [1\n", "YAML syntax error: line 2"),
        ("model:\n  path: nowhere.tflite\n", "nowhere.tflite: model file not found"),
        ("windows:\n  window_seconds: 8\n", "model window is 10 s but windows.window_seconds is 8 s"),
    ],
)
def test_bad_config_exits_78_with_the_key_named(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    r = ecgd("check-config", "--config", str(path))
    assert r.returncode == 78
    assert message in r.stderr


def test_missing_config_exits_78(tmp_path):
    r = ecgd("check-config", "--config", str(tmp_path / "absent.yaml"))
    assert r.returncode == 78 and "file not found" in r.stderr


def test_world_writable_config_is_refused(tmp_path):
    path = tmp_path / "open.yaml"
    path.write_text("device:\n  kind: emulated\n")
    os.chmod(path, 0o666)
    r = ecgd("check-config", "--config", str(path))
    assert r.returncode == 78 and "writable by other users" in r.stderr


def test_run_with_bad_model_exits_78_without_starting(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    bad.with_suffix(".json").write_text(BUNDLED_MODEL.with_suffix(".json").read_text())
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"device: {{kind: emulated}}\nmodel: {{path: {bad}}}\noutput: {{log_file: null, journal: false}}\n"
    )
    r = ecgd("run", "--config", str(cfg))
    assert r.returncode == 78 and "bad.tflite: not a TFLite model" in r.stderr


def test_classify_prints_one_json_line_per_window(capsys):
    assert main(["classify", str(DEMO) + ".hea", "--hop", "5"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    n = read_recording(DEMO).mv.size
    assert len(rows) == (n - 3600) // 1800 + 1
    assert [r["start"] for r in rows] == list(range(0, rows[-1]["start"] + 1, 1800))
    assert all(r["end"] - r["start"] == 3600 for r in rows)
    model = load_model(BUNDLED_MODEL)
    for r in rows:
        if r["label"] in model.labels:
            assert r["label"] in rule_label(
                r["probabilities"], model.metadata, r["p_wave_coherence"], r["p_wave_to_qrs"]
            )
            assert r["confidence"] == pytest.approx(r["probabilities"][r["label"]], abs=1e-3)
            assert len(r["beat_labels"]) == len(r["beat_seq"]) >= 4
        else:
            assert r["label"] == "unreadable" and r["reason"]


def test_classify_with_frontend_matches_the_library_path(capsys):
    assert main(["classify", str(DEMO), "--frontend", "pcf8591"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = list(
        classify_recording(read_recording(DEMO), load_model(BUNDLED_MODEL), 10.0, AnalogFrontEnd())
    )
    assert rows == json.loads(json.dumps(expected))


def test_classify_csv_and_npy_need_a_rate(tmp_path, capsys):
    mv = read_recording(DEMO).mv[:7200]
    np.save(tmp_path / "x.npy", mv)
    np.savetxt(tmp_path / "x.csv", mv, delimiter=",")
    assert main(["classify", str(tmp_path / "x.npy")]) == 65
    assert "sample rate" in capsys.readouterr().err
    assert main(["classify", str(tmp_path / "x.npy"), "--fs", "360"]) == 0
    npy_rows = capsys.readouterr().out.splitlines()
    assert main(["classify", str(tmp_path / "x.csv"), "--fs", "360"]) == 0
    assert capsys.readouterr().out.splitlines() == npy_rows and len(npy_rows) == 2


def test_classify_missing_record_exits_66(tmp_path):
    assert main(["classify", str(tmp_path / "nothing")]) == 66


def test_classify_bad_model_exits_78(tmp_path):
    assert main(["classify", str(DEMO), "--model", str(tmp_path / "none.tflite")]) == 78


def test_model_writable_by_others_is_refused(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(BUNDLED_MODEL.read_bytes())
    model.with_suffix(".json").write_text(BUNDLED_MODEL.with_suffix(".json").read_text())
    os.chmod(model, 0o646)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {{path: {model}}}\n")
    r = ecgd("check-config", "--config", str(cfg))
    assert r.returncode == 78
    assert "m.tflite" in r.stderr and "writable by other users" in r.stderr


def test_a_reader_that_goes_away_ends_classify_quietly_and_stderr_stays_clean():
    """``ecgd classify … | head -1``: no BrokenPipeError traceback, no runtime chatter on stderr."""
    proc = subprocess.run(
        f"{sys.executable} -m ecgd classify {DEMO} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        executable="/bin/bash",
    )
    assert json.loads(proc.stdout)["start"] == 0
    assert proc.stderr == ""  # neither a traceback nor "INFO: Created TensorFlow Lite XNNPACK delegate"


def test_a_bad_csv_line_is_named_by_its_line_number_in_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("0.1\n0.2\nx,y\n")
    assert main(["classify", str(bad), "--fs", "360"]) == 65
    assert f"{bad}, line 3: not a number in 'x,y'" in capsys.readouterr().err
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("time,mv\n# a comment\n0,0.1\n1,0.2\n2\n")
    assert main(["classify", str(ragged), "--fs", "360"]) == 65
    assert f"{ragged}, line 5: 1 columns where the lines before have 2" in capsys.readouterr().err
