"""The bridge's settings: the `bridge:` section of the monitor's YAML (composed by ``ecgd.config``).

Field metadata follows the config schema's conventions (help, lo, hi, choices, nullable), so the same
loader validates it and the same tool writes README's table; what one field cannot say alone
(a broker URL, topic-safe names) is in ``problems()``.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

SCHEMES = {"mqtt": 1883, "mqtts": 8883}
_TOPIC_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _opt(default: Any, help: str, **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class TlsSettings:
    ca_file: str | None = _opt(
        None,
        "CA bundle that signed the broker's certificate (mqtts; null: the system's trusted CAs)",
        nullable=True,
    )
    cert_file: str | None = _opt(None, "client certificate (PEM) for certificate login", nullable=True)
    key_file: str | None = _opt(None, "private key (PEM) of cert_file", nullable=True)


@dataclass(frozen=True)
class BridgeSettings:
    broker: str | None = _opt(
        None,
        "broker URL mqtt://host:port or mqtts://host:port (TLS); null: no bridge (it will not start)",
        nullable=True,
    )
    site: str = _opt("ward", "site (ward) name: the second topic level ecgd/<site>/<bed>/…")
    bed: str | None = _opt(
        None, "bed name: the third topic level (null: this machine's host name)", nullable=True
    )
    username: str | None = _opt(None, "MQTT user name (null: no password login)", nullable=True)
    password_file: str | None = _opt(
        None, "file holding the MQTT password (one line; keep it 0640 root:ecgd-bridge)", nullable=True
    )
    client_id: str | None = _opt(
        None, "MQTT client id (null: ecgd-<site>-<bed>); unique per bed on the broker", nullable=True
    )
    cursor_file: str = _opt(
        "/var/lib/ecgd-bridge/cursor.json",
        "where the journal cursor of the last acknowledged record is kept (the unit's StateDirectory=)",
    )
    start_at: str = _opt(
        "boot",
        "with no cursor yet: publish from the start of this boot, the oldest entry kept, or only new entries",
        choices=("boot", "oldest", "now"),
    )
    match: str = _opt(
        "SYSLOG_IDENTIFIER=ecgd",
        "journal matches FIELD=value, space-separated (one field's values are alternatives, different "
        "fields must all hold); add _SYSTEMD_UNIT=ecgd.service so that only the monitor's unit is trusted",
    )
    keepalive_seconds: int = _opt(
        30, "MQTT keep-alive; the broker fires the last will after 1.5× this", lo=5, hi=3600
    )
    max_in_flight: int = _opt(
        1000,
        "messages (records and vitals) published but not yet acknowledged before reading the journal pauses",
        lo=1,
        hi=100000,
    )
    reconnect_max_seconds: float = _opt(
        30.0, "longest back-off between reconnection attempts", lo=0.1, hi=3600
    )
    connect_timeout_seconds: float = _opt(
        10.0, "the broker must answer the first connection within this (else exit 69)", lo=0.5, hi=600
    )
    alarm_qos: int = _opt(2, "QoS of alarm messages (1 or 2; everything else is QoS 1)", lo=1, hi=2)
    tls: TlsSettings = field(default_factory=TlsSettings)

    @property
    def host_port(self) -> tuple[str, int, bool]:
        """(host, port, tls) from ``broker``; call only when ``problems()`` is empty."""
        u = urlsplit(self.broker or "")
        return u.hostname or "", u.port or SCHEMES[u.scheme], u.scheme == "mqtts"

    @property
    def bed_name(self) -> str:
        return self.bed or socket.gethostname().split(".")[0]

    @property
    def topic_prefix(self) -> str:
        return f"ecgd/{self.site}/{self.bed_name}"

    def problems(self) -> list[str]:
        """What the field checks cannot see, as ``'<field>: why'``."""
        found = []
        if self.broker is not None:
            try:
                u = urlsplit(self.broker)
                port = u.port
            except ValueError as exc:
                found.append(f"broker: {self.broker!r} is not a URL ({exc})")
            else:
                if u.scheme not in SCHEMES:
                    found.append(f"broker: {self.broker!r} must start with mqtt:// or mqtts://")
                elif not u.hostname:
                    found.append(f"broker: {self.broker!r} names no host")
                elif u.path not in ("", "/") or u.query or u.username or u.password:
                    found.append(
                        f"broker: {self.broker!r}: only scheme://host:port (credentials go in "
                        "username and password_file)"
                    )
                del port
                tls_files = [k for k in ("ca_file", "cert_file", "key_file") if getattr(self.tls, k)]
                if u.scheme == "mqtt" and tls_files:
                    found.append(
                        f"tls.{tls_files[0]}: set, but broker {self.broker!r} is plain mqtt://; use mqtts://"
                    )
        for name in ("site", "bed"):
            value = getattr(self, name)
            if value is not None and not _TOPIC_SAFE.match(value):
                found.append(f"{name}: {value!r} must be 1-64 of A-Z a-z 0-9 . _ - (it is a topic level)")
        if (self.username is None) != (self.password_file is None):
            found.append("password_file: username and password_file go together")
        if (self.tls.cert_file is None) != (self.tls.key_file is None):
            found.append("tls.key_file: tls.cert_file and tls.key_file go together")
        terms = self.match.split()
        if not terms or any(not re.fullmatch(r"[A-Z0-9_]+=.+", t) for t in terms):
            found.append(f"match: {self.match!r} must be FIELD=value terms (upper-case field names)")
        return found
