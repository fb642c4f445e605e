"""Alarms through the running daemon: the emulated device plays a constructed recording in real time.

The recording is what the test writes (``ecgd.io.synthetic`` pieces, electrode millivolts); the
emulated AD8232 + PCF8591 turn it into ADC codes, and the daemon's worker feeds its alarm engine
from the ring. Records are read back from the JSON log and from the real journald.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import numpy as np
import pytest
from daemon_support import log_records, run_in_main_thread, write_config

from ecgd import config as cfg
from ecgd.daemon import Daemon
from ecgd.harness import read_journal
from ecgd.io import synthetic as syn
from ecgd.notify import Notifier
from ecgd.outputs.results import ALARM_MESSAGE_IDS

FS = 360.0


def recording(tmp, *pieces) -> dict:
    np.save(tmp / "rec.npy", np.concatenate(pieces))
    return {"recording": str(tmp / "rec.npy"), "recording_rate_hz": FS}


def alarms(records, name=None):
    return [r for r in records if r["kind"] == "alarm" and (name is None or r["alarm"] == name)]


def stop_after(seconds: float, before=None):
    def actions():
        if before:
            before()
        time.sleep(seconds)
        os.kill(os.getpid(), signal.SIGTERM)

    return actions


def test_asystole_and_vtach_through_the_daemon_with_journald_fields_and_status(daemon_env, journald):
    tmp, listener = daemon_env
    conf, log = tmp / "c.yaml", tmp / "r.jsonl"
    rec = recording(
        tmp,
        syn.regular(FS, 12, 70),
        syn.p_waves(FS, 8, 80, 0.25),  # asystole, electrodes on: P waves, no QRS (a ventricular standstill)
        syn.regular(FS, 8, 70),
        syn.regular(FS, 6, 160, width_ms=180),  # wide-complex tachycardia
        syn.regular(FS, 12, 70),
    )
    write_config(conf, log, emulated=rec, output={"journal": True})
    daemon = Daemon(cfg.load(conf), notifier=Notifier())
    daemon.start()
    run_in_main_thread(daemon, stop_after(42.0))
    records = log_records(log)
    onsets = Counter(r["alarm"] for r in alarms(records) if r["alarm_state"] == "onset")
    assert onsets["asystole"] == 1 and onsets["vtach"] == 1  # once each, not once per block or window
    asy_on, asy_end = alarms(records, "asystole")
    assert (asy_on["alarm_state"], asy_end["alarm_state"]) == ("onset", "end")
    assert asy_on["alarm_id"] == asy_end["alarm_id"] and asy_on["priority"] == 2 and asy_end["priority"] == 5
    assert asy_on["alarm_priority"] == "high" and asy_on["threshold"] == 4.0 and asy_on["value"] >= 4.0
    assert 3.0 < asy_end["duration_s"] < 8.0
    vt_on = next(r for r in alarms(records, "vtach") if r["alarm_state"] == "onset")
    assert (
        vt_on["value"] == pytest.approx(160, abs=10)
        and "labelled V, or P(V) ≥ 0.5, by the beat classifier" in vt_on["detail"]
    )
    # the same records in journald, with the alarm's MESSAGE_ID and the crit priority for the onset
    entries = read_journal(f"ECG_ALARM_ID={asy_on['alarm_id']}")
    for _ in range(20):
        if len(entries) == 2:
            break
        entries = read_journal(f"ECG_ALARM_ID={asy_on['alarm_id']}", settle_s=0.2)
    assert [(e["ECG_ALARM_STATE"], e["PRIORITY"]) for e in entries] == [("onset", "2"), ("end", "5")]
    assert {e["MESSAGE_ID"] for e in entries} == {ALARM_MESSAGE_IDS["asystole"]}
    assert entries[0]["ECG_ALARM"] == "asystole" and entries[0]["ECG_ALARM_PRIORITY"] == "high"
    assert entries[0]["ECG_KIND"] == "alarm" and entries[1]["ECG_DURATION_S"] == str(asy_end["duration_s"])
    # a window's beat labels are the beats the alarms saw: one label per counted beat
    rated = [r for r in records if r["kind"] == "result" and r.get("beat_count") is not None]
    assert rated and all(len(r["beat_labels"]) == r["beat_count"] for r in rated)
    # sinus before the asystole (windows ending within a hop of the flat line): N, or, on a busy machine
    # whose scheduler held the sampler back at start-up, refused for the samples it counted missing
    before = [r for r in records if r["kind"] == "result" and r["last_seq"] < 14 * FS]
    assert {r["label"] for r in before if r.get("beat_count") is not None} == {"N"}
    assert all("samples missing" in r["reason"] for r in before if r.get("beat_count") is None)
    # STATUS= led with the active alarm while it lasted
    assert any(s.startswith("STATUS=ASYSTOLE ") for s in listener.states("STATUS="))


@pytest.mark.parametrize("pins", [True, False], ids=["LO pin", "rails only"])
def test_leads_off_is_never_asystole_and_a_flat_line_after_reattaching_is(daemon_env, pins):
    tmp, _ = daemon_env
    conf, log = tmp / "c.yaml", tmp / "r.jsonl"
    rec = recording(tmp, syn.regular(FS, 10, 70), syn.flat(FS, 30))
    leads = {"lo_plus_line": 17, "lo_minus_line": 27} if pins else {}
    write_config(conf, log, emulated=rec, leads=leads)
    daemon = Daemon(cfg.load(conf), notifier=Notifier())
    daemon.start()
    marks = {}

    def detach():
        time.sleep(8.0)
        marks["off"] = time.monotonic()
        daemon.i2c.electrodes.detach("LO+", 10.0)  # off 8 … 18 s: the output at the top rail

    run_in_main_thread(daemon, stop_after(17.0, detach))
    records = log_records(log)
    off = alarms(records, "leads_off")
    assert [r["alarm_state"] for r in off] == ["onset", "end"]
    assert off[0]["alarm_category"] == "technical" and off[0]["priority"] == 3
    assert ("LO+" in off[0]["detail"]) == pins
    asy = alarms(records, "asystole")
    # Never during the detachment; after it, the flat line with the electrodes on is an asystole.
    assert asy and asy[0]["alarm_state"] == "onset" and asy[0]["seq"] >= off[1]["seq"] + 4 * FS
    assert not [r for r in alarms(records) if r["alarm"] == "asystole" and r["seq"] < off[1]["seq"]]


def test_reload_changes_a_limit_live_and_an_alarm_off_is_said_once(daemon_env):
    tmp, _ = daemon_env
    conf, log = tmp / "c.yaml", tmp / "r.jsonl"
    rec = recording(tmp, syn.regular(FS, 60, 45))
    limits = {"brady_bpm": 40, "extreme_brady_bpm": 30, "rate_delay_seconds": 2, "afib": False}
    write_config(conf, log, emulated=rec, alarms=limits)
    daemon = Daemon(cfg.load(conf), notifier=Notifier())
    daemon.start()
    marks = {}

    def reload():
        time.sleep(12.0)
        write_config(conf, log, emulated=rec, alarms={**limits, "brady_bpm": 50})
        marks["hup"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGHUP)

    run_in_main_thread(daemon, stop_after(10.0, reload))
    records = log_records(log)
    said = [r for r in records if r.get("event") == "alarms_off"]
    assert not [r for r in records if r.get("event") == "relearn_untrained"]  # the trained relearn settings
    assert len(said) == 1 and said[0]["alarms"] == ["afib"] and "afib" in said[0]["message"]
    reloaded = next(i for i, r in enumerate(records) if r.get("event") == "reloaded")
    brady = alarms(records, "bradycardia")
    assert [r["alarm_state"] for r in brady] == ["onset"]  # 45 bpm: not below 40, below 50
    assert records.index(brady[0]) > reloaded and brady[0]["threshold"] == 50.0
    assert brady[0]["value"] == pytest.approx(45, abs=2)
    active = [r for r in records if r.get("event") == "alarms_active"]
    assert active and brady[0]["alarm_id"] in active[0]["alarm_ids"]  # a stop is not an "end"
