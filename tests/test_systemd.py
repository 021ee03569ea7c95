"""The systemd unit verifies, the example config loads, the install script is valid shell."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from flowercam.daemon.config import load_config

SYSTEMD = Path(__file__).parent.parent / "systemd"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed on this machine")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    flowercam = Path(sys.executable).parent / "flowercam"
    unit = (SYSTEMD / "flowercam.service").read_text().replace("/opt/flowercam/venv/bin/flowercam", str(flowercam))
    (tmp_path / "flowercam.service").write_text(unit)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "flowercam.service")], capture_output=True,
                          text=True)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "flowercam.service" in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr


def _unit_settings(text: str) -> dict[str, list[str]]:
    """The unit's settings as systemd reads them: comments (# or ;) are not settings; a key may repeat."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_has_the_hardening_and_notify_settings():
    settings = _unit_settings((SYSTEMD / "flowercam.service").read_text())
    expected = {"Type": "notify", "Restart": "on-failure", "StartLimitIntervalSec": "0",
                "RestartPreventExitStatus": "2", "User": "flowercam", "SupplementaryGroups": "video plugdev",
                "ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes", "PrivateUsers": "yes",
                "StateDirectory": "flowercam", "LogsDirectory": "flowercam"}
    for key, value in expected.items():
        assert value in settings.get(key, []), (key, settings.get(key))
    assert settings.get("WatchdogSec", [""])[0] not in ("", "0")
    assert "PrivateDevices" not in settings  # the camera and the Coral stay visible


def test_the_unit_parser_does_not_read_comments():
    """The check above can fail: a commented-out setting is no setting."""
    text = "[Service]\n# NoNewPrivileges=yes\n; User=flowercam\nType=notify\n"
    assert _unit_settings(text) == {"Type": ["notify"]}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed on this machine")
def test_unit_exposure_is_low():
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(SYSTEMD / "flowercam.service")],
                          capture_output=True, text=True)
    line = next(line for line in done.stdout.splitlines() if "Overall exposure level" in line)
    exposure = float(line.split(":")[1].split()[0])
    assert exposure <= 1.2, line  # it was 5.6 MEDIUM before CapabilityBoundingSet=, SystemCallFilter=, devices, IPs


def test_example_config_loads():
    config = load_config(SYSTEMD / "flowercam.toml")
    assert config.source.uri == "picamera2" and config.http.bind == "" and config.model.path == ""


def test_install_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SYSTEMD / "install.sh")]).returncode == 0
    script = (SYSTEMD / "install.sh").read_text()
    assert "-m 0640 -o root -g flowercam" in script and "chmod 0640 /etc/flowercam/flowercam.toml" in script
    assert "chown root:flowercam /etc/flowercam/mqtt.password && chmod 0640 /etc/flowercam/mqtt.password" in script
