"""``flowercam sightings``: the season's record, as a table, JSON or CSV (stdlib only, read-only)."""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import JsonOpt, app, fail

DEFAULT_DB = Path("/var/lib/flowercam/sightings.db")


def _when(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _date(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        raise fail(f"{option} {value!r}: expected a date, YYYY-MM-DD") from None


@app.command()
def sightings(
    db: Annotated[Path, typer.Option("--db", readable=False, help="The daemon's [sightings] db.")] = DEFAULT_DB,
    since: Annotated[str | None, typer.Option(help="From this date (YYYY-MM-DD; default: 1 January).")] = None,
    label: Annotated[str | None, typer.Option("--class", help="Only this class.")] = None,
    day: Annotated[str | None, typer.Option(help="That day's sightings, one per line (YYYY-MM-DD).")] = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Comma-separated values with a header row.")] = False,
) -> None:
    """What bloomed this season: per class first and last seen, days seen, hours present (or --day DATE: that
    day's sightings)."""
    from ..season.store import SightingsError, episodes, read_only, season

    since, day = _date(since, "--since"), _date(day, "--day")
    try:
        with contextlib.closing(read_only(db)) as connection:
            rows = episodes(connection, day, label) if day else season(connection, since, label)
    except SightingsError as err:
        raise fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps(rows))
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["label"])
        writer.writeheader()
        writer.writerows(rows)
    elif day:
        for r in rows:
            typer.echo(f"{_when(r['start'])[-5:]}–{_when(r['end'])[-5:]}  {r['label']:28s} {r['frames']:6d} frames  "
                       f"mean {r['mean_confidence']:.0%}, peak {r['peak_confidence']:.0%}")
        typer.echo(f"{len(rows)} sightings on {day}")
    else:
        typer.echo(f"{'class':28s} {'first seen':16s}  {'last seen':16s}  {'days':>4s}  {'hours':>6s}")
        for r in rows:
            typer.echo(f"{r['label']:28s} {_when(r['first_seen'])}  {_when(r['last_seen'])}  {r['days_seen']:4d}  "
                       f"{r['hours_present']:6.1f}")
        if not rows:
            typer.echo("nothing seen yet this season")
