"""``build-models explain`` and ``report``: Grad-CAM, LIME, neighbours, the per-class report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .cli_app import (
    DataOpt,
    app,
    dataset_or_fail,
    start_tensorflow,
)


@app.command()
def explain(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    images: Annotated[list[Path], typer.Argument(help="Photos, or test image ids like 1315.")],
    data_dir: DataOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the PNGs (default: RUN/explain).")] = None,
    lime_samples: Annotated[int, typer.Option(help="LIME perturbations per image.")] = 300,
) -> None:
    """Grad-CAM, LIME and nearest training images for photos; writes PNGs and index.md."""
    start_tensorflow()

    from .console import progress
    from .report import explain_image

    dataset = dataset_or_fail(data_dir, run)
    by_id = {s.image_id: s for s in dataset.train + dataset.val + dataset.test}
    out = out or run / "explain"
    summaries = []
    with progress("explaining", len(images), unit="photo") as advance:
        for item in images:
            sample = by_id.get(int(item.name)) if item.name.isdigit() else None
            path, true = (sample.path, sample.label) if sample else (item, None)
            summaries.append(explain_image(run, dataset, path, out, true, lime_samples))
            advance(1)
    lines = ["# Explanations\n"]
    for s in summaries:
        top3 = ", ".join(f"{name} {p:.1%}" for name, p in s["top3"])
        lines += [f"## {Path(s['image']).name}: predicted {s['predicted']}, true {s['true']}\n",
                  f"top-3 ({s['probabilities']}): {top3}\n", *[f"![{f}]({f})\n" for f in s["figures"]]]
    (out / "index.md").write_text("\n".join(lines))
    (out / "explanations.json").write_text(json.dumps(summaries, indent=2))
    typer.echo(f"wrote {out / 'index.md'}")


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    data_dir: DataOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder (default: RUN/report).")] = None,
    gallery: Annotated[int, typer.Option(help="Misclassified images in the gallery.")] = 12,
) -> None:
    """Per-class table, worst classes, confused pairs and a gallery of mistakes (Markdown + PNG)."""
    start_tensorflow()
    from .report import report_run

    typer.echo(f"wrote {report_run(run, dataset_or_fail(data_dir, run), out, gallery)}")
