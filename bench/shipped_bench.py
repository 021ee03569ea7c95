"""``flowercam bench --json`` for the shipped model, and the interleaved comparison shipped int8 vs its float32.

The README's headline latency is quoted from this file's JSON. Usage:
python bench/shipped_bench.py [--fp32 runs/lite0-field-trainval/export/lite0-field_float32.tflite]
  ->  bench/results/shipped_bench.{json,md}
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402


def main(fp32: Path = Path("runs/lite0-field-trainval/export/lite0-field_float32.tflite"), runs: int = 200,
         out: Path = Path("bench/results")) -> None:
    from flowercam.model.sidecar import BUNDLED_MODEL

    flowercam = [sys.executable, "-m", "flowercam", "bench", "--runs", str(runs)]
    results = {}
    for threads in ("1", "2", "default"):  # default: what classify and bench use without --threads
        chosen = [] if threads == "default" else ["--threads", threads]
        done = subprocess.run([*flowercam, *chosen, "--json"], capture_output=True, text=True, check=True)
        results[threads] = json.loads(done.stdout)
    table = subprocess.run([*flowercam, "--threads", "2", "-m", str(BUNDLED_MODEL), "-m", str(fp32)],
                           capture_output=True, text=True, check=True).stdout if fp32.is_file() else ""
    previous = out / "shipped_bench.json"
    if not table and previous.is_file():  # the float32 model is not here: keep the last comparison, said so
        old = json.loads(previous.read_text())
        table = old.get("int8_vs_float32", "")
        carried = old.get("int8_vs_float32_measured") or f"by an earlier run on {old['machine']['cpu']}"
    else:
        carried = None
    data = {"machine": machine_info(), "runs": runs, "bench": results, "int8_vs_float32": table,
            "int8_vs_float32_measured": carried}
    write_results(out, "shipped_bench", data, render)


def render(data: dict) -> str:
    """shipped_bench.md from shipped_bench.json."""
    lines = ["# `flowercam bench` on the shipped model\n", header_markdown(data["machine"]),
             "| threads | mean ms | p50 | p95 | p99 | inferences/s | init ms | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for threads, r in data["bench"].items():
        lat = r["latency_ms"]
        threads = f"default ({r['threads']})" if threads == "default" else threads
        lines.append(f"| {threads} | {lat['mean']:.2f} | {lat['p50']:.2f} | {lat['p95']:.2f} | {lat['p99']:.2f} | "
                     f"{r['throughput_ips']} | {r['init_ms']:.1f} | {r['peak_rss_mb']} |")
    for threads, r in data["bench"].items():
        option = "" if threads == "default" else f" --threads {threads}"
        lines += [f"\n## `flowercam bench --json{option}` ({data['runs']} runs)\n", "```json",
                  json.dumps(r), "```"]
    if data["int8_vs_float32"]:
        when = f" (measured {data['int8_vs_float32_measured']}; the float32 model was not there for this run)" \
            if data.get("int8_vs_float32_measured") else ""
        lines += [f"\n## Shipped int8 vs its float32, interleaved in one process (2 threads){when}\n", "```",
                  data["int8_vs_float32"].rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
