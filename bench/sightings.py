"""The season's record at scale: a simulated year (365 days × 40 classes × 20 episodes a day, about 290,000
sightings) written through the recorder's own write path (``store.upsert``, one transaction a second's worth), then
the questions the page and ``flowercam sightings`` ask, timed, and the file's size. And what recording costs the
camera: the real daemon (bundled model) on a video of three Oxford test photos changing every second, without and
with ``[sightings]``, in turn (ABAB), its heartbeats' fps and inference time.

Usage: python bench/sightings.py [--data ../shared/flowers102]  ->  bench/results/sightings.{json,md}
"""

from __future__ import annotations

import datetime
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402

DAYS, CLASSES, PER_DAY = 365, 40, 20
BATCH = 50  # rows a transaction: about what a busy second stages


def simulate(db: Path) -> dict:
    from flowercam.season.store import Sighting, open_store, upsert

    connection, _ = open_store(db)
    rng = random.Random(0)
    start = datetime.datetime(2026, 1, 1, 6).timestamp()
    rows, written, t0 = [], 0, time.perf_counter()
    for day in range(DAYS):
        for c in range(CLASSES):
            for e in range(PER_DAY):
                begin = start + day * 86400 + rng.uniform(0, 12 * 3600)
                length = rng.uniform(5, 600)
                rows.append(Sighting(f"class {c:02d}", c, round(begin, 3),
                                     round(begin + length, 3), int(length * 5), 0.8, 0.95, "m" * 64, None,
                                     f"sightings-frames/{begin:.3f}-{c}.jpg" if e == 0 else None).row())
                if len(rows) == BATCH:
                    upsert(connection, rows)
                    written, rows = written + len(rows), []
    upsert(connection, rows)
    written += len(rows)
    seconds = time.perf_counter() - t0
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return {"rows": written, "write_s": round(seconds, 1), "rows_per_s": round(written / seconds)}


def timed(call, times: int = 5) -> float:
    """The median of ``times`` runs, ms."""
    runs = []
    for _ in range(times):
        t0 = time.perf_counter()
        call()
        runs.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(runs), 1)


def daemon_run(folder: Path, video: Path, record: bool, seconds: float) -> dict:
    """One daemon run: mean fps and inference ms over its heartbeats after the first few seconds."""
    import json
    import signal

    folder.mkdir(parents=True, exist_ok=True)
    events = folder / "events.jsonl"
    config = folder / "flowercam.toml"
    config.write_text(f'[model]\nthreads = 2\n[source]\nuri = "{video}"\nfps = 30.0\nloop = true\n'
                      f'[smoothing]\nwindow = 1\nenter = 0.3\nstay = 0.3\n'
                      f'[events]\nfile = "{events}"\nheartbeat_s = 2.0\n'
                      + (f'[sightings]\ndb = "{folder / "sightings.db"}"\n' if record else ""))
    proc = subprocess.Popen([sys.executable, "-m", "flowercam", "daemon", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    beats = [json.loads(line) for line in events.read_text().splitlines() if '"heartbeat"' in line][2:]
    return {"fps": statistics.fmean(b["fps"] for b in beats),
            "inference_ms": statistics.fmean(b["mean_inference_ms"] for b in beats)}


def overhead(data: Path | None, folder: Path, seconds: float = 30.0, pairs: int = 3) -> dict:
    """Without and with recording in turn (ABAB…, ``pairs`` of each): the means and the difference in per cent."""
    import cv2
    import numpy as np
    from flowercam.model.preprocess import decode

    from build_models.data import load_flowers102

    test = load_flowers102(data).test
    video = folder / "three.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (480, 360))
    for sample in (test[0], test[700], test[1400]):  # three classes, one second each
        frame = np.ascontiguousarray(np.asarray(decode(sample.path).resize((480, 360)))[..., ::-1])
        for _ in range(30):
            writer.write(frame)
    writer.release()
    runs = {False: [], True: []}
    for i, record in enumerate((False, True) * pairs):
        runs[record].append(daemon_run(folder / f"run{i}", video, record, seconds))
    mean = {record: {k: statistics.fmean(r[k] for r in rs) for k in ("fps", "inference_ms")}
            for record, rs in runs.items()}
    return {"seconds_each": seconds, "pairs": pairs, "without": mean[False], "with": mean[True],
            "fps_change_pct": round(100 * (mean[True]["fps"] / mean[False]["fps"] - 1), 2),
            "inference_change_pct": round(100 * (mean[True]["inference_ms"] / mean[False]["inference_ms"] - 1), 2)}


def main(data: Annotated[Path | None, typer.Option(envvar="FLOWERCAM_DATA")] = None,
         out: Path = Path("bench/results")) -> None:
    from flowercam.season.store import days_seen, episodes, read_only, season

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sightings.db"
        written = simulate(db)
        connection = read_only(db)
        queries = {"season card: per class first/last seen, days, hours, best frame (season)":
                   timed(lambda: season(connection, "2026-01-01")),
                   "season card: the days each class was seen (days_seen)": timed(lambda: days_seen(connection, 2026)),
                   "one day's sightings (episodes)": timed(lambda: episodes(connection, "2026-06-01"))}
        connection.close()
        command = [sys.executable, "-m", "flowercam", "sightings", "--db", str(db), "--since", "2026-01-01"]
        in_process = timed(lambda: subprocess.run(command, capture_output=True, check=True), times=3)
        size_mb = sum(f.stat().st_size for f in Path(tmp).glob("sightings.db*")) / 1e6
        cost = overhead(data, Path(tmp))
    result = {"machine": machine_info(), **written, "queries_ms": queries, "command_ms": in_process, "daemon": cost,
              "size_mb": round(size_mb, 1), "simulated": {"days": DAYS, "classes": CLASSES, "per_day": PER_DAY}}
    write_results(out, "sightings", result, render)


def render(r: dict) -> str:
    """sightings.md from sightings.json."""
    s = r["simulated"]
    lines = ["# The season's record at scale\n", header_markdown(r["machine"]),
             f"A simulated year: {s['days']} days × {s['classes']} classes × {s['per_day']} sightings a day = "
             f"{r['rows']:,} rows, written through the recorder's write path (`store.upsert`, {BATCH} rows a "
             "transaction, WAL), then each question asked 5 times (median).\n",
             "| figure | value | must |", "|---|---|---|",
             f"| rows written a second | {r['rows_per_s']:,} ({r['write_s']} s) | ≥ 10,000 |"]
    lines += [f"| {name} | {ms} ms | ≤ 100 ms |" for name, ms in r["queries_ms"].items()]
    lines += [f"| `flowercam sightings` (the whole command, a fresh process) | {r['command_ms']} ms | – |",
              f"| database size | {r['size_mb']} MB | ≤ 60 MB |"]
    d = r["daemon"]
    lines += ["", f"The daemon with and without recording ({d['seconds_each']:g} s each, in turn ×{d['pairs']}, the "
              "mean of its "
              "heartbeats after the first two; fps cap 30, the species changing every second):\n",
              "| | without | with | change | must |", "|---|---|---|---|---|",
              f"| fps | {d['without']['fps']:.2f} | {d['with']['fps']:.2f} | {d['fps_change_pct']:+.2f} % | "
              "within 2 % |",
              f"| inference ms | {d['without']['inference_ms']:.2f} | {d['with']['inference_ms']:.2f} | "
              f"{d['inference_change_pct']:+.2f} % | within 2 % |"]
    return "\n".join(lines) + "\n"


def readme_block(r: dict) -> str:
    """The README's sentence on the record at scale, from sightings.json."""
    slowest = max(r["queries_ms"].values())
    return (f"A simulated year ({r['rows']:,} sightings) is written at {r['rows_per_s']:,} rows a second, the card's "
            f"questions answer in at most {slowest:g} ms and the file takes {r['size_mb']:g} MB "
            f"({r['machine']['cpu']}, {r['machine']['cores']} cores).")


if __name__ == "__main__":
    typer.run(main)
