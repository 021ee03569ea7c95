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

    def bench(*options: str) -> dict:
        done = subprocess.run([*flowercam, *options, "--json"], capture_output=True, text=True, check=True)
        return json.loads(done.stdout)

    default = bench()  # what classify and bench use without --threads
    results = {str(default["threads"]): default}
    for threads in ("1", "2"):
        if threads not in results:
            results[threads] = bench("--threads", threads)
    table = subprocess.run([*flowercam, "--threads", "2", "-m", str(BUNDLED_MODEL), "-m", str(fp32)],
                           capture_output=True, text=True, check=True).stdout if fp32.is_file() else ""
    data = {"machine": machine_info(), "runs": runs, "default_threads": default["threads"],
            "bench": dict(sorted(results.items(), key=lambda kv: int(kv[0]))), "int8_vs_float32": table,
            "float32": str(fp32)}
    write_results(out, "shipped_bench", data, render)


def render(data: dict) -> str:
    """shipped_bench.md from shipped_bench.json."""
    lines = ["# `flowercam bench` on the shipped model\n", header_markdown(data["machine"]),
             "| threads | mean ms | p50 | p95 | p99 | inferences/s | init ms | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for threads, r in data["bench"].items():
        lat = r["latency_ms"]
        threads = f"{threads} (the default here)" if int(threads) == data["default_threads"] else threads
        lines.append(f"| {threads} | {lat['mean']:.2f} | {lat['p50']:.2f} | {lat['p95']:.2f} | {lat['p99']:.2f} | "
                     f"{r['throughput_ips']} | {r['init_ms']:.1f} | {r['peak_rss_mb']} |")
    for threads, r in data["bench"].items():
        option = "" if int(threads) == data["default_threads"] else f" --threads {threads}"
        lines += [f"\n## `flowercam bench --json{option}` ({data['runs']} runs)\n", "```json",
                  json.dumps(r), "```"]
    lines.append("\n## Shipped int8 vs its float32, interleaved in one process (2 threads)\n")
    if data["int8_vs_float32"]:
        lines += ["```", data["int8_vs_float32"].rstrip("\n"), "```"]
    else:
        lines.append(f"Not measured in this run: its float32 model (`{data['float32']}`) comes from training the run "
                     "(bench/run_all.sh); `latency.md` compares float32, float16 and int8 of each preset on one "
                     "machine.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
