"""The screenshots of the daemon's status page in the README, in a real headless Chromium: the bundled model on a
video of Oxford test photos (three flowers in turn); the "Teach it" card after a Learn from the page (a video
of everyday tulips, a species the model does not know, labelled on the page next to a few roses); and the "Season"
card over a simulated season (garden_pool's photos as the best frames).

Usage: python bench/status_page.py [--data ../shared/flowers102] [--garden ../shared/garden_pool]
  ->  docs/status_page.jpg, docs/review_page.jpg, docs/season_page.jpg
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent.parent))
from tests.helpers import daemon_config, free_port, start_daemon, wait_for  # noqa: E402
from tests.test_status_page import _browser  # noqa: E402

PHOTOS = (1315, 5399, 1143)  # petunia, sunflower, rose: test photos of the official split


def make_video(data: Path | None, path: Path) -> Path:
    import cv2
    import numpy as np
    from flowercam.model.preprocess import decode

    from build_models.data import load_flowers102

    by_id = {s.image_id: s for s in load_flowers102(data).test}
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (480, 360))
    for image_id in PHOTOS:
        frame = np.asarray(decode(by_id[image_id].path).resize((480, 360)))
        for _ in range(40):  # 4 s each
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return path


def main(data: Annotated[Path | None, typer.Option(envvar="FLOWERCAM_DATA")] = None,
         garden: Annotated[Path, typer.Option()] = Path("../shared/garden_pool"),
         out: Path = Path("docs/status_page.jpg"), review_out: Path = Path("docs/review_page.jpg"),
         season_out: Path = Path("docs/season_page.jpg")) -> None:
    status_page(data, out)
    review_page(garden, review_out)
    season_page(data, garden, season_out)


def _save(browser, tmp: Path, out: Path) -> None:
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    png = tmp / "page.png"
    browser.save_screenshot(str(png))
    with Image.open(png) as image:
        image.convert("RGB").save(out, quality=85, optimize=True)
    print(f"wrote {out}")


def status_page(data: Path | None, out: Path) -> None:
    from flowercam.model.sidecar import BUNDLED_MODEL

    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(data, Path(tmp) / "garden.avi")
        port = free_port()
        proc = start_daemon(daemon_config(Path(tmp), BUNDLED_MODEL, video, source={"fps": 5},
                                          smoothing={"window": 3, "enter": 0.5, "stay": 0.4},
                                          http={"bind": f"127.0.0.1:{port}"}, model={"threads": 2}))
        browser = _browser()
        browser.set_window_size(760, 1100)
        try:
            browser.get(f"http://127.0.0.1:{port}/")
            assert wait_for(lambda: len(browser.find_elements("css selector", "#history li")) >= 3, 60)
            time.sleep(1.5)  # the thumbnails load
            _save(browser, Path(tmp), out)
        finally:
            browser.quit()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)


def review_page(garden: Path, out: Path, labels: int = 12) -> None:
    """Tulips on the camera, ``labels`` of their frames labelled "tulip" through the page's API, Learn pressed on
    the page; the card once it says what it learned."""
    import cv2
    import numpy as np
    from flowercam.model.preprocess import decode
    from flowercam.model.sidecar import BUNDLED_MODEL

    with tempfile.TemporaryDirectory() as tmp:
        video, state = Path(tmp) / "tulips.avi", Path(tmp) / "state"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (480, 360))
        for photo in sorted((garden / "tulip").glob("*.jpg"))[:30]:
            frame = np.asarray(decode(photo).resize((480, 360)))
            for _ in range(5):
                writer.write(np.ascontiguousarray(frame[..., ::-1]))
        writer.release()
        (state / "garden" / "rose").mkdir(parents=True)
        for photo in sorted((garden / "rose").glob("*.jpg"))[:labels]:
            shutil.copy(photo, state / "garden" / "rose" / photo.name)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_daemon(daemon_config(Path(tmp), BUNDLED_MODEL, video, source={"fps": 5},
                                          http={"bind": f"127.0.0.1:{port}"},
                                          model={"threads": 2, "adapter": str(state / "adapter.npz")},
                                          review={"dir": str(state), "every_s": 0.4, "confident_every": 1}))
        browser = _browser()
        browser.set_window_size(760, 1400)
        try:
            def waiting() -> list[dict]:
                try:
                    with urllib.request.urlopen(base + "/review", timeout=5) as response:
                        return json.loads(response.read())["frames"]
                except OSError:
                    return []

            assert wait_for(lambda: len(waiting()) >= labels + 6, 120)
            token = (state / "token").read_text().strip()
            for frame in waiting()[:labels]:
                body = json.dumps({"label": "tulip"}).encode()
                request = urllib.request.Request(f"{base}/review/{frame['id']}", body, {"X-Flowercam-Token": token},
                                                 method="POST")
                urllib.request.urlopen(request, timeout=10).close()
            browser.get(base + "/")
            browser.find_element("id", "token").send_keys(token)
            browser.execute_script("document.getElementById('token').dispatchEvent(new Event('change'))")
            assert wait_for(lambda: "tulip" in browser.find_element("id", "garden").text, 30)
            browser.find_element("id", "learn").click()
            state_text = browser.find_element("id", "learn-state")
            assert wait_for(lambda: "learned at" in state_text.text, 120), state_text.text
            time.sleep(2.5)  # the re-scored queue and its thumbnails load
            browser.execute_script("document.getElementById('review').scrollIntoView()")
            _save(browser, Path(tmp), out)
        finally:
            browser.quit()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)


if __name__ == "__main__":
    typer.run(main)


SEASON = {"common dandelion": (80, 150), "tulip": (95, 130), "rose": (150, 270), "sunflower": (190, 250)}  # days


def simulated_season(garden: Path, db: Path, year: int) -> None:
    """A season of sightings in ``db`` (written through the recorder's write path): each flower on most days of
    its weeks in bloom, a few sightings a day, the best frames from garden_pool."""
    import datetime
    import random

    from flowercam.season.recorder import frames_folder
    from flowercam.season.store import Sighting, open_store, upsert
    from PIL import Image

    rng = random.Random(0)
    connection, _ = open_store(db)
    frames = frames_folder(db)
    frames.mkdir(parents=True, exist_ok=True)
    for index, (label, (first, last)) in enumerate(SEASON.items()):
        photos = sorted((garden / label.replace(" ", "_")).glob("*.jpg"))
        rows = []
        for doy in range(first, min(last, datetime.date.today().timetuple().tm_yday)):
            if rng.random() < 0.25:
                continue
            for _ in range(rng.randint(1, 4)):
                morning = datetime.datetime(year, 1, 1, rng.randint(7, 18)).timestamp()
                start = morning + doy * 86400 + rng.uniform(0, 3000)
                peak = rng.uniform(0.6, 0.99)
                name = f"{start:.3f}-{index}.jpg"
                if rng.random() < 0.1:
                    with Image.open(rng.choice(photos)) as photo:
                        photo.convert("RGB").resize((320, 240)).save(frames / name, quality=80)
                rows.append(Sighting(label, index, round(start, 3), round(start + rng.uniform(30, 1800), 3),
                                     rng.randint(50, 5000), round(peak - 0.1, 3), round(peak, 3), "m" * 64, None,
                                     f"{frames.name}/{name}" if (frames / name).exists() else None).row())
        upsert(connection, rows)
    connection.close()


def season_page(data: Path | None, garden: Path, out: Path) -> None:
    """The Season card over a simulated season, one class's sightings opened."""
    import datetime

    from flowercam.model.sidecar import BUNDLED_MODEL

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sightings.db"
        simulated_season(garden, db, datetime.date.today().year)
        video = make_video(data, Path(tmp) / "garden.avi")
        port = free_port()
        proc = start_daemon(daemon_config(Path(tmp), BUNDLED_MODEL, video, source={"fps": 5},
                                          http={"bind": f"127.0.0.1:{port}"}, model={"threads": 2},
                                          sightings={"db": str(db)}))
        browser = _browser()
        browser.set_window_size(760, 1100)
        try:
            browser.get(f"http://127.0.0.1:{port}/")
            table = browser.find_element("id", "season-table")
            assert wait_for(lambda: len(table.find_elements("css selector", "tr")) >= len(SEASON), 60)
            table.find_element("xpath", ".//button[text()='rose']").click()
            assert wait_for(lambda: "sightings" in browser.find_element("id", "season-detail").text, 20)
            time.sleep(1.5)  # the best frames load
            browser.execute_script("document.getElementById('season').scrollIntoView()")
            _save(browser, Path(tmp), out)
        finally:
            browser.quit()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
