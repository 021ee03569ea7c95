"""A converted model's outputs, put in the order standard clients read and named for what they hold.

The TFLite converter orders a Keras model's outputs by their internal names, so the similarity score can come
before the class probabilities, and MediaPipe's ``classifications[0]`` is then not the flower. This rewrites
the flatbuffer's output list (and its serving signature) as classes, similarity, embedding; it can also make an
existing inner tensor an output (the L2-normalised embedding of an already exported model: the same weights,
the same arithmetic, one more output). No TensorFlow: ai-edge-litert's flatbuffer schema.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from flowercam.errors import FlowercamError
from flowercam.model.scores import output_roles

EMBEDDING_TENSOR = "embedding_unit"  # the name of the L2-normalisation layer in build-models' graphs
NAMES = ("probabilities", "similarity", "embedding")


class OutputsError(FlowercamError):
    """The model's outputs cannot be arranged (no embedding tensor, ambiguous sizes)."""


def _size(tensor) -> int:
    return int(np.prod(tensor.shape)) if tensor.shape is not None else 0


def _uint8_outputs(graph) -> bool:
    return all(graph.tensors[i].type == schema.TensorType.UINT8 for i in graph.outputs)


def _as_uint8(root, graph, index: int) -> int:
    """A uint8 copy of int8 tensor ``index`` through one QUANTIZE op (the converter's own way to give uint8
    outputs; clients such as MediaPipe accept uint8 or float outputs only). Returns the new tensor's index."""
    source = graph.tensors[index]
    params = schema.QuantizationParametersT()
    params.scale = np.array(source.quantization.scale, dtype=np.float32)
    params.zeroPoint = np.array(source.quantization.zeroPoint, dtype=np.int64) + 128
    tensor = schema.TensorT()
    tensor.shape, tensor.type, tensor.name = np.array(source.shape, np.int32), schema.TensorType.UINT8, b"embedding"
    tensor.quantization, tensor.buffer = params, 0
    graph.tensors.append(tensor)
    codes = [i for i, code in enumerate(root.operatorCodes)
             if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.QUANTIZE]
    if not codes:
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
        code.version = 1
        root.operatorCodes.append(code)
        codes = [len(root.operatorCodes) - 1]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = codes[0], np.array([index], np.int32), np.array([len(graph.tensors) - 1],
                                                                                             np.int32)
    graph.operators.append(op)
    return len(graph.tensors) - 1


def arrange_outputs(model: bytes, n_labels: int, add_embedding: bool = False, scores: str = "probabilities") -> bytes:
    """The model with its outputs ordered classes, similarity, embedding and named so.

    Args:
        model: a .tflite flatbuffer (appended metadata files are dropped: embed metadata afterwards).
        n_labels: the number of classes (the class output's size).
        add_embedding: make the L2-normalised embedding tensor an output (when it is not one yet).
        scores: name of the class output ("probabilities" or "logits").
    """
    root = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    graph = root.subgraphs[0]
    outputs = [int(i) for i in graph.outputs]
    if add_embedding and not any(_size(graph.tensors[i]) not in (1, n_labels) for i in outputs):
        found = [i for i, t in enumerate(graph.tensors) if EMBEDDING_TENSOR.encode() in (t.name or b"")
                 and t.shape is not None and len(t.shape) == 2 and _size(t) not in (1, n_labels)]
        if len(found) != 1:
            raise OutputsError(f"no single {EMBEDDING_TENSOR} tensor in the model ({len(found)} found)")
        outputs.append(_as_uint8(root, graph, found[0]) if _uint8_outputs(graph) else found[0])
    try:
        roles = output_roles([_size(graph.tensors[i]) for i in outputs], n_labels)
    except ValueError as err:
        raise OutputsError(str(err)) from None
    ordered = [outputs[i] for i in (roles.classes, roles.similarity, roles.embedding) if i is not None]
    names = [scores, *(name for name, i in zip(NAMES[1:], (roles.similarity, roles.embedding)) if i is not None)]
    graph.outputs = np.array(ordered, dtype=np.int32)
    for index, name in zip(ordered, names):
        graph.tensors[index].name = name.encode()
    for signature in root.signatureDefs or []:
        signature.outputs = []
        for index, name in zip(ordered, names):
            entry = schema.TensorMapT()
            entry.name, entry.tensorIndex = name.encode(), index
            signature.outputs.append(entry)
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def add_embedding_output(model_path, description: str | None = None) -> dict:
    """Give an exported model (and its sidecar, metadata and labels) the embedding output, in place: the same
    weights; outputs reordered classes, similarity, embedding. Returns the new sidecar as a dict."""
    import dataclasses
    from pathlib import Path

    from flowercam.model.edgetpu import check_readiness
    from flowercam.model.runtime import make_interpreter
    from flowercam.model.sidecar import read_sidecar, sha256_file, write_sidecar

    from .metadata import embed_metadata, metadata_json

    path = Path(model_path)
    old = read_sidecar(path)
    import json

    general = json.loads(metadata_json(path))
    path.write_bytes(arrange_outputs(path.read_bytes(), len(old.labels), add_embedding=True, scores=old.output_kind))
    embed_metadata(path, old.labels, general.get("name", path.stem), description or general.get("description", ""),
                   general.get("version", "1"), old.output_kind)
    interpreter, _ = make_interpreter(path)
    details = interpreter.get_output_details()
    roles = output_roles([int(np.prod(d["shape"])) for d in details], len(old.labels))
    specs = [tensor_spec(details[i]) for i in (roles.classes, roles.similarity, roles.embedding)]
    metrics = {**old.metrics, "size_mb": round(path.stat().st_size / 1e6, 3),  # measured on the new file
               "edgetpu_readiness": check_readiness(path).summary()}
    sidecar = dataclasses.replace(old, sha256=sha256_file(path), output=specs[0], similarity=specs[1],
                                  embedding=specs[2], metrics=metrics)
    write_sidecar(path, sidecar)
    return json.loads(sidecar.to_json())


def tensor_spec(detail: dict):
    """The sidecar's record of an interpreter tensor (shape, dtype, quantization)."""
    from flowercam.model.sidecar import TensorSpec

    scale, zero_point = detail["quantization"]
    return TensorSpec(tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]).name, float(scale),
                      int(zero_point))
