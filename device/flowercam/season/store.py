"""The sightings database (SQLite, WAL): its schema and migrations, opening it safely, and the questions an owner
asks of it. A sighting is one smoothed-label episode: a class seen from ``start`` to ``end``.

Stdlib only: ``flowercam sightings`` and scripts read it without the camera's dependencies.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MIGRATIONS = {  # user_version -> the statements that bring a database from it to the next version
    0: ("""CREATE TABLE answers (         -- which model and adapter answered
             id INTEGER PRIMARY KEY, model_sha256 TEXT NOT NULL, adapter_sha256 TEXT,
             UNIQUE (model_sha256, adapter_sha256))""",
        """CREATE TABLE sightings (       -- one episode; its row is updated while it lasts
             start REAL NOT NULL, class_index INTEGER NOT NULL, label TEXT NOT NULL,
             end REAL NOT NULL,            -- unix seconds
             day INTEGER NOT NULL,         -- the local date it started, YYYYMMDD
             frames INTEGER NOT NULL, mean_confidence REAL NOT NULL, peak_confidence REAL NOT NULL,
             answers INTEGER NOT NULL REFERENCES answers (id),
             best_frame TEXT,              -- a JPEG beside the database (sightings-frames/NAME.jpg), or NULL
             PRIMARY KEY (start, class_index)) WITHOUT ROWID""",
        "CREATE INDEX sightings_by_day ON sightings (day)",
        "CREATE INDEX sightings_by_label ON sightings (label, day)",
        """CREATE TABLE days (            -- per class and day, kept with every write: what the season asks
             label TEXT NOT NULL, day INTEGER NOT NULL, first REAL NOT NULL, last REAL NOT NULL,
             seconds REAL NOT NULL, sightings INTEGER NOT NULL, peak REAL NOT NULL, best_frame TEXT,
             PRIMARY KEY (label, day)) WITHOUT ROWID"""),
}


class SightingsError(Exception):
    """The database cannot be used (the camera goes on without recording)."""


@dataclass(frozen=True)
class Sighting:
    """One episode, as stored."""

    label: str
    class_index: int
    start: float
    end: float
    frames: int
    mean_confidence: float
    peak_confidence: float
    model_sha256: str
    adapter_sha256: str | None = None
    best_frame: str | None = None

    def row(self) -> dict:
        return {**self.__dict__, "day": day_number(local_day(self.start))}


def local_day(t: float) -> str:
    """The local date of a time, YYYY-MM-DD."""
    return datetime.datetime.fromtimestamp(t).date().isoformat()


def day_number(day: str) -> int:
    """YYYY-MM-DD -> YYYYMMDD (how a day is stored)."""
    return int(day.replace("-", ""))


def day_text(number: int) -> str:
    text = str(number)
    return f"{text[:4]}-{text[4:6]}-{text[6:]}"


def connect(path: Path, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection in WAL mode (readers never wait for the writer; a kill loses only what was not committed)."""
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, one version at a time, each in its own transaction."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SightingsError(f"made by a newer flowercam (schema {version}, this one knows {SCHEMA_VERSION})")
    while version < SCHEMA_VERSION:
        db.execute("BEGIN IMMEDIATE")
        for statement in MIGRATIONS[version]:
            db.execute(statement)
        version += 1
        db.execute(f"PRAGMA user_version = {version}")
        db.execute("COMMIT")


def open_store(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """Open (or create) the database for writing; a file that is not a sound database is moved aside
    (``NAME.corrupt-TIME``) and a fresh one started. Returns the connection and what was done about a bad file
    (None if nothing). Raises SightingsError when it cannot be opened at all (e.g. a read-only folder)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file where the folder should be, a folder this user may not write
        raise SightingsError(f"cannot make {path.parent}: {err.strerror or err}") from None
    note = None
    try:
        db = connect(path)
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            db.close()
            raise sqlite3.DatabaseError(check)
    except sqlite3.DatabaseError as err:  # not a database, or damaged
        if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
            raise SightingsError(f"{path}: locked by another program") from None
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        except OSError as move:
            raise SightingsError(f"{path} is damaged ({err}) and cannot be moved aside: {move.strerror}") from None
        note = f"{path.name} was damaged ({str(err)[:80]}): moved aside to {aside.name}, a fresh one started"
        log.error("sightings: %s", note)
        db = connect(path)
    try:
        migrate(db)
    except sqlite3.Error as err:
        raise SightingsError(f"{path}: {err}") from None
    return db, note


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection for questions (``flowercam sightings``, the page): never creates or changes it."""
    if not path.is_file():
        raise SightingsError(f"no sightings database at {path}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
        db.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error as err:
        raise SightingsError(f"{path}: {err}") from None
    return db


# -- the questions ---------------------------------------------------------------------------------------------
def season(db: sqlite3.Connection, since: str | None = None, label: str | None = None) -> list[dict]:
    """Per class (this season: from ``since``, a date, or the start of this year): first and last seen, days
    seen, hours present, sightings, and the best frame (the most confident one); most recent first."""
    since = day_number(since or f"{datetime.date.today().year}-01-01")
    where, args = "day >= ?" + (" AND label = ?" if label else ""), (since, label) if label else (since,)
    rows = db.execute(f"""SELECT label, MIN(first), MAX(last), COUNT(*), SUM(seconds) / 3600.0, SUM(sightings)
                          FROM days WHERE {where} GROUP BY label ORDER BY MAX(last) DESC""", args).fetchall()
    best = dict(db.execute(f"""SELECT label, best_frame FROM (SELECT label, best_frame, MAX(peak) FROM days
                               WHERE {where} AND best_frame IS NOT NULL GROUP BY label)""", args).fetchall())
    return [{"label": name, "first_seen": first, "last_seen": last, "days_seen": days,
             "hours_present": round(hours, 2), "sightings": count, "best_frame": best.get(name)}
            for name, first, last, days, hours, count in rows]


def this_season(db: sqlite3.Connection) -> dict:
    """What Home Assistant is told: per class this year first and last seen (ISO dates) and whether it was seen
    today, and the classes seen today."""
    today = day_number(datetime.date.today().isoformat())
    seen_today = {name for (name,) in db.execute("SELECT label FROM days WHERE day = ?", (today,))}
    classes = {row["label"]: {"first_seen": local_day(row["first_seen"]), "last_seen": local_day(row["last_seen"]),
                              "seen_today": row["label"] in seen_today} for row in season(db)}
    return {"year": datetime.date.today().year, "seen_today": sorted(seen_today), "classes": classes}


def days_seen(db: sqlite3.Connection, year: int) -> dict[str, list[str]]:
    """Per class, the days of ``year`` it was seen (for the page's strip)."""
    out: dict[str, list[str]] = {}
    for name, day in db.execute("SELECT label, day FROM days WHERE day BETWEEN ? AND ? ORDER BY day",
                                (year * 10000 + 101, year * 10000 + 1231)):
        out.setdefault(name, []).append(day_text(day))
    return out


def episodes(db: sqlite3.Connection, day: str | None = None, label: str | None = None, limit: int = 1000
             ) -> list[dict]:
    """The sightings of a day and/or of a class, in time order."""
    conditions = [(c, v) for c, v in (("day = ?", day and day_number(day)), ("label = ?", label)) if v]
    where = " AND ".join(c for c, _ in conditions) or "1"
    rows = db.execute(
        f"""SELECT start, end, label, class_index, frames, mean_confidence, peak_confidence, model_sha256,
                   adapter_sha256, best_frame FROM sightings JOIN answers ON answers.id = sightings.answers
            WHERE {where} ORDER BY start LIMIT ?""", (*(v for _, v in conditions), limit)).fetchall()
    names = ("start", "end", "label", "class_index", "frames", "mean_confidence", "peak_confidence", "model_sha256",
             "adapter_sha256", "best_frame")
    return [dict(zip(names, row)) for row in rows]


COLUMNS = ("start", "class_index", "label", "end", "day", "frames", "mean_confidence", "peak_confidence", "answers",
           "best_frame")


def upsert(db: sqlite3.Connection, rows: list[dict]) -> None:
    """Store episodes (new ones, or the newer state of ones already stored) and their days' summaries, in one
    transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        answers = {}
        for key in {(r["model_sha256"], r["adapter_sha256"]) for r in rows}:
            db.execute("INSERT OR IGNORE INTO answers (model_sha256, adapter_sha256) VALUES (?, ?)", key)
            answers[key] = db.execute("SELECT id FROM answers WHERE model_sha256 = ? AND adapter_sha256 IS ?",
                                      key).fetchone()[0]
        updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:] if c != "best_frame")
        db.executemany(
            f"INSERT INTO sightings ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
            f"ON CONFLICT (start, class_index) DO UPDATE SET {updates}, "
            "best_frame = COALESCE(excluded.best_frame, best_frame)",
            [tuple(answers[(r["model_sha256"], r["adapter_sha256"])] if c == "answers" else r.get(c)
                   for c in COLUMNS) for r in rows])
        db.executemany(
            """INSERT OR REPLACE INTO days
               SELECT label, day, MIN(start), MAX(end), SUM(end - start), COUNT(*), MAX(peak_confidence),
                      (SELECT best_frame FROM sightings AS b WHERE b.label = s.label AND b.day = s.day
                       AND best_frame IS NOT NULL ORDER BY peak_confidence DESC LIMIT 1)
               FROM sightings AS s WHERE label = ? AND day = ? GROUP BY label, day""",
            sorted({(r["label"], r["day"]) for r in rows}))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def prune(db: sqlite3.Connection, keep_days: float, now: float) -> list[str]:
    """Delete the sightings (and days) more than ``keep_days`` old; the best frames they named."""
    cutoff = day_number(local_day(now - keep_days * 86400))
    frames = [r[0] for r in db.execute("SELECT best_frame FROM sightings WHERE day < ? AND best_frame IS NOT NULL",
                                       (cutoff,))]
    db.execute("DELETE FROM sightings WHERE day < ?", (cutoff,))
    db.execute("DELETE FROM days WHERE day < ?", (cutoff,))
    return frames
