"""Config: YAML to frozen Settings; every problem at once, with key path, bad value and what is allowed."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from ecgd import config as cfg

REPO = Path(__file__).resolve().parents[1]
PROD_CONFIG = REPO / "config" / "ecgd.yaml"
DEMO_CONFIG = REPO / "config" / "demo.yaml"


def problems_of(text: str) -> list[str]:
    with pytest.raises(cfg.ConfigError) as info:
        cfg.parse(text, "test.yaml")
    assert info.value.source == "test.yaml"
    return info.value.problems


def write_config(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# --- defaults and types ---------------------------------------------------------------------------


def test_empty_file_and_empty_sections_give_the_defaults():
    assert cfg.parse("", "x") == cfg.Settings(source="x")
    assert cfg.parse("device:\nwindows:\n", "x") == cfg.Settings(source="x")


def test_values_are_typed_and_settings_are_frozen():
    s = cfg.parse("sampling:\n  rate_hz: 250\ndevice:\n  address: 0x49\n  kind: emulated\n")
    assert s.sampling.rate_hz == 250.0 and isinstance(s.sampling.rate_hz, float)  # int in YAML → float
    assert s.device.address == 0x49 and s.device.kind == "emulated"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.sampling.rate_hz = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.device = cfg.DeviceSettings()  # type: ignore[misc]


def test_every_problem_is_reported_at_once_with_key_value_and_what_is_allowed():
    text = """
device:
  kind: spi
  channel: 7
  retries: 1.5
emulated:
  error_rate: "high"
output:
  journal: "yes"
  log_backups: null
windows:
  max_missing_fraction: 0.9
"""
    problems = problems_of(text)
    assert len(problems) == 7, problems
    by_key = {p.split(":", 1)[0]: p for p in problems}
    assert set(by_key) == {
        "device.kind",
        "device.channel",
        "device.retries",
        "emulated.error_rate",
        "output.journal",
        "output.log_backups",
        "windows.max_missing_fraction",
    }
    assert "'spi'" in by_key["device.kind"] and "pcf8591, emulated" in by_key["device.kind"]
    assert "7" in by_key["device.channel"] and "allowed 0 to 3" in by_key["device.channel"]
    assert "1.5" in by_key["device.retries"] and "whole number" in by_key["device.retries"]
    assert "'high'" in by_key["emulated.error_rate"] and "must be a number" in by_key["emulated.error_rate"]
    assert "'yes'" in by_key["output.journal"] and "true or false" in by_key["output.journal"]
    assert "null" in by_key["output.log_backups"] and "default is 5" in by_key["output.log_backups"]
    assert "0.9" in by_key["windows.max_missing_fraction"]
    assert "allowed 0 to 0.5" in by_key["windows.max_missing_fraction"]


def test_error_message_lists_every_problem_one_per_line():
    with pytest.raises(cfg.ConfigError) as info:
        cfg.parse("device:\n  channel: 9\n  i2c_bus: -1\n", "/etc/ecgd/ecgd.yaml")
    text = str(info.value)
    lines = text.splitlines()
    assert lines[0] == "/etc/ecgd/ecgd.yaml: invalid configuration:"
    assert len(lines) == 3
    assert any(ln.startswith("  - device.channel: 9 ") for ln in lines)
    assert any(ln.startswith("  - device.i2c_bus: -1 ") for ln in lines)


def test_booleans_are_not_numbers_and_numbers_are_not_booleans():
    problems = problems_of("device:\n  i2c_bus: true\nsampling:\n  rate_hz: false\noutput:\n  console: 1\n")
    assert len(problems) == 3
    assert any(p.startswith("device.i2c_bus: must be a whole number, got True") for p in problems)
    assert any(p.startswith("sampling.rate_hz: must be a number, got False") for p in problems)
    assert any(p.startswith("output.console: must be true or false, got 1") for p in problems)


def test_nullable_keys_accept_null_and_strings_must_be_strings():
    s = cfg.parse("model:\n  path: null\n  metadata: null\nemulated:\n  recording_rate_hz: null\n")
    assert s.model.path is None and s.emulated.recording_rate_hz is None
    (problem,) = problems_of("model:\n  path: 42\n")
    assert problem.startswith("model.path: must be a string, got 42")


def test_sections_and_top_level_must_be_mappings():
    (problem,) = problems_of("- device\n- windows\n")
    assert "top level must be a mapping" in problem and "a list" in problem
    problems = problems_of("device: 3\nwindows: [1, 2]\n")
    assert problems == [
        "device: must be a mapping of settings, got an integer",
        "windows: must be a mapping of settings, got a list",
    ]


def test_unknown_keys_get_a_did_you_mean():
    problems = problems_of("windws:\n  hop_seconds: 1\ndevice:\n  chanel: 2\n  adress: 0x48\n")
    assert "windws: unknown key; did you mean windows?" in problems
    assert "device.chanel: unknown key; did you mean device.channel?" in problems
    assert "device.adress: unknown key; did you mean device.address?" in problems
    assert len(problems) == 3


def test_unknown_key_without_a_close_match_lists_the_known_keys():
    (problem,) = problems_of("model:\n  zzzzzz: 1\n")
    assert problem == "model.zzzzzz: unknown key; known keys: path, metadata"


def test_yaml_syntax_error_names_line_and_column():
    (problem,) = problems_of("device:\n  kind: emulated\n  channel: [2\nwindows:\n  hop_seconds: 1\n")
    assert problem.startswith("YAML syntax error: line ")
    line = int(problem.split("line ", 1)[1].split(",")[0])
    column = int(problem.split("column ", 1)[1].split(":")[0])
    assert 3 <= line <= 5 and column >= 1


def test_yaml_tab_indentation_error_points_at_the_tab():
    (problem,) = problems_of("device:\n  kind: emulated\n\tchannel: 2\n")
    assert problem.startswith("YAML syntax error: line 3, column 1:")


# --- cross-checks ---------------------------------------------------------------------------------


def test_hop_longer_than_window_is_refused():
    (problem,) = problems_of("windows:\n  window_seconds: 5\n  hop_seconds: 6\n")
    assert problem.startswith("windows.hop_seconds: 6 is longer than windows.window_seconds (5)")


def test_ring_shorter_than_window_plus_hop_is_refused():
    (problem,) = problems_of("sampling:\n  ring_seconds: 11\n")
    assert problem.startswith("sampling.ring_seconds: 11 must be at least")
    assert "(12)" in problem
    # exactly window + hop is enough
    assert cfg.parse("sampling:\n  ring_seconds: 12\n").sampling.ring_seconds == 12.0


def test_offset_above_adc_reference_is_refused():
    (problem,) = problems_of("frontend:\n  offset_volts: 2.5\n  adc_reference_volts: 2.0\n")
    assert problem == "frontend.offset_volts: 2.5 V is above frontend.adc_reference_volts (2 V)"


def test_cross_checks_are_reported_together_with_value_problems():
    problems = problems_of(
        "windows:\n  hop_seconds: 20\n  window_seconds: oops\nsampling:\n  ring_seconds: 5\n"
    )
    keys = sorted(p.split(":", 1)[0] for p in problems)
    assert keys == ["sampling.ring_seconds", "windows.hop_seconds", "windows.window_seconds"]


def test_with_overrides_reruns_the_cross_checks():
    s = cfg.Settings()
    ok = cfg.with_overrides(s, windows=cfg.WindowSettings(window_seconds=4, hop_seconds=1))
    assert ok.windows.window_seconds == 4 and ok.device == s.device
    with pytest.raises(cfg.ConfigError) as info:
        cfg.with_overrides(s, windows=cfg.WindowSettings(window_seconds=4, hop_seconds=5))
    assert info.value.problems[0].startswith("windows.hop_seconds:")


def test_quality_thresholds_out_of_range_are_refused():
    text = "quality:\n  rail_max_fraction: 1.5\n  min_qrs_similarity: 2\n  max_peak_to_peak_mv: 0.01\n"
    problems = problems_of(text)
    assert len(problems) == 3, problems
    assert any(p.startswith("quality.rail_max_fraction") and "1.5" in p for p in problems)
    assert any(p.startswith("quality.min_qrs_similarity") and "2" in p for p in problems)
    assert any(p.startswith("quality.max_peak_to_peak_mv") and "flat_max_range_mv" in p for p in problems)
    assert (
        cfg.parse("quality:\n  rail_max_fraction: 1\n  min_qrs_similarity: 0\n").quality.rail_max_fraction
        == 1
    )


@pytest.mark.parametrize(
    "key, value, shown, allowed",
    [
        ("change_fraction", "0.5", "0.5", "above 0.5"),
        ("change_beats", "10", "10", "0 (off)"),
        ("change_max_bpm", "400", "400.0", "between 30 and 300"),
    ],
)
def test_relearn_change_settings_out_of_range_are_refused(key, value, shown, allowed):
    (problem,) = problems_of(f"relearn:\n  {key}: {value}\n")
    assert problem.startswith(f"relearn.{key}: {shown}") and allowed in problem, problem


def test_relearn_change_can_be_turned_off():
    off = cfg.parse("relearn:\n  change_beats: 0\n  change_fraction: 1\n").relearn
    assert off.change_beats == 0 and off.change_fraction == 1.0


# --- files ----------------------------------------------------------------------------------------


def test_missing_file_is_one_clear_problem(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load(path)
    assert info.value.source == str(path)
    assert info.value.problems == ["file not found"]


def test_unreadable_path_is_reported(tmp_path):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load(tmp_path)  # a directory
    assert info.value.problems[0].startswith("cannot read:")


def test_world_writable_config_file_is_refused(tmp_path):
    path = write_config(tmp_path / "ecgd.yaml", "device:\n  kind: emulated\n", mode=0o666)
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load(path)
    (problem,) = info.value.problems
    assert "writable by other users" in problem and "-rw-rw-rw-" in problem
    assert f"chmod o-w {path}" in problem
    path.chmod(0o664)  # group-writable is the admin's choice, not a refusal
    assert cfg.load(path).device.kind == "emulated"


def test_load_records_the_file_as_source(tmp_path):
    path = write_config(tmp_path / "ecgd.yaml", "windows:\n  hop_seconds: 1\n")
    s = cfg.load(path)
    assert s.source == str(path)
    assert s.windows.hop_seconds == 1.0


def test_check_file_not_world_writable_for_model_files(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    model.chmod(0o644)
    cfg.check_file_not_world_writable(model, "model file")  # no exception
    model.chmod(0o646)
    with pytest.raises(cfg.ConfigError, match="model file is writable by other users"):
        cfg.check_file_not_world_writable(model, "model file")


# --- paths ----------------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_files_directory(tmp_path, monkeypatch):
    conf = write_config(
        tmp_path / "etc" / "ecgd.yaml",
        "model:\n  path: models/m.tflite\nemulated:\n  recording: ../rec/r101.hea\n",
    )
    monkeypatch.chdir("/")
    s = cfg.load(conf)
    assert s.model_path == tmp_path / "etc" / "models" / "m.tflite"
    assert s.metadata_path == tmp_path / "etc" / "models" / "m.json"
    assert s.demo_recording.resolve() == (tmp_path / "rec" / "r101.hea").resolve()


def test_absolute_home_and_default_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    conf = write_config(
        tmp_path / "ecgd.yaml",
        "model:\n  path: /opt/m/a.tflite\n  metadata: ~/meta.json\nemulated:\n  recording: /data/x.csv\n",
    )
    s = cfg.load(conf)
    assert s.model_path == Path("/opt/m/a.tflite")
    assert s.metadata_path == tmp_path / "home" / "meta.json"
    assert s.demo_recording == Path("/data/x.csv")
    d = cfg.Settings()
    assert d.model_path == cfg.BUNDLED_MODEL and d.model_path.exists()
    assert d.metadata_path == cfg.BUNDLED_MODEL.with_suffix(".json") and d.metadata_path.exists()
    assert d.demo_recording == cfg.BUNDLED_DEMO_RECORD and d.demo_recording.exists()


def test_settings_not_from_a_file_keep_relative_paths_relative():
    s = cfg.parse("model:\n  path: m.tflite\n")  # source "<string>"
    assert s.model_path == Path("m.tflite")


def test_relative_config_path_resolves_against_the_directory_at_load_time(tmp_path, monkeypatch):
    write_config(tmp_path / "etc" / "ecgd.yaml", "model:\n  path: models/m.tflite\n")
    monkeypatch.chdir(tmp_path)
    s = cfg.load("etc/ecgd.yaml")
    monkeypatch.chdir("/")
    assert s.model_path == tmp_path / "etc" / "models" / "m.tflite"


# --- describe() round trip ------------------------------------------------------------------------


def _roundtrip(s: cfg.Settings) -> cfg.Settings:
    text = cfg.describe(s)
    comments = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert comments[0] == f"# effective settings from {s.source}"
    assert comments[1] == f"# model: {s.model_path}"
    return cfg.parse(text, s.source)


def test_describe_reparses_to_equal_settings_for_defaults():
    s = cfg.Settings()
    assert _roundtrip(s) == s


def test_describe_reparses_to_equal_settings_for_non_default_values(tmp_path):
    text = """
device: {kind: emulated, address: 0x4b, channel: 0, retries: 3, fault_after_seconds: 0.5}
emulated: {recording: "rec/yes.csv", recording_rate_hz: 250, error_rate: 0.125, seed: 77}
sampling: {rate_hz: 250, ring_seconds: 30, late_tolerance_periods: 0.25}
frontend: {gain: 500, offset_volts: 1.2, highpass_hz: 0, adc_reference_volts: 5}
windows: {window_seconds: 8, hop_seconds: 0.5, max_missing_fraction: 0}
quality: {enabled: false, rail_max_run_s: 0.75}
model: {path: "null", metadata: "true"}
output: {journal: false, console: true, log_file: null, log_max_bytes: 4096, log_backups: 0, queue_size: 10}
"""
    s = cfg.load(write_config(tmp_path / "c.yaml", text))
    assert s.model.path == "null" and s.model.metadata == "true"  # strings that look like YAML values
    assert _roundtrip(s) == s
    assert s != cfg.Settings(source=s.source)


def test_describe_documents_every_section_and_key():
    data = yaml.safe_load(cfg.describe(cfg.Settings()))
    assert list(data) == list(cfg.SECTIONS)
    for name, cls in cfg.SECTIONS.items():
        assert list(data[name]) == [f.name for f in dataclasses.fields(cls)]


# --- the shipped config files --------------------------------------------------------------------


def test_shipped_configs_load():
    prod = cfg.load(PROD_CONFIG)
    demo = cfg.load(DEMO_CONFIG)
    assert prod.device.kind == "pcf8591"
    assert demo.device.kind == "emulated" and demo.output.console
    assert demo.demo_recording == cfg.BUNDLED_DEMO_RECORD
    assert Path(demo.output.log_file) == Path("../demo-out/results.jsonl")


def test_production_config_documents_every_key_of_the_schema():
    data = yaml.safe_load(PROD_CONFIG.read_text())
    assert set(data) == set(cfg.SECTIONS)
    for name, cls in cfg.SECTIONS.items():
        documented = _flat(data[name] or {})
        schema = {key for key, _ in cfg.leaves(cls)}
        assert documented == schema, f"{name}: missing {schema - documented}, extra {documented - schema}"


def _flat(values: dict, prefix: str = "") -> set[str]:
    """Dotted keys of a section, sub-sections (bridge.tls) flattened as cfg.leaves() does."""
    keys: set[str] = set()
    for key, value in values.items():
        keys |= _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
    return keys


def test_production_config_values_are_the_defaults():
    data = yaml.safe_load(PROD_CONFIG.read_text())
    differ = []
    for name, cls in cfg.SECTIONS.items():
        default = dataclasses.asdict(cls())
        for key, value in data[name].items():
            if default[key] != value:
                differ.append(f"{name}.{key}: file {value!r}, default {default[key]!r}")
    assert not differ, differ


def test_environment_config_path(monkeypatch, tmp_path):
    monkeypatch.delenv("ECGD_CONFIG", raising=False)
    assert cfg.environment_config_path() == cfg.DEFAULT_CONFIG_PATH
    monkeypatch.setenv("ECGD_CONFIG", str(tmp_path / "x.yaml"))
    assert cfg.environment_config_path() == tmp_path / "x.yaml"


def test_analog_frontend_is_built_from_the_frontend_section():
    s = cfg.parse("frontend:\n  gain: 500\n  offset_volts: 1.0\n  adc_reference_volts: 2.5\n")
    fe = s.analog_frontend
    assert (fe.gain, fe.offset_volts, fe.adc_reference_volts) == (500.0, 1.0, 2.5)
    assert fe.lsb_volts == pytest.approx(2.5 / 256)


def test_private_config_file_loads(tmp_path):
    path = write_config(tmp_path / "ecgd.yaml", "", mode=0o600)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert cfg.load(path) == cfg.Settings(source=str(path))


def test_sampling_rate_below_what_the_quality_gate_needs_is_refused():
    with pytest.raises(cfg.ConfigError, match=r"sampling.rate_hz: 50 Hz is below the 100 Hz"):
        cfg.parse("sampling: {rate_hz: 50}\n")
    assert cfg.parse("sampling: {rate_hz: 50}\nquality: {enabled: false}\n").sampling.rate_hz == 50
