"""The records ecgd writes: one per window, plus faults and lifecycle events.

A record has lower-case field names (the JSON log) that map 1:1 onto journald
fields as ``ECG_<NAME>``; ``MESSAGE_ID`` says which kind of entry it is, so
``journalctl MESSAGE_ID=…`` or ``journalctl ECG_LABEL=V`` select them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ecgd.analysis.alarms import HIGH, MEDIUM, AlarmEvent
from ecgd.analysis.beats import WindowBeats
from ecgd.analysis.classifier import Classification
from ecgd.analysis.windows import Window

MESSAGE_IDS = {
    "result": "e59f77e50dac475e9f4c642396c50f3a",
    "fault": "68be2987fde34fdd8d0ca0a70f9e7024",
    "lifecycle": "cb29204c78a84f1aa5e0ebd4224cf53f",
}
# Alarm records (kind "alarm"): one MESSAGE_ID per alarm, so ``journalctl MESSAGE_ID=…`` follows one.
ALARM_MESSAGE_IDS = {
    "asystole": "427c172d30474869a818796fed8fc366",
    "vfib": "512b09e1e1454dbc80cd096e35b62221",
    "vtach": "e8ebfd321e0b469cba59e3c707065232",
    "ventricular_run": "a18386c060ad44e7aadecf1e7bc03e1a",
    "bradycardia": "8d3b8ddbadca4b81a9114ec9736e8045",
    "tachycardia": "9c21f9711c4d424f89ceaf1bbbcc5fb5",
    "extreme_bradycardia": "ccb52ad3a66f44ee97cbdde254e54a45",
    "extreme_tachycardia": "189b6d3878cd428ebff358157c5734f2",
    "pause": "bc317b3f9c28463eb0a97b981cd4cdd0",
    "afib": "c9d73aa94466462bb7c2fcd829a49188",
    "leads_off": "4f664cf4765c4425b10e3cc000f587e1",
    "alarms_suspended": "028a4ee311d8483c90379d2cbfda55bb",
}
# syslog priorities
CRIT, ERR, WARNING, NOTICE, INFO = 2, 3, 4, 5, 6


@dataclass(frozen=True)
class Record:
    kind: str  # result | fault | lifecycle | alarm
    message: str
    priority: int
    fields: dict[str, Any] = field(default_factory=dict)
    wall_ns: int | None = None

    @property
    def message_id(self) -> str:
        if self.kind == "alarm":
            return ALARM_MESSAGE_IDS[self.fields["alarm"]]
        return MESSAGE_IDS[self.kind]

    def journal_fields(self) -> dict[str, str]:
        out = {}
        for key, value in self.fields.items():
            if value is None:
                continue
            if isinstance(value, (dict, list)):
                value = json.dumps(value, separators=(",", ":"))
            elif isinstance(value, bool):
                value = "1" if value else "0"
            out[f"ECG_{key.upper()}"] = str(value)
        return out

    def json_line(self) -> str:
        ts = iso_utc(self.wall_ns) if self.wall_ns is not None else None
        body = {"time": ts, "kind": self.kind, "priority": self.priority, "message": self.message}
        body.update(self.fields)
        return json.dumps(body, separators=(",", ":"), allow_nan=False) + "\n"


def iso_utc(wall_ns: int) -> str:
    dt = datetime.fromtimestamp(wall_ns // 1_000_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(wall_ns // 1_000_000) % 1000:03d}Z"


def result_record(
    window: Window,
    c: Classification | None,
    model_ident: str,
    abnormal_labels: tuple[str, ...],
    now_wall_ns: int,
    beats: WindowBeats | None = None,
) -> Record:
    """One window's record. ``c`` is None for a window that was skipped (reason on the window).

    ``beats``: the window's heart rate and RR figures; None where no beat stage ran (the fields are
    there all the same, null, with ``heart_rate_reason``)."""
    label = c.label if c else "skipped"
    reason = c.reason if c else window.skip_reason
    missing = c.missing if c else (window.block.missing if window.block is not None else None)
    classified = c is not None and c.probabilities is not None
    abnormal = classified and label in abnormal_labels
    fields = {
        "label": label,
        "confidence": round(c.confidence, 4) if c and c.confidence is not None else None,
        "probabilities": c.probabilities if c else None,
        "reason": reason,
        "window_index": window.index,
        "window_start": iso_utc(window.start_wall_ns),
        "window_end": iso_utc(window.end_wall_ns),
        "first_seq": window.first_seq,
        "last_seq": window.stop_seq - 1,
        "missing_samples": missing,
        "inference_ms": round(c.inference_ms, 3) if c and c.inference_ms is not None else None,
        "model": model_ident,
        "abnormal": abnormal,
    }
    fields.update((beats or WindowBeats.none("beats not tracked")).fields())
    if c is not None and c.beats is not None:  # beat-aware model: the beats behind the label
        fields["beat_labels"] = str(c.beats)
        fields["learning"] = bool(c.learning)
        pw = c.p_wave_coherence
        fields["p_wave_coherence"] = None if pw is None else round(pw, 3)
        ratio = c.p_wave_to_qrs
        fields["p_wave_to_qrs"] = None if ratio is None else round(ratio, 4)
    if classified:
        message = f"ECG {label} ({c.confidence:.2f}) {fields['window_start']} – {fields['window_end']}"
        if missing:
            message += f", {missing} missing samples"
        if c.learning:
            message += ", still learning this patient's dominant beat"
        if fields["heart_rate_bpm"] is not None:
            message += f", HR {fields['heart_rate_bpm']:.0f} bpm"
    else:
        message = f"ECG {label}: {reason} ({fields['window_start']} – {fields['window_end']})"
    priority = WARNING if abnormal or not classified else INFO
    return Record("result", message, priority, fields, now_wall_ns)


def event_record(kind: str, message: str, priority: int, now_wall_ns: int, **fields: Any) -> Record:
    """A fault or lifecycle entry (``event`` names what happened)."""
    return Record(kind, message, priority, fields, now_wall_ns)


def alarm_priority(event: AlarmEvent) -> int:
    """journald PRIORITY: 2 crit for a high onset, 3 err for medium, 5 notice for low and every end."""
    if event.state != "onset":
        return NOTICE
    return {HIGH: CRIT, MEDIUM: ERR}.get(event.priority, NOTICE)


def alarm_record(event: AlarmEvent, wall_ns: int, onset_wall_ns: int | None = None) -> Record:
    """One alarm change. ``wall_ns`` labels the change on the sampling grid (its ``seq``)."""
    fields = {
        "alarm": event.alarm,
        "alarm_state": event.state,
        "alarm_priority": event.priority,
        "alarm_category": event.category,
        "alarm_id": event.alarm_id,
        "value": event.value,
        "unit": event.unit,
        "threshold": event.threshold,
        "duration_s": None if event.duration_s is None else round(event.duration_s, 2),
        "onset_seq": event.onset_seq,
        "seq": event.seq,
        "onset_time": iso_utc(onset_wall_ns) if onset_wall_ns is not None else None,
        "detail": event.detail,
    }
    return Record("alarm", event.describe(), alarm_priority(event), fields, wall_ns)
