"""The ``build-models`` command line (workstation side): data, training, export."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from .presets import PRESETS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Build flowercam models: check data, train, evaluate, export to TFLite.")

DataOpt = Annotated[Path | None, typer.Option("--data", "-d", envvar="FLOWERCAM_DATA",
                                              help="Oxford 102 folder (official layout), or a folder of class "
                                              "folders (DATA/<class>/*.jpg, or DATA/train|val|test/<class>/).")]
SplitOpt = Annotated[str, typer.Option("--split", help="Class folders without train/ test/ folders: train/val/test "
                                       "shares of each class.")]
SplitSeedOpt = Annotated[int, typer.Option("--split-seed", help="Seed of that split.")]
StrategyOpt = Annotated[str, typer.Option(
    "--strategy", help="tf.distribute strategy: default (one device), mirrored (this machine's GPUs, or logical "
    "CPU devices without one), multiworker (the machines of TF_CONFIG; see README).")]
CpuReplicasOpt = Annotated[int, typer.Option("--cpu-replicas", min=1, help="mirrored without a GPU: logical CPU "
                                             "devices to mirror over.")]


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        ratios = tuple(float(part) for part in text.split("/"))
    except ValueError:
        ratios = ()
    if len(ratios) != 3:
        raise fail(f"--split {text!r}: expected three shares like 0.7/0.15/0.15", 2)
    return ratios  # type: ignore[return-value]


@app.callback()
def _options(tf_logs: Annotated[bool, typer.Option("--tf-logs", envvar="FLOWERCAM_TF_LOGS",
                                                  help="Show TensorFlow's own start-up and C++ log lines.")] = False,
             ) -> None:
    """Options for every command."""
    if tf_logs:
        import os

        from .console import TF_LOGS_ENV

        os.environ[TF_LOGS_ENV] = "1"


def _start_tensorflow(strategy: str = "default", cpu_replicas: int = 2):
    """Start TensorFlow quietly under a distribution strategy and say once which device it uses (commands that
    need it call this first); returns the :class:`~build_models.distribute.Cluster`."""
    from .console import quiet_tensorflow, say

    made: dict = {}

    def prepare() -> None:
        from .distribute import DistributionError, make_cluster

        try:
            made["cluster"] = make_cluster(strategy, cpu_replicas)
        except DistributionError as err:
            made["error"] = err

    say(quiet_tensorflow(prepare))
    if "error" in made:
        raise fail(str(made["error"]), 2)
    if made["cluster"].distributed:
        say(made["cluster"].describe())
    return made["cluster"]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"build-models: error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def data(
    data_dir: DataOpt = None,
    md5: Annotated[Path | None, typer.Option(help="Check files against an originals.md5 list.")] = None,
    skip_decode: Annotated[bool, typer.Option("--skip-decode", help="Do not decode every image.")] = False,
    split: SplitOpt = "0.7/0.15/0.15",
    split_seed: SplitSeedOpt = 0,
) -> None:
    """Check the dataset: layout, splits, photos per class, unreadable files, duplicates across splits, classes
    too small to train, imbalance. Exit 0 only if whole."""
    from .console import progress
    from .data import check_images, check_md5

    ds = _load_data(data_dir, ratios=_ratios(split), seed=split_seed)
    samples = list(ds.train + ds.val + ds.test)
    typer.echo(f"dataset: {ds.root}")
    problems: list[str] = []
    if ds.split_record is not None:
        from .folders import Split, data_report

        lines, problems = data_report(ds, Split.from_json(ds.split_record))
        typer.echo("\n".join(lines))
    else:
        typer.echo("layout: Oxford 102 (official files)")
        typer.echo(f"classes: {ds.num_classes}")
        for name in ("train", "val", "test"):
            split_samples = ds.split(name)
            counts = [0] * ds.num_classes
            for s in split_samples:
                counts[s.label] += 1
            typer.echo(f"{name:5s}: {len(split_samples):5d} images, per class min {min(counts)} max {max(counts)}")
    if not skip_decode:
        with progress("decoding", len(samples)) as advance:
            decode_problems, sizes = check_images(samples, advance, ds.root if ds.split_record else None)
        problems += decode_problems
        typer.echo(f"image size: width {sizes[0]}..{sizes[2]}, height {sizes[1]}..{sizes[3]} px")
    if md5 is not None:
        problems += check_md5(samples, md5)
    for problem in problems[:20]:
        typer.echo(f"problem: {problem}", err=True)
    if len(problems) > 20:
        typer.echo(f"problem: … and {len(problems) - 20} more", err=True)
    if problems:
        raise fail(f"{len(problems)} problem(s) found")
    typer.echo("dataset is whole")


@app.command()
def presets() -> None:
    """The training presets: backbone, input size, weights, views, epochs, learning rates, augmentation."""
    from .presets import describe

    for name, config in PRESETS.items():
        typer.echo(f"{name:18s} {describe(config)}")


@app.command("make-test-data")
def make_test_data(
    out: Annotated[Path, typer.Argument(help="Folder to write.")],
    classes: Annotated[int, typer.Option(min=1, help="Number of classes.")] = 3,
    per_class: Annotated[int, typer.Option(min=4, help="Images per class (split into train, val and test).")] = 8,
    tgz: Annotated[bool, typer.Option(help="Pack jpg/ into 102flowers.tgz.")] = False,
) -> None:
    """Write a small synthetic dataset in the official format."""
    from .synthetic import write_dataset

    write_dataset(out, classes, per_class, as_tgz=tgz)
    typer.echo(f"wrote {classes * per_class} images of {classes} classes to {out}")


def _load_data(data_dir: Path | None, run: Path | None = None, ratios: tuple[float, float, float] | None = None,
               seed: int | None = None):
    """The dataset (Oxford layout or class folders; for class folders, split as ``run`` recorded it). Without
    ``--data``, a run's commands use the data it was trained on (``RUN/data.json``)."""
    from .data import DatasetError
    from .datasets import load_dataset, recorded_data

    try:
        return load_dataset(data_dir or recorded_data(run), run, ratios, seed)
    except DatasetError as err:
        raise fail(str(err)) from None


@app.command("train")
def train_cmd(
    preset: Annotated[str, typer.Argument(metavar="PRESET", help=f"One of: {', '.join(PRESETS)} (build-models "
                                          "presets describes them).")],
    data_dir: DataOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The run folder itself (default: "
                                             "runs/PRESET-PROTOCOL); resumed if it exists.")] = None,
    protocol: Annotated[str, typer.Option(help="paper (train, select on val) or trainval.")] = "paper",
    weights: Annotated[str | None, typer.Option(help="imagenet, none, or a weights file [default: the "
                                                "preset's]", show_default=False)] = None,
    size: Annotated[int | None, typer.Option(help="Input size in pixels (default: the preset's).")] = None,
    views: Annotated[int | None, typer.Option(help="Augmented views per image in the cache [default: the "
                                              "preset's]", show_default=False)] = None,
    phase1_epochs: Annotated[int | None, typer.Option(help="Most epochs of phase 1, the new head [default: the "
                                                      "preset's]", show_default=False)] = None,
    phase2_epochs: Annotated[int | None, typer.Option(help="Most epochs of phase 2, fine-tuning [default: the "
                                                      "preset's]", show_default=False)] = None,
    cache: Annotated[bool, typer.Option(help="Train on cached frozen features.")] = True,
    max_per_class: Annotated[int | None, typer.Option(help="Use at most this many images per class and "
                                                      "split (quick runs).")] = None,
    split: SplitOpt = "0.7/0.15/0.15",
    split_seed: SplitSeedOpt = 0,
    strategy: StrategyOpt = "default",
    cpu_replicas: CpuReplicasOpt = 2,
) -> None:
    """Train a preset (two phases, cached features) and evaluate it; writes a run folder.

    The preset ``tiny`` runs the whole chain on 4 images per class in about a minute: a check of the set-up.
    Under --strategy multiworker run the same command on every machine (TF_CONFIG differs): worker 0 writes the
    run folder; if a worker stops, all stop, and the same commands started again resume at the last epoch.
    """
    if preset not in PRESETS:  # before TensorFlow loads (seconds)
        raise fail(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)} (build-models presets)", 2)
    cluster = _start_tensorflow(strategy, cpu_replicas)
    from .presets import get_preset
    from .run import RunFolderError, start_run

    try:
        config = get_preset(preset, protocol=protocol, size=size, views=views, phase1_epochs=phase1_epochs,
                            phase2_epochs=phase2_epochs, max_per_class=max_per_class, cache=cache,
                            weights=None if weights == "none" else weights)
    except ValueError as err:
        raise fail(str(err), 2) from None
    if weights == "none":
        from dataclasses import replace

        config = replace(config, weights=None)
    run_dir = out or Path("runs") / f"{config.preset}-{config.protocol}"
    dataset = _load_data(data_dir, run_dir, _ratios(split), split_seed)
    from .data import DatasetError
    from .distribute import DistributionError, lost_worker

    try:
        metrics = start_run(config, dataset, run_dir, cluster)
    except RunFolderError as err:
        raise fail(str(err), 2) from None
    except (DatasetError, DistributionError) as err:
        raise fail(str(err)) from None
    except Exception as err:
        if not lost_worker(cluster, err):
            raise
        raise fail(f"worker {cluster.worker}: the cluster lost a worker ({type(err).__name__}); start every "
                   "worker's command again: training resumes at the last finished epoch", 3) from None
    if metrics is None:
        typer.echo(f"worker {cluster.worker}: done; worker 0 (the chief) writes the run folder "
                   f"(this worker's shard and checkpoints: {cluster.write_dir(run_dir)})")
        return
    from .datasets import record_data

    record_data(run_dir, data_dir)
    typer.echo(f"{run_dir}: val top-1 {metrics['val']['accuracy']:.2%}, test top-1 "
               f"{metrics['test']['accuracy']:.2%}, trained in {metrics['train_wall_s']:.0f} s")
    typer.echo(f"  model:   {run_dir / 'model.keras'}\n  metrics: {run_dir / 'metrics.json'}\n"
               f"  plots:   {run_dir / 'training_curves.png'}, {run_dir / 'confusion_test.png'}\n"
               f"next: build-models export {run_dir}   (then report, explain)")


@app.command()
def evaluate(run: Annotated[Path, typer.Argument(help="Run folder.")], data_dir: DataOpt = None) -> None:
    """Recompute a run's metrics (val and test) and its plots."""
    _start_tensorflow()
    from .run import evaluate_run

    for stale in run.glob("logits_*.npz"):
        stale.unlink()
    metrics = evaluate_run(run, _load_data(data_dir, run))
    typer.echo(f"{run}: val top-1 {metrics['val']['accuracy']:.2%}, test top-1 {metrics['test']['accuracy']:.2%}")


@app.command("add-embedding")
def add_embedding(model: Annotated[Path, typer.Argument(help="An exported .tflite (with its .json sidecar).")]) -> None:
    """Give an exported model the embedding output (the same weights; outputs ordered classes, similarity,
    embedding) for on-device learning; rewrites the model, its metadata and its sidecar in place."""
    from .outputs import OutputsError, add_embedding_output

    try:
        sidecar = add_embedding_output(model)
    except OutputsError as err:
        raise fail(str(err), 2) from None
    typer.echo(f"{model}: outputs {sidecar['output']['shape']} classes, similarity, embedding "
               f"{sidecar['embedding']['shape']}; next: build-models anchors {model} --data DIR")


@app.command()
def anchors(
    model: Annotated[Path, typer.Argument(help="An exported .tflite with an embedding output.")],
    data_dir: DataOpt = None,
    split: Annotated[str, typer.Option(help="The split whose photos are the anchors.")] = "train",
) -> None:
    """Write MODEL.anchors.npz: the model's own training photos, embedded by the device's code. flowercam learn
    fits its adapters with them, so that the classes nobody taught it keep the model's answers."""
    from flowercam.classifier import Classifier
    from flowercam.learn import write_anchors

    from .console import progress

    dataset = _load_data(data_dir)
    samples = dataset.split(split)
    classifier = Classifier(model, threads=None)
    with progress("embedding anchors", len(samples)) as advance:
        path = write_anchors(classifier, [s.path for s in samples], [s.label for s in samples], advance)
    typer.echo(f"{path} ({path.stat().st_size / 1e6:.2f} MB, {len(samples)} {split} photos)")


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    data_dir: DataOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: RUN/export).")] = None,
    calibration_images: Annotated[int, typer.Option(help="Training images calibrating int8.")] = 300,
    calibration_folder: Annotated[Path | None, typer.Option(help="Add your own images (e.g. camera frames).")] = None,
    temperature_from: Annotated[Path | None, typer.Option(
        help="Take the softmax temperature from this sidecar, or fit it on the val logits of this run folder (e.g. "
             "the paper-protocol run of the same preset), instead of fitting it on val; use it for trainval runs, "
             "whose val is training data.")] = None,
    edgetpu: Annotated[bool, typer.Option("--edgetpu", help="Also compile the int8 model for the Coral Edge TPU "
                                          "(edgetpu_compiler, where it is on PATH; else the command to run) and "
                                          "write the compiled model's sidecar.")] = False,
    similarity: Annotated[bool, typer.Option(
        help="Add the similarity output (the photo's cosine similarity to the nearest class mean of the training "
             "features: the device answers 'uncertain' on species it does not know) and the embedding output "
             "(flowercam learn needs it).")] = True,
    uncertain_below: Annotated[float, typer.Option(min=0.0, max=1.0, help="Default threshold on the calibrated "
                                                   "top-1 probability.")] = 0.5,
    similarity_below: Annotated[float | None, typer.Option(
        min=-1.0, max=1.0, help="Default threshold on the similarity [default: the one 5 % of the val photos fall "
        "below]", show_default=False)] = None,
    crops: Annotated[str, typer.Option(help="Default crop set of the device: center or multi.")] = "center",
    other_crops: Annotated[str | None, typer.Option(
        help="Thresholds of the other crop set, CROPS=UNCERTAIN/SIMILARITY, e.g. center=0.775/0.51.")] = None,
    chosen_on: Annotated[str, typer.Option(help="Where the thresholds were chosen (for the model card).")] = "",
    scores: Annotated[str, typer.Option(help="probabilities: softmax with the temperature inside the model, "
                                        "so that any TFLite client reads calibrated scores; logits: the device "
                                        "applies it.")] = "probabilities",
) -> None:
    """Export a run to TFLite float32, float16 and int8 with sidecars, measured with the interpreter."""
    _start_tensorflow()
    import json

    from flowercam.preprocess import CROP_SETS

    from .export import UncertainRule, export_run

    if crops not in CROP_SETS:
        raise fail(f"--crops {crops!r}: expected one of {', '.join(CROP_SETS)}", 2)
    if scores not in ("probabilities", "logits"):
        raise fail(f"--scores {scores!r}: expected probabilities or logits", 2)
    from .metadata import MetadataWriterMissing, check_writers

    try:
        check_writers()
    except MetadataWriterMissing as err:
        raise fail(str(err), 2) from None
    temperature = None
    if temperature_from is not None and temperature_from.is_dir():
        from .export import run_temperature

        temperature = run_temperature(temperature_from, _load_data(data_dir))
    elif temperature_from is not None:
        temperature = float(json.loads(temperature_from.read_text())["temperature"])
    by_crops = {}
    if other_crops:
        try:
            name, _, values = other_crops.partition("=")
            below, _, sim_below = values.partition("/")
            by_crops[name] = {"uncertain_below": float(below), "similarity_below": float(sim_below) if sim_below
                              else None}
        except ValueError:
            raise fail(f"--other-crops {other_crops!r}: expected e.g. center=0.775/0.51", 2) from None
        if name not in CROP_SETS:
            raise fail(f"--other-crops {other_crops!r}: {name!r} is not a crop set", 2)
    rule = UncertainRule(uncertain_below, similarity, similarity_below, crops, chosen_on, by_crops)
    source = f"fitted on the val split of {temperature_from}" if temperature_from and temperature_from.is_dir() \
        else f"from {temperature_from.name}" if temperature_from else "given"
    report = export_run(run, _load_data(data_dir, run), out, calibration_images, calibration_folder, temperature,
                        edgetpu=edgetpu, rule=rule, temperature_source=source, scores=scores)
    typer.echo(f"{'model':10s} {'MB':>7s} {'val':>7s} {'test':>7s} {'agree':>7s}")
    typer.echo(f"{'keras':10s} {'':7s} {report['keras']['val']:7.2%} {report['keras']['test']:7.2%}")
    for precision, m in report["models"].items():
        typer.echo(f"{precision:10s} {m['size_mb']:7.2f} {m['val_top1']:7.2%} {m['test_top1']:7.2%} "
                   f"{m['test_agreement_with_keras']:7.2%}")
    typer.echo(f"Edge TPU (int8): {report['models']['int8']['edgetpu_readiness']}")
    if "edgetpu_compiler" in report:
        typer.echo(f"Edge TPU compiler: {report['edgetpu_compiler']['summary']}")
    cal = report["calibration"]
    typer.echo(f"temperature {cal['temperature']:.3f} ({cal['fitted_on']}): test ECE {cal['test_ece_before']:.4f}"
               f" -> {cal['test_ece_after']:.4f}")
    for warning in report.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    folder = Path(report["out"])
    int8 = folder / report["models"]["int8"]["file"]
    typer.echo(f"wrote {folder}/: {', '.join(Path(m['file']).name for m in report['models'].values())} (each with "
               f"its .json sidecar), labels.txt, export_report.json\n"
               f"next: flowercam classify --model {int8} photo.jpg   (or flowercam evaluate --model {int8} DIR)")


@app.command("compile")
def compile_cmd(
    model: Annotated[Path, typer.Argument(help="An exported int8 .tflite (with its .json sidecar).")],
) -> None:
    """Compile an exported int8 model for the Coral Edge TPU (edgetpu_compiler) and write the compiled model's
    sidecar; where the compiler was run elsewhere, write the sidecar of MODEL_edgetpu.tflite beside MODEL."""
    from flowercam.sidecar import ModelError

    from .export import compile_edgetpu, write_compiled_sidecar

    compiled = model.with_name(model.stem + "_edgetpu.tflite")
    try:
        if compiled.is_file() and not shutil.which("edgetpu_compiler"):
            typer.echo(f"wrote {write_compiled_sidecar(model, compiled)}")
            return
        done = compile_edgetpu(model)
    except ModelError as err:
        raise fail(str(err)) from None
    typer.echo(done["summary"])
    if done["compiled"] is None:
        raise typer.Exit(1)


@app.command("lr-find")
def lr_find(
    preset: Annotated[str, typer.Argument(help="Preset name.")],
    data_dir: DataOpt = None,
    out: Annotated[Path, typer.Option(help="Folder for the PNG and JSON.")] = Path("runs/lr-find"),
    size: Annotated[int | None, typer.Option(help="Input size in pixels [default: the preset's]",
                                             show_default=False)] = None,
    max_per_class: Annotated[int | None, typer.Option(help="Use at most this many images per class (quick "
                                                      "runs) [default: all]", show_default=False)] = None,
) -> None:
    """LR range test of the head on frozen features: loss-vs-LR PNG and the suggested CLR band."""
    _start_tensorflow()
    from .lr_find import run_lr_find
    from .presets import get_preset

    config = get_preset(preset, size=size, max_per_class=max_per_class)
    band = run_lr_find(config, _load_data(data_dir), out)
    typer.echo(f"suggested CLR band: base_lr {band[0]:.2e}, max_lr {band[1]:.2e} (plot: {out / 'lr_range_test.png'})")


@app.command()
def explain(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    images: Annotated[list[Path], typer.Argument(help="Photos, or test image ids like 1315.")],
    data_dir: DataOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the PNGs (default: RUN/explain).")] = None,
    lime_samples: Annotated[int, typer.Option(help="LIME perturbations per image.")] = 300,
) -> None:
    """Grad-CAM, LIME and nearest training images for photos; writes PNGs and index.md."""
    _start_tensorflow()
    import json

    from .console import progress
    from .report import explain_image

    dataset = _load_data(data_dir, run)
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
    _start_tensorflow()
    from .report import report_run

    typer.echo(f"wrote {report_run(run, _load_data(data_dir, run), out, gallery)}")


BUILD_PACKAGES = ("tensorflow", "keras", "scipy", "sklearn", "matplotlib", "rich", "lime")


def main() -> None:
    """Console-script entry point."""
    from flowercam.errors import FlowercamError

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except FlowercamError as err:  # the last net: any of our errors a command did not turn into a line itself
        typer.echo(f"build-models: error: {err}", err=True)
        sys.exit(2)
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in BUILD_PACKAGES:
            typer.echo(f"build-models: error: {err.name} is not installed; build-models needs the [build] extra: "
                       "pip install 'flowercam[build]'", err=True)
            sys.exit(2)
        raise
