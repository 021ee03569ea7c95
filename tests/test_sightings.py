"""The season's record: a real SQLite file written by the real recorder (and daemon), read by the real command."""

from __future__ import annotations

import json
import sqlite3
import time

import numpy as np
import pytest
from flowercam.season.recorder import Recorder
from flowercam.season.store import (
    SCHEMA_VERSION,
    SightingsError,
    days_seen,
    episodes,
    open_store,
    read_only,
    season,
)


def _frame(value: int = 0) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def _record(recorder: Recorder, labels: list[tuple[int | None, str, float]], t0: float, step: float = 0.5) -> None:
    for i, (index, label, confidence) in enumerate(labels):
        recorder.observe(index, label, confidence, _frame(i), t0 + i * step)


def test_episodes_are_recorded_with_their_times_confidence_and_best_frame(tmp_path):
    db = tmp_path / "sightings.db"
    recorder = Recorder(db, keep_days=366).start()
    recorder.identity("m" * 64, "a" * 64)
    t0 = time.time() - 3600
    rose = [(3, "rose", c) for c in (0.6, 0.9, 0.7)]
    _record(recorder, rose + [(None, "uncertain", 0.2)] + [(7, "tulip", 0.8)] * 4 + rose, t0)
    recorder.stop()
    with read_only(db) as connection:
        rows = episodes(connection)
        assert [(r["label"], r["frames"]) for r in rows] == [("rose", 3), ("tulip", 4), ("rose", 3)]
        first = rows[0]
        assert first["start"] == pytest.approx(t0, abs=0.01) and first["end"] == pytest.approx(t0 + 1.0, abs=0.01)
        assert first["peak_confidence"] == 0.9 and first["mean_confidence"] == pytest.approx(0.7333, abs=1e-3)
        assert (first["model_sha256"], first["adapter_sha256"]) == ("m" * 64, "a" * 64)
        assert (db.parent / first["best_frame"]).is_file()  # beside the database
        summary = {s["label"]: s for s in season(connection, since="2000-01-01")}
        assert summary["rose"]["sightings"] == 2 and summary["rose"]["days_seen"] >= 1
        assert summary["tulip"]["hours_present"] == pytest.approx(1.5 / 3600, abs=0.01)
        assert set(days_seen(connection, time.localtime(t0).tm_year)) == {"rose", "tulip"}


def test_a_damaged_database_is_moved_aside_and_a_newer_one_refused(tmp_path):
    db = tmp_path / "sightings.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)  # a header, then garbage
    connection, note = open_store(db)
    assert "moved aside" in note and connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    connection.close()
    assert len(list(tmp_path.glob("sightings.db.corrupt-*"))) == 1
    with sqlite3.connect(db) as newer:
        newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SightingsError, match="newer flowercam"):
        open_store(db)


def test_a_database_that_cannot_be_opened_costs_the_record_not_the_caller(tmp_path):
    (tmp_path / "state").write_text("a file where the folder should be")  # as a read-only folder, even for root
    said = []
    recorder = Recorder(tmp_path / "state" / "sightings.db", 366, said.append).start()
    recorder.observe(1, "rose", 0.9, _frame(), time.time())  # no error, nothing recorded
    recorder.stop()
    assert len(said) == 1 and said[0].startswith("sightings off")


def test_a_locked_database_pauses_recording_and_loses_nothing(tmp_path):
    db = tmp_path / "sightings.db"
    said = []
    recorder = Recorder(db, 366, said.append).start()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program holds a write transaction
    t0 = time.time()
    _record(recorder, [(1, "rose", 0.9)] * 4, t0)
    recorder.observe(None, "uncertain", 0.1, _frame(), t0 + 3)
    deadline = time.time() + 20
    while not said and time.time() < deadline:
        time.sleep(0.2)
    assert said and said[-1].startswith("sightings paused"), said
    other.execute("COMMIT")
    other.close()
    deadline = time.time() + 20
    while said[-1] is not None and time.time() < deadline:
        time.sleep(0.2)
    recorder.stop()
    assert said[-1] is None  # resumed, and said so
    with read_only(db) as connection:
        assert [(r["label"], r["frames"]) for r in episodes(connection)] == [("rose", 4)]


def test_flowercam_sightings_answers_from_the_file(tmp_path):
    from tests.helpers import run_cli

    db = tmp_path / "sightings.db"
    recorder = Recorder(db, 366).start()
    t0 = time.time() - 7200
    _record(recorder, [(3, "rose", 0.8)] * 3 + [(None, "u", 0.1)] + [(7, "tulip", 0.9)] * 2, t0)
    recorder.stop()
    done = run_cli("sightings", "--db", str(db), "--json", "--since", "2000-01-01")
    assert done.returncode == 0, done.stderr
    assert {r["label"]: r["sightings"] for r in json.loads(done.stdout)} == {"rose": 1, "tulip": 1}
    day = time.strftime("%Y-%m-%d", time.localtime(t0))
    done = run_cli("sightings", "--db", str(db), "--day", day, "--class", "tulip", "--csv")
    assert done.returncode == 0 and done.stdout.splitlines()[0].startswith("start,end,label")
    assert len(done.stdout.splitlines()) == 2
    text = run_cli("sightings", "--db", str(db), "--since", "2000-01-01").stdout
    assert "rose" in text and "tulip" in text
    for args, words in ((("--db", str(tmp_path / "none.db")), "no sightings database"),
                        (("--db", str(db), "--day", "June 3"), "expected a date")):
        bad = run_cli("sightings", *args)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and words in bad.stderr


def _three_species(tmp_path, per: int = 30):
    """A clip of three of the model's classes in turn, ``per`` frames each (through OpenCV)."""
    import cv2

    from build_models.synthetic import class_image

    path = tmp_path / "three.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for label in (0, 1, 2):
        image = np.asarray(class_image(label, np.random.default_rng(label), (64, 48)))[..., ::-1].copy()
        for _ in range(per):
            writer.write(image)
    writer.release()
    return path


def test_a_real_daemon_records_three_species_in_turn(tmp_path, learning_model):
    """The daemon on a video of three species, 3 s each at 10 fps: three sightings, the right classes in the right
    order, each about 3 s (±1 s); ``flowercam sightings --json`` returns them; the page's Season card shows them
    (a real browser)."""
    import signal
    import urllib.request

    from tests.helpers import daemon_config, free_port, run_cli, start_daemon, wait_for
    from tests.test_status_page import _browser

    browser = _browser()
    db, port = tmp_path / "state" / "sightings.db", free_port()
    config = daemon_config(tmp_path, learning_model, _three_species(tmp_path), source={"fps": 10, "loop": False},
                           smoothing={"window": 1, "enter": 0.3, "stay": 0.3}, http={"bind": f"127.0.0.1:{port}"},
                           model={"uncertain_below": 0.0}, sightings={"db": str(db)})
    proc = start_daemon(config)
    try:
        assert wait_for(lambda: '"ended"' in (tmp_path / "events.jsonl").read_text()
                        if (tmp_path / "events.jsonl").exists() else False, 60), proc.poll()
        time.sleep(1.5)  # the writer's beat
        browser.get(f"http://127.0.0.1:{port}/")
        table = browser.find_element("id", "season-table")
        assert wait_for(lambda: len(table.find_elements("css selector", "tr")) == 3, 20), table.text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/season", timeout=5) as response:
            card = json.loads(response.read())
        assert all(len(c["days"]) == 1 and c["best_frame"] for c in card["classes"])
        table.find_element("xpath", ".//button[starts-with(text(), 'synthetic')]").click()
        detail = browser.find_element("id", "season-detail")
        assert wait_for(lambda: "1 sightings" in detail.text and detail.find_elements("css selector", "img"), 20)
        assert wait_for(lambda: detail.find_element("css selector", "img").get_attribute("naturalWidth") not in
                        ("0", None), 10)  # the frame loads
    finally:
        browser.quit()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    done = run_cli("sightings", "--db", str(db), "--day", time.strftime("%Y-%m-%d"), "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["class_index"] for r in rows] == [0, 1, 2], rows
    for r in rows:
        assert r["end"] - r["start"] == pytest.approx(2.9, abs=1.0) and r["frames"] == pytest.approx(30, abs=10)
    for a, b in zip(rows, rows[1:]):
        assert b["start"] - a["start"] == pytest.approx(3.0, abs=1.0)
    assert all(r["model_sha256"] == json.loads(learning_model.with_suffix(".json").read_text())["sha256"]
               for r in rows)


@pytest.mark.slow  # five daemons killed (~12 s): CI runs it with -m slow
def test_kill_9_during_heavy_writes_never_corrupts_and_loses_at_most_a_second(tmp_path, learning_model):
    """Species changing every few frames at 50 fps (many sightings a second), the daemon killed (SIGKILL) at a
    random moment, five times over one file: it passes PRAGMA integrity_check every time and holds the rows up to
    about a second before the kill. A damaged file at the next start would be moved aside: none is."""
    import random
    import signal

    from tests.helpers import daemon_config, start_daemon, wait_for

    db = tmp_path / "sightings.db"
    config = daemon_config(tmp_path, learning_model, _three_species(tmp_path, per=4), source={"fps": 50},
                           smoothing={"window": 1, "enter": 0.3, "stay": 0.3}, model={"uncertain_below": 0.0},
                           sightings={"db": str(db)})
    rng = random.Random(0)
    for _ in range(5):
        proc = start_daemon(config)
        assert wait_for(lambda: db.exists() and db.stat().st_size > 0, 60), proc.poll()
        time.sleep(rng.uniform(1.5, 3.0))
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        with sqlite3.connect(db) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            last = connection.execute("SELECT MAX(end) FROM sightings").fetchone()[0]
        assert last is not None and last >= killed_at - 1.5, (killed_at - last)  # a beat (1 s) and a frame
    assert not list(tmp_path.glob("sightings.db.corrupt-*"))


def test_a_damaged_database_at_start_costs_only_its_history(tmp_path, learning_model):
    import signal
    import urllib.request

    from tests.helpers import daemon_config, free_port, start_daemon, wait_for

    db, port = tmp_path / "sightings.db", free_port()
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    proc = start_daemon(daemon_config(tmp_path, learning_model, _three_species(tmp_path), source={"fps": 10},
                                      http={"bind": f"127.0.0.1:{port}"}, sightings={"db": str(db)}))

    def health() -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                return response.read().decode()
        except OSError:
            return ""

    try:
        assert wait_for(lambda: health().startswith("ok"), 60), proc.poll()
        assert "moved aside" in health()  # said where the owner looks, and the camera runs
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "moved aside" in err
    assert len(list(tmp_path.glob("sightings.db.corrupt-*"))) == 1
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow  # a real daemon through a lock and a full disk (~25 s): CI runs it with -m slow
def test_a_lock_a_full_disk_or_a_folder_it_may_not_write_never_cost_the_camera(tmp_path, learning_model):
    """A real daemon writing sightings fast: another program holds the database for 5 s, then the disk fills
    (RLIMIT_FSIZE on the running daemon) and empties; each pauses recording, said on /latest, while frames and
    heartbeats go on, and recording resumes. A database folder it may not write: recording off, said, camera on."""
    import resource
    import signal
    import urllib.request

    from tests.helpers import daemon_config, free_port, start_daemon, wait_for

    def run(db, port):
        return start_daemon(daemon_config(tmp_path, learning_model, _three_species(tmp_path, per=4),
                                          source={"fps": 30}, smoothing={"window": 1, "enter": 0.3, "stay": 0.3},
                                          model={"uncertain_below": 0.0}, http={"bind": f"127.0.0.1:{port}"},
                                          sightings={"db": str(db)}))

    def latest(port) -> dict:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/latest", timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            return {}

    def newest(db) -> float:
        with sqlite3.connect(db) as connection:
            return connection.execute("SELECT MAX(end) FROM sightings").fetchone()[0] or 0.0

    events = tmp_path / "events.jsonl"
    db, port = tmp_path / "sightings.db", free_port()
    proc = run(db, port)
    try:
        assert wait_for(lambda: db.exists() and newest(db) > 0, 60), proc.poll()
        for fault in ("lock", "full disk"):
            beats, frames = events.read_text().count('"heartbeat"'), latest(port).get("frame_id", 0)
            if fault == "lock":
                other = sqlite3.connect(db, isolation_level=None, timeout=30)
                other.execute("BEGIN EXCLUSIVE")
            else:
                limits = resource.prlimit(proc.pid, resource.RLIMIT_FSIZE)
                resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (db.stat().st_size, limits[1]))
            assert wait_for(lambda: "sightings paused" in json.dumps(latest(port).get("problems")), 30), fault
            time.sleep(2)
            assert latest(port)["frame_id"] > frames + 20  # the camera goes on
            if fault == "lock":  # (a full disk stops the events file too: it says so itself, test_daemon.py)
                assert events.read_text().count('"heartbeat"') > beats
            if fault == "lock":
                other.execute("COMMIT")
                other.close()
            else:
                resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, limits)
            back = time.time()
            assert wait_for(lambda back=back: "problems" not in latest(port) and newest(db) > back, 30), fault
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    (tmp_path / "state").write_text("a file where the folder should be")  # as a folder it may not write
    port = free_port()
    proc = run(tmp_path / "state" / "sightings.db", port)
    try:
        assert wait_for(lambda: "sightings off" in json.dumps(latest(port).get("problems")), 60), proc.poll()
        frames = latest(port)["frame_id"]
        assert wait_for(lambda: latest(port)["frame_id"] > frames + 20, 20)  # the camera goes on
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
