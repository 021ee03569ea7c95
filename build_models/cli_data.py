"""``build-models data``, ``presets`` and ``make-test-data``: the dataset and the recipes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .cli_app import (
    DataOpt,
    SplitOpt,
    SplitSeedOpt,
    app,
    dataset_or_fail,
    fail,
    split_ratios,
)
from .presets import PRESETS


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

    ds = dataset_or_fail(data_dir, ratios=split_ratios(split), seed=split_seed)
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
