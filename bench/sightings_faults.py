"""The faults of the season's record, against the real daemon (see faults.py, whose table they join): kill -9
during heavy writes ×20, a full disk, a damaged database at start, a database folder the daemon may not write, and
the database locked for 30 s by another program. Each row says whether the camera kept classifying and the events
file kept its heartbeats."""

from __future__ import annotations

import json
import random
import resource
import signal
import sqlite3
import time
from pathlib import Path

from faults import Run, _inferences

HEAVY = {"source": {"fps": 30}, "smoothing": {"window": 1, "enter": 0.3, "stay": 0.3}}
FLOWERS = (Path("device/flowercam/samples/image_01315.jpg"), Path("../shared/flowers102/jpg/image_05399.jpg"))


def alternating(folder: Path) -> Path:
    """A petunia and a sunflower (Oxford test photos) in turn, 10 frames each: three sightings a second at 30 fps."""
    import cv2
    import numpy as np
    from PIL import Image

    path = folder / "alternating.avi"
    folder.mkdir(parents=True, exist_ok=True)
    frames = [np.asarray(Image.open(p).convert("RGB").resize((320, 240)))[..., ::-1].copy() for p in FLOWERS]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for i in range(60):
        writer.write(frames[(i // 10) % 2])
    writer.release()
    return path


def _rows(db: Path) -> tuple[str, int, float | None]:
    with sqlite3.connect(db) as connection:
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
        count, last = connection.execute("SELECT COUNT(*), MAX(end) FROM sightings").fetchone()
    return check, count, last


def _heartbeats(run: Run) -> int:
    return run.text().count('"heartbeat"')


def _row(run: Run, before: int, beats: int, note: str) -> dict:
    during, beats_during = _inferences(run) - before, _heartbeats(run) - beats
    result = run.stop()
    return {**result, "recover_s": None,
            "note": f"{note}; {during} frames classified, {beats_during} heartbeats meanwhile"}


def kill_9(tmp: Path, video: Path, times: int = 20) -> dict:
    rng = random.Random(0)
    folder = tmp / "kill9"
    db, video = folder / "sightings.db", alternating(folder)
    checks, lost = [], []
    for i in range(times):  # one database, a fresh daemon (and notify socket) each time
        run = Run(folder / f"run{i}", str(video), sightings={"db": str(db)}, **HEAVY)
        run.wait_for(lambda run=run: run.get("/healthz")[0] == 200)
        time.sleep(rng.uniform(1.5, 4.0))
        killed = time.time()
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(timeout=30)
        run.notify.close()
        check, count, last = _rows(db)
        checks.append(check)
        lost.append(killed - (last or 0))
    return {"exit": -9, "stop_s": None, "watchdog_max_gap_s": None, "corrupted": sum(c != "ok" for c in checks),
            "stop_event": False, "traceback": False, "recover_s": None,
            "note": f"{times} kills 1.5-4 s into heavy writes (two species in turn, 3 sightings a second): "
                    f"integrity_check ok {checks.count('ok')} of {times}; {count} sightings kept; the newest row "
                    f"{max(lost):.2f} s before the kill at worst"}


def _recording(folder: Path, video: Path) -> tuple[Run, Path, int, int]:
    """A daemon recording into ``folder``/sightings.db, 2 s after its first row: (run, db, inferences, beats)."""
    db = folder / "sightings.db"
    run = Run(folder, str(video), sightings={"db": str(db)}, **HEAVY)
    run.wait_for(lambda: db.exists() and db.stat().st_size > 0)
    time.sleep(2)
    return run, db, _inferences(run), _heartbeats(run)


def disk_full(tmp: Path, video: Path) -> dict:
    run, db, before, beats = _recording(tmp / "sight-full", video)
    limits = resource.prlimit(run.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(run.proc.pid, resource.RLIMIT_FSIZE, (db.stat().st_size, limits[1]))
    paused = run.wait_for(lambda: "sightings paused" in json.dumps(_latest(run)), 30)
    time.sleep(3)
    resource.prlimit(run.proc.pid, resource.RLIMIT_FSIZE, limits)  # space returns
    resumed = run.wait_for(lambda: "sightings" not in json.dumps(_latest(run).get("problems", [])), 30)
    _, count, _ = _rows(db)
    return _row(run, before, beats, f"paused after {paused and round(paused, 1)} s, said on /latest; resumed "
                f"{resumed and round(resumed, 1)} s after space returned; {count} sightings")


def _latest(run: Run) -> dict:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{run.port}/latest", timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return {}


def damaged_at_start(tmp: Path, video: Path) -> dict:
    folder = tmp / "sight-damaged"
    folder.mkdir()
    db = folder / "sightings.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    run = Run(folder, str(video), sightings={"db": str(db)}, **HEAVY)
    up = run.wait_for(lambda: run.get("/healthz")[0] == 200)
    before, beats = _inferences(run), _heartbeats(run)
    time.sleep(3)
    aside = len(list(folder.glob("sightings.db.corrupt-*")))
    result = _row(run, before, beats, f"moved aside: {aside}, a fresh one started: {_rows(db)[1]} sightings since; "
                  "said in the journal, /healthz and on the page")
    return {**result, "recover_s": None if up is None else round(up, 2)}


def folder_not_writable(tmp: Path, video: Path) -> dict:
    """The database's folder is a file (as a folder the daemon's user may not write: root writes anywhere)."""
    folder = tmp / "sight-ro"
    folder.mkdir()
    (folder / "state").write_text("not a folder")
    run = Run(folder, str(video), sightings={"db": str(folder / "state" / "sightings.db")}, **HEAVY)
    run.wait_for(lambda: run.get("/healthz")[0] == 200)
    before, beats = _inferences(run), _heartbeats(run)
    time.sleep(3)
    problems = _latest(run).get("problems", [])
    return _row(run, before, beats, f"recording off, said: {problems[0][:70] if problems else 'nothing'}")


def locked_30_s(tmp: Path, video: Path) -> dict:
    run, db, before, beats = _recording(tmp / "sight-locked", video)
    other = sqlite3.connect(db, isolation_level=None, timeout=30)
    other.execute("BEGIN EXCLUSIVE")  # another program holds a write transaction
    time.sleep(30)
    other.execute("COMMIT")
    other.close()
    held = _heartbeats(run) - beats
    locked_at = time.time()
    resumed = run.wait_for(lambda: (_rows(db)[2] or 0) > locked_at, 30)
    return _row(run, before, beats, f"{held} heartbeats during the 30 s; rows written again "
                f"{resumed and round(resumed, 1)} s after the lock went")


SIGHTINGS_FAULTS = {"sightings: kill -9 during heavy writes ×20": kill_9, "sightings: disk full and back": disk_full,
                    "sightings: a damaged database at start": damaged_at_start,
                    "sightings: a folder it may not write": folder_not_writable,
                    "sightings: database locked 30 s by another program": locked_30_s}
