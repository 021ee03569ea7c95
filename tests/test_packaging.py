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
    assert "flowercam/daemon/web/status.html" in names and "flowercam/models/labels.txt" in names


def test_every_library_the_device_imports_is_declared():
    """What ``device/flowercam`` imports is in install_requires, or in the extra that names it (camera, mqtt), or
    is the standard library: a library that only arrives through another's dependencies is one release from gone."""
    import ast
    import configparser
    import re

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")

    def names(text: str) -> set[str]:
        return {re.split(r"[<>=!;\[ ]", line.strip())[0].lower().replace("-", "_")
                for line in text.strip().splitlines() if line.strip()}

    declared = names(config["options"]["install_requires"])
    declared |= names(config["options.extras_require"]["camera"]) | names(config["options.extras_require"]["mqtt"])
    import_name = {"pil": "pillow", "cv2": "opencv_python_headless", "paho": "paho_mqtt", "tomli": "tomli",
                   "ai_edge_litert": "ai_edge_litert", "tflite_runtime": "tflite_runtime"}
    imported = set()
    for path in (ROOT / "device" / "flowercam").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "flowercam"}
    third_party -= {"tensorflow"}  # the workstation's last-resort interpreter (runtime.py), never on a device
    missing = {name for name in third_party if import_name.get(name.lower(), name.lower()) not in declared}
    assert not missing, f"imported by the device but not declared in setup.cfg: {sorted(missing)}"
