"""The screenshot of the daemon's status page in the README: the bundled model on a video of Oxford test photos
(three flowers in turn), the page in a real headless Chromium.

Usage: python bench/status_page.py [--data ../shared/flowers102]  ->  docs/status_page.jpg
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
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
         out: Path = Path("docs/status_page.jpg")) -> None:
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
            out.parent.mkdir(parents=True, exist_ok=True)
            png = Path(tmp) / "status.png"
            browser.save_screenshot(str(png))
            from PIL import Image

            with Image.open(png) as image:
                image.convert("RGB").save(out, quality=85, optimize=True)
        finally:
            browser.quit()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
    print(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)
