"""Journal entries → MQTT messages, and the per-bed vitals they add up to.

Pure: no I/O, no clock (the caller passes "now"). The mapping is generic, so fields colleagues add
to a record (``heart_rate_bpm``, ``alarm_*`` …) flow through without a change here: every
``ECG_<NAME>`` field becomes ``<name>``, its value parsed back to the number, list or mapping the
JSON log holds.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SCHEMA = 1
# journald stores booleans as "1"/"0" (ecgd.outputs.results.Record.journal_fields); nothing in the
# string says it was one, so the boolean fields are named here.
BOOLEAN_FIELDS = frozenset({"abnormal"})
# Free text and identifiers stay strings even when they look like numbers ("1.0", "0042").
STRING_FIELDS = frozenset(
    {"label", "reason", "model", "alarm_id", "alarm", "alarm_state", "alarm_priority", "alarm_category",
     "unit", "detail", "event", "message", "line"}
)  # fmt: skip
TOPIC_OF_KIND = {"result": "result", "alarm": "alarm", "fault": "event", "lifecycle": "event"}
HIGH = "high"


def iso_utc_us(realtime_us: int) -> str:
    dt = datetime.fromtimestamp(realtime_us / 1e6, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _value(name: str, raw: Any) -> Any:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        return raw
    if name in BOOLEAN_FIELDS and raw in ("0", "1"):
        return raw == "1"
    if name in STRING_FIELDS:
        return raw
    if raw[:1] in "[{-0123456789":
        try:
            value = json.loads(raw)
        except ValueError:
            return raw
        if isinstance(value, (int, float, list, dict)) and not isinstance(value, bool):
            return value
    return raw


def record_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """A journal entry's ``ECG_*`` fields under the JSON log's names (``ECG_KIND`` is the kind)."""
    return {k[4:].lower(): _value(k[4:].lower(), v) for k, v in entry.items() if k.startswith("ECG_")}


@dataclass(frozen=True)
class Message:
    topic: str  # the last topic level: result | alarm | event
    payload: dict[str, Any]
    cursor: str


def to_message(entry: dict[str, Any], site: str, bed: str) -> Message | None:
    """One journal entry as a message, or None for an entry that is not an ecgd record."""
    body = record_fields(entry)
    kind = body.pop("kind", None)
    if kind not in TOPIC_OF_KIND:
        return None
    boot_id = entry.get("_BOOT_ID", "")
    boot = boot_id.hex if isinstance(boot_id, uuid.UUID) else str(boot_id)
    pid = str(entry.get("_PID", ""))
    cursor = str(entry["__CURSOR"])
    realtime = entry.get("__REALTIME_TIMESTAMP")
    payload: dict[str, Any] = {
        "schema": SCHEMA,
        "site": site,
        "bed": bed,
        "kind": kind,
        "time": iso_utc_us(_microseconds(realtime)) if realtime is not None else None,
        "priority": _int(entry.get("PRIORITY")),
        "message": _text(entry.get("MESSAGE")),
        # identity: a consumer drops a message it has seen by (bed, run, window_index | alarm_id+state)
        # or, for anything, by (bed, cursor)
        "run": f"{boot}:{pid}",
        "cursor": cursor,
        **body,
    }
    return Message(TOPIC_OF_KIND[kind], payload, cursor)


def _microseconds(value: Any) -> int:
    """systemd-python gives a datetime; journalctl -o json a string of microseconds."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1e6)
    return int(value)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value or "")


@dataclass
class Vitals:
    """One bed's current state, rebuilt from the records; replaying a record again changes nothing."""

    heart_rate_bpm: float | None = None
    label: str | None = None
    confidence: float | None = None
    signal: str | None = None  # ok | unclassified reason | a fault
    window_index: int | None = None
    updated: str | None = None  # time of the newest record folded in
    run: str | None = None
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)  # active, by alarm_id

    def apply(self, m: Message) -> bool:
        """Fold one message in; True if what a desk shows changed."""
        p = m.payload
        before = self.snapshot()
        if p.get("time") and (self.updated is None or p["time"] >= self.updated):
            self.updated = p["time"]
        if m.topic == "result":
            if (
                self.window_index is not None
                and p.get("run") == self.run
                and (p.get("window_index") or 0) <= self.window_index
            ):
                return self.snapshot() != before  # a replayed (older) window
            self.run = p.get("run")
            self.window_index = p.get("window_index")
            self.label = p.get("label")
            self.confidence = p.get("confidence")
            self.signal = "ok" if p.get("probabilities") is not None else (p.get("reason") or p.get("label"))
            # a window without a rate (unreadable, or before the beats stage) clears it: an old rate
            # shown as the current one would be invented
            self.heart_rate_bpm = p.get("heart_rate_bpm")
        elif m.topic == "alarm":
            alarm_id = str(p.get("alarm_id") or p.get("alarm"))
            if p.get("alarm_state") == "end":
                self.alarms.pop(alarm_id, None)
            else:
                keep = ("alarm", "alarm_priority", "alarm_category", "value", "unit", "threshold", "time")
                self.alarms[alarm_id] = {k: p.get(k) for k in keep}
                # the onset's own time, even when this onset is replayed or arrives late
                self.alarms[alarm_id]["time"] = p.get("onset_time") or p.get("time")
        elif p.get("kind") == "fault":
            self.signal = f"fault: {p.get('event') or p.get('message')}"
        elif p.get("kind") == "lifecycle" and p.get("event") in ("stopped", "stopping"):
            self.signal = "monitor stopped"
        return self.snapshot() != before

    def snapshot(self) -> dict[str, Any]:
        return {
            "heart_rate_bpm": self.heart_rate_bpm,
            "label": self.label,
            "confidence": self.confidence,
            "signal": self.signal,
            "window_index": self.window_index,
            "updated": self.updated,
            "run": self.run,
            "alarms": [{"alarm_id": k, **v} for k, v in sorted(self.alarms.items())],
        }

    def payload(self, site: str, bed: str) -> dict[str, Any]:
        return {"schema": SCHEMA, "site": site, "bed": bed, **self.snapshot()}

    @classmethod
    def restore(cls, state: dict[str, Any] | None) -> Vitals:
        v = cls()
        if not state:
            return v
        for key in ("heart_rate_bpm", "label", "confidence", "signal", "window_index", "updated", "run"):
            setattr(v, key, state.get(key))
        v.alarms = {
            a["alarm_id"]: {k: x for k, x in a.items() if k != "alarm_id"} for a in state.get("alarms", [])
        }
        return v
