"""Event output: JSON Lines to stdout (journald) and optionally a file, each line whole or not at all."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np


class EventWriter:
    """Writes each event as one ``write()`` of a complete line (files opened with O_APPEND)."""

    def __init__(self, file: str = "", stdout_fd: int = 1) -> None:
        self.fds = [stdout_fd]
        self._own: list[int] = []
        if file:
            Path(file).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self.fds.append(fd)
            self._own.append(fd)

    def emit(self, event: str, **fields) -> dict:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        for fd in self.fds:
            _write_all(fd, line)
        return record

    def close(self) -> None:
        for fd in self._own:
            os.close(fd)
        self._own.clear()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[written:]


def save_snapshot(folder: Path, frame: np.ndarray, label: str, keep: int) -> Path:
    """Write the frame as JPEG atomically (temp file + rename); delete the oldest past ``keep``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() else "-" for c in label).strip("-") or "uncertain"
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.3f}"[1:]
    path = folder / f"{stamp}_{safe}.jpg"
    tmp = folder / f".{path.name}.tmp"
    Image.fromarray(frame, "RGB").save(tmp, "JPEG", quality=85)
    os.replace(tmp, path)
    snapshots = sorted(p for p in folder.glob("*.jpg") if not p.name.startswith("."))
    for old in snapshots[: max(0, len(snapshots) - keep)]:
        old.unlink(missing_ok=True)
    return path
