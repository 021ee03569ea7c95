"""Event output: JSON Lines to stdout (journald) and optionally a file, each line whole or not at all."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ..model.files import is_temporary, write_atomically


class EventWriter:
    """Writes each event as one complete line: to stdout (the journal) and, optionally, a file.

    The file never holds a partial line: a write that fails (disk full, file too large) is cut back to the
    last whole line, the daemon goes on (the journal still gets every event) and says once that the file is
    failing, and writing resumes, with a line saying so, when space returns. A partial last line left by a
    crash is cut off when the file is opened.
    """

    def __init__(self, file: str = "", stdout_fd: int = 1) -> None:
        self.stdout_fd = stdout_fd
        self.file_fd: int | None = None
        self.file = file
        self.failing: str | None = None  # why the file cannot be written, while it cannot
        if file:
            Path(file).parent.mkdir(parents=True, exist_ok=True)
            self.file_fd = os.open(file, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
            _cut_partial_tail(self.file_fd)

    def emit(self, event: str, **fields) -> dict:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        _write_all(self.stdout_fd, _line(record))
        if self.file_fd is not None:
            self._to_file(record)
        return record

    def _to_file(self, record: dict) -> None:
        try:
            if self.failing is not None:  # space may have returned: say so in the file first
                _append_whole(self.file_fd, _line({"event": "events_file", "time": record["time"],
                                                  "state": "recovered", "after": self.failing}))
            _append_whole(self.file_fd, _line(record))
        except OSError as err:
            if self.failing is None:
                self.failing = err.strerror or str(err)
                _write_all(self.stdout_fd, _line({"event": "events_file", "time": record["time"],
                                                  "state": "failing", "file": self.file, "error": self.failing}))
            return
        if self.failing is not None:
            _write_all(self.stdout_fd, _line({"event": "events_file", "time": record["time"], "state": "recovered",
                                              "file": self.file}))
            self.failing = None

    def close(self) -> None:
        if self.file_fd is not None:
            os.close(self.file_fd)
            self.file_fd = None


def _line(record: dict) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[written:]


def _append_whole(fd: int, line: bytes) -> None:
    """Append ``line`` to a file, or leave the file as it was and raise."""
    size = os.fstat(fd).st_size
    try:
        _write_all(fd, line)
    except OSError:
        os.ftruncate(fd, size)
        raise


def _cut_partial_tail(fd: int) -> None:
    """Cut the file back to its last newline (a line a crash or a full disk left unfinished)."""
    size = os.fstat(fd).st_size
    end = size
    while end > 0:
        start = max(0, end - 4096)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    if end != size:
        os.ftruncate(fd, end)


def save_snapshot(folder: Path, frame: np.ndarray, label: str, keep: int) -> Path:
    """Write the frame as JPEG atomically (temp file + rename); delete the oldest past ``keep``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() else "-" for c in label).strip("-") or "uncertain"
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.3f}"[1:]
    path = folder / f"{stamp}_{safe}.jpg"
    write_atomically(path, lambda tmp: Image.fromarray(frame, "RGB").save(tmp, "JPEG", quality=85))
    snapshots = sorted(p for p in folder.glob("*.jpg") if not is_temporary(p))
    for old in snapshots[: max(0, len(snapshots) - keep)]:
        old.unlink(missing_ok=True)
    return path
