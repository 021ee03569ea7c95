"""Building the TFLite interpreter: ai-edge-litert, else tflite-runtime, else tf.lite."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import FlowercamError

EDGETPU_LIBRARY = "libedgetpu.so.1"
MAX_DEFAULT_THREADS = 4  # past four, a Pi's int8 kernels gain nothing and the camera loses a core
_BACKENDS = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
    # last resort on a workstation, never needed on the device; tf.lite itself keeps load_delegate and
    # OpResolverType under tf.lite.experimental, this module holds all three as the other two do
    ("tensorflow", "tensorflow.lite.python.interpreter"),
)


_STDERR = threading.Lock()  # one filtered block at a time: two overlapping ones would restore fd 2 out of order
_quiet = {"native_info": True}


def quiet_native_info(on: bool) -> None:
    """Whether building an interpreter hides the runtime's native ``INFO:`` lines (a command's output stays
    clean) by catching fd 2 meanwhile. A long-running process whose threads log while others build interpreters
    (the daemon) turns it off: its journal never passes through a temporary file."""
    _quiet["native_info"] = on


class RuntimeMissing(FlowercamError):
    """No TFLite interpreter, or no Edge TPU delegate, could be loaded."""


def interpreter_module() -> tuple[str, Any]:
    """The first importable backend as (name, module with ``Interpreter``, ``load_delegate``)."""
    for name, module_name in _BACKENDS:
        try:
            return name, importlib.import_module(module_name)
        except ImportError:
            continue
    raise RuntimeMissing("no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime)")


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def threads_for(requested: int | None) -> int:
    """The threads an interpreter gets: by default the machine's cores, at most :data:`MAX_DEFAULT_THREADS`; a
    request is capped at the cores (more threads than cores only wait for each other)."""
    return min(cores(), MAX_DEFAULT_THREADS) if requested is None else max(1, min(requested, cores()))


def make_interpreter(model: str | Path, threads: int | None = None, edgetpu: bool = False,
                     plain: bool = False):
    """Create and allocate an interpreter for ``model``. Returns (interpreter, runtime name).

    Args:
        model: path of a .tflite file.
        threads: CPU threads for the kernels (None: :func:`threads_for`'s default; capped at the cores).
        edgetpu: run on a Coral Edge TPU via ``libedgetpu.so.1``.
        plain: no default delegate (XNNPACK), so that the ops seen are the model's own.
    """
    name, module = interpreter_module()
    delegates = []
    if edgetpu:
        try:
            ctypes.CDLL(EDGETPU_LIBRARY)  # probe first: a failed load_delegate prints a traceback from __del__
            delegates.append(module.load_delegate(EDGETPU_LIBRARY))
        except (OSError, ValueError, RuntimeError) as err:
            raise RuntimeMissing(f"Edge TPU delegate {EDGETPU_LIBRARY} could not be loaded "
                                 f"(is the Coral plugged in and libedgetpu1-std installed?): {err}") from None
    with _quiet_native_info():
        options = {}
        if plain:
            options["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interpreter = module.Interpreter(model_path=str(model), num_threads=threads_for(threads),
                                         experimental_delegates=delegates or None, **options)
        interpreter.allocate_tensors()
    return interpreter, name


@contextlib.contextmanager
def filtered_stderr(keep: Callable[[str], bool]) -> Iterator[None]:
    """Native code writes straight to file descriptor 2: catch its lines there and pass on those ``keep``
    accepts (all of them if the block raises, so an error keeps its context)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr is not a real file (e.g. captured)
        yield
        return
    sys.stderr.flush()
    with _STDERR, tempfile.TemporaryFile(mode="w+b") as capture:
        saved = os.dup(fd)
        failed = True
        os.dup2(capture.fileno(), fd)
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if failed or keep(line)))


def _quiet_native_info():
    """Drop the runtime's native ``INFO:`` lines on stderr (e.g. "Created ... XNNPACK delegate"); keep the rest
    (nothing is caught where :func:`quiet_native_info` turned it off)."""
    if not _quiet["native_info"]:
        return contextlib.nullcontext()
    return filtered_stderr(lambda line: not line.startswith("INFO: "))
