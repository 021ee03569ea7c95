"""The ``flowercam`` command line: classify photos, describe the model, watch a camera."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from .preprocess import find_images
from .runtime import RuntimeMissing
from .sidecar import ModelError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Flower classification (Oxford 102) on the device, with latency and memory.")

ModelOpt = Annotated[Path | None, typer.Option("--model", "-m", help="A .tflite with its .json sidecar "
                                               "(default: the bundled model).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", "-t", min=1, max=64, help="CPU threads.")]
EdgeTpuOpt = Annotated[bool, typer.Option("--edgetpu", help="Run on a Coral Edge TPU.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    typer.echo(f"flowercam: error: {message}", err=True)
    return typer.Exit(code)


def open_classifier(model: Path | None, threads: int | None, edgetpu: bool,
                    uncertain_below: float | None = None):
    from .classifier import Classifier

    try:
        return Classifier(model, threads, edgetpu, uncertain_below)
    except (ModelError, RuntimeMissing) as err:
        raise fail(str(err)) from None


def _human(result) -> str:
    best = result.top_k[0]
    flag = "  (uncertain)" if result.uncertain else ""
    lat = result.latency_ms
    lines = [f"{result.path}: {best.label} {best.score:.1%}{flag}"]
    lines += [f"    {c.score:6.1%}  {c.label}" for c in result.top_k[1:]]
    lines.append(f"    latency: decode {lat['decode']:.1f} ms, preprocess {lat['preprocess']:.1f} ms, "
                 f"inference {lat['inference']:.1f} ms, total {lat['total']:.1f} ms; "
                 f"peak RSS {result.peak_rss_mb:.1f} MB")
    return "\n".join(lines)


@app.command()
def classify(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (searched recursively).")],
    model: ModelOpt = None,
    k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=1000, help="Classes to show.")] = 3,
    threads: ThreadsOpt = None,
    edgetpu: EdgeTpuOpt = False,
    as_json: JsonOpt = False,
    uncertain_below: Annotated[float | None, typer.Option(
        "--uncertain-below", min=0.0, max=1.0,
        help="Calibrated confidence under which the answer is 'uncertain' (default: the model's).")] = None,
) -> None:
    """Classify photos (jpg, png, webp, bmp). Exit 1 if any file failed."""
    files = find_images(paths)
    if not files:
        raise fail("no images found in " + ", ".join(map(str, paths)))
    classifier = open_classifier(model, threads, edgetpu, uncertain_below)
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
def info(model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Describe the model: file, runtime, tensors, labels, calibration, recorded metrics."""
    from .describe import describe

    classifier = open_classifier(model, None, False)
    report = describe(classifier)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if isinstance(value, dict):
            typer.echo(f"{key}:")
            for sub, val in value.items():
                typer.echo(f"  {sub}: {val}")
        elif isinstance(value, list):
            typer.echo(f"{key}: {len(value)} ({', '.join(map(str, value[:3]))}, …)")
        else:
            typer.echo(f"{key}: {value}")


@app.command()
def watch(
    source: Annotated[str, typer.Option("--source", "-s", help="picamera2, opencv:N, a video file or a stream URL.")
                      ] = "picamera2",
    model: ModelOpt = None,
    threads: ThreadsOpt = None,
    edgetpu: EdgeTpuOpt = False,
    fps: Annotated[float, typer.Option(min=0.1, max=120, help="Classify at most this often.")] = 5.0,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many classifications.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Live classification from a camera or video: label, confidence, fps, inference ms. Ctrl-C stops."""
    from .sources import SourceError, open_source
    from .watch import watch_loop

    classifier = open_classifier(model, threads, edgetpu)
    try:
        with open_source(source) as frames:
            count = watch_loop(classifier, frames, fps, max_frames, as_json, typer.echo)
    except SourceError as err:
        raise fail(str(err), 1) from None
    except KeyboardInterrupt:
        typer.echo("", err=True)
        return
    typer.echo(f"{source}: {count} frames classified, source ended", err=True)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
