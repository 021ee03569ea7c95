"""``flowercam classify``, ``evaluate`` and ``info``: photos and the model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from ..model.preprocess import find_images
from .app import (
    AdapterOpt,
    CropsOpt,
    EdgeTpuOpt,
    JsonOpt,
    ModelOpt,
    SimilarityOpt,
    ThreadsOpt,
    UncertainOpt,
    app,
    fail,
    open_classifier,
    progress,
)


def _human(result) -> str:
    best = result.top_k[0]
    answer = f"uncertain: {result.reason} (best guess: {best.label} {best.score:.1%})" if result.uncertain else \
        f"{best.label} {best.score:.1%}"
    lat = result.latency_ms
    lines = [f"{result.path}: {answer}"]
    lines += [f"    {c.score:6.1%}  {c.label}" for c in result.top_k[1:] if c.score >= 0.0005]  # not the 0.0 % tail
    lines.append(f"    latency: decode {lat['decode']:.1f} ms, preprocess {lat['preprocess']:.1f} ms, "
                 f"inference {lat['inference']:.1f} ms, total {lat['total']:.1f} ms; "
                 f"peak RSS {result.peak_rss_mb:.1f} MB")
    return "\n".join(lines)


@app.command()
def classify(
    paths: Annotated[list[Path], typer.Argument(metavar="PHOTO", readable=False, help="Image files or folders "
                                                "(searched recursively); -- before a name that starts with -.")],
    model: ModelOpt = None,
    k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=1000, help="Classes to show.")] = 3,
    threads: ThreadsOpt = None,
    edgetpu: EdgeTpuOpt = False,
    as_json: JsonOpt = False,
    uncertain_below: UncertainOpt = None,
    crops: CropsOpt = None,
    adapter: AdapterOpt = None,
    similarity_below: SimilarityOpt = None,
) -> None:
    """Classify photos (any format Pillow reads: jpg, png, webp, tif, gif, …). Exit 1 if any file failed."""
    files = find_images(paths)
    if not files:
        raise fail("no images found in " + ", ".join(map(str, paths)))
    classifier = open_classifier(model, threads, edgetpu, uncertain_below, crops, adapter, similarity_below)
    failed = done = 0
    start = time.perf_counter()
    for path, result in classifier.classify_many(files, k):
        if isinstance(result, Exception):
            failed += 1
            if as_json:
                typer.echo(json.dumps({"path": str(path), "error": str(result)}))
            else:
                typer.echo(f"flowercam: {path}: {result}", err=True)
            continue
        done += 1
        if as_json:
            typer.echo(json.dumps({**result.to_dict(), "runtime": classifier.runtime}))
        else:
            typer.echo(_human(result))
    elapsed = time.perf_counter() - start
    if not as_json and len(files) > 1:
        typer.echo(f"{done} classified, {failed} failed in {elapsed:.1f} s "
                   f"({done / max(elapsed, 1e-9):.1f} images/s, runtime {classifier.runtime})", err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    folder: Annotated[Path, typer.Argument(readable=False,
                                           help="A folder of class folders (common_dandelion/, rose/, ...); "
                                           "a folder that is no class name holds an unknown species.")],
    model: ModelOpt = None,
    threads: ThreadsOpt = None,
    edgetpu: EdgeTpuOpt = False,
    as_json: JsonOpt = False,
    uncertain_below: UncertainOpt = None,
    crops: CropsOpt = None,
    adapter: AdapterOpt = None,
    similarity_below: SimilarityOpt = None,
    include_training: Annotated[bool, typer.Option(
        "--include-training", help="Also score photos the model was trained or validated on (left out by "
        "default: its sidecar lists them by content).")] = False,
) -> None:
    """Measure the model on your labelled photos: top-1, top-3, uncertain and confident-wrong per folder."""
    from .evaluate import evaluate as run_evaluation
    from .evaluate import format_report

    classifier = open_classifier(model, threads, edgetpu, uncertain_below, crops, adapter, similarity_below)
    total = len(find_images([folder])) if folder.is_dir() else 0
    try:
        with progress("classifying", total) as (advance, _):
            report = run_evaluation(classifier, folder, advance, include_training)
    except FileNotFoundError as err:
        raise fail(str(err)) from None
    for row in report["errors"]:  # every photo found gets a row: these could not be classified
        typer.echo(f"flowercam: {row['path']}: {row['error']}", err=True)
    typer.echo(json.dumps(report) if as_json else format_report(report))
    if report["errors"]:
        raise typer.Exit(1)


@app.command()
def info(model: ModelOpt = None, as_json: JsonOpt = False, adapter: AdapterOpt = None) -> None:
    """Describe the model (and adapter): file, runtime, tensors, labels, calibration, recorded metrics."""
    from .describe import describe

    classifier = open_classifier(model, None, False, adapter=adapter)
    report = describe(classifier)
    if as_json:
        typer.echo(json.dumps(report))
        return
    trained_on_val = report["metrics"].get("protocol") == "trainval"
    for key, value in report.items():
        if isinstance(value, dict):
            typer.echo(f"{key}:")
            for sub, val in value.items():
                if isinstance(val, (dict, list)):
                    val = json.dumps(val)
                elif key == "metrics" and sub.startswith("val_") and trained_on_val:
                    val = f"{val} (val was training data: trainval protocol)"
                typer.echo(f"  {sub}: {val}")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            typer.echo(f"{key}:")
            for item in value:
                typer.echo("  - " + ", ".join(f"{sub}: {val}" for sub, val in item.items()))
        elif isinstance(value, list):
            typer.echo(f"{key}: {len(value)} ({', '.join(map(str, value[:3]))}, …)")
        else:
            typer.echo(f"{key}: {value}")
