"""The faults of learning on the device, against the real daemon (see faults.py, whose table they join): a learn
that fails, a config file broken during a Learn, a corrupt adapter at start and on reload, the garden folder
deleted under the review, a Learn and reloads at once. Each row says whether classification went on."""

from __future__ import annotations

import json
import shutil
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

from faults import Run, _inferences

GARDEN = Path("../shared/garden_pool")  # the owner's photos' stand-in
PHOTOS = 12  # per class: a learn of a few seconds


def _garden(folder: Path, classes: tuple[str, ...] = ("rose", "sunflower")) -> Path:
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for photo in sorted((GARDEN / name).glob("*.jpg"))[:PHOTOS]:
            shutil.copy(photo, folder / name / photo.name)
    return folder


def _review_run(tmp: Path, name: str, video: Path, classes: tuple[str, ...] = ("rose", "sunflower")) -> Run:
    state = tmp / name / "state"
    _garden(state / "garden", classes)
    return Run(tmp / name, str(video), model={"adapter": str(state / "adapter.npz")},
               review={"dir": str(state), "every_s": 0.5, "confident_every": 1})


def _post(run: Run, path: str, body: dict | None = None) -> tuple[int, dict]:
    token = (run.folder / "state" / "token").read_text().strip()
    request = urllib.request.Request(f"http://127.0.0.1:{run.port}{path}", json.dumps(body or {}).encode(),
                                     {"X-Flowercam-Token": token}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _review(run: Run) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{run.port}/review", timeout=10) as response:
        return json.loads(response.read())


def _learned(run: Run) -> dict:
    """Press Learn and wait for its end: the review's learning state."""
    _post(run, "/learn")
    run.wait_for(lambda: _review(run)["learning"]["state"] not in ("learning", "idle"), 120)
    return _review(run)["learning"]


def _row(run: Run, before: int, note: str) -> dict:
    """Two more seconds of classifying, then stop: the row, its note without the temporary folder's path."""
    time.sleep(2)
    during = _inferences(run) - before
    result = run.stop()
    note = note.replace(str(run.folder.parent), "…")
    return {**result, "recover_s": None, "note": f"{note}; {during} frames classified meanwhile"}


def failed_learn(tmp: Path, video: Path) -> dict:
    """One class only in the garden: the Learn fails, says why, and the next one may start."""
    run = _review_run(tmp, "learn-fails", video, ("rose",))
    run.wait_for(lambda: run.get("/healthz")[0] == 200)
    before = _inferences(run)
    learning = _learned(run)
    again = _post(run, "/learn")[0]
    return _row(run, before, f"page: {learning['state']}: {learning.get('error', '')[:90]}; the next Learn: {again}")


def config_broken_during_learn(tmp: Path, video: Path) -> dict:
    """The config file broken by hand while Learn runs: the adapter is applied anyway (nothing else re-read)."""
    run = _review_run(tmp, "learn-config", video)
    run.wait_for(lambda: run.get("/healthz")[0] == 200)
    before = _inferences(run)
    config = run.folder / "flowercam.toml"
    config.write_text(config.read_text() + "[model\n")
    learning = _learned(run)
    labels = _review(run)["labels"]
    return _row(run, before, f"page: {learning['state']}, classes {len(labels)} (the model's 102 + "
                f"{len(labels) - 102} learned)")


def corrupt_adapter_at_start(tmp: Path, video: Path) -> dict:
    folder = tmp / "adapter-start"
    folder.mkdir()
    adapter = folder / "adapter.npz"
    adapter.write_bytes(b"PK\x03\x04 half an adapter")
    run = Run(folder, str(video), model={"adapter": str(adapter)})
    up = run.wait_for(lambda: run.get("/healthz")[0] == 200)
    before = _inferences(run)
    time.sleep(2)
    with urllib.request.urlopen(f"http://127.0.0.1:{run.port}/healthz", timeout=5) as response:
        health = response.read().decode().strip()
    aside = [p.name for p in folder.glob("adapter.npz.broken-*")]
    result = _row(run, before, f"/healthz: {health[:70]}…; moved aside: {len(aside)}")
    return {**result, "recover_s": None if up is None else round(up, 2)}


def corrupt_adapter_on_reload(tmp: Path, video: Path) -> dict:
    """A learned adapter, then the file corrupted and SIGHUP: refused, the old one kept."""
    run = _review_run(tmp, "adapter-reload", video)
    run.wait_for(lambda: run.get("/healthz")[0] == 200)
    learning = _learned(run)
    before = _inferences(run)
    (run.folder / "state" / "adapter.npz").write_bytes(b"PK\x03\x04 half an adapter")
    run.proc.send_signal(signal.SIGHUP)
    run.wait_for(lambda: '"reload"' in run.text(), 30)
    time.sleep(1)
    reload = next(json.loads(line) for line in run.text().splitlines() if '"reload"' in line)
    labels = len(_review(run)["labels"])
    return _row(run, before, f"learn {learning['state']}; reload ok={reload['ok']} ({reload.get('error', '')[:60]}); "
                f"still {labels} classes")


def garden_deleted(tmp: Path, video: Path) -> dict:
    run = _review_run(tmp, "garden-gone", video)
    run.wait_for(lambda: len(_review(run)["frames"]) >= 1 if run.get("/healthz")[0] == 200 else False)
    before = _inferences(run)
    shutil.rmtree(run.folder / "state" / "garden")
    frame = _review(run)["frames"][0]["id"]
    status, filed = _post(run, f"/review/{frame}", {"label": "rose"})
    learning = _learned(run)
    return _row(run, before, f"GET /review 200; label {status} → {filed.get('garden')}; Learn then: "
                f"{learning['state']}: {learning.get('error', '')[:60]}")


def learn_and_reloads(tmp: Path, video: Path) -> dict:
    """SIGHUP ×5 while a Learn runs: both end, nothing lost."""
    run = _review_run(tmp, "learn-reload", video)
    run.wait_for(lambda: run.get("/healthz")[0] == 200)
    before = _inferences(run)
    _post(run, "/learn")
    for _ in range(5):
        run.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
    run.wait_for(lambda: _review(run)["learning"]["state"] not in ("learning", "idle"), 120)
    learning = _review(run)["learning"]
    reloads = [json.loads(line)["ok"] for line in run.text().splitlines() if '"reload"' in line]
    journal_ok = run.get("/healthz")[0] == 200
    return _row(run, before, f"learn {learning['state']}; {sum(reloads)} of {len(reloads)} reloads ok; "
                f"healthy {journal_ok}")


LEARNING_FAULTS = {"a failed learn": failed_learn, "config broken during Learn": config_broken_during_learn,
                   "corrupt adapter at start": corrupt_adapter_at_start,
                   "corrupt adapter on reload": corrupt_adapter_on_reload,
                   "garden folder deleted": garden_deleted, "Learn and SIGHUP ×5 at once": learn_and_reloads}
