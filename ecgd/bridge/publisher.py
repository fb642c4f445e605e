"""The MQTT side: connection (TLS, login, last will), publishing, and the acknowledgement ledger.

paho-mqtt's network thread sends, resends after a reconnect and calls back on PUBACK (QoS 1) or
PUBCOMP (QoS 2); the ledger turns those callbacks, which may come in any order, into the newest
journal cursor up to which *everything* was acknowledged. Only that cursor is ever persisted.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecgd.bridge.settings import BridgeSettings


class BrokerError(Exception):
    """The broker cannot be used; ``exit_code`` says whether retrying could help (69) or not (78)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Ledger:
    """Published messages in journal order; ``committed`` is the cursor everything up to is acknowledged."""

    def __init__(self, cursor: str | None) -> None:
        self._pending: deque[tuple[int | None, str | None]] = deque()
        self._acked: set[int] = set()
        self._lock = threading.Lock()
        self.committed = cursor

    def add(self, mid: int | None, cursor: str | None) -> None:
        """``mid`` None: nothing to wait for (an entry that is not a record still moves the cursor)."""
        with self._lock:
            self._pending.append((mid, cursor))

    def acked(self, mid: int) -> None:  # paho's network thread
        with self._lock:
            self._acked.add(mid)

    def advance(self) -> bool:
        """Move ``committed`` over the acknowledged head; True if it moved."""
        moved = False
        with self._lock:
            while self._pending:
                mid, cursor = self._pending[0]
                if mid is not None:
                    if mid not in self._acked:
                        break
                    self._acked.discard(mid)
                self._pending.popleft()
                if cursor is not None:
                    self.committed = cursor
                    moved = True
        return moved

    def __len__(self) -> int:
        return len(self._pending)


@dataclass
class LinkState:
    connected: bool = False
    last_error: str | None = None
    connects: int = 0


class Publisher:
    """One MQTT session for one bed, with its last will on the status topic."""

    def __init__(self, settings: BridgeSettings, ledger: Ledger, log: Any = print) -> None:
        import paho.mqtt.client as mqtt  # lazy: only the bridge and the desk need it

        self.mqtt = mqtt
        self.s = settings
        self.ledger = ledger
        self.log = log
        self.prefix = settings.topic_prefix
        self.link = LinkState()
        self._connack = threading.Event()
        self._connack_reason: str | None = None
        self._closing = False
        self.on_connected: Any = None  # set by the caller: re-publish vitals and status after a reconnect
        client_id = settings.client_id or f"ecgd-{settings.site}-{settings.bed_name}"
        # A clean session on every connection. A persistent one would keep, on the broker, the packet
        # ids of QoS 2 messages awaiting PUBREL; after a bridge restart a new alarm reusing such an id
        # would be taken for a duplicate and never delivered, yet acknowledged. Clean, paho re-sends
        # whatever was unacknowledged as a new PUBLISH: at worst a duplicate, which consumers drop.
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)  # bounded by us (settings.max_in_flight), not here
        self.client.reconnect_delay_set(min_delay=1, max_delay=max(1, round(settings.reconnect_max_seconds)))
        configure(self.client, settings)
        # The will is composed now but fires later: it carries no time (the desk shows the bed's last
        # update instead), only that the link was lost rather than closed.
        will = status_payload(settings, "offline", "connection lost", stamped=False)
        self.client.will_set(self.topic("status"), will, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    def topic(self, leaf: str) -> str:
        return f"{self.prefix}/{leaf}"

    # -- paho callbacks (network thread) -------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connack_reason = None if not reason_code.is_failure else str(reason_code)
        self._connack.set()
        if reason_code.is_failure:
            if self.link.last_error != str(reason_code):
                self.log(f"ecgd bridge: broker refused the connection: {reason_code}")
            self.link.last_error = str(reason_code)
            return
        was = self.link.last_error
        self.link.connected = True
        self.link.connects += 1
        self.link.last_error = None
        if self.link.connects > 1:
            self.log(f"ecgd bridge: reconnected to {self.s.broker}" + (f" (after: {was})" if was else ""))
        if self.on_connected is not None:
            self.on_connected()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.link.connected and not self._closing:
            self.log(f"ecgd bridge: lost the broker ({reason_code}); retrying with back-off")
        self.link.connected = False
        self.link.last_error = str(reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.ledger.acked(mid)

    # -- the main thread's side ----------------------------------------------------------------
    def connect(self) -> None:
        """The first connection: every failure is reported and fatal (later ones are retried)."""
        open_connection(self.client, self.s, self._connack, lambda: self._connack_reason)

    def publish(self, leaf: str, payload: dict[str, Any], qos: int = 1, retain: bool = False) -> int:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
        info = self.client.publish(self.topic(leaf), body, qos=qos, retain=retain)
        if info.rc not in (self.mqtt.MQTT_ERR_SUCCESS, self.mqtt.MQTT_ERR_NO_CONN):
            raise BrokerError(f"publish on {self.topic(leaf)} failed: {self.mqtt.error_string(info.rc)}", 69)
        return info.mid  # queued by paho while disconnected, sent on reconnect

    def stop(self, status_reason: str | None = None) -> None:
        """Graceful: say "offline" ourselves (a clean DISCONNECT does not fire the will), then leave."""
        self._closing = True
        if status_reason is not None and self.link.connected:
            info = self.client.publish(
                self.topic("status"), status_payload(self.s, "offline", status_reason), qos=1, retain=True
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)
        self.client.disconnect()
        self.client.loop_stop()


def status_payload(s: BridgeSettings, state: str, reason: str, stamped: bool = True) -> str:
    body = {"schema": 1, "site": s.site, "bed": s.bed_name, "state": state, "reason": reason}
    body["time"] = _now_iso() if stamped else None
    return json.dumps(body, separators=(",", ":"))


def _now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def read_password(path: str | None) -> str:
    if path is None:
        return ""
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise BrokerError(f"bridge.password_file: cannot read {path}: {exc.strerror}", 78) from None


def configure(client: Any, s: BridgeSettings) -> None:
    """TLS (verifying the broker by default) and login, for the bridge and the desk alike."""
    if s.host_port[2]:
        t = s.tls
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(t, name)
            if value is not None and not Path(value).is_file():
                raise BrokerError(f"tls.{name}: {value} does not exist", 78)
        try:
            client.tls_set(
                ca_certs=t.ca_file,
                certfile=t.cert_file,
                keyfile=t.key_file,
                cert_reqs=ssl.CERT_REQUIRED,  # and the host name: paho checks it (tls_insecure stays off)
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise BrokerError(f"tls: cannot load the certificates: {exc}", 78) from None
    if s.username is not None:
        client.username_pw_set(s.username, read_password(s.password_file))


def open_connection(client: Any, s: BridgeSettings, connack: threading.Event, refusal: Any) -> None:
    """Connect once and wait for CONNACK; every failure raises ``BrokerError`` with what to check.

    ``refusal()`` gives the CONNACK's failure reason (None: accepted). After this returns, paho's
    network thread reconnects on its own with back-off.
    """
    host, port, _ = s.host_port
    try:
        client.connect(host, port, keepalive=s.keepalive_seconds)
    except ssl.SSLCertVerificationError as exc:
        raise BrokerError(
            f"{s.broker}: the broker's certificate is not trusted ({exc.verify_message}); check tls.ca_file",
            78,
        ) from None
    except ssl.SSLError as exc:
        raise BrokerError(f"{s.broker}: TLS handshake failed: {exc.reason or exc}", 78) from None
    except OSError as exc:
        raise BrokerError(f"{s.broker}: broker unreachable: {exc.strerror or exc}", 69) from None
    client.loop_start()
    closed = threading.Event()
    earlier = client.on_disconnect

    def on_disconnect(*args: Any) -> None:  # before any CONNACK: the broker hung up on us
        closed.set()
        if earlier is not None:
            earlier(*args)

    client.on_disconnect = on_disconnect
    deadline = time.monotonic() + s.connect_timeout_seconds
    while not connack.wait(0.05) and not closed.is_set() and time.monotonic() < deadline:
        pass
    client.on_disconnect = earlier
    if not connack.is_set():
        client.disconnect()
        client.loop_stop()
        if closed.is_set():
            hint = (
                " (does it require a client certificate? tls.cert_file, tls.key_file)"
                if s.host_port[2]
                else ""
            )
            raise BrokerError(f"{s.broker}: the broker closed the connection before answering{hint}", 78)
        raise BrokerError(f"{s.broker}: no answer to CONNECT within {s.connect_timeout_seconds:g} s", 69)
    reason = refusal()
    if reason is not None:
        client.disconnect()
        client.loop_stop()
        lowered = reason.lower()
        hint = (
            " (check the user name and password file)" if "auth" in lowered or "password" in lowered else ""
        )
        raise BrokerError(f"{s.broker}: broker refused the login: {reason}{hint}", 78)
