"""For the tests and benchmarks: a real Mosquitto as a child process, a throw-away CA, records
written to the journal in the monitor's shape, bridge configs, and a subscriber that keeps all.

Not used by the bridge itself. Loopback only: every listener binds 127.0.0.1.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TestCa:
    """A CA, and a server certificate it signed for 127.0.0.1/localhost (openssl CLI)."""

    directory: Path
    name: str = "ecgd test CA"
    ca_cert: Path = field(init=False)
    ca_key: Path = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_key = self.directory / "ca.key"
        self.ca_cert = self.directory / "ca.crt"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2", "-subj", f"/CN={self.name}",
        )  # fmt: skip

    def issue(self, cn: str, server: bool = True) -> tuple[Path, Path]:
        """(cert, key) signed by this CA; a server certificate names 127.0.0.1 and localhost."""
        key, csr, crt = (self.directory / f"{cn}.{ext}" for ext in ("key", "csr", "crt"))
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={cn}",
        )  # fmt: skip
        ext = self.directory / f"{cn}.ext"
        ext.write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
            if server
            else "extendedKeyUsage=clientAuth\n"
        )
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext,
        )  # fmt: skip
        return crt, key


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


class Mosquitto:
    """``mosquitto -c FILE`` on 127.0.0.1: a plain listener (``port``), optionally a TLS one
    (``tls_port``), with a password file and an ACL when given; persistence on, so a restart keeps
    subscribers' sessions and queued messages as a production broker should."""

    def __init__(
        self,
        directory: Path,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        tls: TestCa | None = None,
        client_certs: bool = False,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.cert_port = free_port() if tls and client_certs else None  # login by client certificate
        lines = [
            # started as root, mosquitto would switch to user "mosquitto", which cannot read the test's
            # files: stay whoever we are
            f"user {getpass.getuser()}",
            "per_listener_settings false",
            f"persistence true\npersistence_location {directory}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            f"listener {self.port} 127.0.0.1",
        ]
        if tls:
            cert, key = tls.issue("broker")
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {tls.ca_cert}", f"certfile {cert}"]
            lines.append(f"keyfile {key}")
            if client_certs:
                lines += [f"listener {self.cert_port} 127.0.0.1", f"cafile {tls.ca_cert}", f"certfile {cert}"]
                lines += [f"keyfile {key}", "require_certificate true", "use_identity_as_username true"]
        if users:
            passwd = directory / "passwd"
            passwd.write_text("")
            for user, password in users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if acl:
            (directory / "acl").write_text(acl)
            lines.append(f"acl_file {directory / 'acl'}")
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None
        self.log = directory / "mosquitto.log"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        with open(self.log, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def url(self, tls: bool = False, client_cert: bool = False) -> str:
        if client_cert:
            return f"mqtts://127.0.0.1:{self.cert_port}"
        return f"mqtts://127.0.0.1:{self.tls_port}" if tls else f"mqtt://127.0.0.1:{self.port}"


ALARM_MESSAGE_ID = "9a1f2c3b4d5e4f60a7b8c9d0e1f2a3b4"  # for an alarm name the monitor does not have


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
        message_id=_alarm_message_id(alarm),
        **fields,
    )


def _alarm_message_id(alarm: str) -> str:
    """The monitor's MESSAGE_ID for this alarm where it has one (ecgd.outputs.results), else a stand-in."""
    from ecgd.outputs import results

    return getattr(results, "ALARM_MESSAGE_IDS", {}).get(alarm, ALARM_MESSAGE_ID)


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
        if username:
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
