"""One YAML file → validated, immutable settings, before anything starts.

Every key is declared once in a schema (type, default, bounds, help). Loading
collects *all* problems, each naming the key path, the bad value and what is
allowed, and suggests the close match for an unknown key, so an admin fixes a
file in one go instead of one restart per typo.
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, make_dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from ecgd.analysis.alarms import AlarmSettings
from ecgd.analysis.beat_features import RelearnSettings
from ecgd.analysis.beats import BeatSettings
from ecgd.analysis.qrs import QrsSettings
from ecgd.analysis.quality import MIN_FS_HZ, MIN_WINDOW_S, QualitySettings
from ecgd.bridge.settings import BridgeSettings
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.outputs.recording import RecordingSettings

DEFAULT_CONFIG_PATH = Path("/etc/ecgd/ecgd.yaml")
PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_MODEL = PACKAGE_DIR / "models" / "default.tflite"
BUNDLED_DEMO_RECORD = PACKAGE_DIR / "demo" / "mitdb201_excerpt.hea"


class ConfigError(Exception):
    """Every problem found in one config file; ``str()`` lists them one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _opt(
    default: Any,
    help: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] | None = None,
    nullable: bool = False,
) -> Any:
    return field(
        default=default, metadata={"help": help, "lo": lo, "hi": hi, "choices": choices, "nullable": nullable}
    )


@dataclass(frozen=True)
class DeviceSettings:
    kind: str = _opt(
        "pcf8591", "ADC source: the real PCF8591 on I2C, or the emulated one", choices=("pcf8591", "emulated")
    )
    i2c_bus: int = _opt(1, "I2C bus number (/dev/i2c-N)", lo=0, hi=255)
    address: int = _opt(0x48, "7-bit I2C address of the PCF8591 (0x48 with A0-A2 low)", lo=0x03, hi=0x77)
    channel: int = _opt(2, "PCF8591 analog input wired to the AD8232 OUTPUT", lo=0, hi=3)
    retries: int = _opt(1, "read retries within one sample slot after an I2C error", lo=0, hi=5)
    fault_after_seconds: float = _opt(
        2.0, "no good sample for this long → sensor fault state", lo=0.05, hi=3600
    )
    max_backoff_seconds: float = _opt(
        1.0, "longest wait between attempts while in the fault state", lo=0.01, hi=60
    )


@dataclass(frozen=True)
class EmulatedSettings:
    recording: str | None = _opt(
        None,
        "WFDB/CSV/.npy recording played by the emulated device (null: the bundled MIT-BIH excerpt)",
        nullable=True,
    )
    recording_channel: int = _opt(0, "channel of the recording to play", lo=0, hi=63)
    recording_rate_hz: float | None = _opt(
        None, "sample rate of a CSV/.npy recording", lo=1, hi=100000, nullable=True
    )
    bus_latency_ms: float = _opt(0.2, "time one I2C byte read takes on the emulated bus", lo=0, hi=50)
    error_rate: float = _opt(0.0, "probability that a read fails with EREMOTEIO", lo=0, hi=1)
    seed: int = _opt(1, "seed of the emulated error injection", lo=0, hi=2**31)


@dataclass(frozen=True)
class SamplingSettings:
    rate_hz: float = _opt(360.0, "sampling rate of the absolute grid", lo=1, hi=2000)
    late_tolerance_periods: float = _opt(
        0.5,
        "a read later than this fraction of a sample period after its slot's deadline is not taken "
        "(the slot is counted missing): up to half a period a sample is nearer its own slot than any other",
        lo=0.05,
        hi=0.5,
    )
    ring_seconds: float = _opt(
        120.0, "ring buffer length; must exceed window_seconds + hop_seconds", lo=1, hi=3600
    )
    realtime_priority: int = _opt(
        20,
        "SCHED_FIFO priority of the sampler thread (1-99; 0: normal scheduling). Needs CAP_SYS_NICE or "
        "LimitRTPRIO (the unit sets it); if refused, a warning and sampling at normal priority",
        lo=0,
        hi=99,
    )


@dataclass(frozen=True)
class FrontendSettings:
    gain: float = _opt(1100.0, "AD8232 module gain, electrodes → OUTPUT (V/V)", lo=1, hi=100000)
    offset_volts: float = _opt(1.65, "AD8232 OUTPUT for 0 mV at the electrodes (REFOUT)", lo=0, hi=5)
    highpass_hz: float = _opt(
        0.5, "board high-pass corner (emulated device and --frontend only)", lo=0, hi=100
    )
    lowpass_hz: float = _opt(
        40.0, "board low-pass corner (emulated device and --frontend only)", lo=0, hi=1000
    )
    adc_reference_volts: float = _opt(3.3, "PCF8591 VREF − AGND", lo=0.5, hi=6)


@dataclass(frozen=True)
class WindowSettings:
    window_seconds: float = _opt(10.0, "length of each classified window", lo=1, hi=600)
    hop_seconds: float = _opt(2.0, "a new window every this many seconds", lo=0.1, hi=600)
    max_missing_fraction: float = _opt(
        0.05,
        "windows with more missing samples than this fraction are not classified (fewer are filled "
        "by linear interpolation for the model only, and counted in the result)",
        lo=0,
        hi=0.5,
    )
    max_gap_seconds: float = _opt(
        0.05,
        "windows with a longer run of missing samples are not classified: it could hide half a QRS "
        "complex (scattered single missing samples, from a late wake-up, change nothing the model sees)",
        lo=0,
        hi=10,
    )


@dataclass(frozen=True)
class LeadsSettings:
    gpio_chip: str = _opt("/dev/gpiochip0", "GPIO character device the AD8232 LO+/LO− pins are wired to")
    lo_plus_line: int | None = _opt(
        None,
        "GPIO line (the BCM number on a Pi) wired to AD8232 LO+; null: not wired. With either line set, "
        "a window during which an electrode was off is `unreadable` (needs the gpiod package)",
        lo=0,
        hi=1023,
        nullable=True,
    )
    lo_minus_line: int | None = _opt(
        None, "GPIO line wired to AD8232 LO−; null: not wired", lo=0, hi=1023, nullable=True
    )

    @property
    def offsets(self) -> dict[str, int]:
        """The wired pins, by AD8232 name."""
        pairs = (("LO+", self.lo_plus_line), ("LO−", self.lo_minus_line))
        return {name: line for name, line in pairs if line is not None}


@dataclass(frozen=True)
class ModelSettings:
    path: str | None = _opt(None, "TFLite model (null: the bundled default model)", nullable=True)
    metadata: str | None = _opt(None, "model metadata JSON (null: the model path with .json)", nullable=True)


@dataclass(frozen=True)
class OutputSettings:
    journal: bool = _opt(True, "write results to journald")
    console: bool = _opt(False, "print a readable line per result on stdout (interactive runs)")
    log_file: str | None = _opt(
        "/var/log/ecgd/results.jsonl", "JSON Lines result log (null: none)", nullable=True
    )
    log_max_bytes: int = _opt(
        10 * 1024 * 1024, "rotate the log file when it would exceed this size", lo=4096, hi=2**40
    )
    log_backups: int = _opt(5, "rotated files kept (results.jsonl.1 … .N)", lo=0, hi=1000)
    queue_size: int = _opt(
        1000, "results waiting for a slow sink before new ones are counted as dropped", lo=10, hi=1_000_000
    )


# The ``beats`` section: the QRS detector's settings and the beat tracker's, flat in one YAML section.
BEATS_HELP = {
    "band_low_hz": "QRS detector band-pass, low edge (Hz): P/T waves and baseline wander below",
    "band_high_hz": "... high edge (Hz): muscle noise above; must be below half the sample rate",
    "filter_s": "length of the detector's FIR filters (s); half of it is filter delay",
    "integration_s": "moving-window integration (s): about the widest QRS",
    "refractory_s": "no second QRS within this time of a beat (s): 0.2 s = 300 bpm; the pause alarm takes a "
    "steep deflection this close before a beat for that beat's own",
    "t_wave_s": "a peak this soon after a beat (s) must be as steep as a QRS, or it is a T wave",
    "t_wave_slope_ratio": "... at least this fraction of the last QRS's steepest slope",
    "envelope_exponent": "candidate height = (envelope / a 1-mV QRS's) ** this: 0.5 is amplitude-like",
    "threshold_fraction": "detection threshold = noise + this × (signal − noise) level",
    "p_wave_s": "a beat is held this long (s) and withdrawn if a much stronger complex follows (tall P)",
    "p_wave_ratio": "... this many times stronger than the held beat",
    "searchback_rr": "search back for a missed beat after this many average RR intervals without one",
    "searchback_fraction": "... accepting the largest peak above this fraction of the threshold (and above "
    "min_qrs_mv)",
    "horizon_s": "longest look back (learning, search-back) (s): bounds the detector's delay",
    "min_qrs_mv": "a QRS smaller than this (mV) is never detected, not by a search-back either (the "
    "ADC's quantisation noise and muscle noise in a pause)",
    "gap_max_s": "missing runs up to this (s) are bridged; a longer one breaks the RR sequence",
    "live_rr_count": "live heart rate (STATUS=) = 60000 / mean of the last this many measured RR intervals",
    "live_min_rr": "fewer measured RR intervals since a break: no live heart rate shown",
    "live_timeout_s": "no beat for this long (s): the live heart rate shows --- (no beat for N s)",
}


def _beats_section() -> type:
    specs = [
        (
            f.name,
            f.type,
            field(default=f.default, metadata={"help": BEATS_HELP.get(f.name, "QRS detector setting")}),
        )
        for part in (QrsSettings, BeatSettings)
        for f in fields(part)
    ]
    qrs_names = [f.name for f in fields(QrsSettings)]
    tracker_names = [f.name for f in fields(BeatSettings)]

    def qrs(self) -> QrsSettings:
        return QrsSettings(**{n: getattr(self, n) for n in qrs_names})

    def tracker(self) -> BeatSettings:
        return BeatSettings(**{n: getattr(self, n) for n in tracker_names})

    namespace = {
        "__doc__": "YAML ``beats``: the QRS detector's ``QrsSettings`` and the tracker's ``BeatSettings``.",
        "qrs": property(qrs),
        "tracker": property(tracker),
    }
    return make_dataclass("BeatsSettings", specs, frozen=True, namespace=namespace)


BeatsSettings = _beats_section()


@dataclass(frozen=True)
class Settings:
    device: DeviceSettings = field(default_factory=DeviceSettings)
    emulated: EmulatedSettings = field(default_factory=EmulatedSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    frontend: FrontendSettings = field(default_factory=FrontendSettings)
    windows: WindowSettings = field(default_factory=WindowSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    beats: BeatsSettings = field(default_factory=BeatsSettings)  # type: ignore[valid-type]
    relearn: RelearnSettings = field(default_factory=RelearnSettings)
    leads: LeadsSettings = field(default_factory=LeadsSettings)
    alarms: AlarmSettings = field(default_factory=AlarmSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    bridge: BridgeSettings = field(default_factory=BridgeSettings)
    source: str = "<defaults>"

    @property
    def analog_frontend(self) -> AnalogFrontEnd:
        f = self.frontend
        return AnalogFrontEnd(
            gain=f.gain,
            offset_volts=f.offset_volts,
            highpass_hz=f.highpass_hz,
            lowpass_hz=f.lowpass_hz,
            adc_reference_volts=f.adc_reference_volts,
        )

    @property
    def recording_directory(self) -> Path | None:
        """Where the recorder writes (relative to the config file), or None: no recording."""
        d = self.recording.directory
        return Path(os.path.normpath(self._resolve(d))) if d else None

    @property
    def model_path(self) -> Path:
        return self._resolve(self.model.path) if self.model.path else BUNDLED_MODEL

    @property
    def metadata_path(self) -> Path:
        return (
            self._resolve(self.model.metadata)
            if self.model.metadata
            else self.model_path.with_suffix(".json")
        )

    @property
    def demo_recording(self) -> Path:
        return self._resolve(self.emulated.recording) if self.emulated.recording else BUNDLED_DEMO_RECORD

    def _resolve(self, value: str) -> Path:
        """Relative paths are relative to the config file, so a config and its files travel together."""
        p = Path(value).expanduser()
        if p.is_absolute() or self.source.startswith("<"):
            return p
        return Path(self.source).resolve().parent / p


# QualitySettings lives with the detector; its keys are described here for the reference.
QUALITY_HELP = {
    "enabled": "run the signal-quality gate; false passes every window to the model",
    "flat_max_range_mv": "peak-to-peak below this (mV) is a flat line (ADC stuck, no signal)",
    "rail_margin_fraction": "a sample within this share of the ADC span of a rail counts as at the rail",
    "rail_max_fraction": "more than this share of the window at the rails: saturated (leads off?)",
    "rail_max_run_s": "a longer unbroken stay at a rail (s): an electrode is off",
    "max_peak_to_peak_mv": "peak-to-peak above this (mV) is an implausible amplitude",
    "qrs_min_slope_mv_per_s": "a beat of the QRS detector counts as a QRS complex if at least this steep "
    "(mV/s over 20 ms)",
    "qrs_relative_slope": "... and this share of the window's typical steepest beats",
    "min_qrs_per_minute": "fewer QRS complexes than this rate: no ECG found",
    "noise_cutoff_hz": "power above this frequency counts as noise",
    "max_noise_power_fraction": "more of the power above 1 Hz than this share lies above the cutoff: noise",
    "min_qrs_similarity": "steep deflections must repeat like QRS complexes (median best correlation)",
}

# RelearnSettings lives with the beat features (beat-aware models only).
RELEARN_HELP = {
    "learn_seconds": "beat-aware models learn the patient's dominant beat over this much signal "
    "(results say `learning` meanwhile); SIGUSR1 (`ecgd relearn`) or a reload starts again",
    "min_beats": "fewer beats than this: no template yet, the window is not classified",
    "cluster_corr": "beats this alike (QRS correlation) are one morphology when finding the dominant beat",
    "adapt_rate": "after learning, each beat that matches the template moves it by this share",
    "pool_beats": "at most this many beats are kept for learning",
    "change_fraction": "after learning, when this share of the last `change_beats` beats is one alike "
    "morphology unlike the template, on time and slower than `change_max_bpm`, it becomes the template",
    "change_beats": "how many recent beats the dominant-beat change is judged over (0: never on its own)",
    "change_max_bpm": "a new dominant beat faster than this is not taken over (a VT stays abnormal)",
    "former_templates": "dominant beats replaced by such a change stay this patient's normal beats: each "
    "beat is judged against the one it is most like (intermittent conduction; 0: forget them)",
}
STAGE_HELP = {"quality": QUALITY_HELP, "relearn": RELEARN_HELP}

SECTIONS: dict[str, type] = {
    f.name: f.default_factory().__class__
    for f in fields(Settings)  # type: ignore[misc]
    if f.name != "source"
}


def load(path: str | Path) -> Settings:
    """Read and validate a config file; raises ``ConfigError`` listing every problem."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(str(p), ["file not found"]) from None
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read: {exc.strerror}"]) from None
    _refuse_if_world_writable(p, "config file")
    return parse(text, str(p.absolute()))  # relative paths inside resolve against the file, whatever the cwd


def parse(text: str, source: str = "<string>") -> Settings:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"YAML syntax error: {where}{problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"top level must be a mapping of sections, got {_kind(data)}"])
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in SECTIONS:
            problems.append(_unknown(str(name), list(SECTIONS), ""))
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            problems.append(f"{name}: must be a mapping of settings, got {_kind(value)}")
            continue
        sections[name] = _build(SECTIONS[name], value, name, problems)
    settings = Settings(**{k: v for k, v in sections.items() if v is not None}, source=source)
    problems += _cross_checks(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings


def _build(cls: type, values: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}.{key}"
        if key not in known:
            problems.append(_unknown(str(key), list(known), prefix + "."))
            continue
        f = known[key]
        nested = _nested(f)
        if nested is not None:  # a sub-section such as bridge.tls
            if value is None:
                value = {}
            if not isinstance(value, dict):
                problems.append(f"{path}: must be a mapping of settings, got {_kind(value)}")
            else:
                kwargs[key] = _build(nested, value, path, problems)
            continue
        error = _check(f, value)
        if error:
            problems.append(f"{path}: {error}")
        else:
            kwargs[key] = float(value) if _base_type(f) is float and value is not None else value
    return cls(**kwargs)


def _nested(f: Any) -> type | None:
    """The settings class of a sub-section field (declared with a dataclass default_factory), else None."""
    factory = f.default_factory
    if factory is MISSING or not is_dataclass(factory):
        return None
    return factory


def leaves(cls: type, prefix: str = "") -> list[tuple[str, Any]]:
    """Every setting of a section as (dotted key, field), sub-sections flattened: for reference tables."""
    out: list[tuple[str, Any]] = []
    for f in fields(cls):
        nested = _nested(f)
        if nested is not None:
            out += leaves(nested, f"{prefix}{f.name}.")
        else:
            out.append((prefix + f.name, f))
    return out


def _base_type(f: Any) -> type:
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    for name, typ in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if t.startswith(name):
            return typ
    raise TypeError(f"unsupported setting type {f.type!r}")


def _check(f: Any, value: Any) -> str | None:
    meta = f.metadata
    typ = _base_type(f)
    if value is None:
        return None if meta.get("nullable") else f"must be set (got null); default is {f.default!r}"
    if typ is bool:
        if not isinstance(value, bool):
            return f"must be true or false, got {value!r}"
        return None
    if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"must be a whole number, got {value!r} ({_kind(value)})"
    if typ is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"must be a number, got {value!r} ({_kind(value)})"
    if typ is str and not isinstance(value, str):
        return f"must be a string, got {value!r} ({_kind(value)})"
    choices = meta.get("choices")
    if choices and value not in choices:
        return f"must be one of {', '.join(choices)}; got {value!r}"
    lo, hi = meta.get("lo", 0), meta.get("hi")  # thresholds declared without bounds must not be negative
    if typ in (int, float) and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        allowed = f"{lo:g} to {hi:g}" if hi is not None else f"at least {lo:g}"
        return f"{value!r} is out of range; allowed {allowed}"
    return None


def _cross_checks(s: Settings) -> list[str]:
    problems = []
    w = s.windows
    if w.hop_seconds > w.window_seconds:
        problems.append(
            f"windows.hop_seconds: {w.hop_seconds:g} is longer than windows.window_seconds "
            f"({w.window_seconds:g}); samples between windows would never be classified"
        )
    if s.sampling.ring_seconds < w.window_seconds + w.hop_seconds:
        problems.append(
            f"sampling.ring_seconds: {s.sampling.ring_seconds:g} must be at least "
            f"windows.window_seconds + windows.hop_seconds ({w.window_seconds + w.hop_seconds:g})"
        )
    problems += [f"quality.{p}" for p in s.quality.problems()]
    problems += [f"alarms.{p}" for p in s.alarms.problems()]
    problems += [f"recording.{p}" for p in s.recording.problems()]
    problems += [f"bridge.{p}" for p in s.bridge.problems()]
    problems += [f"relearn.{p}" for p in s.relearn.problems()]
    if s.quality.enabled and s.sampling.rate_hz < MIN_FS_HZ:
        problems.append(
            f"sampling.rate_hz: {s.sampling.rate_hz:g} Hz is below the {MIN_FS_HZ:g} Hz the signal-quality "
            "gate needs to see QRS complexes"
        )
    if s.quality.enabled and w.window_seconds < MIN_WINDOW_S:
        problems.append(
            f"windows.window_seconds: {w.window_seconds:g} s is shorter than the {MIN_WINDOW_S:g} s the "
            "signal-quality gate needs (two beats)"
        )
    problems += [f"beats.{p}" for p in s.beats.qrs.problems() + s.beats.tracker.problems()]
    if s.beats.band_high_hz >= s.sampling.rate_hz / 2:
        problems.append(
            f"beats.band_high_hz: {s.beats.band_high_hz:g} Hz must be below half of sampling.rate_hz "
            f"({s.sampling.rate_hz / 2:g} Hz)"
        )
    if s.leads.lo_plus_line is not None and s.leads.lo_plus_line == s.leads.lo_minus_line:
        problems.append(
            f"leads.lo_minus_line: {s.leads.lo_minus_line} is also leads.lo_plus_line; LO+ and LO− are "
            "two pins on two lines"
        )
    if s.frontend.offset_volts > s.frontend.adc_reference_volts:
        problems.append(
            f"frontend.offset_volts: {s.frontend.offset_volts:g} V is above "
            f"frontend.adc_reference_volts ({s.frontend.adc_reference_volts:g} V)"
        )
    return problems


def _unknown(key: str, known: list[str], prefix: str) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {prefix}{close[0]}?" if close else f"; known keys: {', '.join(known)}"
    return f"{prefix}{key}: unknown key{hint}"


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _refuse_if_world_writable(p: Path, what: str) -> None:
    """A file anyone can write controls what the monitor reports: refuse it."""
    try:
        mode = p.stat().st_mode
    except OSError:
        return
    if mode & stat.S_IWOTH:
        raise ConfigError(
            str(p), [f"{what} is writable by other users (mode {stat.filemode(mode)}); run: chmod o-w {p}"]
        )


def check_file_not_world_writable(p: Path, what: str) -> None:
    """The same refusal for model files (public wrapper)."""
    _refuse_if_world_writable(p, what)


def describe(settings: Settings) -> str:
    """The effective settings as YAML, for ``ecgd check-config``."""
    out: dict[str, Any] = {}
    for name in SECTIONS:
        section = getattr(settings, name)
        out[name] = asdict(section)
    text = yaml.safe_dump(out, sort_keys=False, default_flow_style=False)
    return f"# effective settings from {settings.source}\n# model: {settings.model_path}\n{text}"


def with_overrides(settings: Settings, **sections: Any) -> Settings:
    """Replace whole sections (used by tests and the demo); runs the cross-checks again."""
    new = replace(settings, **sections)
    problems = _cross_checks(new)
    if problems:
        raise ConfigError(settings.source, problems)
    return new


def environment_config_path() -> Path:
    return Path(os.environ.get("ECGD_CONFIG", str(DEFAULT_CONFIG_PATH)))
