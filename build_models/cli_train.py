"""``build-models lr-find``, ``train`` and ``evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from flowercam.errors import FlowercamError

from .cli_app import (
    CpuReplicasOpt,
    DataOpt,
    SplitOpt,
    SplitSeedOpt,
    StrategyOpt,
    app,
    dataset_or_fail,
    fail,
    split_ratios,
    start_tensorflow,
)
from .presets import PRESETS


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
    start_tensorflow()
    from .lr_find import run_lr_find
    from .presets import get_preset

    config = get_preset(preset, size=size, max_per_class=max_per_class)
    band = run_lr_find(config, dataset_or_fail(data_dir), out)
    typer.echo(f"suggested CLR band: base_lr {band[0]:.2e}, max_lr {band[1]:.2e} (plot: {out / 'lr_range_test.png'})")


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
    cluster = start_tensorflow(strategy, cpu_replicas)
    from .presets import get_preset

    try:
        config = get_preset(preset, protocol=protocol, size=size, views=views, phase1_epochs=phase1_epochs,
                            phase2_epochs=phase2_epochs, max_per_class=max_per_class, cache=cache,
                            weights=None if weights == "none" else weights)
    except FlowercamError as err:  # a preset setting out of range
        raise fail(str(err), 2) from None
    if weights == "none":
        from dataclasses import replace

        config = replace(config, weights=None)
    run_dir = out or Path("runs") / f"{config.preset}-{config.protocol}"
    dataset = dataset_or_fail(data_dir, run_dir, split_ratios(split), split_seed)
    metrics = _run_or_fail(config, dataset, run_dir, cluster)
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


def _run_or_fail(config, dataset, run_dir: Path, cluster) -> dict | None:
    """Train and evaluate; each way it can fail is one line (a lost worker: exit 3, start again to resume)."""
    from .distribute import lost_worker
    from .run import RunFolderError, start_run

    try:
        return start_run(config, dataset, run_dir, cluster)
    except RunFolderError as err:
        raise fail(str(err), 2) from None
    except FlowercamError as err:  # the dataset, the distribution
        raise fail(str(err)) from None
    except Exception as err:
        if not lost_worker(cluster, err):
            raise
        raise fail(f"worker {cluster.worker}: the cluster lost a worker ({type(err).__name__}); start every "
                   "worker's command again: training resumes at the last finished epoch", 3) from None

@app.command()
def evaluate(run: Annotated[Path, typer.Argument(help="Run folder.")], data_dir: DataOpt = None) -> None:
    """Recompute a run's metrics (val and test) and its plots."""
    start_tensorflow()
    from .run import evaluate_run

    for stale in run.glob("logits_*.npz"):
        stale.unlink()
    metrics = evaluate_run(run, dataset_or_fail(data_dir, run))
    typer.echo(f"{run}: val top-1 {metrics['val']['accuracy']:.2%}, test top-1 {metrics['test']['accuracy']:.2%}")
