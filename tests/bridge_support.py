"""Bridge test helpers: records in the journal, bridge configs, a subscriber that keeps everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ALARM_MESSAGE_ID = "9a1f2c3b4d5e4f60a7b8c9d0e1f2a3b4"  # stands in for the alarms branch's own


def send_record(
    kind: str, message: str, priority: int = 6, message_id: str | None = None, **fields: Any
) -> None:
    """A record in the shape the monitor writes (ECG_KIND + ECG_<FIELD>), from this process."""
    from ecgd.outputs.results import MESSAGE_IDS
    from systemd import journal

    extra = {
        f"ECG_{k.upper()}": (json.dumps(v) if isinstance(v, (dict, list)) else str(v))
        for k, v in fields.items()
    }
    mid = message_id or MESSAGE_IDS[kind]
    journal.send(
        message, MESSAGE_ID=mid, SYSLOG_IDENTIFIER="ecgd", PRIORITY=str(priority), ECG_KIND=kind, **extra
    )


def send_alarm(
    alarm_id: str, state: str, alarm: str = "asystole", priority: str = "high", **fields: Any
) -> None:
    send_record(
        "alarm",
        f"alarm {alarm} {state}",
        2 if priority == "high" else 4,
        alarm=alarm,
        alarm_state=state,
        alarm_priority=priority,
        alarm_id=alarm_id,
        message_id=ALARM_MESSAGE_ID,
        **fields,
    )


def write_bridge_config(
    path: Path, broker: str, bed: str, cursor: str, match: str, site: str = "t", **bridge: Any
) -> Path:
    """A config with only the bridge section; the cursor file starts at ``cursor`` (the journal now)."""
    cursor_file = path.parent / f"{bed}-cursor.json"
    cursor_file.write_text(json.dumps({"cursor": cursor}))
    body = {"site": site, "bed": bed, "broker": broker, "cursor_file": str(cursor_file), "match": match}
    body.update(reconnect_max_seconds=2.0, keepalive_seconds=5)
    body.update(bridge)
    path.write_text(json.dumps({"bridge": body}))
    return path


def start_bridge(config: Path, log: Path, duration: float | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ecgd", "bridge", "--config", str(config)]
    if duration is not None:
        cmd += ["--duration", str(duration)]
    with open(log, "ab") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)


class Collector:
    """A subscriber that keeps every message (persistent session: survives a broker restart)."""

    def __init__(self, url_port: int, topic: str, username: str, password: str, client_id: str, **tls: Any):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[float, str, dict]] = []
        self.lock = threading.Lock()
        self.topic = topic
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311
        )
        self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(**tls)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=2)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", url_port, keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(10), "collector could not subscribe"

    def _on_message(self, client, userdata, msg) -> None:
        body = json.loads(msg.payload) if msg.payload else {}
        with self.lock:
            self.messages.append((time.monotonic(), msg.topic, body))

    def of(self, leaf: str) -> list[dict]:
        with self.lock:
            return [b for _, t, b in self.messages if t.endswith("/" + leaf)]

    def wait_for(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def this_process_match() -> str:
    """Journal matches for records this test process writes (other engineers' monitors share journald)."""
    return f"SYSLOG_IDENTIFIER=ecgd _PID={os.getpid()}"
