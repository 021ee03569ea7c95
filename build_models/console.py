"""What ``build-models`` prints: progress that reads on a terminal and in a log file, one summary line per
phase, and a TensorFlow start-up without the C++ noise a CPU user cannot act on.

On a terminal, progress is a rich bar that disappears when done. When stdout is not a terminal (``nohup``,
``tee``, CI, ``systemd-run``), it is a plain line every :data:`EVERY_PERCENT` percent (at most one per
:data:`MIN_GAP_S`) or every :data:`EVERY_S` seconds, done/total, rate, elapsed, ETA, and a last line with
the task's wall time.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

EVERY_PERCENT = 5
EVERY_S = 30.0
MIN_GAP_S = 5.0  # no more often than this: a task of a few seconds prints its last line only
TF_LOGS_ENV = "FLOWERCAM_TF_LOGS"  # set to 1 to see TensorFlow's own start-up and C++ log lines


def say(message: str) -> None:
    """One line on stdout, flushed at once (a log file shows it while the job runs)."""
    print(message, flush=True)


def clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


class LogProgress:
    """Plain progress lines for a log: ``caching 8 views: 816/16320 (5%), 23.1 img/s, elapsed 0:35, ETA 11:11``."""

    def __init__(self, description: str, total: int, unit: str = "img", write: Callable[[str], None] = say,
                 every_percent: int = EVERY_PERCENT) -> None:
        self.description, self.total, self.unit, self.write = description, max(total, 0), unit, write
        self.every_percent = every_percent
        self.done = 0
        self.start = self.last_time = time.monotonic()
        self.last_percent = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        percent = 100 * self.done // self.total if self.total else 100
        since = now - self.last_time
        if self.done < self.total and (since >= EVERY_S or (percent >= self.last_percent + self.every_percent
                                                           and since >= MIN_GAP_S)):
            self.last_percent, self.last_time = percent, now
            elapsed = now - self.start
            rate = self.done / elapsed if elapsed > 0 else 0.0
            eta = clock((self.total - self.done) / rate) if rate else "?"
            self.write(f"{self.description}: {self.done}/{self.total} ({percent}%), {rate:.1f} {self.unit}/s, "
                       f"elapsed {clock(elapsed)}, ETA {eta}")

    def close(self) -> None:
        elapsed = time.monotonic() - self.start
        rate = f", {self.done / elapsed:.1f} {self.unit}/s" if elapsed > 0 else ""
        self.write(f"{self.description}: {self.done}/{self.total} done in {clock(elapsed)}{rate}")


@contextmanager
def progress(description: str, total: int, unit: str = "img", show: bool = True) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``: a transient rich bar on a terminal, plain lines (and a last one) in a log; nothing
    with ``show=False`` (a step inside a task that shows its own progress)."""
    if not show:
        yield lambda n=1: None
        return
    if sys.stdout.isatty():
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)
        return
    log = LogProgress(description, total, unit)
    yield log.advance
    log.close()


@contextmanager
def phase(name: str) -> Iterator[None]:
    """``== NAME`` when it starts and ``== NAME: done in M:SS`` when it ends (also in a log)."""
    say(f"== {name}")
    t0 = time.monotonic()
    yield
    say(f"== {name}: done in {clock(time.monotonic() - t0)}")


def quiet_tensorflow(prepare: Callable[[], None] | None = None) -> str:
    """Import TensorFlow with its C++ start-up lines (CUDA probing on a CPU machine, absl, oneDNN) held back,
    and return one line naming the device it will use. With ``FLOWERCAM_TF_LOGS=1`` nothing is held back.
    ``prepare`` runs after the import and before TensorFlow creates its devices (a distribution strategy).

    The lines are written by C++ straight to file descriptor 2, so they are caught there; if the import
    fails, what was caught is passed on with the error.
    """
    if os.environ.get(TF_LOGS_ENV, "") not in ("", "0"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return _describe_devices(prepare)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from flowercam.model.runtime import filtered_stderr

    with filtered_stderr(lambda line: False):
        line = _describe_devices(prepare)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    return line


def _describe_devices(prepare: Callable[[], None] | None) -> str:
    import tensorflow as tf

    if prepare is not None:
        prepare()
    gpus = tf.config.list_physical_devices("GPU")
    tf.zeros(1)  # creates the devices now (the CUDA probe), not in the middle of the first phase
    where = f"GPU: {', '.join(g.name for g in gpus)}" if gpus else f"CPU ({os.cpu_count()} cores, no GPU found)"
    return f"TensorFlow {tf.__version__} on {where}"
