"""Benchmark the ward: alarm latency journal → desk row, one bridge's throughput, 50 beds on one broker.

    nice -n 10 .venv/bin/python bench/ward.py [--alarms 200] [--monitor-seconds 40] [--records 3000]
                                              [--beds 50] [--seconds 60]

Everything runs on this machine over loopback: a real Mosquitto (child process), the real journald,
`ecgd bridge` as its own process, and the desk's model and table (``ecgd.bridge.ward``).

1. Result latency: the demo monitor (emulated device, real clock) → journal → bridge → desk: from the
   wall time of a window's last sample (``window_end``) to the desk having drawn the table with that
   result. An alarm record takes the same way after the alarm stage has decided.
2. Alarm latency: an alarm record written to the journal (as the monitor writes it) → the bridge
   reads and publishes it (QoS 2) → the desk receives it and has drawn the table that shows it. The
   time from the ECG sample to the alarm record is the monitor's own (window, hop, inference) and is
   not part of this figure.
3. Throughput: records already in the journal (a backlog after an outage) → delivered to a
   subscriber; records/s and MQTT messages/s (each result also updates the retained vitals).
4. Ward: ``--beds`` simulated beds publishing as a bridge does (a result and a retained vitals every
   2 s, an alarm onset/end now and then) to one broker, watched by ``ecgd ward`` (live, its output to
   /dev/null); CPU share and peak RSS of broker and desk from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ecgd.bridge.broker_harness import (
    Collector,
    Mosquitto,
    send_alarm,
    send_record,
    start_bridge,
    write_bridge_config,
)
from ecgd.bridge.ward import Desk, Ward, render
from ecgd.harness import journal_cursor

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int, key: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def alarm_latency(broker: Mosquitto, tmp: Path, n: int) -> dict:
    from ecgd.bridge.settings import BridgeSettings

    conf = write_bridge_config(
        tmp / "lat.yaml", broker.url(), "lat", journal_cursor(), f"SYSLOG_IDENTIFIER=ecgd _PID={os.getpid()}"
    )
    bridge = start_bridge(conf, tmp / "lat.log")
    ward = Ward()
    shown: dict[str, float] = {}
    real_feed = ward.feed

    def feed_and_draw(topic: str, payload: bytes) -> None:
        real_feed(topic, payload)
        rows = ward.rows()
        render(rows, "bench")  # the table the desk would draw now
        for row in rows:
            for a in row["alarms"]:
                shown.setdefault(a["alarm_id"], time.time())

    ward.feed = feed_and_draw
    desk = Desk(BridgeSettings(broker=broker.url()), "ecgd/t/lat/#", ward)
    desk.start()
    desk.subscribed.wait(10)
    time.sleep(1.5)  # the bridge is connected
    sent: dict[str, float] = {}
    for i in range(n):
        alarm_id = f"bench-{i}"
        sent[alarm_id] = time.time()
        send_alarm(alarm_id, "onset")
        time.sleep(0.05)
        send_alarm(alarm_id, "end")
        time.sleep(0.05)
    deadline = time.monotonic() + 20
    while len(shown) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    desk.stop()
    bridge.terminate()
    bridge.wait(20)
    lat = [(shown[k] - sent[k]) * 1000 for k in sent if k in shown]
    return {"n": n, "shown": len(lat), "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat)}


def result_latency(broker: Mosquitto, tmp: Path, seconds: float) -> dict:
    """The demo monitor (emulated device, real clock) + bridge + desk: last sample of a window → its
    result in the desk's table (the window's own length and the hop are not counted: from its end)."""
    from ecgd.bridge.settings import BridgeSettings

    conf = tmp / "monitor.yaml"
    conf.write_text(
        json.dumps(
            {
                "device": {"kind": "emulated", "channel": 2},
                "sampling": {"realtime_priority": 0},
                "output": {"journal": True, "console": False, "log_file": None},
            }
        )
    )
    cursor = journal_cursor()
    monitor = subprocess.Popen(
        [sys.executable, "-m", "ecgd", "run", "--config", str(conf), "--duration", str(seconds)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bconf = write_bridge_config(
        tmp / "res.yaml", broker.url(), "res", cursor, f"SYSLOG_IDENTIFIER=ecgd _PID={monitor.pid}"
    )
    bridge = start_bridge(bconf, tmp / "res.log")
    ward = Ward()
    seen: dict[
        int, tuple[float, float]
    ] = {}  # window -> (monitor: end → journal, bridge+desk: journal → drawn)
    real_feed = ward.feed

    def feed_and_draw(topic: str, payload: bytes) -> None:
        real_feed(topic, payload)
        if topic.endswith("/result"):
            body = json.loads(payload)
            render(ward.rows(), "bench")
            written = _epoch_s(body["time"])  # the journal entry's own timestamp
            seen.setdefault(
                body["window_index"], (written - _epoch_s(body["window_end"]), time.time() - written)
            )

    ward.feed = feed_and_draw
    desk = Desk(BridgeSettings(broker=broker.url()), "ecgd/t/res/#", ward)
    desk.start()
    monitor.wait(seconds + 60)
    time.sleep(2)
    desk.stop()
    bridge.terminate()
    bridge.wait(20)
    total = [(a + b) * 1000 for a, b in seen.values()]
    monitor = [a * 1000 for a, _ in seen.values()]
    ward_part = [b * 1000 for _, b in seen.values()]
    out = {"n": len(total), "p50": pct(total, 50), "p99": pct(total, 99), "max": max(total)}
    out |= {"monitor_p50": pct(monitor, 50), "ward_p50": pct(ward_part, 50), "ward_p99": pct(ward_part, 99)}
    return out


def _epoch_s(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def throughput(broker: Mosquitto, tmp: Path, n: int) -> dict:
    cursor = journal_cursor()
    for i in range(n):
        send_record(
            "result", f"ECG N {i}", window_index=i, label="N", confidence=0.9, probabilities={"N": 0.9}
        )
    conf = write_bridge_config(
        tmp / "thr.yaml", broker.url(), "thr", cursor, f"SYSLOG_IDENTIFIER=ecgd _PID={os.getpid()}"
    )
    sub = Collector(broker.port, "ecgd/t/thr/result", "", "", "bench-thr")
    bridge = start_bridge(conf, tmp / "thr.log")
    t_start = time.monotonic()
    ok = sub.wait_for(lambda c: len(c.of("result")) >= n, 300)
    with sub.lock:
        stamps = [t for t, topic, _ in sub.messages]
    cpu = cpu_seconds(bridge.pid)
    rss = rss_mib(bridge.pid)
    bridge.terminate()
    bridge.wait(20)
    sub.close()
    span = stamps[-1] - stamps[0]
    return {
        "records": len(stamps),
        "complete": ok,
        "records_s": (len(stamps) - 1) / span,
        "messages_s": 2 * (len(stamps) - 1) / span,
        "since_start_s": stamps[-1] - t_start,
        "bridge_cpu_s": cpu,
        "bridge_rss": rss,
    }


def ward_of_beds(broker: Mosquitto, beds: int, seconds: float) -> dict:
    import paho.mqtt.client as mqtt

    stop = threading.Event()
    sent = [0]

    def bed(i: int) -> None:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{i}", protocol=mqtt.MQTTv311)
        c.will_set(f"ecgd/sim/bed{i:02d}/status", json.dumps({"state": "offline"}), 1, True)
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        rng = random.Random(i)
        w, alarm = 0, None
        time.sleep(rng.uniform(0, 2))  # beds are not in step
        while not stop.is_set():
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            result = {"schema": 1, "site": "sim", "bed": f"bed{i:02d}", "kind": "result", "window_index": w,
                      "label": "N", "confidence": 0.95, "heart_rate_bpm": 70, "time": now}  # fmt: skip
            c.publish(f"ecgd/sim/bed{i:02d}/result", json.dumps(result), qos=1)
            if alarm is None and rng.random() < 0.02:
                alarm = {
                    "alarm_id": f"{i}-{w}",
                    "alarm": "tachycardia",
                    "alarm_priority": "medium",
                    "time": now,
                }
                c.publish(f"ecgd/sim/bed{i:02d}/alarm", json.dumps({**alarm, "alarm_state": "onset"}), qos=2)
            elif alarm is not None and rng.random() < 0.1:
                c.publish(f"ecgd/sim/bed{i:02d}/alarm", json.dumps({**alarm, "alarm_state": "end"}), qos=2)
                alarm = None
            vitals = {"schema": 1, "site": "sim", "bed": f"bed{i:02d}", "heart_rate_bpm": 70, "label": "N",
                      "confidence": 0.95, "signal": "ok", "updated": now}  # fmt: skip
            vitals["alarms"] = [alarm] if alarm else []
            c.publish(f"ecgd/sim/bed{i:02d}/vitals", json.dumps(vitals), qos=1, retain=True)
            sent[0] += 2
            w += 1
            stop.wait(2.0)
        c.disconnect()
        c.loop_stop()

    threads = [threading.Thread(target=bed, args=(i,), daemon=True) for i in range(beds)]
    for t in threads:
        t.start()
    time.sleep(3)
    desk = subprocess.Popen(
        [sys.executable, "-m", "ecgd", "ward", "--broker", broker.url(), "--site", "sim"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # drawn as on a terminal (rich would otherwise only print the last frame)
        env={**os.environ, "COLUMNS": "160", "LINES": "60", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"},
    )
    time.sleep(3)  # the desk has its first table
    b0, d0, t0, s0 = cpu_seconds(broker.proc.pid), cpu_seconds(desk.pid), time.monotonic(), sent[0]
    time.sleep(seconds)
    b1, d1, t1, s1 = cpu_seconds(broker.proc.pid), cpu_seconds(desk.pid), time.monotonic(), sent[0]
    out = {
        "beds": beds,
        "msgs_s": (s1 - s0) / (t1 - t0),
        "broker_cpu": 100 * (b1 - b0) / (t1 - t0),
        "broker_rss": rss_mib(broker.proc.pid),
        "desk_cpu": 100 * (d1 - d0) / (t1 - t0),
        "desk_rss": rss_mib(desk.pid),
        "seconds": t1 - t0,
    }
    desk.terminate()
    desk.wait(10)
    stop.set()
    for t in threads:
        t.join(5)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alarms", type=int, default=200)
    p.add_argument(
        "--records", type=int, default=3000, help="keep it under journald's burst limit (10000/30 s)"
    )
    p.add_argument(
        "--monitor-seconds", type=float, default=40, help="demo monitor run for the result latency"
    )
    p.add_argument("--beds", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--parts", default="alarm,result,throughput,ward", help="which measures to run")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = Mosquitto(tmp / "mosquitto").start()
        try:
            parts = set(args.parts.split(","))
            lat = alarm_latency(broker, tmp, args.alarms) if "alarm" in parts else None
            res = result_latency(broker, tmp, args.monitor_seconds) if "result" in parts else None
            thr = throughput(broker, tmp, args.records) if "throughput" in parts else None
            ward = ward_of_beds(broker, args.beds, args.seconds) if "ward" in parts else None
        finally:
            broker.stop()
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end"
    )
    print("\n| measure | value |\n|---|---|")
    rows = []
    if lat:
        rows.append(
            (
                f"alarm: journal record → desk table drawn ({lat['shown']}/{lat['n']}), p50 / p99 / max",
                f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} ms",
            )
        )
    if res:
        rows.append(
            (
                f"result: last sample of a window → desk table drawn ({res['n']} windows), p50 / p99 / max",
                f"{res['p50']:.0f} / {res['p99']:.0f} / {res['max']:.0f} ms",
            )
        )
        rows.append(
            (
                "... of which the monitor (window end → its journal entry) p50; journal → desk p50 / p99",
                f"{res['monitor_p50']:.0f} ms; {res['ward_p50']:.0f} / {res['ward_p99']:.0f} ms",
            )
        )
    if thr:
        rows.append(
            (
                f"one bridge, journal backlog of {thr['records']} results → subscriber",
                f"{thr['records_s']:.0f} records/s ({thr['messages_s']:.0f} messages/s with vitals)",
            )
        )
        rows.append(
            (
                "bridge process for that backlog",
                f"{thr['bridge_cpu_s']:.1f} s CPU, peak RSS {thr['bridge_rss']:.0f} MiB",
            )
        )
    if ward:
        rows.append(
            (
                f"{ward['beds']} beds, {ward['msgs_s']:.0f} messages/s for {ward['seconds']:.0f} s: broker",
                f"{ward['broker_cpu']:.1f} % of one CPU, peak RSS {ward['broker_rss']:.1f} MiB",
            )
        )
        rows.append(
            (
                "... `ecgd ward` (live) watching them",
                f"{ward['desk_cpu']:.1f} % of one CPU, peak RSS {ward['desk_rss']:.0f} MiB",
            )
        )
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
