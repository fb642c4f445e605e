"""``ecgd strip``: a standard ECG strip (25 mm/s, 10 mm/mV, pink millimetre grid) as a PNG.

From the recordings (``--at TIME`` or ``--window-index N`` of the results log) or from any WFDB
record (``ecgd strip RECORD --at SECONDS`` or ``--at-sample N``, which is what an alarm's
``recording``/``recording_sample`` fields give). Beats are marked with their label and the RR
intervals between them; the window's label and confidence, the heart rate, alarms and technical
events (gaps, leads off) are written on it. matplotlib is the optional ``[plot]`` extra.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ecgd.io.recordings import Note, iso, parse_time, read_annotations, read_span

EX_OK, EX_DATAERR, EX_NOINPUT, EX_UNAVAILABLE, EX_CONFIG = 0, 65, 66, 69, 78
MM_PER_S, MM_PER_MV = 25.0, 10.0
# Beat annotation symbols (WFDB's <ecgcodes.h> beats); others are drawn as events.
BEATS = set("NLRaVFJASEj/Qenfrx")
MINOR, MAJOR, TRACE = "#f7c6c6", "#e58a8a", "#111111"


@dataclass
class StripInfo:
    """What is written on the strip besides the trace."""

    title: str
    start_ns: int | None = None  # wall time of the first sample (None: seconds from the record start)
    label: str | None = None
    alarms: list[str] = field(default_factory=list)
    offset_s: float = 0.0  # seconds into the record of the first sample (records without a date)


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60.0)
    h, m = divmod(int(m), 60)
    sec = f"{s:02.0f}" if abs(s - round(s)) < 1e-6 else f"{s:06.3f}"
    return f"{h}:{m:02d}:{sec}" if h else f"{m}:{sec}"


def render_strip(
    mv: np.ndarray, fs: float, notes: list[Note], info: StripInfo, out: Path, dpi: int = 200
) -> dict:
    """Draw the strip; returns what it drew (beats, heart rate, size) for the caller and tests."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = mv.size
    seconds = n / fs
    finite = mv[np.isfinite(mv)]
    lo = np.floor(((finite.min() if finite.size else -1.0) - 0.3) * 2) / 2
    hi = np.ceil(((finite.max() if finite.size else 1.0) + 0.3) * 2) / 2
    if hi - lo < 3.0:  # at least 3 mV (30 mm) of paper
        mid = (hi + lo) / 2
        lo, hi = np.floor((mid - 1.5) * 2) / 2, np.ceil((mid + 1.5) * 2) / 2
    left, right, top, bottom = 14.0, 6.0, 26.0, 12.0
    w_mm, h_mm = seconds * MM_PER_S, (hi - lo) * MM_PER_MV
    fig_w, fig_h = w_mm + left + right, h_mm + top + bottom
    fig = plt.figure(figsize=(fig_w / 25.4, fig_h / 25.4), dpi=dpi)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, w_mm / fig_w, h_mm / fig_h))
    ax.set_xlim(0, seconds)
    ax.set_ylim(lo, hi)
    for x in np.arange(0, seconds + 1e-9, 0.04):  # 1 mm
        ax.axvline(
            x, color=MAJOR if round(x / 0.04) % 5 == 0 else MINOR, lw=0.6 if round(x / 0.04) % 5 else 1.0
        )
    for y in np.arange(lo, hi + 1e-9, 0.1):
        major = round((y - lo) / 0.1) % 5 == 0
        ax.axhline(y, color=MAJOR if major else MINOR, lw=1.0 if major else 0.6)
    t = np.arange(n) / fs
    ax.plot(t, mv, color=TRACE, lw=1.1)
    # gaps: where no sample was taken, nothing is drawn; the paper says so
    invalid = ~np.isfinite(mv)
    if invalid.any():
        edges = np.flatnonzero(np.diff(np.concatenate(([0], invalid.astype(np.int8), [0]))))
        named_until = -1.0
        for a, b in zip(edges[0::2], edges[1::2], strict=True):
            ax.axvspan(a / fs, b / fs, color="#bbbbbb", alpha=0.5, lw=0)
            mid = (a + b) / 2 / fs
            if b - a >= 0.1 * fs and mid - 0.3 > named_until:  # short gaps only break the trace
                ax.text(mid, lo + 0.1, "no signal", ha="center", va="bottom", fontsize=6, color="#555")
                named_until = mid + 0.3
    beats = [nt for nt in notes if nt.symbol in BEATS and 0 <= nt.sample < n]
    events = [nt for nt in notes if nt.symbol not in BEATS and 0 <= nt.sample < n]
    for nt in beats:
        x = nt.sample / fs
        ax.plot([x, x], [hi - 0.25, hi - 0.1], color="#1f4fbf", lw=1.2)
        ax.text(x, hi - 0.28, nt.symbol, ha="center", va="top", fontsize=8, color="#1f4fbf", weight="bold")
    # RR only between neighbours with every sample between them present: across a gap a beat may be
    # missing, and the interval would be a guess
    gaps_before = np.concatenate(([0], np.cumsum(invalid)))
    rr = []
    for a, b in itertools.pairwise(beats):
        if gaps_before[b.sample] == gaps_before[a.sample]:
            rr.append((b.sample - a.sample) / fs * 1000.0)
            ax.text(
                (a.sample + b.sample) / 2 / fs, hi - 0.05, f"{rr[-1]:.0f}", ha="center", va="top", fontsize=6
            )
    rr_ms = np.array(rr)
    # events: a dashed line each, their text in up to three rows above the paper, never on each other
    row_free = [0.0, 0.0, 0.0]  # seconds of the strip from which each row is free
    s_per_char = 0.05  # 6-pt text: ~1.2 mm a character at 25 mm/s
    for nt in events:
        x = nt.sample / fs
        ax.axvline(x, color="#c0392b", lw=1.0, ls="--")
        text = f"{nt.symbol} {nt.aux or ''}".strip()[:60]
        width = len(text) * s_per_char
        side, start = ("left", x) if x + width <= seconds else ("right", x - width)  # stay on the paper
        row = next((r for r, free in enumerate(row_free) if free <= start), None)
        if row is not None:  # else all rows are taken here: the dashed line alone (text in the file)
            ax.text(x, hi + 0.05 + 0.25 * row, text, ha=side, va="bottom", fontsize=6, color="#c0392b")
            row_free[row] = start + width + 0.1
        if (nt.aux or "").startswith("alarm ") and " onset" in nt.aux and nt.aux not in info.alarms:
            info.alarms.append(nt.aux.removeprefix("alarm "))
    hr = 60000.0 / float(np.median(rr_ms)) if rr_ms.size else None
    # time axis: a tick per second, wall-clock time when known
    ticks = np.arange(0, seconds + 1e-9, 1.0)
    ax.set_xticks(ticks)
    if info.start_ns is not None:
        labels = [iso(info.start_ns + round(s * 1e9))[11:19] for s in ticks]
        ax.set_xlabel(f"UTC {iso(info.start_ns)[:10]}", fontsize=7)
    else:
        labels = [_clock(info.offset_s + s) for s in ticks]
        ax.set_xlabel("time into the record", fontsize=7)
    ax.set_xticklabels(labels, fontsize=6)
    ax.set_yticks(np.arange(np.ceil(lo), hi + 1e-9, 1.0))
    ax.set_yticklabels([f"{v:g} mV" for v in np.arange(np.ceil(lo), hi + 1e-9, 1.0)], fontsize=6)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_color(MAJOR)
    line1 = f"{info.title}    25 mm/s   10 mm/mV"
    line2 = "   ".join(
        x
        for x in (
            f"HR {hr:.0f}/min ({len(beats)} beats)" if hr else f"{len(beats)} beats",
            f"label {info.label}" if info.label else "",
            *[f"ALARM {a}" for a in info.alarms],
        )
        if x
    )
    fig.text(left / fig_w, 1 - 4 / fig_h, line1, fontsize=8, va="top")
    fig.text(
        left / fig_w, 1 - 9 / fig_h, line2, fontsize=8, va="top", color="#c0392b" if info.alarms else "k"
    )
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return {
        "beats": len(beats),
        "hr": hr,
        "seconds": seconds,
        "width_mm": fig_w,
        "height_mm": fig_h,
        "label": info.label,
        "alarms": len(info.alarms),
        "events": len(events),
    }


# -- the command ------------------------------------------------------------------------------------
def add_strip_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "record", nargs="?", help="a WFDB record (.hea or path without it); default: the recordings"
    )
    at = p.add_mutually_exclusive_group()
    at.add_argument("--at", help="strip start: a UTC time (recordings) or seconds into RECORD")
    at.add_argument("--at-sample", type=int, help="strip start: sample index in RECORD")
    at.add_argument("--window-index", type=int, help="the window of this index in the results log")
    p.add_argument("--seconds", type=float, help="strip length (default 10, or the window's length)")
    p.add_argument("--recordings", type=Path, help="recordings directory (default: recording.directory)")
    p.add_argument(
        "--log", type=Path, help="results log for labels and --window-index (default: the config's)"
    )
    p.add_argument(
        "--annotator", help="annotation file of RECORD to mark beats from (default: ecgd, else atr)"
    )
    p.add_argument("--config", type=Path, help="config to take the recordings and log paths from")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")


def run_strip(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("ecgd: strips need matplotlib: pip install 'ecgd[plot]'", file=sys.stderr)
        return EX_UNAVAILABLE
    from ecgd.io.records import RecordError, RecordNotFound

    try:
        log, recordings = _paths(args)
        if args.record:
            mv, fs, notes, info = _from_record(args)
        else:
            mv, fs, notes, info = _from_recordings(args, recordings, log)
        if args.seconds is not None and args.seconds <= 0:
            raise ValueError("--seconds must be positive")
        if mv.size == 0:
            raise RecordError("the strip would be empty: --at is past the end of the record")
        drawn = render_strip(mv, fs, notes, info, args.output)
    except RecordNotFound as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_NOINPUT
    except (RecordError, ValueError, OSError) as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_DATAERR
    hr = f", HR {drawn['hr']:.0f}/min" if drawn["hr"] else ""
    label = f", label {drawn['label']}" if drawn["label"] else ""
    print(
        f"{args.output}: {drawn['seconds']:g} s, {drawn['beats']} beats{hr}{label}, "
        f"{drawn['events']} events, {drawn['alarms']} alarms"
    )
    return EX_OK


def _paths(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    from ecgd import config as cfg

    settings = None
    path = args.config or (cfg.DEFAULT_CONFIG_PATH if cfg.DEFAULT_CONFIG_PATH.exists() else None)
    if path is not None:
        settings = cfg.load(path)
    log = args.log or (
        settings._resolve(settings.output.log_file) if settings and settings.output.log_file else None
    )
    recordings = args.recordings or (settings.recording_directory if settings else None)
    return log, recordings


def _header_start_ns(header: Path) -> int | None:
    f = header.read_text(errors="replace").splitlines()[0].split()
    if len(f) < 6:
        return None
    try:
        dt = datetime.strptime(f"{f[4]} {f[5]}", "%H:%M:%S.%f %d/%m/%Y")
    except ValueError:
        try:
            dt = datetime.strptime(f"{f[4]} {f[5]}", "%H:%M:%S %d/%m/%Y")
        except ValueError:
            return None
    return round(dt.replace(tzinfo=timezone.utc).timestamp() * 1e9)


def _from_record(args: argparse.Namespace) -> tuple[np.ndarray, float, list[Note], StripInfo]:
    from ecgd.io.records import read_recording

    path = Path(args.record)
    header = path if path.suffix == ".hea" else path.with_name(path.name + ".hea")
    rec = read_recording(header)
    fs = rec.fs
    if args.window_index is not None:
        raise ValueError("--window-index needs the recordings, not a RECORD")
    first = args.at_sample if args.at_sample is not None else round(float(args.at or 0) * fs)
    n = round((args.seconds or 10.0) * fs)
    mv = rec.mv[first : first + n]
    base = header.with_suffix("")
    annotators = [args.annotator] if args.annotator else ["ecgd", "atr"]
    notes: list[Note] = []
    for a in annotators:
        found = read_annotations(base.with_name(f"{base.name}.{a}"))
        if found:
            notes = [Note(nt.sample - first, nt.symbol, nt.aux) for nt in found]
            break
    start = _header_start_ns(header)
    start_ns = None if start is None else start + round(first / fs * 1e9)
    where = f"{rec.name} from sample {first}" + ("" if start_ns else f" ({first / fs:.2f} s)")
    return mv, fs, notes, StripInfo(f"ecgd strip: {where}", start_ns, offset_s=first / fs)


def _results(log: Path | None) -> list[dict]:
    if log is None or not log.exists():
        return []
    out = []
    for p in [*sorted(log.parent.glob(log.name + ".*"), reverse=True), log]:  # rotated ones first
        if p.suffix.lstrip(".").isdigit() or p == log:
            for line in p.read_text().splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    return out


def _from_recordings(
    args: argparse.Namespace, recordings: Path | None, log: Path | None
) -> tuple[np.ndarray, float, list[Note], StripInfo]:
    if recordings is None:
        raise ValueError("no recordings directory: give --recordings DIR (or a --config that records)")
    results = [r for r in _results(log) if r.get("kind") == "result"]
    seconds = args.seconds
    if args.window_index is not None:
        hits = [r for r in results if r.get("window_index") == args.window_index]
        if not hits:
            raise ValueError(f"window {args.window_index} is not in the results log {log}")
        window = hits[-1]  # the latest run's window of that index
        start = parse_time(window["window_start"])
        seconds = seconds or (parse_time(window["window_end"]) - start) / 1e9
    elif args.at:
        start = parse_time(args.at)
    else:
        raise ValueError("say where: --at TIME or --window-index N")
    seconds = seconds or 10.0
    span = read_span(recordings, start, start + round(seconds * 1e9))
    end = span.start_ns + round(span.n / span.fs * 1e9)
    mid = (span.start_ns + end) // 2
    label = None
    covering = [r for r in results if parse_time(r["window_start"]) <= mid <= parse_time(r["window_end"])]
    if args.window_index is not None:
        covering = [window]
    if covering:
        r = covering[-1]
        conf = f" ({r['confidence']:.2f})" if r.get("confidence") is not None else ""
        label = f"{r['label']}{conf} window {r['window_index']}"
    alarms = [
        r.get("message", "")
        for r in _results(log)
        if r.get("kind") == "alarm"
        and any(span.start_ns <= parse_time(r[k]) <= end for k in ("onset_time", "time") if r.get(k))
    ]
    title = f"ecgd strip: {span.sources[0].name}"
    return span.mv, span.fs, span.notes, StripInfo(title, span.start_ns, label, alarms)
