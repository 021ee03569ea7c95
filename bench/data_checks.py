"""``build-models data`` on the working copy of the dataset and on generated datasets, as a user runs it.

Usage: python bench/data_checks.py [--data DIR]  ->  bench/results/data_checks.{json,md}
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402


def _run(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "build_models", *args], capture_output=True, text=True)
    return {"command": "build-models " + " ".join(args), "exit_code": done.returncode,
            "output": (done.stdout + done.stderr).strip()}


def main(data: Annotated[Path, typer.Option(envvar="FLOWERCAM_DATA")] = Path("../shared/flowers102"),
         out: Path = Path("bench/results")) -> None:
    runs = [_run("data", "--data", str(data))]
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen-tgz"
        _run("make-test-data", str(gen), "--classes", "4", "--per-class", "10", "--tgz")
        runs.append(_run("data", "--data", str(gen)))
        (gen / "setid.mat").write_bytes(b"broken")
        runs.append(_run("data", "--data", str(gen)))
    for r in runs:
        r["command"] = r["command"].replace(tmp, "/tmp")
        r["output"] = r["output"].replace(tmp, "/tmp")
    result = {"machine": machine_info(), "runs": runs}
    write_results(out, "data_checks", result, render, show=False)


def render(result: dict) -> str:
    """data_checks.md from data_checks.json."""
    lines = ["# `build-models data` outputs\n", header_markdown(result["machine"])]
    for r in result["runs"]:
        lines += [f"## `{r['command']}`\n", "```", r["output"], "", f"exit code: {r['exit_code']}", "```\n"]
    return "\n".join(lines)


if __name__ == "__main__":
    typer.run(main)
