"""``ecgd strip`` and ``ecgd export`` on a recording made by the recorder from the emulated ADC; every
output read back with its format's reference library (wfdb, pyedflib) or plain numpy (CSV, PNG)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import DEMO_RECORD

from ecgd.acquisition.clock import SimulatedClock
from ecgd.acquisition.ring import SampleRing
from ecgd.acquisition.sampler import Sampler
from ecgd.acquisition.sources.emulated import emulated_device
from ecgd.acquisition.sources.pcf8591 import Pcf8591
from ecgd.cli import main
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.recordings import iso, list_segments
from ecgd.io.records import read_recording
from ecgd.outputs.recording import Recorder, RecordingSettings

RATE = 360.0
SECONDS = 70


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """70 s of the bundled MIT-BIH 201 excerpt through the emulated ADC (with a 0.5-s bus outage),
    recorded with the excerpt's reference beats as annotations, and a results log beside it."""
    tmp = tmp_path_factory.mktemp("rec")
    clock = SimulatedClock()
    fe = AnalogFrontEnd()
    i2c = emulated_device(read_recording(DEMO_RECORD), fe, clock, channel=2)
    i2c.inject(0.5, after_s=33.0)
    ring = SampleRing(int(SECONDS * RATE) + 10)
    sampler = Sampler(Pcf8591(1, 0x48, 2, bus_factory=i2c), ring, clock, RATE, retries=0)
    sampler.run(max_slots=int(SECONDS * RATE))
    rec = Recorder(
        RecordingSettings(directory=str(tmp / "rec"), flush_seconds=0.1, fsync=False),
        fe,
        lambda *a: None,
        wall_now=clock.wall_ns,
    )
    atr = wfdb.rdann(str(DEMO_RECORD.with_suffix("")), "atr")
    beats = [(int(s), sym) for s, sym in zip(atr.sample, atr.symbol, strict=True) if s < ring.next_seq]
    for s, sym in beats:
        rec.annotate(s, sym if sym in "NLRaVFJASEj/Qenfrx" else "Q")
    rec.annotate(int(20 * RATE), "+", "(AFIB")
    rec.start(ring, sampler.grid)
    rec.stop()
    grid = sampler.grid
    log = tmp / "results.jsonl"
    rows = []
    for i in range(0, (SECONDS - 10) // 2):
        first = int(i * 2 * RATE)
        rows.append(
            {
                "kind": "result",
                "label": "AF" if i >= 10 else "N",
                "confidence": 0.9,
                "window_index": i,
                "window_start": iso(grid.wall_ns(first)),
                "window_end": iso(grid.wall_ns(first + 3600)),
                "first_seq": first,
            }
        )
    rows.append({"kind": "alarm", "time": iso(grid.wall_ns(int(25 * RATE))), "message": "AF onset"})
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"dir": tmp / "rec", "ring": ring, "grid": grid, "beats": beats, "log": log, "tmp": tmp}


def codes_between(recorded, first: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    block = recorded["ring"].read(first, stop)
    return block.counts.astype(np.int64), block.valid


# --- strip ---------------------------------------------------------------------------------------
def blue_columns(png: Path) -> int:
    """Beat marks: runs of columns in the strip's top band holding the marks' blue."""
    import matplotlib.image

    img = matplotlib.image.imread(png)[..., :3]
    blue = (img[..., 2] > 0.6) & (img[..., 0] < 0.3) & (img[..., 1] < 0.5)
    cols = blue.any(axis=0).astype(np.int8)
    return int(np.count_nonzero(np.diff(np.concatenate(([0], cols))) == 1))


def test_a_strip_of_a_known_window_is_25_mm_per_s_and_marks_its_beats(recorded, capsys):
    out = recorded["tmp"] / "w12.png"
    rc = main(["strip", "--recordings", str(recorded["dir"]), "--log", str(recorded["log"]),
               "--window-index", "12", "-o", str(out)])  # fmt: skip
    assert rc == 0
    first = int(12 * 2 * RATE)
    want = [s for s, _ in recorded["beats"] if first <= s < first + 3600]
    said = capsys.readouterr().out
    assert f"10 s, {len(want)} beats" in said
    assert "label AF (0.90) window 12, 1 events, 1 alarms" in said  # the gap at 33 s, the alarm at 25 s
    import matplotlib.image

    h, w = matplotlib.image.imread(out).shape[:2]
    assert abs(w - (10 * 25 + 14 + 6) / 25.4 * 200) <= 1  # 250 mm of paper for 10 s, plus margins
    assert h >= round((30 + 22 + 12) / 25.4 * 200)  # at least 3 mV (30 mm)
    assert blue_columns(out) == len(want)


def test_a_strip_from_a_record_file_at_a_sample_as_an_alarm_record_names_it(recorded, capsys):
    (seg,) = list_segments(recorded["dir"])
    out = recorded["tmp"] / "s.png"
    assert (
        main(["strip", str(seg.path), "--at-sample", str(int(30 * RATE)), "--seconds", "6", "-o", str(out)])
        == 0
    )
    want = [s for s, _ in recorded["beats"] if 30 * RATE <= s < 36 * RATE]
    assert f"6 s, {len(want)} beats" in capsys.readouterr().out
    assert blue_columns(out) == len(want)


def test_strip_errors_are_clear(recorded, capsys, monkeypatch):
    out = recorded["tmp"] / "e.png"
    assert (
        main(["strip", "--recordings", str(recorded["dir"]), "--at", "2020-01-01T00:00:00", "-o", str(out)])
        == 66
    )
    assert "nothing recorded between 2020-01-01T00:00:00.000Z" in capsys.readouterr().err
    assert main(["strip", "--recordings", str(recorded["dir"]), "--at", "yesterday", "-o", str(out)]) == 65
    assert "'yesterday' is not a time" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the [plot] extra were not installed
    assert main(["strip", "--recordings", str(recorded["dir"]), "--at", "@0", "-o", str(out)]) == 69
    assert "pip install 'ecgd[plot]'" in capsys.readouterr().err


# --- export ----------------------------------------------------------------------------------------
def export(recorded, fmt: str, out: Path, a_s: float = 30.0, b_s: float = 40.0) -> None:
    grid = recorded["grid"]
    first, stop = int(a_s * RATE), int(b_s * RATE)
    rc = main(["export", "--recordings", str(recorded["dir"]), "--from", iso(grid.wall_ns(first)),
               "--to", iso(grid.wall_ns(stop)), "--format", fmt, "-o", str(out)])  # fmt: skip
    assert rc == 0


def first_slot(recorded, first: int) -> int:
    """iso() keeps milliseconds: the span starts on the first slot at or after that instant."""
    from ecgd.io.recordings import parse_time

    t = parse_time(iso(recorded["grid"].wall_ns(first)))
    return recorded["grid"].first_slot_at_or_after(t - recorded["grid"].wall_offset_ns)


def test_wfdb_export_holds_the_codes_the_gap_and_the_beats(recorded):
    out = recorded["tmp"] / "x" / "part"
    export(recorded, "wfdb", out)
    first = first_slot(recorded, int(30 * RATE))
    r = wfdb.rdrecord(str(out), physical=False)
    counts, valid = codes_between(recorded, first, first + r.sig_len)
    want = np.where(valid, np.maximum(counts - 128, -127), -128)
    np.testing.assert_array_equal(r.d_signal[:, 0], want)
    assert (~valid).sum() >= 0.45 * RATE  # the bus outage at 33 s
    ann = wfdb.rdann(str(out), "ecgd")
    beats = [s - first for s, _ in recorded["beats"] if first <= s < first + r.sig_len]
    assert [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym != '"'] == beats


def test_edf_export_reads_back_with_pyedflib(recorded):
    pyedflib = pytest.importorskip("pyedflib")
    out = recorded["tmp"] / "x.edf"
    export(recorded, "edf", out)
    first = first_slot(recorded, int(30 * RATE))
    f = pyedflib.EdfReader(str(out))
    try:
        assert f.getSampleFrequency(0) == RATE and f.getPhysicalDimension(0) == "mV"
        digital = f.readSignal(0, digital=True)
        physical = f.readSignal(0)
        onsets, _, texts = f.readAnnotations()
        start = f.getStartdatetime()
    finally:
        f.close()
    n = int(10 * RATE) - (first - int(30 * RATE))
    counts, valid = codes_between(recorded, first, first + n)
    np.testing.assert_array_equal(digital[:n], np.where(valid, counts, -1))
    assert (digital[n:] == -1).all()  # the last data record's tail: no sample
    mv = AnalogFrontEnd().counts_to_mv(counts)
    assert np.abs(physical[:n][valid] - mv[valid]).max() < 0.5 * 3.3 / 256 * 1000 / 1100 + 1e-4
    assert any(t.startswith("no sample") for t in texts)
    beats = [s for s, _ in recorded["beats"] if first <= s < first + n]
    n_beat_notes = sum(1 for t in texts if t in set("NLRaVFJASEj/Qenfrx"))
    assert n_beat_notes == len(beats)
    assert abs(start.timestamp() - recorded["grid"].wall_ns(first) / 1e9) < 1e-3
    assert min(abs(o - (beats[0] - first) / RATE) for o in onsets) < 1e-3


def test_csv_export_reads_back(recorded):
    out = recorded["tmp"] / "x.csv"
    export(recorded, "csv", out)
    first = first_slot(recorded, int(30 * RATE))
    with open(out) as f:
        rows = list(csv.DictReader(f))
    counts, valid = codes_between(recorded, first, first + len(rows))
    assert [r["valid"] for r in rows] == ["1" if v else "0" for v in valid]
    assert all(r["mv"] == "" for r, v in zip(rows, valid, strict=True) if not v)
    got = np.array([float(r["mv"]) for r, v in zip(rows, valid, strict=True) if v])
    want = (counts[valid] - 128) / (1100 / (3.3 / 256 * 1000))
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert rows[0]["time"] == iso(recorded["grid"].wall_ns(first))[:-1] + rows[0]["time"][23:]


def test_export_errors_are_clear(recorded, capsys):
    d = str(recorded["dir"])
    assert main(["export", "--recordings", d, "--from", "@0", "--to", "@10", "-o", "/tmp/never"]) == 66
    assert "nothing recorded" in capsys.readouterr().err
    assert main(["export", "--recordings", d, "--from", "@10", "--to", "@5", "-o", "/tmp/never"]) == 65
    assert "--to must be after --from" in capsys.readouterr().err


def test_classify_and_beats_read_a_recording_with_gaps(recorded, capsys):
    """ecgd's own recording (a 0.5-s bus outage in it) through the offline commands: the windows
    with the gap are not classified, the others are, and beats are found outside the gap."""
    (seg,) = list_segments(recorded["dir"])
    assert main(["classify", str(seg.path), "--hop", "10"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    gap_first = int(33 * RATE)
    for r in rows:
        if r["start"] <= gap_first < r["end"]:
            assert r["label"] == "unclassified" and "samples missing" in r["reason"]
    assert sum(r["probabilities"] is not None for r in rows) >= 4
    assert main(["beats", str(seg.path)]) == 0
    beats = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(beats) > 40 and not any(33 * RATE <= b["sample"] < 33.5 * RATE for b in beats)
