"""``flowercam classify --json`` over the official test split, as a user runs it; plus cold start.

Accuracy is computed from the JSON lines (index vs the official label). Usage:
python bench/classify_test_split.py [--data DIR] [--model M]  ->  bench/results/classify_test.{json,md}
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402


def main(data: Annotated[Path | None, typer.Option(envvar="FLOWERCAM_DATA")] = None,
         model: Annotated[Path | None, typer.Option()] = None, out: Path = Path("bench/results"),
         threads: int = 2) -> None:
    from build_models.data import load_flowers102

    test = load_flowers102(data).test
    flowercam = [sys.executable, "-m", "flowercam"]
    model_args = ["--model", str(model)] if model else []
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    done = subprocess.run([*flowercam, "classify", "--json", "--threads", str(threads), *model_args,
                           *[str(s.path) for s in test]], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rows = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    truth = {s.path.name: s.label for s in test}
    scored = [rows[name] for name in truth]
    accuracy = sum(r["index"] == truth[name] for name, r in zip(truth, scored)) / len(scored)
    mean = {k: statistics.fmean(r["latency_ms"][k] for r in scored) for k in scored[0]["latency_ms"]}
    cold = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([*flowercam, "classify", *model_args, str(test[0].path)], capture_output=True, check=True)
        cold.append(time.perf_counter() - t)
    result = {"images_classified": len(rows), "test_images": len(test), "accuracy_test": accuracy,
              "wall_s": round(wall, 1), "images_per_s": round(len(rows) / wall, 1),
              "peak_rss_mb": max(r["peak_rss_mb"] for r in rows.values()),
              "mean_latency_ms": {k: round(v, 2) for k, v in mean.items()},
              "cold_start_s": {"median": round(statistics.median(cold), 3), "runs": [round(c, 3) for c in cold]},
              "runtime": scored[0].get("runtime"), "threads": threads, "machine": machine_info()}
    write_results(out, "classify_test", result, render, show=False)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


def render(result: dict) -> str:
    """classify_test.md from classify_test.json."""
    lat = result["mean_latency_ms"]
    return ("# `flowercam classify --json` over the 6,149 official test images\n\n" + header_markdown(result["machine"])
            + "\n| test top-1 (from the JSON) | images/s | peak RSS | mean decode / preprocess / inference / total "
            "(ms) | cold start (median of 5) |\n|---|---|---|---|---|\n"
            f"| {result['accuracy_test']:.2%} | {result['images_per_s']} | {result['peak_rss_mb']} MB | "
            f"{lat['decode']} / {lat['preprocess']} / {lat['inference']} / {lat['total']} | "
            f"{result['cold_start_s']['median']} s |\n")


if __name__ == "__main__":
    typer.run(main)
