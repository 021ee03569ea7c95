"""The committed accuracy/size and training-cost tables, built from small per-run records.

Each run folder present under ``runs/`` (metrics.json, config.json, history CSVs, export/export_report.json and
the log of ``/usr/bin/time -v build-models train ... > runs/<name>.log``) is first collected into
``bench/records/<run>.json``; the tables are then rendered from the records alone, so they regenerate
without ``runs/``. Usage: python bench/summary.py  ->  bench/results/accuracy.{json,md}, training_cost.{json,md}
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info  # noqa: E402


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


def collect(run: Path) -> dict:
    """The small record of one run folder that the tables are built from (committed under bench/records/)."""
    metrics = json.loads((run / "metrics.json").read_text())
    report_path = run / "export" / "export_report.json"
    export = json.loads(report_path.read_text()) if report_path.exists() else None
    config = json.loads((run / "config.json").read_text())
    name = f"{metrics['preset']} ({metrics['protocol']}, {metrics['size']} px, {config.get('views')} views)"
    keras_mb = (run / "model.keras").stat().st_size / 1e6
    acc_rows = [{"run": run.name, "name": name, "variant": "Keras", "size_mb": round(keras_mb, 2),
                 "val": metrics["val"]["accuracy"], "test": metrics["test"]["accuracy"], "agreement": None}]
    for precision, m in (export or {}).get("models", {}).items():
        acc_rows.append({"run": run.name, "name": name, "variant": f"TFLite {precision}", "size_mb": m["size_mb"],
                         "val": m["val_top1"], "test": m["test_top1"], "agreement": m["test_agreement_with_keras"]})
    log = run.parent / f"{run.name}.log"
    wall = peak = None
    if log.exists():
        text = log.read_text(errors="replace")
        if found := re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text):
            parts = [float(p) for p in found.group(1).split(":")]
            wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
        if found := re.search(r"Maximum resident set size \(kbytes\): (\d+)", text):
            peak = int(found.group(1)) / 1024 / 1024
    cost = {"run": run.name, "name": name, "train_s": metrics.get("train_wall_s"), "process_wall_s": wall,
            "peak_rss_gb": round(peak, 2) if peak else None, "timings": metrics.get("timings", {})}
    history = {}
    for phase in ("phase1", "phase2"):
        csv = run / f"history_{phase}.csv"
        if csv.exists():
            history[phase] = csv.read_text()
    cost["cpu"] = machine_info()["cpu"]
    return {"run": run.name, "config": config, "accuracy": acc_rows, "cost": cost, "history": history,
            "calibration": (export or {}).get("calibration")}


def main(runs: Path = Path("runs"), records: Path = Path("bench/records"), out: Path = Path("bench/results")) -> None:
    """Update the records from the run folders present, then render the tables from the records alone."""
    records.mkdir(parents=True, exist_ok=True)
    if runs.is_dir():
        for run in sorted(p for p in runs.iterdir() if (p / "metrics.json").exists()):
            (records / f"{run.name}.json").write_text(json.dumps(collect(run), indent=2) + "\n")
    kept = [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]
    info = machine_info()
    accuracy = {"machine": info, "rows": [{**row, "cpu": r["cost"].get("cpu")} for r in kept for row in r["accuracy"]]}
    cost = {"machine": info, "rows": [r["cost"] for r in kept]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps(accuracy, indent=2) + "\n")
    (out / "training_cost.json").write_text(json.dumps(cost, indent=2) + "\n")
    (out / "accuracy.md").write_text(render_accuracy(accuracy))
    (out / "training_cost.md").write_text(render_cost(cost))


def render_accuracy(data: dict) -> str:
    """accuracy.md from accuracy.json."""
    acc_rows = data["rows"]
    lines = ["# Accuracy and size: every trained preset × {Keras, TFLite float32, float16, int8}\n",
             header_markdown(data["machine"], per_row=True),
             "\nTop-1 on the official splits (val 1,020, test 6,149 images), TFLite numbers measured with the "
             "interpreter. *Agreement*: share of test images where the TFLite top-1 equals the Keras top-1. "
             "Under the trainval protocol val is training data. The seed study's rows are its published figures "
             f"({seed_study()['source']}).\n",
             "| model | variant | size MB | val top-1 | test top-1 | agreement with Keras | measured on |",
             "|---|---|---|---|---|---|---|",
             *seed_rows()]
    lines += [f"| {r['name']} | {r['variant']} | {r['size_mb']:.2f} | {r['val']:.2%} | {r['test']:.2%} | "
              f"{_pct(r['agreement'])} | {r.get('cpu') or 'n/a'} |" for r in acc_rows]
    lines += _protocol_table(acc_rows)
    return "\n".join(lines) + "\n"


def render_cost(data: dict) -> str:
    """training_cost.md from training_cost.json."""
    lines = ["# Training cost (full build per preset)\n", header_markdown(data["machine"], per_row=True),
             "\nThe runs recorded here shared the 2 cores with other jobs (tests, exports) for part of their time, "
             "so the times are upper bounds. *train + evaluate*: the whole `build-models train` process, including "
             "loading images and evaluating val and test. Peak RSS is the process maximum (`/usr/bin/time -v`).\n",
             "\n| run | cache s | phase 1 s | phase 2 s | train (cache + phases) | train + evaluate, process wall | "
             "peak RSS | trained on |",
             "|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        t = r["timings"]
        wall = f"{r['process_wall_s'] / 60:.1f} min" if r["process_wall_s"] else "n/a"
        train = f"{r['train_s'] / 60:.1f} min" if r.get("train_s") else "n/a"
        lines.append(f"| {r['name']} | {t.get('cache_s', 0):.0f} | {t.get('phase1_s', 0):.0f} | "
                     f"{t.get('phase2_s', 0):.0f} | {train} | {wall} | {r['peak_rss_gb'] or 'n/a'} GB | "
                     f"{r.get('cpu', '')} |")
    return "\n".join(lines) + "\n"


def seed_study() -> dict:
    """The seed study's published figures (one cited data file)."""
    return json.loads((Path(__file__).parent / "seed_study.json").read_text())


def seed_rows() -> list[str]:
    seed = seed_study()
    return [f"| seed study ({seed['model']}, paper protocol) | {v['variant']} | {v['size_mb']} | – | "
            f"{v['test_top1']:.2%} | – | as published |" for v in seed["variants"]]

if __name__ == "__main__":
    typer.run(main)
