"""The wheel a regular ``pip install .`` builds carries every module of the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALLED_AS = {"device/flowercam": "flowercam", "build_models": "build_models", "calibration": "calibration"}


def test_wheel_has_every_module(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("flowercam-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{INSTALLED_AS[folder]}/{path.relative_to(ROOT / folder).as_posix()}"
                for folder in INSTALLED_AS for path in (ROOT / folder).rglob("*.py")}
    assert "flowercam/sources/opencv.py" in expected
    assert expected - names == set()
    assert "flowercam/models/flowercam.tflite" in names and "flowercam/samples/image_01315.jpg" in names
    assert "flowercam/status.html" in names and "flowercam/models/labels.txt" in names
