"""``flowercam bench``: latency and memory of models on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..model.preprocess import find_images
from ..model.runtime import RuntimeMissing
from ..model.sidecar import ModelError
from .app import (
    AdapterOpt,
    EdgeTpuOpt,
    JsonOpt,
    ThreadsOpt,
    app,
    fail,
    open_classifier,
)


@app.command()
def bench(
    models: Annotated[list[Path] | None, typer.Option("--model", "-m", readable=False,
                                                      help="Models to compare (repeat).")] = None,
    runs: Annotated[int, typer.Option(min=1, help="Timed runs per model.")] = 50,
    warmup: Annotated[int, typer.Option(min=0, help="Warm-up runs per model.")] = 5,
    threads: ThreadsOpt = None,
    edgetpu: EdgeTpuOpt = False,
    images: Annotated[Path | None, typer.Option(readable=False,
                                                help="Folder of photos: real preprocessed inputs.")] = None,
    pipeline: Annotated[bool, typer.Option("--pipeline", help="Time decode + preprocess + inference on "
                                           "the photos of --images.")] = False,
    as_json: JsonOpt = False,
    adapter: AdapterOpt = None,
) -> None:
    """Benchmark models like TFLite's benchmark_model: init, first, warm-up, latency percentiles, memory.
    With --adapter: the adapter's added time next to the model's, in the same run."""
    from ..model.sidecar import BUNDLED_MODEL

    paths = models or [BUNDLED_MODEL]
    files = find_images([images]) if images else []
    if (images or pipeline) and not files:
        raise fail("--pipeline needs --images with photos" if pipeline else f"no images in {images}")
    if adapter is not None:
        _adapter_cost(open_classifier(paths[0], threads, edgetpu, adapter=adapter), runs, files, as_json)
    elif pipeline:
        _pipeline(open_classifier(paths[0], threads, edgetpu), files, runs, as_json)
    else:
        _models(paths, runs, warmup, threads, edgetpu, files, as_json)


def _adapter_cost(classifier, runs: int, files: list[Path], as_json: bool) -> None:
    from ..model import benchmark as b

    cost = b.adapter_cost(classifier, runs, _bench_inputs(classifier.preprocess, files[:32]) if files else None)
    typer.echo(json.dumps(cost) if as_json else
               f"{cost['model']} + adapter ({cost['adapter_classes']} classes), {runs} runs each: adapter mean "
               f"{cost['adapter_ms']['mean']:.4f} ms ({cost['adapter_share']:.2%} of the model alone, "
               f"{cost['model_alone_ms']['mean']:.3f} ms); the model with the adapter {cost['model_ms']['mean']:.3f} "
               f"ms ({cost['slowdown_ms']:+.3f} ms)")


def _pipeline(classifier, files: list[Path], runs: int, as_json: bool) -> None:
    from ..model import benchmark as b

    result = b.pipeline(classifier, files, runs)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{result['model']} ({result['runtime']}): {result['runs']} photos from {result['images']} files, "
               f"{result['throughput_ips']} photos/s, peak RSS {result['peak_rss_mb']} MB")
    for stage, lat in result["latency_ms"].items():
        typer.echo(f"  {stage:10s} mean {lat['mean']:8.2f} ms   p50 {lat['p50']:8.2f}   p95 {lat['p95']:8.2f}")


def _models(paths: list[Path], runs: int, warmup: int, threads: int | None, edgetpu: bool, files: list[Path],
            as_json: bool) -> None:
    from ..model import benchmark as b
    from ..model.sidecar import read_sidecar

    inputs = {}
    try:
        for path in paths:
            if not path.is_file():
                raise ModelError(f"model not found: {path}")
            if files:
                inputs[path] = _bench_inputs(read_sidecar(path).preprocess, files[:32])
        reports = b.benchmark(paths, runs, warmup, threads, edgetpu, inputs)
    except (ModelError, RuntimeMissing) as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"cannot read a model: {err.strerror or err}") from None
    except ValueError as err:
        raise fail(f"not a valid TFLite model ({str(err).splitlines()[0]})") from None
    for report in reports:
        typer.echo(json.dumps(report) if as_json else _one_model(report))
    if len(reports) > 1 and not as_json:
        typer.echo(b.comparison_table(reports))


def _one_model(report: dict) -> str:
    lat = report["latency_ms"]
    return (f"{report['model']} ({report['model_size_mb']} MB, {report['runtime']}, threads "
            f"{report['threads']}): init {report['init_ms']:.1f} ms, first "
            f"{report['first_inference_ms']:.1f} ms, warm-up avg {report['warmup_avg_ms']} ms\n  "
            f"{report['count']} runs: min {lat['min']:.2f} max {lat['max']:.2f} mean {lat['mean']:.2f} "
            f"std {lat['std']:.2f} p50 {lat['p50']:.2f} p90 "
            f"{lat['p90']:.2f} p95 {lat['p95']:.2f} p99 {lat['p99']:.2f} ms; {report['throughput_ips']} "
            f"inferences/s; this model: RSS +{report['rss_delta_mb']['init']} MB at init; the process: "
            f"peak RSS {report['peak_rss_mb']} MB, +{report['rss_delta_mb']['overall']} MB overall")


def _bench_inputs(pre, files: list[Path]) -> list:
    """Preprocessed photos for ``bench --images``; an unreadable one is named in a one-line error."""
    from ..model.preprocess import ImageError

    inputs = []
    for file in files:
        try:
            inputs.append(pre(file))
        except ImageError as err:
            raise fail(f"{file}: {err}") from None
    return inputs
