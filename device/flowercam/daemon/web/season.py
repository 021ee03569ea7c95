"""The Season card's requests (with ``[sightings] db`` on): ``GET /season`` (per class this year: first and last
seen, days seen, hours present, the days it was seen, its best frame), ``GET /season?class=NAME`` (that class's
sightings), ``GET /season/frames/<name>.jpg`` (a best frame). Read-only: the recorder is the only writer."""

from __future__ import annotations

import contextlib
import datetime
import re
from pathlib import Path
from urllib.parse import parse_qs

from ...season.recorder import frames_folder
from ...season.store import SightingsError, days_seen, episodes, read_only, season

FRAME = re.compile(r"^[0-9.]+-\d+\.jpg$")  # a best frame's name: the episode's key


def get(db: Path, path: str, query: str) -> tuple[int, dict | bytes]:
    """(status, a JSON value or JPEG bytes)."""
    parts = path.strip("/").split("/")
    if parts == ["season"]:
        try:
            with contextlib.closing(read_only(db)) as connection:
                wanted = parse_qs(query).get("class", [None])[0]
                if wanted:
                    return 200, {"class": wanted, "sightings": episodes(connection, label=wanted)[-200:]}
                year = datetime.date.today().year
                seen = days_seen(connection, year)
                classes = [{**row, "days": seen.get(row["label"], []),
                            "best_frame": _url(row["best_frame"])} for row in season(connection)]
                return 200, {"year": year, "classes": classes}
        except SightingsError as err:  # not written yet (no sighting so far), or unreadable
            return 200, {"year": datetime.date.today().year, "classes": [], "note": str(err)}
    if len(parts) == 3 and parts[1] == "frames" and FRAME.fullmatch(parts[2]):
        frame = frames_folder(db) / parts[2]
        if frame.is_file():
            return 200, frame.read_bytes()
    return 404, {"error": "not found"}


def _url(best_frame: str | None) -> str | None:
    return None if best_frame is None else "/season/frames/" + best_frame.rpartition("/")[2]
