"""``build-models export`` and ``compile`` (and ``add-embedding``, ``anchors``): a run to the device's models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from .cli_app import (
    DataOpt,
    app,
    dataset_or_fail,
    fail,
    start_tensorflow,
)


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
    from flowercam.learning.learn import write_anchors
    from flowercam.model.classifier import Classifier

    from .console import progress

    dataset = dataset_or_fail(data_dir)
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
    start_tensorflow()

    from flowercam.model.preprocess import CROP_SETS

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
    temperature, source = _temperature(temperature_from, data_dir)
    rule = UncertainRule(uncertain_below, similarity, similarity_below, crops, chosen_on, _other_crops(other_crops))
    _print_report(export_run(run, dataset_or_fail(data_dir, run), out, calibration_images, calibration_folder,
                             temperature, edgetpu=edgetpu, rule=rule, temperature_source=source, scores=scores))


def _temperature(temperature_from: Path | None, data_dir: Path | None) -> tuple[float | None, str]:
    """The temperature ``--temperature-from`` gives (a run folder's val, or a sidecar) and where it came from."""
    if temperature_from is None:
        return None, "given"
    if temperature_from.is_dir():
        from .export import run_temperature

        return (run_temperature(temperature_from, dataset_or_fail(data_dir)),
                f"fitted on the val split of {temperature_from}")
    try:
        return float(json.loads(temperature_from.read_text())["temperature"]), f"from {temperature_from.name}"
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise fail(f"--temperature-from {temperature_from}: not a sidecar with a temperature ({err})", 2) from None


def _other_crops(other_crops: str | None) -> dict:
    """``--other-crops CROPS=UNCERTAIN/SIMILARITY`` as {crops: thresholds}."""
    from flowercam.model.preprocess import CROP_SETS

    if not other_crops:
        return {}
    try:
        name, _, values = other_crops.partition("=")
        below, _, sim_below = values.partition("/")
        thresholds = {"uncertain_below": float(below), "similarity_below": float(sim_below) if sim_below else None}
    except ValueError:
        raise fail(f"--other-crops {other_crops!r}: expected e.g. center=0.775/0.51", 2) from None
    if name not in CROP_SETS:
        raise fail(f"--other-crops {other_crops!r}: {name!r} is not a crop set", 2)
    return {name: thresholds}


def _print_report(report: dict) -> None:
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
    from flowercam.model.sidecar import ModelError

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
