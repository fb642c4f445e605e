"""``ecgd ward``: the central desk. Every bed of a site, one row each, high alarms first.

The broker's retained ``vitals`` and ``status`` give the whole ward at once on subscribing; live
``alarm`` messages update a bed before its next vitals. The model (``Ward``) is plain data, so the
table is testable and the benchmark can time "message in → row drawn".
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}
REDRAW_S = 1.0


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class Bed:
    site: str
    bed: str
    vitals: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)  # active, by alarm_id

    @property
    def top_priority(self) -> int:
        return min(
            (PRIORITY_RANK.get(a.get("alarm_priority") or "", 3) for a in self.alarms.values()), default=4
        )


class Ward:
    """What the desk knows, fed one MQTT message at a time (thread-safe)."""

    def __init__(self, stale_after_s: float = 10.0) -> None:
        self.beds: dict[tuple[str, str], Bed] = {}
        self.stale_after_s = stale_after_s
        self.new_high: list[tuple[str, str, str]] = []  # (site, bed, alarm_id) not yet rung for
        self._rung: set[tuple[str, str, str]] = set()
        self.urgent = False  # an alarm began or ended since the last draw
        self.lock = threading.Lock()
        self.changed = threading.Event()

    def feed(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "ecgd":
            return
        _, site, bed_name, leaf = parts
        try:
            body = json.loads(payload) if payload else {}
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        with self.lock:
            bed = self.beds.setdefault((site, bed_name), Bed(site, bed_name))
            alarms_before = set(bed.alarms)
            if leaf == "vitals":
                bed.vitals = body
                bed.alarms = {a["alarm_id"]: a for a in body.get("alarms", []) if "alarm_id" in a}
            elif leaf == "status":
                bed.status = body
            elif leaf == "alarm":
                alarm_id = str(body.get("alarm_id") or body.get("alarm"))
                if body.get("alarm_state") == "end":
                    bed.alarms.pop(alarm_id, None)
                else:
                    bed.alarms[alarm_id] = body
            else:
                return
            if set(bed.alarms) != alarms_before:
                self.urgent = True
            for alarm_id, a in bed.alarms.items():
                key = (site, bed_name, alarm_id)
                if a.get("alarm_priority") == "high" and key not in self._rung:
                    self._rung.add(key)
                    self.new_high.append(key)
        self.changed.set()

    def rows(self, now: float | None = None) -> list[dict[str, Any]]:
        """One dict per bed, in display order: high alarms first, then medium, low, stale, the rest."""
        now = time.time() if now is None else now
        with self.lock:  # the MQTT thread changes the beds' dicts while a table is drawn
            return self._rows(now)

    def _rows(self, now: float) -> list[dict[str, Any]]:
        out = []
        for b in self.beds.values():
            v = b.vitals
            updated = _epoch(v.get("updated"))
            age = None if updated is None else max(0.0, now - updated)
            offline = b.status.get("state") == "offline"
            stale = offline or age is None or age > self.stale_after_s
            alarms = []
            for alarm_id, a in sorted(
                b.alarms.items(), key=lambda kv: PRIORITY_RANK.get(kv[1].get("alarm_priority") or "", 3)
            ):
                onset = _epoch(a.get("onset_time") or a.get("time"))
                alarms.append(
                    {
                        "alarm_id": alarm_id,
                        "alarm": a.get("alarm") or alarm_id,
                        "priority": a.get("alarm_priority") or "?",
                        "age_s": None if onset is None else max(0.0, now - onset),
                    }
                )
            out.append(
                {
                    "site": b.site,
                    "bed": b.bed,
                    "heart_rate_bpm": v.get("heart_rate_bpm"),
                    "label": v.get("label"),
                    "confidence": v.get("confidence"),
                    "signal": v.get("signal"),
                    "alarms": alarms,
                    "age_s": age,
                    "stale": stale,
                    "offline": offline,
                    "rank": b.top_priority,
                }
            )
        out.sort(key=lambda r: (r["rank"], not r["stale"], r["site"], r["bed"]))
        return out

    def take_new_high(self) -> list[tuple[str, str, str]]:
        with self.lock:
            new, self.new_high = self.new_high, []
        return new

    def take_urgent(self) -> bool:
        with self.lock:
            urgent, self.urgent = self.urgent, False
        return urgent


def render(rows: list[dict[str, Any]], title: str) -> Any:
    """The table (a rich renderable)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, expand=False, header_style="bold")
    for name, justify in (
        ("bed", "left"),
        ("HR", "right"),
        ("rhythm", "left"),
        ("alarms", "left"),
        ("signal", "left"),
        ("updated", "right"),
    ):
        table.add_column(name, justify=justify)
    for r in rows:
        hr = "—" if r["heart_rate_bpm"] is None else f"{r['heart_rate_bpm']:.0f}"
        label = r["label"] or "—"
        if r["confidence"] is not None:
            label += f" {r['confidence']:.2f}"
        alarm_text = Text()
        for i, a in enumerate(r["alarms"]):
            age = "" if a["age_s"] is None else f" {a['age_s']:.0f}s"
            style = {"high": "bold white on red", "medium": "bold yellow", "low": "cyan"}.get(
                a["priority"], ""
            )
            if i:
                alarm_text.append(", ")
            alarm_text.append(f"{a['priority'].upper()} {a['alarm']}{age}", style=style)
        if r["offline"]:
            updated = "OFFLINE"
        elif r["age_s"] is None:
            updated = "never"
        else:
            updated = f"{r['age_s']:.0f}s ago" + (" STALE" if r["stale"] else "")
        row_style = "on dark_red" if r["rank"] == 0 else ("dim" if r["stale"] else "")
        table.add_row(
            f"{r['site']}/{r['bed']}", hr, label, alarm_text, r["signal"] or "—", updated, style=row_style
        )
    return table


class Desk:
    """An MQTT subscriber feeding a ``Ward``."""

    def __init__(self, settings: Any, topic: str, ward: Ward) -> None:
        import paho.mqtt.client as mqtt

        from ecgd.bridge.publisher import configure

        self.s = settings
        self.ward = ward
        self.topic = topic
        self.subscribed = threading.Event()
        self._connack = threading.Event()
        self._refusal: str | None = None
        self.last_message = time.monotonic()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        configure(self.client, settings)
        self.client.reconnect_delay_set(1, 10)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._refusal = str(reason_code) if reason_code.is_failure else None
        self._connack.set()
        if not reason_code.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        self.last_message = time.monotonic()
        self.ward.feed(msg.topic, msg.payload)

    def start(self) -> None:
        from ecgd.bridge.publisher import open_connection

        open_connection(self.client, self.s, self._connack, lambda: self._refusal)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_ward(args: Any) -> int:
    from ecgd.bridge.settings import BridgeSettings, TlsSettings

    try:
        from rich.console import Console

        from ecgd.bridge.publisher import BrokerError
    except ImportError as exc:
        print(f"ecgd ward needs the [bridge] extra (pip install 'ecgd[bridge]'): {exc}", file=sys.stderr)
        return 69

    def opt(p: Any) -> str | None:
        return None if p is None else str(p)

    settings = BridgeSettings(
        broker=args.broker,
        site=args.site or "ward",
        username=args.username,
        password_file=opt(args.password_file),
        tls=TlsSettings(
            ca_file=opt(args.ca_file), cert_file=opt(args.cert_file), key_file=opt(args.key_file)
        ),
    )
    problems = [p.replace("password_file:", "--password-file:") for p in settings.problems()]
    if problems:
        for p in problems:
            print(f"ecgd ward: {p}", file=sys.stderr)
        return 78
    topic = f"ecgd/{args.site}/#" if args.site else "ecgd/#"
    ward = Ward(args.stale_after)
    desk = Desk(settings, topic, ward)
    try:
        desk.start()
    except BrokerError as exc:
        print(f"ecgd ward: {exc}", file=sys.stderr)
        return exc.exit_code
    title = f"ecgd ward — {args.site or 'all sites'} on {args.broker}"
    console = Console()
    try:
        if args.once:
            desk.subscribed.wait(5)
            desk.last_message = time.monotonic()
            # retained messages follow the SUBACK at once: stop after 0.3 s without one (or --wait)
            end = time.monotonic() + args.wait
            while time.monotonic() < end and time.monotonic() - desk.last_message < 0.3:
                time.sleep(0.02)
            rows = ward.rows()
            console.print(render(rows, title))
            if not rows:
                console.print("no beds on the broker yet")
            return 0
        return _live(console, ward, title)
    finally:
        desk.stop()


def _live(console: Any, ward: Ward, title: str) -> int:
    """Redraw at once when an alarm begins or ends, else once a second (ages and staleness move on):
    drawing a 50-bed table on every message cost the desk 15-18 % of a CPU."""
    from rich.live import Live

    with Live(render(ward.rows(), title), console=console, auto_refresh=False) as live:
        last = 0.0
        try:
            while True:
                ward.changed.wait(REDRAW_S)
                ward.changed.clear()
                if ward.take_new_high():
                    console.bell()
                now = time.monotonic()
                if ward.take_urgent() or now - last >= REDRAW_S:
                    live.update(render(ward.rows(), title), refresh=True)
                    last = now
        except KeyboardInterrupt:
            return 0
