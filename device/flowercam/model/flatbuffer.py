"""A .tflite file checked before any interpreter sees it (no TensorFlow: the schema ships with ai-edge-litert).

The interpreter trusts its file: an index out of range in a corrupted model is a crash in native code (a
traceback at best, SIGABRT at worst), and systemd would restart the daemon into it forever. So every index the
flatbuffer holds (operator codes, tensors, buffers, subgraph inputs and outputs) is checked against what it
points into, every buffer against the file's size, and what does not fit is one :class:`ModelError` line. A
model that passes is then tried once in a child process (:func:`probe`), so that a corruption the structure
does not show still ends as one line. It also tells an Edge TPU compiled model (its ``edgetpu-custom-op``).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .sidecar import ModelError

EDGETPU_CUSTOM_OP = "edgetpu-custom-op"  # what edgetpu_compiler puts in place of the ops it maps to the TPU
PROBE_TIMEOUT_S = 60.0
MAX_TENSOR_TYPE = 17  # the highest TensorType of the schema (int4 in LiteRT 2.x)


@dataclass(frozen=True)
class ModelShape:
    """What the file says it is."""

    subgraphs: int
    operators: int
    custom_ops: tuple[str, ...]

    @property
    def edgetpu_compiled(self) -> bool:
        return EDGETPU_CUSTOM_OP in self.custom_ops


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # tflite-runtime or TensorFlow only: no schema to check against
        return None
    return schema


def inspect_model(path: Path) -> ModelShape | None:
    """Check the flatbuffer of ``path``; its shape, or None where no schema is installed. Raises ModelError."""
    schema = _schema()
    if schema is None:
        return None
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path.name}: not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        return _walk(schema.Model.GetRootAsModel(data, 0), len(data))
    except ModelError as err:
        raise ModelError(f"{path.name}: not a valid TFLite model ({err})") from None
    except (IndexError, ValueError, TypeError, AttributeError, OverflowError, UnicodeDecodeError, MemoryError,
            struct.error) as err:
        raise ModelError(f"{path.name}: not a valid TFLite model (broken flatbuffer: {type(err).__name__})") from None


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ModelError(what)


def _walk(model, size: int) -> ModelShape:
    codes, buffers = model.OperatorCodesLength(), model.BuffersLength()
    _check(0 < model.SubgraphsLength() < 1000, f"{model.SubgraphsLength()} subgraphs")
    custom = []
    for i in range(codes):
        code = model.OperatorCodes(i)
        if code.CustomCode() is not None:
            custom.append(code.CustomCode().decode())
    for i in range(buffers):
        buffer = model.Buffers(i)
        if buffer.DataLength():
            _check(buffer.DataAsNumpy().nbytes == buffer.DataLength(), f"buffer {i} runs past the end of the file")
        offset, length = buffer.Offset(), buffer.Size()
        _check(offset + length <= size if offset else True, f"buffer {i} points past the end of the file")
    operators = 0
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        tensors = graph.TensorsLength()
        for t in range(tensors):
            tensor = graph.Tensors(t)
            _check(tensor.Buffer() < buffers, f"tensor {t} names buffer {tensor.Buffer()} of {buffers}")
            _check(0 <= tensor.Type() <= MAX_TENSOR_TYPE, f"tensor {t} has type {tensor.Type()}")
            _check(all(-1 <= d < 1 << 31 for d in (tensor.ShapeAsNumpy().tolist() if tensor.ShapeLength() else [])),
                   f"tensor {t} has a bad shape")
        for io in (graph.InputsAsNumpy(), graph.OutputsAsNumpy()):
            _check(all(0 <= int(i) < tensors for i in io), f"subgraph {s} names a tensor out of range")
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            _check(op.OpcodeIndex() < codes, f"op {o} names operator code {op.OpcodeIndex()} of {codes}")
            for i in (*op.InputsAsNumpy().tolist(), *op.OutputsAsNumpy().tolist()):
                _check(-1 <= i < tensors, f"op {o} names tensor {i} of {tensors}")
        operators += graph.OperatorsLength()
    return ModelShape(model.SubgraphsLength(), operators, tuple(custom))


def _probed_marker(sha256: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flowercam" / "probed"
    return cache / sha256


def probe(path: Path, sha256: str, edgetpu: bool = False) -> None:
    """Create an interpreter for ``path`` and invoke it once in a child process; a crash there (a signal, a
    native error) is one ModelError line here. A model that passed is remembered by its sha256 (in
    ``~/.cache/flowercam/probed``), so this costs once per model file, not once per start."""
    marker = _probed_marker(sha256)
    if edgetpu or marker.exists():  # an Edge TPU holds one process at a time: the real open is the probe
        return
    code = ("import sys, numpy as np\nfrom flowercam.model.runtime import make_interpreter\n"
            "i, _ = make_interpreter(sys.argv[1], 1)\nd = i.get_input_details()[0]\n"
            "i.set_tensor(d['index'], np.zeros(d['shape'], d['dtype']))\ni.invoke()\n")
    try:
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, env={**os.environ, "PYTHONPATH": _package_parent()})
    except subprocess.TimeoutExpired:
        raise ModelError(f"{path.name}: the interpreter hangs on it (more than {PROBE_TIMEOUT_S:.0f} s)") from None
    except OSError:  # no child can be started here (a sandbox, no exec rights): the checks above stand alone
        return
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1][:200]
        how = f"killed by signal {-done.returncode}" if done.returncode < 0 else last or f"exit {done.returncode}"
        raise ModelError(f"{path.name}: not a valid TFLite model (the interpreter fails on it: {how})")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:  # a read-only home: probe again next time
        pass


def _package_parent() -> str:
    here = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])


def check_model(path: Path, edgetpu: bool, sha256: str) -> ModelShape | None:
    """Everything checked before the real interpreter opens ``path``: its flatbuffer, whether it is compiled
    for the Edge TPU as ``edgetpu`` says, and one run in a child process. Raises ModelError."""
    shape = inspect_model(path)
    if shape is not None and shape.edgetpu_compiled and not edgetpu:
        raise ModelError(f"{path.name} is compiled for the Edge TPU: run it with --edgetpu (a Coral plugged in, "
                         "libedgetpu1-std installed), or use the uncompiled model")
    if shape is not None and edgetpu and not shape.edgetpu_compiled:
        raise ModelError(f"{path.name} is not compiled for the Edge TPU (--edgetpu): compile it with "
                         f"edgetpu_compiler {path.name} and pass the _edgetpu.tflite it writes, or drop --edgetpu")
    probe(path, sha256, edgetpu)
    return shape
