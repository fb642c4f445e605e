"""``ecgd beats`` and ``ecgd classify``'s beat fields on the bundled MIT-BIH excerpt; the annotation
file read back with the reference reader (``wfdb.rdann``) and scored against the record's own."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "ecgd" / "demo" / "mitdb201_excerpt"
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ")


def ecgd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecgd", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def beats_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("beats")
    proc = ecgd("beats", str(DEMO), "--frontend", "pcf8591", "--wfdb-annotations", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    return rows, out


def test_one_line_per_beat_matching_the_reference_annotations(beats_run):
    rows, _ = beats_run
    ref = wfdb.rdann(str(DEMO), "atr")
    truth = np.array([s for s, y in zip(ref.sample, ref.symbol, strict=True) if y in BEAT_SYMBOLS])
    found = np.array([r["sample"] for r in rows])
    assert np.all(np.diff(found) > 0)
    tol = round(0.15 * 360)  # EC57 match window
    matched = np.abs(found[:, None] - truth[None, :]).min(axis=1) <= tol
    recalled = np.abs(truth[:, None] - found[None, :]).min(axis=1) <= tol
    # AF with ectopy, through the 8-bit ADC: +P 100 %, Se 96.1 % (320 of 333) with the detector of today
    assert matched.mean() >= 0.98 and recalled.mean() >= 0.95
    assert rows[0]["rr_ms"] is None and rows[0]["time_s"] == pytest.approx(rows[0]["sample"] / 360, abs=1e-4)
    for a, b in itertools.pairwise(rows):
        if b["rr_ms"] is not None:
            assert b["rr_ms"] == pytest.approx((b["sample"] - a["sample"]) * 1000 / 360, abs=0.05)


def test_the_annotation_file_reads_back_with_wfdb(beats_run):
    rows, out = beats_run
    ann = wfdb.rdann(str(out / DEMO.name), "ecgd")
    assert ann.sample.tolist() == [r["sample"] for r in rows]
    assert ann.symbol == [r["label"] for r in rows] and ann.fs == 360  # the bundled model's beat labels
    assert set(ann.symbol) <= {"N", "S", "V", "Q"} and "N" in ann.symbol


def test_each_label_comes_with_the_probabilities_it_was_read_from(beats_run):
    rows, _ = beats_run
    thr = json.loads((REPO / "ecgd" / "models" / "default.json").read_text())["beat_thresholds"]
    judged = [r for r in rows if r["label"] != "Q"]
    assert judged and all(r["p_s"] is None and r["p_v"] is None for r in rows if r["label"] == "Q")
    for r in judged:  # the model's rule: V at P(V) >= its threshold, else S at P(S) >= its threshold
        assert 0 <= r["p_s"] <= 1 and 0 <= r["p_v"] <= 1
        want = "V" if r["p_v"] >= thr["V"] else "S" if r["p_s"] >= thr["S"] else "N"
        near = min(abs(r["p_v"] - thr["V"]), abs(r["p_s"] - thr["S"])) < 1e-3  # rounded to 3 places
        assert r["label"] == want or near, r
    assert len({r["p_v"] for r in judged}) > 10  # the model's output, not a constant


def test_classify_prints_the_beat_fields_and_its_labels_are_the_beat_stages(beats_run):
    proc = ecgd("classify", str(DEMO), "--frontend", "pcf8591", "--hop", "10")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    rated = [r for r in rows if r["heart_rate_bpm"] is not None]
    assert len(rated) >= len(rows) - 3  # the last window ends within the detector's delay of the end
    assert all(30 < r["heart_rate_bpm"] < 200 and r["beat_count"] >= 3 for r in rated)
    assert rows[-1]["heart_rate_reason"] in (
        None,
        "recording ended before the beats at the window's end were detected",
    )
    # one notion of a beat: a window's labelled beats are the beats it counts, and each carries the
    # label `ecgd beats` gives it (the same streaming labeller, as in the daemon)
    assert all(len(r["beat_labels"]) == r["beat_count"] == len(r["beat_seq"]) for r in rated)
    by_sample = {b["sample"]: b["label"] for b in beats_run[0]}
    seen = [
        (by_sample.get(seq), label, r["label"])
        for r in rated
        for seq, label in zip(r["beat_seq"], r["beat_labels"], strict=True)
    ]
    assert seen and all(
        beat == label or (beat, label, window) == ("S", "N", "AF") for beat, label, window in seen
    )  # an S beat reads N in an AF window


def test_errors_have_the_classify_exit_codes(tmp_path):
    missing = ecgd("beats", str(tmp_path / "nothing"))
    assert missing.returncode == 66 and "no such record header" in missing.stderr
    short = tmp_path / "short.npy"
    np.save(short, np.zeros(360 * 5))
    proc = ecgd("beats", str(short), "--fs", "360")
    assert proc.returncode == 65 and "shorter than one window (10 s)" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("beats:\n  live_rr_cont: 4\n")
    proc = ecgd("beats", str(DEMO), "--config", str(bad))
    assert proc.returncode == 78 and "did you mean beats.live_rr_count?" in proc.stderr
    blocked = tmp_path / "file"
    blocked.write_text("")
    proc = ecgd("beats", str(DEMO), "--wfdb-annotations", str(blocked))
    assert proc.returncode == 73 and "cannot write annotations" in proc.stderr


@pytest.mark.parametrize("command", ["beats", "classify"])
def test_a_change_of_the_dominant_beat_is_said_on_stderr(tmp_path, command):
    """As the daemon's `template_changed` record: narrow beats, then wide ones for good at the same rate."""
    from ecgd.io import synthetic as syn

    np.save(
        tmp_path / "x.npy",
        np.concatenate((syn.regular(360.0, 40, 75), syn.regular(360.0, 90, 75, width_ms=150))),
    )
    (tmp_path / "c.yaml").write_text("relearn:\n  learn_seconds: 20\n")
    args = (
        str(tmp_path / "x.npy"),
        "--fs",
        "360",
        "--frontend",
        "pcf8591",
        "--config",
        str(tmp_path / "c.yaml"),
    )
    proc = ecgd(command, *args)
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if "dominant beat changed" in ln]
    sample = int(line.split("at sample ")[1].split()[0])
    assert line.startswith(f"ecgd {command}: ") and "became the template (QRS width" in line
    assert 40 * 360 < sample < 110 * 360
    rows = [json.loads(r) for r in proc.stdout.splitlines()]  # stdout is still one JSON object a line
    last = rows[-20:] if command == "beats" else rows[-3:]
    assert all(r["label"] == "N" for r in last), last  # judged against the new template
    (tmp_path / "off.yaml").write_text("relearn:\n  learn_seconds: 20\n  change_beats: 0\n")
    off = ecgd(command, *args[:-1], str(tmp_path / "off.yaml"))
    assert off.returncode == 0 and "dominant beat changed" not in off.stderr
