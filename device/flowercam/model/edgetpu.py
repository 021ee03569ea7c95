"""Edge TPU readiness: a static check of a TFLite model against what the Coral Edge TPU runs.

What can be proven without the compiler: every op on the Edge TPU's supported list, all
activation tensors int8/uint8 (int32 allowed for biases and shapes), static shapes, one
subgraph. The first op that fails ends the part the Edge TPU would run; the compiler sends
it and everything after it to the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .runtime import make_interpreter

# TFLite builtin op names the Edge TPU supports (Coral docs, "TensorFlow models on the Edge TPU").
SUPPORTED_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE", "EXPAND_DIMS",
    "FULLY_CONNECTED", "GATHER", "HARD_SWISH", "L2_NORMALIZATION", "LOGISTIC", "LSTM", "MAXIMUM",
    "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PADV2", "PRELU", "QUANTIZE", "REDUCE_MAX",
    "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
    "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE",
    "SUB", "SUM", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
})
_INTEGER = ("int8", "uint8")


@dataclass
class Readiness:
    """The result of the check: ``ready`` when nothing would fall back to the CPU."""

    ops: int = 0
    problems: list[str] = field(default_factory=list)
    first_cpu_op: int | None = None  # index of the first op the Edge TPU would not run

    @property
    def ready(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ready:
            return f"ready: all {self.ops} ops integer, supported and static; one subgraph"
        mapped = self.ops if self.first_cpu_op is None else self.first_cpu_op
        return f"not ready ({mapped} of {self.ops} ops before the first CPU fallback): " + "; ".join(self.problems[:5])


def check_readiness(model: str | Path) -> Readiness:
    """Check a .tflite model for the Edge TPU (its own ops, without the runtime's default delegate)."""
    interpreter, _ = make_interpreter(model, plain=True)
    result = Readiness()
    subgraphs = interpreter.num_subgraphs() if hasattr(interpreter, "num_subgraphs") else 1
    if subgraphs != 1:
        result.problems.append(f"{subgraphs} subgraphs, the Edge TPU runs one")
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    result.ops = len(ops)
    for op in ops:
        reasons = _op_problems(op, tensors)
        if reasons:
            result.problems.append(f"op {op['index']} {op['op_name']}: {', '.join(reasons)}")
            if result.first_cpu_op is None:
                result.first_cpu_op = int(op["index"])
    return result


def _op_problems(op: dict, tensors: dict) -> list[str]:
    reasons = []
    if op["op_name"] not in SUPPORTED_OPS:
        reasons.append("not supported by the Edge TPU")
    for index in list(op["inputs"]) + list(op["outputs"]):
        if index < 0:
            continue
        tensor = tensors[index]
        dtype = np.dtype(tensor["dtype"]).name
        is_bias_or_shape = dtype == "int32" and (op["op_name"] not in ("ADD", "SUB", "MUL")
                                                 or len(tensor["shape"]) <= 1)
        if dtype not in _INTEGER and not is_bias_or_shape:
            reasons.append(f"{dtype} tensor '{tensor['name']}'")
        signature = tensor.get("shape_signature", tensor["shape"])
        if any(int(d) < 0 for d in signature):
            reasons.append(f"dynamic shape {list(signature)} of '{tensor['name']}'")
    return sorted(set(reasons))
