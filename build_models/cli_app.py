"""The ``build-models`` Typer app and what its commands share: options, the one-line error, starting
TensorFlow, loading the data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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


def split_ratios(text: str) -> tuple[float, float, float]:
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


def start_tensorflow(strategy: str = "default", cpu_replicas: int = 2):
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


def dataset_or_fail(data_dir: Path | None, run: Path | None = None, ratios: tuple[float, float, float] | None = None,
               seed: int | None = None):
    """The dataset (Oxford layout or class folders; for class folders, split as ``run`` recorded it). Without
    ``--data``, a run's commands use the data it was trained on (``RUN/data.json``)."""
    from .data import DatasetError
    from .datasets import load_dataset, recorded_data

    try:
        return load_dataset(data_dir or recorded_data(run), run, ratios, seed)
    except DatasetError as err:
        raise fail(str(err)) from None
