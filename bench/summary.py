"""Collect trained runs and their exports into the committed accuracy/size and training-cost tables.

Reads runs/<preset>-<protocol>/{metrics.json, export/export_report.json} and the training logs
written by ``/usr/bin/time -v build-models train ... > runs/<name>.log``. Usage:
python bench/summary.py [--runs runs]  ->  bench/results/accuracy.{json,md}, training_cost.{json,md}
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info  # noqa: E402

SEED = "| seed study (InceptionV3 cut, paper protocol) | Keras | 80.6 | – | 86.14% | – |\n" \
       "| seed study (InceptionV3 cut, paper protocol) | TFLite int8 | 10.9 | – | 86.11% | – |"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _protocol_table(acc_rows: list[dict]) -> list[str]:
    """Float Keras accuracy of the preset runs (folders named ``<preset>-<protocol>``), protocols side by side."""
    table: dict[str, dict[str, dict]] = {}
    for r in acc_rows:
        preset, _, protocol = r["run"].rpartition("-")
        if r["variant"] == "Keras" and protocol in ("paper", "trainval") and "-" not in preset:
            size = r["name"].split(", ")[1]
            table.setdefault(f"{preset}, {size}", {})[protocol] = r
    lines = ["\n## Float Keras top-1 of each preset, both protocols\n",
             "Runs named `<preset>-<protocol>` with the preset's settings (trainval with `--views 6`); "
             "the other rows above are experiments.\n",
             "| preset | paper: val | paper: test | trainval: test |", "|---|---|---|---|"]
    for key, by in table.items():
        paper, trainval = by.get("paper"), by.get("trainval")
        lines.append(f"| {key} | {_pct(paper and paper['val'])} | {_pct(paper and paper['test'])} | "
                     f"{_pct(trainval and trainval['test'])} |")
    return lines


def main(runs: Path = Path("runs"), out: Path = Path("bench/results")) -> None:
    info = machine_info()
    acc_rows, cost_rows = [], []
    for run in sorted(p for p in runs.iterdir() if (p / "metrics.json").exists()):
        metrics = json.loads((run / "metrics.json").read_text())
        report_path = run / "export" / "export_report.json"
        export = json.loads(report_path.read_text()) if report_path.exists() else None
        views = json.loads((run / "config.json").read_text()).get("views")
        name = f"{metrics['preset']} ({metrics['protocol']}, {metrics['size']} px, {views} views)"
        keras_mb = (run / "model.keras").stat().st_size / 1e6
        acc_rows.append({"run": run.name, "name": name, "variant": "Keras", "size_mb": round(keras_mb, 2),
                         "val": metrics["val"]["accuracy"], "test": metrics["test"]["accuracy"], "agreement": None})
        for precision, m in (export or {}).get("models", {}).items():
            acc_rows.append({"run": run.name, "name": name, "variant": f"TFLite {precision}", "size_mb": m["size_mb"],
                             "val": m["val_top1"], "test": m["test_top1"], "agreement": m["test_agreement_with_keras"]})
        log = runs / f"{run.name}.log"
        wall = peak = None
        if log.exists():
            text = log.read_text(errors="replace")
            if found := re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text):
                parts = [float(p) for p in found.group(1).split(":")]
                wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
            if found := re.search(r"Maximum resident set size \(kbytes\): (\d+)", text):
                peak = int(found.group(1)) / 1024 / 1024
        cost_rows.append({"run": run.name, "name": name, "train_s": metrics.get("train_wall_s"),
                          "process_wall_s": wall, "peak_rss_gb": round(peak, 2) if peak else None,
                          "timings": metrics.get("timings", {})})
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps({"machine": info, "rows": acc_rows}, indent=2) + "\n")
    (out / "training_cost.json").write_text(json.dumps({"machine": info, "rows": cost_rows}, indent=2) + "\n")
    lines = ["# Accuracy and size: every trained preset × {Keras, TFLite float32, float16, int8}\n",
             header_markdown(info),
             "\nTop-1 on the official splits (val 1,020, test 6,149 images), TFLite numbers measured with the "
             "interpreter. *Agreement*: share of test images where the TFLite top-1 equals the Keras top-1. "
             "Under the trainval protocol val is training data.\n",
             "| model | variant | size MB | val top-1 | test top-1 | agreement with Keras |",
             "|---|---|---|---|---|---|",
             SEED]
    lines += [f"| {r['name']} | {r['variant']} | {r['size_mb']:.2f} | {r['val']:.2%} | {r['test']:.2%} | "
              f"{_pct(r['agreement'])} |" for r in acc_rows]
    lines += _protocol_table(acc_rows)
    (out / "accuracy.md").write_text("\n".join(lines) + "\n")
    lines = ["# Training cost on this machine (full build per preset)\n", header_markdown(info),
             "\nThe runs recorded here shared the 2 cores with other jobs (tests, exports) for part of their time, "
             "so the times are upper bounds. *train + evaluate*: the whole `build-models train` process, including "
             "loading images and evaluating val and test. Peak RSS is the process maximum (`/usr/bin/time -v`).\n",
             "\n| run | cache s | phase 1 s | phase 2 s | train + evaluate, process wall | peak RSS |",
             "|---|---|---|---|---|---|"]
    for r in cost_rows:
        t = r["timings"]
        wall = f"{r['process_wall_s'] / 60:.1f} min" if r["process_wall_s"] else "n/a"
        lines.append(f"| {r['name']} | {t.get('cache_s', 0):.0f} | {t.get('phase1_s', 0):.0f} | "
                     f"{t.get('phase2_s', 0):.0f} | {wall} | {r['peak_rss_gb'] or 'n/a'} GB |")
    (out / "training_cost.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    typer.run(main)
