"""Memory that does not grow with the data: peak resident memory and wall time of the cached phases of
``build-models train lite0`` at 1×, 2× and 4× the cached rows (2, 4 and 8 augmented views of the 1,020 paper-protocol
training photos), phase 1 for 3 epochs and phase 2 for 1. The process's peak RSS is read at the end of each phase
(``timings.json``), before the evaluation.

Usage: python bench/cache_memory.py [--data ../shared/flowers102]  ->  bench/results/cache_memory.{json,md}
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402

VIEWS = (2, 4, 8)


def main(data: Annotated[Path | None, typer.Option(envvar="FLOWERCAM_DATA")] = None,
         work: Path = Path("runs/cache-memory"), out: Path = Path("bench/results")) -> None:
    rows = []
    for views in VIEWS:
        run = work / f"views{views}"
        shutil.rmtree(run, ignore_errors=True)
        subprocess.run(["build-models", "train", "lite0", "--views", str(views), "--phase1-epochs", "3",
                        "--phase2-epochs", "1", "--out", str(run), *(["--data", str(data)] if data else [])],
                       check=True, stdout=subprocess.DEVNULL)
        timings = json.loads((run / "timings.json").read_text())
        rows.append({"views": views, "rows": 1020 * views,
                     "cache_mb": round((run / "cache_train.npy").stat().st_size / 1e6, 1), **timings})
    result = {"machine": machine_info(), "rows": rows,
              "before": "lite0 paper protocol, 8 views, whole cache in memory: 11.74 GB peak RSS "
                        "(bench/records/lite0-paper.json)"}
    write_results(out, "cache_memory", result, render)


def render(data: dict) -> str:
    """cache_memory.md from cache_memory.json."""
    lines = ["# The feature cache streamed from disk: memory against data size\n", header_markdown(data["machine"]),
             "`build-models train lite0` (paper protocol, 1,020 photos) with 2, 4 and 8 cached views per photo: "
             "1×, 2× and 4× the rows the cached phases read. Phase 1 for 3 epochs, phase 2 for 1. Peak RSS is the "
             "process's maximum so far, read at the end of each phase. Command: `python bench/cache_memory.py`.\n",
             "| views | cached rows | cache on disk MB | cache s | phase 1 s | phase 2 s | peak RSS after cache GB | "
             "after phase 1 GB | after phase 2 GB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        lines.append(f"| {r['views']} | {r['rows']} | {r['cache_mb']} | {r['cache_s']:.0f} | {r['phase1_s']:.0f} | "
                     f"{r['phase2_s']:.0f} | {r['cache_peak_rss_gb']} | {r['phase1_peak_rss_gb']} | "
                     f"{r['phase2_peak_rss_gb']} |")
    lines.append(f"\nBefore (the cache held in memory by the training loop): {data['before']}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
