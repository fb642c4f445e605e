"""`ecgd bridge` and `ecgd ward` against a real Mosquitto (TLS from a test CA, passwords, an ACL)
and the real journald: records written to the journal reach subscribers, at least once, in order."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecgd import config as cfg
from ecgd.bridge.broker_harness import (
    Collector,
    send_alarm,
    send_record,
    start_bridge,
    this_process_match,
    write_bridge_config,
)
from ecgd.bridge.messages import Vitals, record_fields, to_message
from ecgd.harness import journal_cursor

pytest.importorskip("paho.mqtt.client")
needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
    reason="mosquitto is not installed (./dev setup installs it)",
)
SITE = "t"
# What README's ACL section prescribes: each bed writes only its own topics, the desk only reads.
ACL = """user desk
topic read ecgd/#

user bed1
topic write ecgd/t/bed1/#

user bed2
topic write ecgd/t/bed2/#
"""
USERS = {"bed1": "pw-bed1", "bed2": "pw-bed2", "desk": "pw-desk"}


# -- the mapping, the vitals, the ledger (no broker) ---------------------------------------------------


def _entry(cursor: str, **ecg: str) -> dict:
    return {
        "__CURSOR": cursor,
        "__REALTIME_TIMESTAMP": "1796155200123456",
        "_BOOT_ID": "b0",
        "_PID": "42",
        "PRIORITY": "6",
        "MESSAGE": "m",
        **{f"ECG_{k.upper()}": v for k, v in ecg.items()},
    }


def test_journal_fields_map_back_to_the_json_log_names_and_types():
    e = _entry(
        "c1",
        kind="result",
        label="N",
        confidence="0.97",
        window_index="12",
        abnormal="0",
        probabilities='{"N":0.97,"A":0.03}',
        model="default-1.0",
        heart_rate_bpm="71.5",  # a field the beats branch adds: no code change needed
    )
    f = record_fields(e)
    assert f == {
        "kind": "result",
        "label": "N",
        "confidence": 0.97,
        "window_index": 12,
        "abnormal": False,
        "probabilities": {"N": 0.97, "A": 0.03},
        "model": "default-1.0",
        "heart_rate_bpm": 71.5,
    }
    m = to_message(e, SITE, "bed1")
    assert m.topic == "result"
    assert m.payload["schema"] == 1 and m.payload["site"] == SITE and m.payload["bed"] == "bed1"
    assert m.payload["run"] == "b0:42" and m.payload["cursor"] == "c1"
    assert m.payload["time"] == "2026-12-01T20:00:00.123Z"


def test_kinds_route_to_their_topics_and_strays_are_skipped():
    assert to_message(_entry("a", kind="alarm", alarm_id="7"), SITE, "b").topic == "alarm"
    assert to_message(_entry("a", kind="alarm", alarm_id="0042"), SITE, "b").payload["alarm_id"] == "0042"
    assert to_message(_entry("f", kind="fault", event="sensor_fault"), SITE, "b").topic == "event"
    assert to_message(_entry("l", kind="lifecycle", event="started"), SITE, "b").topic == "event"
    assert to_message(_entry("s"), SITE, "b") is None  # the monitor's stdout, not a record


def test_vitals_follow_alarms_and_ignore_replays():
    v = Vitals()
    onset = to_message(
        _entry(
            "1", kind="alarm", alarm_id="a1", alarm="asystole", alarm_state="onset", alarm_priority="high"
        ),
        SITE,
        "b",
    )
    end = to_message(_entry("2", kind="alarm", alarm_id="a1", alarm="asystole", alarm_state="end"), SITE, "b")
    r5 = to_message(
        _entry("3", kind="result", label="A", confidence="0.8", window_index="5", probabilities="{}"),
        SITE,
        "b",
    )
    r4 = to_message(_entry("4", kind="result", label="N", window_index="4", probabilities="{}"), SITE, "b")
    assert v.apply(onset) and [a["alarm_id"] for a in v.snapshot()["alarms"]] == ["a1"]
    assert v.apply(r5) and v.label == "A" and v.window_index == 5 and v.signal == "ok"
    assert v.heart_rate_bpm is None, "no rate in the window: none shown"
    assert not v.apply(r4) and v.label == "A", "an older window replayed after a restart must not win"
    assert not v.apply(onset), "an onset seen twice changes nothing"
    assert v.apply(end) and v.snapshot()["alarms"] == []
    restored = Vitals.restore(json.loads(json.dumps(v.snapshot())))
    assert restored.snapshot() == v.snapshot()


def test_ledger_commits_only_an_acknowledged_prefix():
    from ecgd.bridge.publisher import Ledger

    ledger = Ledger("c0")
    for mid, cursor in ((1, "c1"), (2, None), (3, "c3"), (None, "c4"), (5, "c5")):
        ledger.add(mid, cursor)
    ledger.acked(3)
    ledger.acked(5)
    assert not ledger.advance() and ledger.committed == "c0", "1 is not acknowledged: nothing moves"
    ledger.acked(1)
    assert ledger.advance() and ledger.committed == "c1" and len(ledger) == 4  # 2 (vitals) still out
    ledger.acked(2)
    assert ledger.advance() and ledger.committed == "c5" and len(ledger) == 0


def test_bridge_config_errors_are_reported_together():
    text = """
bridge:
  broker: http://x:1883
  site: "a/b"
  username: bed1
  keepalive_seconds: 1
  tls:
    ca_fil: /x
"""
    with pytest.raises(cfg.ConfigError) as e:
        cfg.parse(text)
    problems = e.value.problems
    assert "bridge.tls.ca_fil: unknown key; did you mean bridge.tls.ca_file?" in problems
    assert any(p.startswith("bridge.keepalive_seconds: 1 is out of range") for p in problems)
    assert "bridge.broker: 'http://x:1883' must start with mqtt:// or mqtts://" in problems
    assert any(p.startswith("bridge.site: 'a/b' must be 1-64 of") for p in problems)
    assert "bridge.password_file: username and password_file go together" in problems
    s = cfg.parse("bridge:\n  broker: mqtts://broker.ward:8884\n  bed: b3\n  site: w2\n").bridge
    assert s.host_port == ("broker.ward", 8884, True) and s.topic_prefix == "ecgd/w2/b3"
    assert cfg.parse("bridge:\n  broker: mqtt://h\n").bridge.host_port == ("h", 1883, False)


def test_check_config_checks_the_bridge_files(tmp_path: Path):
    conf = tmp_path / "c.yaml"
    conf.write_text(
        "bridge:\n  broker: mqtts://127.0.0.1:8883\n  username: u\n"
        f"  password_file: {tmp_path / 'nope'}\n  tls:\n    ca_file: {tmp_path / 'ca.crt'}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "ecgd", "check-config", "--config", str(conf)], capture_output=True, text=True
    )
    assert proc.returncode == 78, proc.stdout + proc.stderr
    assert f"bridge.password_file: {tmp_path / 'nope'} does not exist" in proc.stderr
    assert f"bridge.tls.ca_file: {tmp_path / 'ca.crt'} does not exist" in proc.stderr


def test_bridge_without_a_broker_refuses_to_start(tmp_path: Path):
    conf = tmp_path / "c.yaml"
    conf.write_text("bridge:\n  site: w\n")
    proc = subprocess.run(
        [sys.executable, "-m", "ecgd", "bridge", "--config", str(conf)], capture_output=True, text=True
    )
    assert proc.returncode == 78 and "bridge.broker is not set" in proc.stderr


def _bridge_once(conf: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ecgd", "bridge", "--config", str(conf)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


# -- a real broker -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from ecgd.bridge.broker_harness import TestCa

    root = tmp_path_factory.mktemp("pki")
    return TestCa(root / "ca"), TestCa(root / "other", name="someone else's CA")


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pki):
    from ecgd.bridge.broker_harness import Mosquitto

    m = Mosquitto(
        tmp_path_factory.mktemp("mosquitto"), users=USERS, acl=ACL, tls=pki[0], client_certs=True
    ).start()
    yield m
    m.stop()


@pytest.fixture
def secrets(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for user, password in USERS.items():
        out[user] = tmp_path / f"{user}.password"
        out[user].write_text(password + "\n")
    (tmp_path / "wrong.password").write_text("not-it\n")
    out["wrong"] = tmp_path / "wrong.password"
    return out


def _desk(broker, pki, client_id: str, topic: str = "ecgd/t/#") -> Collector:
    return Collector(broker.tls_port, topic, "desk", USERS["desk"], client_id, ca_certs=str(pki[0].ca_cert))


@needs_mosquitto
def test_records_alarms_and_retained_vitals_over_tls(journald, broker, pki, secrets, tmp_path: Path):
    cursor = journal_cursor()
    for i in range(3):
        fields = {"label": "N", "confidence": 0.9, "probabilities": {"N": 0.9}, "heart_rate_bpm": 60 + i}
        send_record("result", f"ECG N {i}", window_index=i, **fields)
    send_alarm("a1", "onset", value=0.0, threshold=4.0)
    send_record("fault", "sensor fault", 3, event="sensor_fault")
    conf = write_bridge_config(
        tmp_path / "c.yaml", broker.url(tls=True), "bed1", cursor, this_process_match(),
        username="bed1", password_file=str(secrets["bed1"]), tls={"ca_file": str(pki[0].ca_cert)},
    )  # fmt: skip
    live = _desk(broker, pki, "desk-live")
    proc = start_bridge(conf, tmp_path / "bridge.log", duration=2.5)
    assert proc.wait(30) == 0, (tmp_path / "bridge.log").read_text()
    assert live.wait_for(lambda c: len(c.of("result")) == 3 and c.of("alarm") and c.of("event"), 10)
    assert [r["window_index"] for r in live.of("result")] == [0, 1, 2]
    alarm = live.of("alarm")[0]
    assert (alarm["alarm_id"], alarm["alarm_state"], alarm["alarm_priority"], alarm["value"]) == (
        "a1",
        "onset",
        "high",
        0.0,
    )
    assert live.of("event")[0]["event"] == "sensor_fault"
    live.close()
    # a desk that starts afterwards gets this bed's state at once, from the retained messages
    late = _desk(broker, pki, "desk-late")
    assert late.wait_for(lambda c: c.of("vitals") and c.of("status"), 5)
    vitals = late.of("vitals")[-1]
    assert vitals["window_index"] == 2 and vitals["heart_rate_bpm"] == 62 and vitals["label"] == "N"
    assert [a["alarm_id"] for a in vitals["alarms"]] == ["a1"]
    assert vitals["signal"] == "fault: sensor_fault"
    assert late.of("status")[-1]["state"] == "offline" and late.of("status")[-1]["reason"] == "bridge stopped"
    late.close()
    saved = json.loads((tmp_path / "bed1-cursor.json").read_text())
    assert saved["cursor"] != cursor and saved["vitals"]["window_index"] == 2


@needs_mosquitto
def test_last_will_fires_when_the_bridge_is_killed(journald, broker, secrets, tmp_path: Path):
    conf = write_bridge_config(
        tmp_path / "c.yaml", broker.url(), "bed2", journal_cursor(), this_process_match(),
        username="bed2", password_file=str(secrets["bed2"]),
    )  # fmt: skip
    watcher = Collector(broker.port, "ecgd/t/bed2/status", "desk", USERS["desk"], "desk-will")
    proc = start_bridge(conf, tmp_path / "bridge.log")
    try:
        assert watcher.wait_for(lambda c: any(s["state"] == "online" for s in c.of("status")), 15)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert watcher.wait_for(lambda c: c.of("status")[-1]["state"] == "offline", 15)
        assert watcher.of("status")[-1]["reason"] == "connection lost"
    finally:
        proc.kill()
        watcher.close()


@needs_mosquitto
def test_acl_lets_a_bed_write_only_its_own_topics(broker):
    import paho.mqtt.client as mqtt

    watcher = Collector(broker.port, "ecgd/#", "desk", USERS["desk"], "desk-acl")
    bed1 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    bed1.username_pw_set("bed1", USERS["bed1"])
    bed1.connect("127.0.0.1", broker.port)
    bed1.loop_start()
    bed1.publish("ecgd/t/bed2/vitals", b'{"forged":true}', qos=1).wait_for_publish(5)
    bed1.publish("ecgd/t/bed1/event", b'{"own":true}', qos=1).wait_for_publish(5)
    watcher.client.publish("ecgd/t/bed1/alarm", b'{"from_desk":true}', qos=1).wait_for_publish(5)
    assert watcher.wait_for(lambda c: c.of("event"), 5)
    time.sleep(0.3)
    bodies = [b for _, _, b in watcher.messages]
    assert {"own": True} in bodies
    assert {"forged": True} not in bodies and {"from_desk": True} not in bodies
    bed1.disconnect()
    bed1.loop_stop()
    watcher.close()


@needs_mosquitto
def test_wrong_password_is_refused_with_a_clear_message(broker, secrets, tmp_path: Path):
    conf = write_bridge_config(
        tmp_path / "c.yaml", broker.url(), "bed1", "", this_process_match(),
        username="bed1", password_file=str(secrets["wrong"]),
    )  # fmt: skip
    proc = _bridge_once(conf)
    assert proc.returncode == 78, proc.stderr
    assert f"ecgd: {broker.url()}: broker refused the login: Not authorized" in proc.stderr


@needs_mosquitto
def test_untrusted_certificate_is_refused_with_a_clear_message(broker, pki, secrets, tmp_path: Path):
    conf = write_bridge_config(
        tmp_path / "c.yaml", broker.url(tls=True), "bed1", "", this_process_match(),
        username="bed1", password_file=str(secrets["bed1"]), tls={"ca_file": str(pki[1].ca_cert)},
    )  # fmt: skip
    proc = _bridge_once(conf)
    assert proc.returncode == 78, proc.stderr
    assert f"ecgd: {broker.url(tls=True)}: the broker's certificate is not trusted (" in proc.stderr
    assert "check tls.ca_file" in proc.stderr
    ward = subprocess.run(
        [sys.executable, "-m", "ecgd", "ward", "--broker", broker.url(tls=True), "--once",
         "--username", "desk", "--password-file", str(secrets["desk"]), "--ca-file", str(pki[1].ca_cert)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ward.returncode == 78 and "certificate is not trusted" in ward.stderr


def test_unreachable_broker_at_start_is_exit_69(tmp_path: Path):
    from ecgd.bridge.broker_harness import free_port

    conf = write_bridge_config(
        tmp_path / "c.yaml", f"mqtt://127.0.0.1:{free_port()}", "bed1", "", "SYSLOG_IDENTIFIER=x"
    )
    proc = _bridge_once(conf)
    assert proc.returncode == 69, proc.stderr
    assert "broker unreachable: Connection refused" in proc.stderr


@needs_mosquitto
def test_ward_once_shows_two_beds_high_alarm_first(journald, broker, pki, secrets, tmp_path: Path):
    import paho.mqtt.client as mqtt

    # bed2 through a real bridge: a high alarm; bed1's retained vitals published as an old bed would
    cursor = journal_cursor()
    send_record("result", "ECG A", window_index=7, label="A", confidence=0.81, probabilities={"A": 0.81},
                heart_rate_bpm=131)  # fmt: skip
    send_alarm("vt-1", "onset", alarm="ventricular_tachycardia")
    conf = write_bridge_config(
        tmp_path / "c.yaml", broker.url(tls=True), "bed2", cursor, this_process_match(),
        username="bed2", password_file=str(secrets["bed2"]), tls={"ca_file": str(pki[0].ca_cert)},
    )  # fmt: skip
    assert start_bridge(conf, tmp_path / "bridge.log", duration=2.0).wait(30) == 0
    bed1 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    bed1.username_pw_set("bed1", USERS["bed1"])
    bed1.connect("127.0.0.1", broker.port)
    bed1.loop_start()
    old = {"schema": 1, "site": "t", "bed": "bed1", "heart_rate_bpm": 64, "label": "N", "confidence": 0.97,
           "signal": "ok", "updated": "2026-01-01T00:00:00.000Z", "alarms": []}  # fmt: skip
    bed1.publish("ecgd/t/bed1/vitals", json.dumps(old), qos=1, retain=True).wait_for_publish(5)
    bed1.publish("ecgd/t/bed1/status", json.dumps({"state": "online"}), qos=1, retain=True).wait_for_publish(
        5
    )
    bed1.disconnect()
    bed1.loop_stop()
    proc = subprocess.run(
        [sys.executable, "-m", "ecgd", "ward", "--broker", broker.url(tls=True), "--site", "t", "--once",
         "--username", "desk", "--password-file", str(secrets["desk"]), "--ca-file", str(pki[0].ca_cert)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "160"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "t/bed" in line]
    assert len(lines) == 2, proc.stdout
    assert "t/bed2" in lines[0] and "131" in lines[0] and "A 0.81" in lines[0]
    assert "HIGH ventricular_tachycardia" in lines[0]
    assert "t/bed1" in lines[1] and "64" in lines[1] and "N 0.97" in lines[1] and "STALE" in lines[1]


# -- the monitor + the bridge through a broker outage and a bridge crash --------------------------------


@needs_mosquitto
def test_every_result_and_alarm_arrives_through_an_outage_and_a_bridge_restart(journald, tmp_path: Path):
    """A monitor on the emulated device (real clock); the broker is stopped for 10 s and the bridge killed
    (SIGKILL) and restarted once. Every window's result and every alarm (the monitor's asystole and the
    test's own records) must arrive, in order, no gap; duplicates are allowed and counted."""
    from ecgd.bridge.broker_harness import Mosquitto
    from ecgd.harness import read_journal

    broker = Mosquitto(tmp_path / "mosquitto", users={"bed1": "pw1", "desk": "pwd"}, acl=ACL).start()
    password = tmp_path / "bed1.password"
    password.write_text("pw1\n")
    monitor_conf = tmp_path / "ecgd.yaml"
    # The emulated device plays a constructed ECG with a flat line from 14 s to 22 s: the monitor's own
    # asystole alarm begins and ends about when the broker is away (not asserted: the timing is load).
    import numpy as np

    from ecgd.io import synthetic as syn

    fs = 360.0
    np.save(
        tmp_path / "rec.npy",
        np.concatenate([syn.regular(fs, 14, 70), syn.flat(fs, 8), syn.regular(fs, 30, 70)]),
    )
    monitor_conf.write_text(
        json.dumps(
            {
                "device": {"kind": "emulated", "channel": 2},
                "emulated": {"recording": str(tmp_path / "rec.npy"), "recording_rate_hz": fs},
                "sampling": {"realtime_priority": 0},
                "output": {"journal": True, "console": False, "log_file": str(tmp_path / "results.jsonl")},
            }
        )
    )
    cursor = journal_cursor()
    started = time.time()
    desk = Collector(broker.port, "ecgd/t/bed1/#", "desk", "pwd", "desk-outage")
    monitor = subprocess.Popen(
        [sys.executable, "-m", "ecgd", "run", "--config", str(monitor_conf), "--duration", "40"],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "monitor.log", "wb"),  # noqa: SIM115
    )
    # the monitor's records and the alarms this test writes in its place (the alarms branch lands later)
    match = f"SYSLOG_IDENTIFIER=ecgd _PID={monitor.pid} _PID={os.getpid()}"
    conf = write_bridge_config(
        tmp_path / "bridge.yaml",
        broker.url(),
        "bed1",
        cursor,
        match,
        username="bed1",
        password_file=str(password),
    )
    log = tmp_path / "bridge.log"
    bridge = start_bridge(conf, log)
    try:
        send_alarm("a1", "onset")
        assert desk.wait_for(lambda c: len(c.of("result")) >= 2, 30), log.read_text()
        broker.stop()  # 10 s outage: the monitor goes on writing, the bridge retries
        send_alarm("a1", "end")
        send_alarm("a2", "onset", alarm="bradycardia", priority="medium", value=38)
        time.sleep(10)
        broker.start()
        seen = len(desk.of("result"))
        assert desk.wait_for(lambda c: len(c.of("result")) >= seen + 3, 30), log.read_text()
        bridge.send_signal(signal.SIGKILL)  # a crash: whatever was in flight is sent again
        bridge.wait(10)
        send_alarm("a2", "end", alarm="bradycardia", priority="medium")
        time.sleep(2)
        bridge = start_bridge(conf, log)
        assert monitor.wait(60) == 0, (tmp_path / "monitor.log").read_text()
        expected = [
            int(e["ECG_WINDOW_INDEX"])
            # not --after-cursor: journalctl 252 skips the first match after a cursor of another entry
            for e in read_journal(f"_PID={monitor.pid}", "ECG_KIND=result", f"--since=@{int(started) - 1}")
        ]
        assert len(expected) >= 12 and expected == list(range(len(expected)))
        real_alarms = [
            (e["ECG_ALARM_ID"], e["ECG_ALARM_STATE"])
            for e in read_journal(f"_PID={monitor.pid}", "ECG_KIND=alarm", f"--since=@{int(started) - 1}")
        ]
        assert "asystole" in " ".join(a for a, _ in real_alarms), real_alarms
        assert desk.wait_for(lambda c: {r["window_index"] for r in c.of("result")} >= set(expected), 30)
        assert desk.wait_for(
            lambda c: {(a["alarm_id"], a["alarm_state"]) for a in c.of("alarm")} >= set(real_alarms), 10
        )
        assert desk.wait_for(lambda c: any(e.get("event") == "stopped" for e in c.of("event")), 10)
    finally:
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(20)
        monitor.kill()
        desk.close()
        broker.stop()
    windows = [r["window_index"] for r in desk.of("result")]
    first_seen = list(dict.fromkeys(windows))
    assert first_seen == expected, "in order, no gap"
    # the test's own alarm records, and the monitor's (asystole), each in the order it was written
    alarms = [(a["alarm_id"], a["alarm_state"]) for a in desk.of("alarm")]
    ours = [a for a in alarms if a[0] in ("a1", "a2")]
    assert list(dict.fromkeys(ours)) == [("a1", "onset"), ("a1", "end"), ("a2", "onset"), ("a2", "end")]
    assert [a for a in dict.fromkeys(alarms) if a[0] not in ("a1", "a2")] == real_alarms
    duplicates = len(windows) - len(first_seen) + len(alarms) - len(set(alarms))
    print(
        f"\n{len(first_seen)} windows, {len(set(alarms))} alarm records ({len(real_alarms)} the monitor's: "
        f"{real_alarms}) delivered, {duplicates} duplicates"
    )
    assert {(r["run"], r["window_index"]) for r in desk.of("result")} == {
        (desk.of("result")[0]["run"], w) for w in expected
    }, "one run: the identity a consumer drops duplicates by"
    assert bridge.returncode == 0
    text = log.read_text()
    assert "lost the broker" in text and "reconnected to" in text


def test_a_bridge_that_can_read_no_journal_says_so(tmp_path: Path):
    from ecgd.bridge.journal_source import unreadable_journal

    empty = (tmp_path / "var", tmp_path / "run")
    assert (
        unreadable_journal(empty)
        == f"no system journal in {empty[0]} or {empty[1]} (is systemd-journald running?)"
    )
    machine = tmp_path / "run" / "0123abcd"
    machine.mkdir(parents=True)
    (machine / "system.journal").write_bytes(b"LPKSHHRH")
    assert unreadable_journal(empty) is None


@needs_mosquitto
def test_a_cursor_that_rotated_away_is_reported_and_the_bridge_goes_on(
    journald, broker, secrets, tmp_path: Path
):
    real = dict(part.split("=", 1) for part in journal_cursor().split(";"))
    gone = f"s={real['s']};i=0;b={real['b']};m=0;t=0;x=0"  # before this journal's first entry
    send_record("result", "ECG N", window_index=0, label="N", probabilities={"N": 1.0})
    conf = write_bridge_config(
        tmp_path / "c.yaml", broker.url(), "bed1", gone, this_process_match(),
        username="bed1", password_file=str(secrets["bed1"]),
    )  # fmt: skip
    desk = Collector(broker.port, "ecgd/t/bed1/result", "desk", USERS["desk"], "desk-rotated")
    assert start_bridge(conf, tmp_path / "bridge.log", duration=2.0).wait(30) == 0
    assert (
        "WARNING: the saved cursor's entry is no longer in the journal"
        in (tmp_path / "bridge.log").read_text()
    )
    assert desk.wait_for(lambda c: c.of("result"), 5)
    desk.close()


def test_ward_orders_beds_rings_once_and_marks_stale():
    from ecgd.bridge.ward import Ward

    ward = Ward(stale_after_s=10)
    now = 1_796_155_200.0
    iso = "2026-12-01T20:00:00.000Z"  # == now
    old = "2026-12-01T19:59:00.000Z"  # a minute before
    ward.feed("ecgd/t/bed1/vitals", json.dumps({"heart_rate_bpm": 70, "updated": iso, "alarms": []}).encode())
    ward.feed("ecgd/t/bed2/vitals", json.dumps({"heart_rate_bpm": 80, "updated": old, "alarms": []}).encode())
    ward.feed("ecgd/t/bed3/vitals", json.dumps({"updated": iso, "alarms": []}).encode())
    assert ward.take_new_high() == [] and not ward.take_urgent()
    onset = {
        "alarm_id": "x",
        "alarm": "asystole",
        "alarm_state": "onset",
        "alarm_priority": "high",
        "time": old,
    }
    ward.feed("ecgd/t/bed3/alarm", json.dumps(onset).encode())
    ward.feed("ecgd/t/bed1/alarm", json.dumps({**onset, "alarm_id": "y", "alarm_priority": "low"}).encode())
    ward.feed("ecgd/t/bed3/alarm", json.dumps(onset).encode())  # a duplicate: no second bell
    assert ward.take_new_high() == [("t", "bed3", "x")] and ward.take_urgent()
    rows = ward.rows(now)
    assert [r["bed"] for r in rows] == ["bed3", "bed1", "bed2"]
    assert rows[0]["alarms"][0]["age_s"] == 60 and not rows[0]["stale"]
    assert rows[2]["stale"] and rows[2]["age_s"] == 60
    ward.feed("ecgd/t/bed3/alarm", json.dumps({**onset, "alarm_state": "end"}).encode())
    assert ward.take_urgent() and [r["bed"] for r in ward.rows(now)] == ["bed1", "bed2", "bed3"]
    ward.feed("ecgd/t/bed1/status", b'{"state":"offline"}')
    assert ward.rows(now)[0]["offline"] and ward.rows(now)[0]["stale"]
    ward.feed("elsewhere/x", b"{}")
    ward.feed("ecgd/t/bed9/vitals", b"not json")
    assert len(ward.beds) == 3


@needs_mosquitto
def test_client_certificate_login_without_a_password(journald, broker, pki, tmp_path: Path):
    """The broker takes the certificate's CN as the user name (use_identity_as_username): the ACL applies."""
    cert, key = pki[0].issue("bed1", server=False)
    cursor = journal_cursor()
    send_record("result", "ECG N", window_index=0, label="N", probabilities={"N": 1.0})
    tls = {"ca_file": str(pki[0].ca_cert), "cert_file": str(cert), "key_file": str(key)}
    conf = write_bridge_config(
        tmp_path / "c.yaml", broker.url(client_cert=True), "bed1", cursor, this_process_match(), tls=tls
    )
    desk = Collector(broker.port, "ecgd/t/bed1/result", "desk", USERS["desk"], "desk-cert")
    assert start_bridge(conf, tmp_path / "bridge.log", duration=2.0).wait(30) == 0, (
        tmp_path / "bridge.log"
    ).read_text()
    assert desk.wait_for(lambda c: c.of("result"), 5)
    desk.close()
    # without a certificate, that listener refuses the bridge
    no_cert = write_bridge_config(
        tmp_path / "n.yaml", broker.url(client_cert=True), "bed1", cursor, this_process_match(),
        tls={"ca_file": str(pki[0].ca_cert)},
    )  # fmt: skip
    proc = _bridge_once(no_cert)
    assert proc.returncode == 78, proc.stderr
    assert f"{broker.url(client_cert=True)}: the broker closed the connection before answering" in proc.stderr
    assert "does it require a client certificate?" in proc.stderr


@needs_mosquitto
def test_bridge_tells_systemd_ready_status_watchdog_and_stopping(broker, secrets, tmp_path: Path):
    from ecgd.harness import NotifyListener

    listener = NotifyListener(tmp_path / "notify.sock")
    conf = write_bridge_config(
        tmp_path / "c.yaml", broker.url(), "bed2", journal_cursor(), this_process_match(),
        username="bed2", password_file=str(secrets["bed2"]),
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_PID"}
    env |= {"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "400000"}
    log = tmp_path / "bridge.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecgd", "bridge", "--config", str(conf)], stdout=out, stderr=out, env=env
        )
    try:
        assert listener.wait_for("READY=1", 20) is not None, log.read_text()
        assert listener.wait_for("WATCHDOG=1", 5) is not None
        time.sleep(0.5)
        assert any(s.startswith("STATUS=connected;") for s in listener.states("STATUS=")), listener.states("")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert listener.wait_for("STOPPING=1", 5) is not None
    finally:
        proc.kill()
        listener.close()


def test_start_at_boot_or_now_without_a_cursor(journald):
    from ecgd.bridge.journal_source import JournalSource

    marker = f"start-{time.time_ns()}"
    send_record("result", "before", window_index=0, label=marker)
    time.sleep(0.2)
    match = [*this_process_match().split(), f"ECG_LABEL={marker}"]
    boot, now = JournalSource(match, None, "boot"), JournalSource(match, None, "now")
    send_record("result", "after", window_index=1, label=marker)
    time.sleep(0.2)
    assert [e["ECG_WINDOW_INDEX"] for e in boot.entries(10)] == ["0", "1"]
    assert [e["ECG_WINDOW_INDEX"] for e in now.entries(10)] == ["1"]
    boot.close()
    now.close()


@needs_mosquitto
def test_an_outage_holds_at_most_max_in_flight_and_then_delivers_everything(journald, tmp_path: Path):
    """The journal is the backlog: with the broker gone the bridge stops reading at max_in_flight."""
    from ecgd.bridge.broker_harness import Mosquitto
    from ecgd.harness import NotifyListener

    broker = Mosquitto(tmp_path / "mosquitto").start()
    listener = NotifyListener(tmp_path / "notify.sock")
    conf = write_bridge_config(
        tmp_path / "c.yaml", broker.url(), "bed3", journal_cursor(), this_process_match(), max_in_flight=5
    )
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_PID"}
    env |= {"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "200000"}
    log = tmp_path / "bridge.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecgd", "bridge", "--config", str(conf)], stdout=out, stderr=out, env=env
        )
    desk = None
    try:
        assert listener.wait_for("READY=1", 20) is not None, log.read_text()
        broker.stop()
        for i in range(30):
            send_record("result", f"ECG N {i}", window_index=i, label="N", probabilities={"N": 1.0})
        time.sleep(3)
        status = listener.states("STATUS=")[-1]
        waiting = re.search(r"(\d+) published, (\d+) awaiting acknowledgement", status)
        assert status.startswith("STATUS=reconnecting") and waiting, status
        # a record and its vitals go together: one over the bound at most; the other 27 wait in the journal
        assert int(waiting.group(1)) <= 3 and 5 <= int(waiting.group(2)) <= 6, status
        broker.start()
        desk = Collector(broker.port, "ecgd/t/bed3/result", "", "", "desk-backlog")
        assert desk.wait_for(lambda c: {r["window_index"] for r in c.of("result")} >= set(range(30)), 30)
    finally:
        proc.terminate()
        proc.wait(20)
        listener.close()
        if desk:
            desk.close()
        broker.stop()
