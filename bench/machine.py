"""What every result file names (the machine, the versions, the command), and how results are written."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for package in ("ai-edge-litert", "tensorflow", "keras", "numpy", "pillow"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "versions": versions, "command": " ".join([os.path.basename(sys.executable), *sys.argv])}


def header_markdown(info: dict, per_row: bool = False) -> str:
    """The page's machine, versions and command; ``per_row``: its rows were measured where each says (the page
    was only rendered here)."""
    v = ", ".join(f"{k} {val}" for k, val in info["versions"].items())
    machine = (f"each row's own (its last column); rendered on {info['cpu']}" if per_row else
               f"{info['cpu']}, {info['cores']} cores ({info['machine']})")
    return (f"- machine: {machine}\n"
            f"- versions: Python {info['python']}, {v}\n- command: `{info['command']}`\n")


def write_results(out: Path, name: str, data: dict, render: Callable[[dict], str], show: bool = True) -> None:
    """``out/name.json`` (the data) and ``out/name.md`` (the page rendered from it); ``show`` prints the page."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    page = render(data)
    (out / f"{name}.md").write_text(page)
    if show:
        print(page)
