"""Shared fixtures: a real journald, a notify socket, the emulated device, the bundled model."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecgd.acquisition.clock import SimulatedClock
from ecgd.acquisition.sources.emulated import EmulatedI2c, emulated_device
from ecgd.harness import Journald, NotifyListener
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import Recording, read_recording

REPO = Path(__file__).resolve().parents[1]
# The 1.x waveform CNN (ecgd-rhythm-cnn@1.1.0), no longer shipped, kept so that the waveform-model path
# (samples in, int8 tensors, metadata checks) stays tested with a real model.
WAVEFORM_MODEL = Path(__file__).resolve().parent / "models" / "rhythm-cnn-1.1.0.tflite"
DEMO_RECORD = REPO / "ecgd" / "demo" / "mitdb201_excerpt.hea"
SHARED_DATA = Path(os.environ.get("ECGD_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def journald() -> Iterator[None]:
    """A real systemd-journald: reuse a running one, else start one (root only, as in CI)."""
    jd = Journald("auto")
    if not jd.live:
        if Journald.can_start():
            pytest.fail("systemd-journald did not come up")
        pytest.skip("no journald running and cannot start one (needs root and systemd-journald)")
    yield
    jd.stop()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture(scope="session")
def demo_recording() -> Recording:
    return read_recording(DEMO_RECORD)


@pytest.fixture
def frontend() -> AnalogFrontEnd:
    return AnalogFrontEnd()


@pytest.fixture
def sim_clock() -> SimulatedClock:
    return SimulatedClock()


@pytest.fixture
def emulated(demo_recording: Recording, frontend: AnalogFrontEnd, sim_clock: SimulatedClock) -> EmulatedI2c:
    """The emulated PCF8591 (AD8232 on AIN2) on the simulated clock."""
    return emulated_device(demo_recording, frontend, sim_clock, channel=2)


def shared_record(name: str) -> Path:
    """A record of ../shared/data (mitdb/201, nstdb/ma); skips where the shared data is absent."""
    path = SHARED_DATA / f"{name}.hea"
    if not path.exists():
        pytest.skip(f"shared ECG data not found at {SHARED_DATA} (set ECGD_SHARED_DATA)")
    return path


@pytest.fixture
def daemon_env(tmp_path, notify_socket, monkeypatch):
    """For an in-process Daemon: a real notify socket with a watchdog, signal handlers restored after."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield tmp_path, notify_socket
    for s, h in saved.items():
        signal.signal(s, h)


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``mount_tmpfs("64k")``: a tmpfs of that size (a disk that fills up), unmounted after the test;
    skips where mounting is not allowed (it needs root, as CI runs)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        mnt = tmp_path / f"mnt{len(mounted)}"
        mnt.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", str(mnt)], check=False)


def rule_label(
    probabilities: dict[str, float],
    metadata,
    p_wave_coherence: float | None = None,
    p_wave_to_qrs: float | None = None,
) -> set[str]:
    """The window labels a beat-aware model's evidence implies (README, Model contract): AF > V > S > N,
    and no AF while the normal beats' P-wave coherence is at least the model's ``af_p_wave_max`` or
    their mean P wave at least ``af_p_wave_min_ratio`` of the QRS. Results round probabilities to 4
    decimals, the coherence to 3 and the ratio to 4, so a value within that of its threshold (0.98
    printed for 0.97996) allows the label on either side of it."""
    thr = {"AF": metadata.af_threshold, **metadata.beat_thresholds}
    labels: set[str] = set()
    p_max = metadata.af_p_wave_max
    r_min = getattr(metadata, "af_p_wave_min_ratio", None)
    for nudge in (-5e-5, 5e-5):
        for wave in (-5e-4, 5e-4):
            vetoed = p_max is not None and p_wave_coherence is not None and p_wave_coherence + wave >= p_max
            vetoed |= r_min is not None and p_wave_to_qrs is not None and p_wave_to_qrs + wave / 10 >= r_min
            above = {k: probabilities[k] + nudge >= thr[k] for k in ("AF", "V", "S")}
            above["AF"] = above["AF"] and not vetoed
            labels.add(next((k for k in ("AF", "V", "S") if above[k]), "N"))
    return labels
