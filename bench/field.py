"""The shipped model in the field and in the lab, against the model it replaced, as a user runs it.

- ``flowercam evaluate --json`` on ``field_dev`` (real Flickr photos: three of our classes and an unknown species)
  with single and multi crops;
- ``flowercam classify --json`` over the 6,149 Oxford test images: top-1 and the share answered uncertain;
- ``flowercam bench`` of both models interleaved in one process (single-crop latency), and the multi-crop cost.

Usage: python bench/field.py [--field DIR] [--data DIR] [--baseline-rev f25bdce]  ->  bench/results/field.{json,md}
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402

FLOORS = {  # the floors and goals: (figure, floor, goal, higher is better)
    "field_known_top1": ("field_dev known classes top-1", 0.60, 0.80, True),
    "field_confident_wrong": ("confident-wrong over all field_dev photos", 0.15, 0.05, False),
    "tulip_uncertain": ("tulips answered uncertain", 0.80, None, True),
    "test_top1": ("Oxford test top-1 (6,149)", 0.95, 0.96, True),
    "test_uncertain": ("Oxford test answered uncertain", None, 0.06, False),
}


def _flowercam(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "flowercam", *args], capture_output=True, text=True,
                          check=False).stdout


def bundled_model_at(rev: str, folder: Path, name: str = "model") -> Path:
    """The bundled model and sidecar of commit ``rev``, written into ``folder``; returns the .tflite path."""
    model = folder / f"{name}.tflite"
    for suffix in (".tflite", ".json"):
        for folder in ("device/flowercam/models", "device/models"):  # the package moved to device/flowercam/
            shown = subprocess.run(["git", "show", f"{rev}:{folder}/flowercam{suffix}"], capture_output=True)
            if shown.returncode == 0:
                model.with_suffix(suffix).write_bytes(shown.stdout)
                break
    return model


def evaluate(model: Path, field: Path, crops: str) -> dict:
    return json.loads(_flowercam("evaluate", "--json", "--threads", "2", "--model", str(model), "--crops", crops,
                                 str(field)))


def test_split(model: Path, data: Path | None, crops: str) -> dict:
    """Top-1, uncertain share and mean latency of ``flowercam classify --json`` over the official test split."""
    from build_models.data import load_flowers102

    test = load_flowers102(data).test
    truth = {str(s.path): s.label for s in test}
    rows = [json.loads(line) for line in _flowercam(
        "classify", "--json", "--threads", "2", "--model", str(model), "--crops", crops,
        *truth).splitlines()]
    rows = [r for r in rows if "index" in r]
    n = len(rows)
    from calibration.temperature import top1_calibration_error

    return {"images": n, "top1": sum(r["index"] == truth[r["path"]] for r in rows) / n,
            "ece": top1_calibration_error([r["score"] for r in rows], [r["index"] == truth[r["path"]] for r in rows]),
            "uncertain": sum(r["uncertain"] for r in rows) / n,
            "confident_wrong": sum(r["index"] != truth[r["path"]] and not r["uncertain"] for r in rows) / n,
            "mean_latency_ms": {k: round(sum(r["latency_ms"][k] for r in rows) / n, 2) for k in rows[0]["latency_ms"]}}


def figures(field: dict, test: dict) -> dict:
    """The must-show figures of one model and crop set."""
    unknown = [f for f in field["folders"] if f["class"] is None]
    return {"field_known_top1": field["overall"]["known"]["top1"],
            "field_confident_wrong": field["overall"]["all"]["confident_wrong"],
            "tulip_uncertain": unknown[0]["uncertain"] if unknown else None,
            "test_top1": test["top1"], "test_uncertain": test["uncertain"]}


def main(field: Annotated[Path, typer.Option()] = Path("../shared/field_dev"),
         data: Annotated[Path | None, typer.Option(envvar="FLOWERCAM_DATA")] = None,
         baseline_rev: str = "f25bdce", out: Path = Path("bench/results")) -> None:
    from flowercam.model.sidecar import BUNDLED_MODEL

    with tempfile.TemporaryDirectory() as tmp:
        baseline = bundled_model_at(baseline_rev, Path(tmp), "baseline")
        models = {"baseline": baseline, "shipped": BUNDLED_MODEL}
        results: dict = {}
        for name, model in models.items():
            for crops in ("center", "multi"):
                print(f"{name} {crops}", flush=True)
                f, t = evaluate(model, field, crops), test_split(model, data, crops)
                results[f"{name}/{crops}"] = {"model": name, "crops": crops, "field": f, "test": t,
                                              "figures": figures(f, t)}
        bench = [json.loads(line) for line in _flowercam(
            "bench", "--json", "--threads", "2", "--runs", "200", "-m", str(baseline), "-m",
            str(BUNDLED_MODEL)).splitlines()]
    sidecar = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
    data_out = {"machine": machine_info(), "baseline_rev": baseline_rev, "default_crops": sidecar.get("crops"),
                "uncertain_rule": sidecar.get("uncertain"), "results": results,
                "bench": {"baseline": bench[0], "shipped": bench[1]}}
    write_results(out, "field", data_out, render)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _verdict(key: str, value: float | None) -> str:
    _, floor, goal, higher = FLOORS[key]
    if value is None:
        return ""
    passed = [name for name, bound in (("floor", floor), ("goal", goal)) if bound is not None
              and (value >= bound if higher else value <= bound)]
    missed = [name for name, bound in (("floor", floor), ("goal", goal)) if bound is not None and name not in passed]
    return ", ".join([f"{n} met" for n in passed] + [f"{n} missed" for n in missed])


def render(data: dict) -> str:
    """field.md from field.json."""
    results, default = data["results"], data["default_crops"]
    shipped = results[f"shipped/{default}"]["figures"]
    lines = ["# In the field and in the lab: the shipped model against the one it replaced\n",
             header_markdown(data["machine"]),
             f"\nBaseline: the bundled model of commit `{data['baseline_rev']}`. field_dev: 400 Flickr photos "
             "(sunflower, common dandelion, rose and tulip, an unknown species), evaluation only. Test: the 6,149 "
             f"official Oxford test images. Every figure comes from `flowercam evaluate` / `classify --json`, int8 "
             f"on this CPU. The shipped model's default crop set is `{default}`.\n",
             "## Must show (shipped model, default crops)\n", "| figure | value | floor | goal | |",
             "|---|---|---|---|---|"]
    for key, (label, floor, goal, higher) in FLOORS.items():
        sign = "≥" if higher else "≤"
        lines.append(f"| {label} | {_pct(shipped[key])} | {f'{sign} {floor:.0%}' if floor is not None else ''} | "
                     f"{f'{sign} {goal:.0%}' if goal is not None else ''} | {_verdict(key, shipped[key])} |")
    lines += ["\n## Every model and crop set\n",
              "| model | crops | field known top-1 | top-3 | confident-wrong (all 400) | tulips uncertain | "
              "test top-1 | test uncertain | test confident-wrong | inference ms / photo |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        f, t = r["figures"], r["test"]
        lines.append(f"| {r['model']} | {r['crops']} | {_pct(f['field_known_top1'])} | "
                     f"{_pct(r['field']['overall']['known']['top3'])} | {_pct(f['field_confident_wrong'])} | "
                     f"{_pct(f['tulip_uncertain'])} | {_pct(t['top1'])} | {_pct(t['uncertain'])} | "
                     f"{_pct(t['confident_wrong'])} | {t['mean_latency_ms']['inference']} |")
    lines += ["\n## Per field_dev folder (shipped model)\n",
              "| crops | folder | top-1 | top-3 | uncertain | confident-wrong | most common wrong answers |",
              "|---|---|---|---|---|---|---|"]
    for crops in ("center", "multi"):
        for f in results[f"shipped/{crops}"]["field"]["folders"]:
            wrong = ", ".join(f"{label} ({n})" for label, n in f["wrong_labels"][:3])
            lines.append(f"| {crops} | {f['folder']}{'' if f['class'] is not None else ' (unknown)'} | "
                         f"{_pct(f['top1'])} | {_pct(f['top3'])} | {_pct(f['uncertain'])} | "
                         f"{_pct(f['confident_wrong'])} | {wrong} |")
    b, s = data["bench"]["baseline"]["latency_ms"], data["bench"]["shipped"]["latency_ms"]
    lines += ["\n## Latency (`flowercam bench`, both models interleaved in one process, 2 threads)\n",
              "| model | size MB | mean ms | p50 | p95 |", "|---|---|---|---|---|",
              f"| baseline | {data['bench']['baseline']['model_size_mb']} | {b['mean']:.2f} | {b['p50']:.2f} | "
              f"{b['p95']:.2f} |",
              f"| shipped | {data['bench']['shipped']['model_size_mb']} | {s['mean']:.2f} | {s['p50']:.2f} | "
              f"{s['p95']:.2f} |",
              f"\nSingle-crop latency, shipped / baseline: **{s['mean'] / b['mean']:.2f}×** (limit 1.2×). Multi-crop "
              "classifies 6 crops a photo: its inference time per photo is in the table above (test split, "
              "`latency_ms.inference` mean)."]
    return "\n".join(lines) + "\n"


def render_experiments(data: dict) -> str:
    """field_experiments.md from field_experiments.json (written by bench/field_experiments.py)."""
    lines = ["# What we tried for the field, and what paid\n", header_markdown(data["machine"]),
             f"\nTemperature T = {data.get('temperature', 1.0):g}. {data['note']} **Shipped**: the row in bold.\n",
             "| # | what | val top-1 | field known top-1 | field confident-wrong | tulips uncertain | test top-1 | "
             "test uncertain | AUROC test vs tulip |", "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(data["rows"], 1):
        auroc = "" if r.get("auroc") is None else f"{r['auroc']:.3f}"
        what = f"**{r['what']}**" if r.get("shipped") else r["what"]
        lines.append(f"| {i} | {what} | {_pct(r.get('val_top1'))} | {_pct(r.get('field_known_top1'))} | "
                     f"{_pct(r.get('field_confident_wrong'))} | {_pct(r.get('tulip_uncertain'))} | "
                     f"{_pct(r.get('test_top1'))} | {_pct(r.get('test_uncertain'))} | {auroc} |")
    if data.get("conclusions"):
        lines += ["", *[f"- {c}" for c in data["conclusions"]]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
