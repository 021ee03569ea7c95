"""``flowercam bench --json`` for the shipped model, and the interleaved comparison shipped int8 vs its float32.

Usage: python bench/shipped_bench.py [--fp32 runs/lite0-trainval/export/lite0_float32.tflite]
  ->  bench/results/shipped_bench.md
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info  # noqa: E402


def main(fp32: Path = Path("runs/lite0-trainval/export/lite0_float32.tflite"), runs: int = 100,
         out: Path = Path("bench/results")) -> None:
    from flowercam.sidecar import BUNDLED_MODEL

    flowercam = [sys.executable, "-m", "flowercam", "bench", "--runs", str(runs), "--threads", "2"]
    as_json = subprocess.run([*flowercam, "--json"], capture_output=True, text=True, check=True).stdout
    table = subprocess.run([*flowercam, "-m", str(BUNDLED_MODEL), "-m", str(fp32)], capture_output=True, text=True,
                           check=True).stdout
    out.mkdir(parents=True, exist_ok=True)
    (out / "shipped_bench.md").write_text(
        "# `flowercam bench` on the shipped model\n\n" + header_markdown(machine_info())
        + "\n## `flowercam bench --json --threads 2` (bundled int8 model)\n\n```json\n" + as_json
        + "```\n\n## Shipped int8 vs its float32, interleaved in one process (2 threads)\n\n```\n" + table + "```\n")
    print(as_json, table)


if __name__ == "__main__":
    typer.run(main)
