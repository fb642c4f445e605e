"""systemd/ecgd-bridge.service and its sysusers file: verified and scored by systemd itself, offline."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_systemd_unit import last, list_values, parse_unit

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "ecgd-bridge.service"
SYSUSERS = REPO / "systemd" / "ecgd-bridge.sysusers"
VENV_ECGD = "/opt/ecgd/venv/bin/ecgd"
MAX_EXPOSURE = 1.0  # measured 1.0 (systemd 252); the monitor's own unit, without any network, 0.5
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")


@pytest.fixture(scope="module")
def unit() -> dict:
    return parse_unit(UNIT.read_text())


def _checkable_copy(directory: Path) -> Path:
    """The unit with ExecStart pointing at this venv's ecgd (verify insists the binary exists)."""
    local = str(Path(sys.executable).parent / "ecgd")
    copy = directory / UNIT.name
    copy.write_text(UNIT.read_text().replace(VENV_ECGD, local))
    return copy


@needs_analyze
def test_bridge_unit_verifies_without_any_output(tmp_path: Path) -> None:
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(_checkable_copy(tmp_path))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0 and not output, output


@needs_analyze
def test_bridge_unit_exposure(tmp_path: Path) -> None:
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(_checkable_copy(tmp_path))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", proc.stdout + proc.stderr)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout


def test_bridge_unit_contract(unit: dict) -> None:
    s = "Service"
    argv = shlex.split(last(unit, s, "ExecStart") or "")
    assert argv == [VENV_ECGD, "bridge", "--config", "%d/ecgd.yaml"]
    assert "ecgd.yaml:/etc/ecgd/ecgd.yaml" in unit[s]["LoadCredential"]
    assert last(unit, s, "Type") == "notify" and last(unit, s, "WatchdogSec")
    assert last(unit, s, "User") == "ecgd-bridge" and last(unit, s, "Group") == "ecgd-bridge"
    assert list_values(unit, s, "SupplementaryGroups") == ["systemd-journal"]
    # the cursor's directory is the only writable path, and it is where the default cursor_file lives
    assert list_values(unit, s, "StateDirectory") == ["ecgd-bridge"]
    from ecgd.bridge.settings import BridgeSettings

    assert Path(BridgeSettings().cursor_file).parent == Path("/var/lib/ecgd-bridge")
    assert last(unit, s, "ProtectSystem") == "strict"
    for key in ("ReadWritePaths", "LogsDirectory", "CacheDirectory", "RuntimeDirectory"):
        assert key not in unit[s], f"{key}= would be another writable path"
    assert list_values(unit, s, "RestrictAddressFamilies") == ["AF_UNIX", "AF_INET", "AF_INET6"]
    assert list_values(unit, s, "CapabilityBoundingSet") == []
    assert "78" in list_values(unit, s, "RestartPreventExitStatus")
    # the bridge reads SYSLOG_IDENTIFIER=ecgd: its own lines must never match
    assert last(unit, s, "SyslogIdentifier") == "ecgd-bridge"


def test_bridge_execstart_is_accepted_by_the_cli() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ecgd"), "bridge", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "--config" in proc.stdout, proc.stderr


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_sysusers_creates_the_bridge_user_in_systemd_journal(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "group").write_text("root:x:0:\nsystemd-journal:x:101:\n")  # Debian has it already
    proc = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    passwd = {line.split(":")[0]: line.split(":") for line in (etc / "passwd").read_text().splitlines()}
    group = {line.split(":")[0]: line.split(":") for line in (etc / "group").read_text().splitlines()}
    assert int(passwd["ecgd-bridge"][2]) < 1000 and passwd["ecgd-bridge"][6].endswith("nologin")
    assert group["systemd-journal"][2] == "101" and group["systemd-journal"][3] == "ecgd-bridge"
    assert "ecgd" not in passwd, "the bridge never gets the monitor's identity"


def test_install_with_bridge_dry_run(tmp_path: Path) -> None:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("apt-get", "systemd-sysusers", "systemctl", "install", "python3", "env"):
        (stubs / name).write_text("#!/bin/sh\nexit 99\n")
        (stubs / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", str(REPO / "systemd" / "install.sh"), "--dry-run", "--with-bridge"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for expected in (
        f"{REPO}[gpio,bridge]",
        "/usr/lib/sysusers.d/ecgd-bridge.conf",
        "systemd-sysusers ecgd-bridge.conf",
        "/etc/systemd/system/ecgd-bridge.service",
        "systemctl enable --now ecgd-bridge",
    ):
        assert expected in proc.stdout, expected
