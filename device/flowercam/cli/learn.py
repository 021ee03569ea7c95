"""``flowercam learn``: teach the model the owner's photos (an adapter on top of it)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from ..errors import FlowercamError
from ..learning.fit import DEFAULT_KIND
from ..model.adapter import KINDS
from .app import (
    ModelOpt,
    ThreadsOpt,
    app,
    fail,
    open_classifier,
    progress,
)


@app.command()
def learn(
    folder: Annotated[Path, typer.Argument(readable=False, help="A folder of class folders: a model class name (rose/, "
                                           "common_dandelion/) improves it, any other name adds a class (tulip/), "
                                           "not_a_flower/ holds photos that are no flower.")],
    out: Annotated[Path, typer.Option("--out", "-o", readable=False,
                                      help="The adapter file to write (replaced atomically; "
                                      "the daemon's is /var/lib/flowercam/adapter.npz).")],
    model: ModelOpt = None,
    threads: ThreadsOpt = None,
    kind: Annotated[str, typer.Option(help=f"The adapter: {', '.join(KINDS)} (measured: bench/results/"
                                      "learning.md).")] = DEFAULT_KIND,
) -> None:
    """Learn the owner's own photos: embed them with the model, fit an adapter and the rule that keeps its answers
    honest (a taught class must resemble the owner's photos of it), write it. Seconds on a Pi; the model itself is
    never changed."""
    from ..learning.fit import Recipe
    from ..learning.learn import few_photos
    from ..learning.learn import learn as run_learn

    if kind not in KINDS:
        raise fail(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    _check_out(out)
    classifier = open_classifier(model, threads, False)
    failed: list[str] = []
    start = time.perf_counter()
    try:
        with progress("embedding photos") as (advance, set_total):
            adapter = run_learn(classifier, folder, Recipe(kind=kind), advance,
                                lambda path, err: failed.append(f"flowercam: {path}: {err}"), set_total)
        adapter.save(out)
    except FlowercamError as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"cannot write {out}: {err.strerror or err}") from None
    for line in failed:
        typer.echo(line, err=True)
    added = ", ".join(adapter.added) or "none"
    typer.echo(f"{out}: {sum(adapter.photos.values())} photos of {len(adapter.photos)} classes learned in "
               f"{time.perf_counter() - start:.1f} s ({len(failed)} unreadable); classes added: {added}")
    advice = few_photos(adapter)
    if advice:
        typer.echo(f"flowercam: {advice}", err=True)


def _check_out(out: Path) -> None:
    """Refuse, before any work, an adapter path that cannot be written: a folder, or a folder not writable."""
    if out.is_dir():
        raise fail(f"--out {out} is a folder: name the adapter file, e.g. {out / 'adapter.npz'}")
    parent = next((p for p in out.absolute().parents if p.exists()), Path("/"))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise fail(f"cannot write {out}: {parent} is not a folder this user may write to")
