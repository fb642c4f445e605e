"""End to end: ``ecgd run`` on the demo set-up as a real process, read back from journald and the log.

One run of ~26 s covers: READY=1 only once running, a result per window in both sinks with consistent
sequence ranges, a SIGSTOP/SIGCONT stall accounted exactly as missing samples (never compressed), and a
clean stop on SIGTERM within 2 s (STOPPING=1, exit 0, the in-flight window reported as dropped).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import rule_label

from ecgd.analysis.beat_model import parse_metadata
from ecgd.analysis.model import load_metadata
from ecgd.config import BUNDLED_MODEL
from ecgd.harness import NotifyListener, read_journal, spawn_ecgd, terminate

ALARMS_FIRST = r"STATUS=(?:[A-Z][A-Z ]* \d+ s · )*"  # active alarms lead STATUS=, then HR

_META = BUNDLED_MODEL.with_suffix(".json")
BUNDLED_META = parse_metadata(_META, json.loads(_META.read_text()), load_metadata(_META))

RESULT_ID = "e59f77e50dac475e9f4c642396c50f3a"
REPO = Path(__file__).resolve().parents[1]
RATE, WINDOW, HOP = 360, 3600, 720


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, journald):
    tmp = tmp_path_factory.mktemp("e2e")
    log = tmp / "results.jsonl"
    conf = tmp / "ecgd.yaml"
    conf.write_text(
        "device: {kind: emulated, channel: 2}\n"
        f"output: {{journal: true, console: false, log_file: {log}}}\n"
        f"recording: {{directory: {tmp / 'recordings'}}}\n"
    )
    listener = NotifyListener(tmp / "notify.sock")
    t_start = time.monotonic()
    proc = spawn_ecgd(conf, listener.path, 2_000_000, stdout=subprocess.PIPE)
    try:
        if not listener.wait_for("READY=1", 20):
            proc.kill()
            pytest.fail(f"no READY=1 (exit {proc.poll()}): {proc.communicate(timeout=5)[1][-2000:]}")
        t_ready = time.monotonic()
        time.sleep(13.0)
        os.kill(proc.pid, signal.SIGSTOP)  # the whole process frozen, as by a stalled system
        time.sleep(2.0)
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(9.0)
        err, stop_s = terminate(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    listener.poll(0.2)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    journal = read_journal(f"_PID={proc.pid}", settle_s=0.5)
    for _ in range(20):  # journald writes asynchronously; give it a moment under load
        if sum(1 for e in journal if e.get("MESSAGE_ID") == RESULT_ID) >= sum(
            1 for r in records if r["kind"] == "result"
        ):
            break
        journal = read_journal(f"_PID={proc.pid}", settle_s=0.25)
    yield {
        "recordings": tmp / "recordings",
        "proc": proc,
        "err": err,
        "records": records,
        "journal": journal,
        "listener": listener,
        "stop_s": stop_s,
        "log": log,
        "ready_s": t_ready - t_start,
    }
    listener.close()


def results(run) -> list[dict]:
    return [r for r in run["records"] if r["kind"] == "result"]


def test_process_signals_ready_and_stops_cleanly(demo_run):
    proc = demo_run["proc"]
    assert proc.returncode == 0, demo_run["err"]
    assert demo_run["stop_s"] < 2.0
    states = [s for _, s in demo_run["listener"].messages]
    assert states.index("READY=1") < states.index("STOPPING=1")
    assert any(re.match(ALARMS_FIRST + r"HR (\d+ bpm|---( \(.*\))?) · running; last ", s) for s in states)
    assert any(re.match(ALARMS_FIRST + r"HR \d+ bpm · ", s) for s in states)
    assert "WATCHDOG=1" in states


def test_one_result_per_window_with_consistent_sequence_ranges(demo_run):
    res = results(demo_run)
    # ~26 s of sampling: windows end at 10, 12, ... s, plus the in-flight window dropped at stop.
    assert 8 <= len(res) <= 11
    assert [r["window_index"] for r in res] == list(range(len(res)))
    firsts = [r["first_seq"] for r in res]
    assert firsts == [i * HOP for i in range(len(res))]
    assert all(r["last_seq"] - r["first_seq"] == WINDOW - 1 for r in res)
    assert "stopped before the window was complete" in res[-1]["reason"]
    labels = {"N", "S", "V", "AF", "unreadable", "unclassified", "skipped"}
    for r in res:
        assert r["label"] in labels
        if r["label"] in ("N", "S", "V", "AF"):
            assert r["label"] in rule_label(
                r["probabilities"], BUNDLED_META, r["p_wave_coherence"], r["p_wave_to_qrs"]
            )
            assert r["confidence"] == r["probabilities"][r["label"]]
            assert len(r["beat_labels"]) >= 4 and set(r["beat_labels"]) <= set("NSVQ")
            assert r["missing_samples"] <= 180 and r["inference_ms"] > 0  # 5 % of the window
        else:
            assert r["reason"]


def test_the_stall_is_accounted_as_missing_samples_not_compressed(demo_run):
    res = results(demo_run)[:-1]
    stalled = [r for r in res if r["missing_samples"] >= 0.9 * 2 * RATE]
    assert stalled, "no window shows the 2-s SIGSTOP gap"
    for r in stalled:
        assert r["label"] == "unclassified" and "samples missing" in r["reason"]
        # The stall, plus whatever late wake-ups a loaded machine adds around it (CI shares its
        # machine: 970 of 3600 was seen with a soak beside it); never the whole window.
        assert r["missing_samples"] <= 2 * RATE + WINDOW // 4
    # Windows keep their place on the grid: 10 s of slots each, 2 s apart in wall time too.
    starts = [r["window_start"] for r in res]
    assert len(set(starts)) == len(starts)
    stopped = next(r for r in demo_run["records"] if r.get("event") == "stopped")
    assert stopped["samples_taken"] + stopped["samples_missing"] >= res[-1]["last_seq"] + 1


def test_journald_holds_the_same_results_as_the_log_file(demo_run):
    journal = [e for e in demo_run["journal"] if e.get("MESSAGE_ID") == RESULT_ID]
    res = results(demo_run)
    assert len(journal) == len(res)
    for entry, rec in zip(journal, res, strict=True):
        assert entry["SYSLOG_IDENTIFIER"] == "ecgd"
        assert entry["ECG_LABEL"] == rec["label"]
        assert int(entry["ECG_FIRST_SEQ"]) == rec["first_seq"]
        assert entry["ECG_WINDOW_START"] == rec["window_start"]
        assert entry["ECG_MODEL"] == rec["model"]
        expected_priority = "6" if rec["label"] == "N" else "4"
        assert entry["PRIORITY"] == expected_priority
        if rec["probabilities"]:
            assert json.loads(entry["ECG_PROBABILITIES"]) == rec["probabilities"]


def test_results_carry_the_heart_rate_of_the_recording(demo_run):
    """Classified windows have the heart rate of the replayed record's reference beats (MIT-BIH 201,
    AF and ectopy: irregular, so 15 %); others have none, with a reason. journald has the same."""
    import wfdb

    demo = REPO / "ecgd" / "demo" / "mitdb201_excerpt"
    ref = wfdb.rdann(str(demo), "atr")
    beat_symbols = set("NLRBAaJSVrFejnE/fQ")
    seqs = np.array([s for s, y in zip(ref.sample, ref.symbol, strict=True) if y in beat_symbols])
    journal = {int(e["ECG_FIRST_SEQ"]): e for e in demo_run["journal"] if e.get("MESSAGE_ID") == RESULT_ID}
    rated = 0
    for r in results(demo_run):
        entry = journal[r["first_seq"]]
        if r["probabilities"] is None:
            assert r["heart_rate_bpm"] is None and r["heart_rate_reason"]
            assert (
                "ECG_HEART_RATE_BPM" not in entry and entry["ECG_HEART_RATE_REASON"] == r["heart_rate_reason"]
            )
            continue
        if r["heart_rate_bpm"] is not None:
            assert float(entry["ECG_HEART_RATE_BPM"]) == r["heart_rate_bpm"]
        if r["missing_samples"]:  # a gap blanks the detector (never a beat from a gap): beats may be missed
            continue
        inside = seqs[(seqs >= r["first_seq"]) & (seqs <= r["last_seq"])]
        expected = 60000.0 / np.diff(inside).mean() * RATE / 1000.0
        # the detector misses ~4 % of 201's beats (AF, ectopy); one miss in a window moves its rate ~10 %
        assert r["heart_rate_bpm"] == pytest.approx(expected, rel=0.15), r
        assert abs(r["beat_count"] - inside.size) <= 2 and r["rr_min_ms"] <= r["rr_max_ms"]
        assert int(entry["ECG_BEAT_COUNT"]) == r["beat_count"]
        assert float(entry["ECG_RR_RMSSD_MS"]) == r["rr_rmssd_ms"]
        rated += 1
    # Only the windows ending at 10 and 12 s can be classified (the 2-s stall spoils the others), so
    # `rated` may be 0 on a loaded machine: tests/test_beats_daemon.py checks heart rates for sure.
    assert rated <= 2


def test_log_file_is_not_world_readable(demo_run):
    assert demo_run["log"].stat().st_mode & 0o777 == 0o640


def test_journalctl_selects_results_by_label(demo_run):
    res = results(demo_run)
    label = res[0]["label"]
    entries = read_journal(f"_PID={demo_run['proc'].pid}", f"ECG_LABEL={label}")
    assert len(entries) == sum(1 for r in res if r["label"] == label)


def test_the_recording_holds_every_slot_with_the_stall_as_invalid_samples(demo_run):
    """The demo run's recording, read with wfdb: one slot per grid period, the sampler's missing
    count exactly as invalid samples, the 2-s SIGSTOP among them, files 0640."""
    wfdb = pytest.importorskip("wfdb")
    from ecgd.io.recordings import list_segments

    (seg,) = list_segments(demo_run["recordings"])
    d = wfdb.rdrecord(str(seg.path), physical=False).d_signal[:, 0]
    stopped = next(r for r in demo_run["records"] if r.get("event") == "stopped")
    assert d.size == stopped["samples_taken"] + stopped["samples_missing"] == stopped["recorded_samples"]
    invalid = d == -128
    assert int(invalid.sum()) == stopped["samples_missing"]
    edges = np.flatnonzero(np.diff(np.concatenate(([0], invalid.astype(np.int8), [0]))))
    assert max(edges[1::2] - edges[0::2]) >= 1.9 * RATE, "the stall is not one run of invalid samples"
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in seg.files())
    abnormal = [r for r in results(demo_run) if r["abnormal"]]
    for r in abnormal:  # an abnormal line says where its signal is
        assert r["recording"] == str(seg.path) and r["recording_sample"] == r["first_seq"]
