"""The ``flowercam`` Typer app and what its commands share: options, the one-line error, opening a model."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from ..errors import FlowercamError
from ..model.runtime import MAX_DEFAULT_THREADS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Flower classification (Oxford 102) on the device, with latency and memory.")



def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"flowercam {version('flowercam')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("flowercam (not installed)")
        raise typer.Exit()


@app.callback()
def _options(show_version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                        help="Print the version and exit.")] = False) -> None:
    """Flower classification (Oxford 102) on the device, with latency and memory."""


ModelOpt = Annotated[Path | None, typer.Option("--model", "-m", readable=False, help="A .tflite with its .json sidecar "
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

AdapterOpt = Annotated[Path | None, typer.Option("--adapter", "-a", readable=False,
                                                 help="An adapter from flowercam learn: the "
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
    from ..model.classifier import Classifier

    try:
        return Classifier(model, threads, edgetpu, uncertain_below=uncertain_below, crops=crops, adapter=adapter,
                          similarity_below=similarity_below)
    except FlowercamError as err:
        raise fail(str(err)) from None


def stderr_console():
    """A rich console on stderr (progress bars, tables), so stdout stays the results."""
    from rich.console import Console

    return Console(stderr=True)


PLAIN_PROGRESS_FROM = 50  # items


@contextlib.contextmanager
def progress(label: str, total: int | None = None) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Progress on stderr, as (advance by n, set the total): a bar on a terminal, else a plain line at every tenth
    (a pipe, a log, the journal) of a job of at least :data:`PLAIN_PROGRESS_FROM` items (a smaller one is done in a
    moment, and its error, if any, stays the only line)."""
    if sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=True, console=stderr_console()) as bar:
            task = bar.add_task(label, total=total)
            yield (lambda n: bar.advance(task, n)), (lambda n: bar.update(task, total=n))
        return
    state = {"done": 0, "total": total or 0, "shown": -1}

    def advance(n: int) -> None:
        state["done"] += n
        tenth = state["done"] * 10 // state["total"] if state["total"] >= PLAIN_PROGRESS_FROM else -1
        if tenth > state["shown"]:
            state["shown"] = tenth
            typer.echo(f"{label}: {state['done']} of {state['total']} ({10 * tenth} %)", err=True)

    def set_total(n: int) -> None:
        state["total"] = n

    yield advance, set_total
