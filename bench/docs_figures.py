"""The figures README.md links in ``docs/``, from the commands that make them: the paper-protocol lite0 run's
training curves and test confusion matrix (``build-models train lite0``), its int8 reliability diagram
(``build-models export``) and the LR range test (``build-models lr-find lite0``). Each step is skipped when its
output is already in ``--runs``; every figure file is then copied to ``docs/`` and listed in
``bench/results/docs_figures.json``.

Usage: python bench/docs_figures.py --data ../shared/flowers102 [--runs runs]   (about 40 min on 2 cores)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

ROOT = Path(__file__).resolve().parents[1]
DOCS, RESULTS = ROOT / "docs", ROOT / "bench" / "results"


def _build(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "build_models", *args], check=True)


def figures(runs: Path) -> dict[str, Path]:
    """docs/ name -> the file a command wrote."""
    paper = runs / "lite0-paper"
    return {"training_curves_lite0_paper.png": paper / "training_curves.png",
            "confusion_test_lite0_paper.png": paper / "confusion_test.png",
            "reliability_lite0_paper.png": paper / "export" / "lite0_reliability.png",
            "lr_range_test_lite0.png": runs / "lr-find" / "lr_range_test.png"}


def main(data: Annotated[Path, typer.Option(help="The Oxford 102 folder.")],
         runs: Annotated[Path, typer.Option(help="Where the runs are (or go).")] = Path("runs")) -> None:
    paper = runs / "lite0-paper"
    if not (paper / "metrics.json").exists():
        _build("train", "lite0", "--data", str(data), "--out", str(paper))
    if not (paper / "export" / "lite0_reliability.png").exists():
        _build("export", str(paper), "--data", str(data))
    if not (runs / "lr-find" / "lr_range_test.png").exists():
        _build("lr-find", "lite0", "--data", str(data), "--out", str(runs / "lr-find"))
    made = {}
    for name, source in figures(runs).items():
        shutil.copyfile(source, DOCS / name)
        made[name] = {"from": str(source.relative_to(runs)), "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    metrics = json.loads((paper / "metrics.json").read_text())
    report = json.loads((paper / "export" / "export_report.json").read_text())
    result = {"figures": made, "val_top1": metrics["val"]["accuracy"], "test_top1": metrics["test"]["accuracy"],
              "int8_test_top1": report["models"]["int8"]["test_top1"]}
    (RESULTS / "docs_figures.json").write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(f"docs/: {', '.join(made)}; lite0 paper run: test top-1 {result['test_top1']:.2%}, int8 "
               f"{result['int8_test_top1']:.2%}")


if __name__ == "__main__":
    typer.run(main)
