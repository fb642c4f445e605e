"""Checks of the systemd packaging: ecgd.service, ecgd.sysusers and install.sh.

On a Pi, a mistyped key in the unit is only a warning in the journal at daemon-reload, a dropped
hardening line lowers protection without any error, and a wrong sysusers line shows up as
``status=216/GROUP`` on first start. These tests make all three machine-checked with the same
tools systemd itself uses (``systemd-analyze``, ``systemd-sysusers``), offline and on any machine.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "ecgd.service"
SYSUSERS = REPO / "systemd" / "ecgd.sysusers"
INSTALL = REPO / "systemd" / "install.sh"

# Where install.sh puts things; the unit must point at the same places.
VENV_ECGD = "/opt/ecgd/venv/bin/ecgd"
CONFIG_PATH = "/etc/ecgd/ecgd.yaml"
MAX_EXPOSURE = 1.5

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SYSTEMD_SYSUSERS = shutil.which("systemd-sysusers")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
needs_sysusers = pytest.mark.skipif(SYSTEMD_SYSUSERS is None, reason="systemd-sysusers is not installed")

# Prefixes systemd allows in front of an Exec*= binary (systemd.service(5), "Command lines").
EXEC_PREFIXES = "-@:+!"


# -- a unit file parser following systemd.syntax(7) ---------------------------------------------------


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Parse a unit file into ``{section: {key: [values in order]}}``.

    configparser cannot do this: systemd keys repeat (``Environment=``, ``SystemCallFilter=``), an empty
    assignment resets a list, ``;`` and ``#`` start comments only at the beginning of a line, and a
    trailing backslash continues a line. Malformed lines raise, so a typo cannot pass silently.
    """
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith(("#", ";")):
            continue  # comments are skipped, even between continued lines
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ValueError(f"line {number}: bad section header {line!r}")
            current = sections.setdefault(line[1:-1], {})
            continue
        if current is None:
            raise ValueError(f"line {number}: assignment outside any section: {line!r}")
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not re.fullmatch(r"[A-Za-z0-9-]+", key.strip()):
            raise ValueError(f"line {number}: not a Key=Value line: {line!r}")
        current.setdefault(key.strip(), []).append(value.strip())
    if pending:
        raise ValueError("file ends inside a continued line")
    return sections


def last(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str | None:
    """The effective value of a single-valued key (the last assignment wins)."""
    values = unit.get(section, {}).get(key)
    return values[-1] if values else None


def list_values(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> list[str]:
    """The effective items of a list-valued key: words accumulate, an empty assignment resets."""
    items: list[str] = []
    for value in unit.get(section, {}).get(key, []):
        if value:
            items.extend(value.split())
        else:
            items.clear()
    return items


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def test_parser_handles_systemd_syntax() -> None:
    parsed = parse_unit(
        "# comment\n[Service]\nEnvironment=A=1\n; other comment\nEnvironment=B=2\n"
        "SupplementaryGroups=a \\\n  b\nCapabilityBoundingSet=CAP_X\nCapabilityBoundingSet=\n"
    )
    assert parsed["Service"]["Environment"] == ["A=1", "B=2"]
    assert list_values(parsed, "Service", "SupplementaryGroups") == ["a", "b"]
    assert list_values(parsed, "Service", "CapabilityBoundingSet") == []
    with pytest.raises(ValueError):
        parse_unit("[Service]\nThis line has no equals sign\n")
    with pytest.raises(ValueError):
        parse_unit("Type=notify\n")


# -- (a) systemd-analyze verify -----------------------------------------------------------------------


def _venv_ecgd() -> Path:
    script = Path(sys.executable).parent / "ecgd"
    assert script.exists(), f"{script} missing: install the package into this venv (pip install -e .)"
    return script


def _checkable_copy(directory: Path) -> Path:
    """Copy the unit with every Exec*= binary that does not exist here replaced by one that does.

    ``systemd-analyze verify`` insists that the binaries exist on the checking machine; everything
    else in the unit is checked exactly as shipped.
    """
    lines = []
    for raw in UNIT.read_text().splitlines():
        key, sep, value = raw.partition("=")
        if sep and key.strip().startswith("Exec") and not raw.lstrip().startswith(("#", ";")):
            words = value.split(maxsplit=1)
            binary = words[0].lstrip(EXEC_PREFIXES)
            prefix = words[0][: len(words[0]) - len(binary)]
            if not Path(binary).exists():
                name = Path(binary).name
                replacement = str(_venv_ecgd()) if name == "ecgd" else shutil.which(name)
                assert replacement, f"no local stand-in for {binary} (line {raw!r})"
                words[0] = prefix + replacement
            raw = f"{key}={' '.join(words)}"
        lines.append(raw)
    copy = directory / UNIT.name
    copy.write_text("\n".join(lines) + "\n")
    return copy


@needs_analyze
def test_unit_verifies_without_any_output(tmp_path: Path) -> None:
    copy = _checkable_copy(tmp_path)
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(copy)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    output = (proc.stdout + proc.stderr).strip()
    # Unknown keys and bad values only warn (exit code 0): any output at all is a failure.
    assert proc.returncode == 0 and not output, f"systemd-analyze verify (rc={proc.returncode}):\n{output}"


# -- (b) systemd-analyze security ---------------------------------------------------------------------


@needs_analyze
def test_security_exposure_is_low(tmp_path: Path) -> None:
    copy = _checkable_copy(tmp_path)
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(copy)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = proc.stdout + proc.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", report)
    assert match, f"no exposure level in the output (rc={proc.returncode}):\n{report}"
    exposure = float(match.group(1))
    failed = "\n".join(line for line in report.splitlines() if line.startswith("✗"))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}; failing checks:\n{failed}"


# -- (c) the contract between the unit, the daemon and the installer ---------------------------------


def test_unit_has_the_daemon_contract(unit: dict[str, dict[str, list[str]]]) -> None:
    s = "Service"
    assert last(unit, s, "Type") == "notify"
    assert last(unit, s, "NotifyAccess") == "main"
    assert last(unit, s, "WatchdogSec"), "WatchdogSec= missing: the daemon's watchdog pings would be unused"
    assert "78" in list_values(unit, s, "RestartPreventExitStatus"), "exit 78 (bad config) must not restart"
    assert last(unit, s, "Restart") == "on-failure"
    reload_cmd = shlex.split(last(unit, s, "ExecReload") or "")
    assert reload_cmd[:2] == ["/bin/kill", "-HUP"] and reload_cmd[2] in ("$MAINPID", "${MAINPID}")
    assert last(unit, s, "User") == "ecgd"
    assert last(unit, s, "Group") == "ecgd"
    assert "i2c" in list_values(unit, s, "SupplementaryGroups")
    assert list_values(unit, s, "StateDirectory") == ["ecgd"]
    assert list_values(unit, s, "LogsDirectory") == ["ecgd"]
    assert last(unit, s, "LogsDirectoryMode") == "0750"
    assert list_values(unit, s, "ConfigurationDirectory") == ["ecgd"]
    assert last(unit, s, "UMask") == "0027"
    assert last(unit, s, "TimeoutStopSec")
    assert last(unit, "Install", "WantedBy") == "multi-user.target"


def test_unit_runs_what_the_installer_installs(unit: dict[str, dict[str, list[str]]]) -> None:
    argv = shlex.split(last(unit, "Service", "ExecStart") or "")
    assert argv == [VENV_ECGD, "run", "--config", CONFIG_PATH]
    script = INSTALL.read_text()
    assert 'VENV="$PREFIX/venv"' in script and "PREFIX=/opt/ecgd" in script
    assert f"CONF_DIR={Path(CONFIG_PATH).parent}" in script


def test_execstart_command_line_is_accepted_by_the_cli() -> None:
    proc = subprocess.run([str(_venv_ecgd()), "run", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--config" in proc.stdout


def test_hardening_keeps_i2c_and_journald_reachable(unit: dict[str, dict[str, list[str]]]) -> None:
    """The options that are easy to get wrong in a way that only fails on the Pi."""
    s = "Service"
    # A fresh /dev without physical devices would hide /dev/i2c-1.
    assert last(unit, s, "PrivateDevices") in (None, "no", "false")
    assert last(unit, s, "DevicePolicy") == "closed"
    assert "char-i2c rw" in unit[s].get("DeviceAllow", [])
    # journald and sd_notify are AF_UNIX; nothing else is needed.
    assert list_values(unit, s, "RestrictAddressFamilies") == ["AF_UNIX"]
    assert last(unit, s, "PrivateNetwork") == "yes"
    # /proc/cpuinfo must stay visible for XNNPACK's CPU detection.
    assert last(unit, s, "ProcSubset") in (None, "all")
    assert list_values(unit, s, "CapabilityBoundingSet") == []
    assert last(unit, s, "NoNewPrivileges") == "yes"
    assert last(unit, s, "MemoryDenyWriteExecute") == "yes"
    assert last(unit, s, "ProtectSystem") == "strict"
    assert last(unit, s, "SystemCallErrorNumber") == "EPERM"


# -- (d) sysusers ---------------------------------------------------------------------------------------


def _read_db(path: Path) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines() if line}


def _sysusers(root: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [SYSTEMD_SYSUSERS, f"--root={root}", str(SYSUSERS)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"systemd-sysusers failed:\n{proc.stdout}{proc.stderr}"
    return proc


@needs_sysusers
def test_sysusers_creates_user_with_i2c_membership(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    _sysusers(tmp_path)
    passwd = _read_db(tmp_path / "etc" / "passwd")
    group = _read_db(tmp_path / "etc" / "group")
    _, _, uid, gid, _, home, shell = passwd["ecgd"]
    assert int(uid) < 1000, "a system user is expected"
    assert group["ecgd"][2] == gid, "primary group ecgd"
    assert shell.endswith("nologin")
    assert home == "/var/lib/ecgd"
    assert "ecgd" in group["i2c"][3].split(",")


@needs_sysusers
def test_sysusers_keeps_an_existing_i2c_group(tmp_path: Path) -> None:
    """Raspberry Pi OS already has i2c (udev gives it /dev/i2c-*): its GID and members must survive."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ni2c:x:994:pi\npi:x:1000:\n")
    _sysusers(tmp_path)
    first = (etc / "passwd").read_text(), (etc / "group").read_text()
    group = _read_db(etc / "group")
    assert group["i2c"][2] == "994"
    assert set(group["i2c"][3].split(",")) == {"pi", "ecgd"}
    _sysusers(tmp_path)  # idempotent: a second run changes nothing
    assert ((etc / "passwd").read_text(), (etc / "group").read_text()) == first


# -- (e) install.sh -------------------------------------------------------------------------------------


def test_install_script_syntax_and_mode() -> None:
    proc = subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert os.access(INSTALL, os.X_OK), "install.sh should be executable (sudo systemd/install.sh)"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_install_script_is_shellcheck_clean() -> None:
    proc = subprocess.run(["shellcheck", str(INSTALL)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_install_dry_run_prints_every_step_and_runs_none(tmp_path: Path) -> None:
    # Every command that would change the system is shadowed by a stub that records its call: a
    # dry run must not reach any of them.
    stubs = tmp_path / "bin"
    stubs.mkdir()
    calls = tmp_path / "calls.log"
    for name in ("apt-get", "systemd-sysusers", "systemctl", "install", "python3", "pip", "env", "chown"):
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\n')
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    proc = subprocess.run(
        ["bash", str(INSTALL), "--dry-run"], capture_output=True, text=True, timeout=60, env=env
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert not calls.exists(), f"--dry-run executed commands:\n{calls.read_text()}"
    for expected in (
        "apt-get install",
        "python3-venv",
        "libsystemd-dev",
        "-m pip install --upgrade " + str(REPO),
        "/usr/lib/sysusers.d/ecgd.conf",
        "systemd-sysusers ecgd.conf",
        CONFIG_PATH,
        "/etc/systemd/system/ecgd.service",
        "systemctl daemon-reload",
        "systemctl enable --now ecgd",
    ):
        assert expected in out, f"dry run does not mention {expected!r}:\n{out}"
    venv_exists = Path("/opt/ecgd/venv/bin/python").exists()
    venv_step = "venv exists" if venv_exists else "python3 -m venv /opt/ecgd/venv"
    assert venv_step in out, out


def test_install_rejects_unknown_options() -> None:
    proc = subprocess.run(["bash", str(INSTALL), "--bogus"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 64
    assert "Usage" in proc.stderr


def test_the_default_recordings_directory_is_inside_the_units_state_directory(unit) -> None:
    from ecgd.outputs.recording import RecordingSettings

    state = list_values(unit, "Service", "StateDirectory")
    default = Path(RecordingSettings().directory)
    assert any(default.is_relative_to(Path("/var/lib") / d) for d in state), (default, state)
