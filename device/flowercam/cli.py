"""The ``flowercam`` command line: classify photos, describe the model, watch a camera."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from .errors import FlowercamError
from .preprocess import find_images
from .runtime import MAX_DEFAULT_THREADS, RuntimeMissing, cores
from .sidecar import ModelError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Flower classification (Oxford 102) on the device, with latency and memory.")

ModelOpt = Annotated[Path | None, typer.Option("--model", "-m", help="A .tflite with its .json sidecar "
                                               "(default: the bundled model).")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", "-t", min=1, max=64, show_default=False,
    help=f"CPU threads [default: this machine's cores, at most {MAX_DEFAULT_THREADS}; capped at the cores]")]
EdgeTpuOpt = Annotated[bool, typer.Option("--edgetpu", help="Run on a Coral Edge TPU.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
CropsOpt = Annotated[str | None, typer.Option(
    "--crops", help="center: the centred square; multi: also the whole frame and its four corners, averaged "
    "(for wide shots and small flowers, 6× the inference). Default: the model's.")]
UncertainOpt = Annotated[float | None, typer.Option(
    "--uncertain-below", min=0.0, max=1.0,
    help="Calibrated confidence under which the answer is 'uncertain' (default: the model's).")]

AdapterOpt = Annotated[Path | None, typer.Option("--adapter", "-a", help="An adapter from flowercam learn: the "
                                                 "classes its owner taught it, on top of the model.")]
SimilarityOpt = Annotated[float | None, typer.Option(
    "--similarity-below", min=-1.0, max=1.0,
    help="Similarity to the nearest known class under which the answer is 'uncertain' (default: the model's "
    "or the adapter's).")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    typer.echo(f"flowercam: error: {message}", err=True)
    return typer.Exit(code)


def open_classifier(model: Path | None, threads: int | None, edgetpu: bool,
                    uncertain_below: float | None = None, crops: str | None = None, adapter: Path | None = None,
                    similarity_below: float | None = None):
    from .classifier import Classifier

    try:
        return Classifier(model, threads, edgetpu, uncertain_below, crops, adapter, similarity_below)
    except FlowercamError as err:
        raise fail(str(err)) from None


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
    paths: Annotated[list[Path], typer.Argument(metavar="PHOTO", help="Image files or folders (searched "
                                                "recursively); -- before a name that starts with -.")],
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
    folder: Annotated[Path, typer.Argument(help="A folder of class folders (common_dandelion/, rose/, ...); "
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
    from rich.progress import Progress

    from .evaluate import evaluate as run_evaluation
    from .evaluate import format_report

    classifier = open_classifier(model, threads, edgetpu, uncertain_below, crops, adapter, similarity_below)
    total = len(find_images([folder])) if folder.is_dir() else 0
    try:
        with Progress(transient=True, console=_stderr_console()) as progress:
            task = progress.add_task("classifying", total=total)
            report = run_evaluation(classifier, folder, lambda n: progress.advance(task, n), include_training)
    except FileNotFoundError as err:
        raise fail(str(err)) from None
    for row in report["errors"]:  # every photo found gets a row: these could not be classified
        typer.echo(f"flowercam: {row['path']}: {row['error']}", err=True)
    typer.echo(json.dumps(report) if as_json else format_report(report))
    if report["errors"]:
        raise typer.Exit(1)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


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
    crops: CropsOpt = None,
    adapter: AdapterOpt = None,
) -> None:
    """Live classification from a camera or video: label, confidence, fps, inference ms. Ctrl-C stops."""
    from .sources import SourceError, check_uri, open_source
    from .watch import watch_loop

    try:
        check_uri(source)
    except SourceError as err:
        raise fail(str(err)) from None
    classifier = open_classifier(model, threads, edgetpu, crops=crops, adapter=adapter)
    try:
        with open_source(source) as frames:
            count, ended = watch_loop(classifier, frames, fps, max_frames, as_json, typer.echo)
    except SourceError as err:
        raise fail(str(err), 1) from None
    except KeyboardInterrupt:
        typer.echo("", err=True)
        return
    typer.echo(f"{source}: {count} frames classified, " + ("source ended" if ended else "--max-frames reached"),
               err=True)


@app.command()
def bench(
    models: Annotated[list[Path] | None, typer.Option("--model", "-m",
                                                      help="Models to compare (repeat).")] = None,
    runs: Annotated[int, typer.Option(min=1, help="Timed runs per model.")] = 50,
    warmup: Annotated[int, typer.Option(min=0, help="Warm-up runs per model.")] = 5,
    threads: ThreadsOpt = None,
    edgetpu: EdgeTpuOpt = False,
    images: Annotated[Path | None, typer.Option(help="Folder of photos: real preprocessed inputs.")] = None,
    pipeline: Annotated[bool, typer.Option("--pipeline", help="Time decode + preprocess + inference on "
                                           "the photos of --images.")] = False,
    as_json: JsonOpt = False,
    adapter: AdapterOpt = None,
) -> None:
    """Benchmark models like TFLite's benchmark_model: init, first, warm-up, latency percentiles, memory.
    With --adapter: the adapter's added time next to the model's, in the same run."""
    from . import bench as b
    from .sidecar import BUNDLED_MODEL, read_sidecar

    paths = models or [BUNDLED_MODEL]
    files = find_images([images]) if images else []
    if (images or pipeline) and not files:
        raise fail("--pipeline needs --images with photos" if pipeline else f"no images in {images}")
    if adapter is not None:
        classifier = open_classifier(paths[0], threads, edgetpu, adapter=adapter)
        cost = b.adapter_cost(classifier, runs, _bench_inputs(classifier.preprocess, files[:32]) if files else None)
        typer.echo(json.dumps(cost) if as_json else
                   f"{cost['model']} + adapter ({cost['adapter_classes']} classes), {runs} runs: model mean "
                   f"{cost['model_ms']['mean']:.3f} ms, adapter mean {cost['adapter_ms']['mean']:.4f} ms "
                   f"({cost['adapter_share']:.2%} of the model's)")
        return
    if pipeline:
        result = b.pipeline(open_classifier(paths[0], threads, edgetpu), files, runs)
        if as_json:
            typer.echo(json.dumps(result))
            return
        typer.echo(f"{result['model']} ({result['runtime']}): {result['runs']} photos from {result['images']} files, "
                   f"{result['throughput_ips']} photos/s, peak RSS {result['peak_rss_mb']} MB")
        for stage, lat in result["latency_ms"].items():
            typer.echo(f"  {stage:10s} mean {lat['mean']:8.2f} ms   p50 {lat['p50']:8.2f}   p95 {lat['p95']:8.2f}")
        return
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
    if as_json:
        for report in reports:
            typer.echo(json.dumps(report))
        return
    for report in reports:
        lat = report["latency_ms"]
        typer.echo(f"{report['model']} ({report['model_size_mb']} MB, {report['runtime']}, threads "
                   f"{report['threads']}): init {report['init_ms']:.1f} ms, first "
                   f"{report['first_inference_ms']:.1f} ms, warm-up avg {report['warmup_avg_ms']} ms\n  "
                   f"{report['count']} runs: min {lat['min']:.2f} max {lat['max']:.2f} mean {lat['mean']:.2f} "
                   f"std {lat['std']:.2f} p50 {lat['p50']:.2f} p90 "
                   f"{lat['p90']:.2f} p95 {lat['p95']:.2f} p99 {lat['p99']:.2f} ms; {report['throughput_ips']} "
                   f"inferences/s; this model: RSS +{report['rss_delta_mb']['init']} MB at init; the process: "
                   f"peak RSS {report['peak_rss_mb']} MB, +{report['rss_delta_mb']['overall']} MB overall")
    if len(reports) > 1:
        typer.echo(b.comparison_table(reports))


def _bench_inputs(pre, files: list[Path]) -> list:
    """Preprocessed photos for ``bench --images``; an unreadable one is named in a one-line error."""
    from .preprocess import ImageError

    inputs = []
    for file in files:
        try:
            inputs.append(pre(file))
        except ImageError as err:
            raise fail(f"{file}: {err}") from None
    return inputs


@app.command()
def learn(
    folder: Annotated[Path, typer.Argument(help="A folder of class folders: a model class name (rose/, "
                                           "common_dandelion/) improves it, any other name adds a class (tulip/), "
                                           "not_a_flower/ holds photos that are no flower.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The adapter file to write (replaced atomically; "
                                      "the daemon's is /var/lib/flowercam/adapter.npz).")],
    model: ModelOpt = None,
    threads: ThreadsOpt = None,
    kind: Annotated[str, typer.Option(help="gate (the default, measured best), residual or prototypes.")
                    ] = "residual",
) -> None:
    """Learn the owner's own photos: embed them with the model, fit an adapter, choose its thresholds by
    cross-validation, write it. Seconds on a Pi; the model itself is never changed."""
    from rich.progress import Progress

    from .adapter import KINDS
    from .fit import Recipe
    from .learn import learn as run_learn

    if kind not in KINDS:
        raise fail(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    classifier = open_classifier(model, threads, False)
    failed: list[str] = []
    start = time.perf_counter()
    try:
        with Progress(transient=True, console=_stderr_console()) as progress:
            task = progress.add_task("embedding photos", total=None)
            adapter = run_learn(classifier, folder, Recipe(kind=kind), lambda n: progress.advance(task, n),
                                lambda path, err: failed.append(f"flowercam: {path}: {err}"),
                                lambda n: progress.update(task, total=n))
        adapter.save(out)
    except FlowercamError as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"cannot write {out}: {err.strerror or err}") from None
    for line in failed:
        typer.echo(line, err=True)
    added = ", ".join(adapter.added) or "none"
    chosen = adapter.thresholds["center"]
    typer.echo(f"{out}: {sum(adapter.photos.values())} photos of {len(adapter.photos)} classes learned in "
               f"{time.perf_counter() - start:.1f} s ({len(failed)} unreadable); classes added: {added}; "
               f"uncertain below {chosen['uncertain_below']:g} or similarity below {chosen['similarity_below']}")


@app.command()
def daemon(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")] = Path(
        "/etc/flowercam/flowercam.toml"),
    check_config: Annotated[bool, typer.Option("--check-config", help="Only check the config and the model it "
                                               "names (exit 0 or 2), e.g. before systemctl reload.")] = False,
) -> None:
    """Run the camera-classification daemon (systemd Type=notify): events as JSON Lines on stdout.
    SIGHUP (systemctl reload) re-reads the config and the model."""
    import logging

    from .daemon import Daemon, Signals, classifier_for

    signals = Signals().install()  # first: a SIGTERM while the model loads still stops cleanly
    from .config import load_config, network_peers
    from .events import EventWriter

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .sources import check_backend

    try:
        cfg = load_config(config)
        check_backend(cfg.source.uri)
        classifier = classifier_for(cfg)
    except FlowercamError as err:  # a bad config, model, adapter or capture library
        raise fail(str(err)) from None
    if check_config:
        from .sources import redact

        typer.echo(f"{config}: ok (model {classifier.model.name}, source {redact(cfg.source.uri)})")
        if cfg.model.threads > cores():
            typer.echo(f"note: model.threads = {cfg.model.threads} is capped at this machine's {cores()} cores")
        peers = network_peers(cfg)
        if peers:
            typer.echo(f"note: flowercam.service reaches only loopback; allow {', '.join(peers)} in a drop-in "
                       "(IPAddressAllow=, see systemd/network.conf.example)")
        return
    try:
        events = EventWriter(cfg.events.file)
    except OSError as err:
        raise fail(f"events.file: {err}") from None
    try:
        raise typer.Exit(Daemon(cfg, classifier, events, signals=signals, config_path=config).run())
    except FlowercamError as err:  # e.g. the HTTP port is taken: a setting to change, not to retry
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(str(err), 1) from None
    finally:
        events.close()


def main() -> None:
    """Console-script entry point."""
    from .errors import FlowercamError

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except FlowercamError as err:  # the last net: any of our errors a command did not turn into a line itself
        typer.echo(f"flowercam: error: {err}", err=True)
        sys.exit(2)
