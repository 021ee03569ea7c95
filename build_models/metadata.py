"""TFLite Metadata in every exported model, as TFLite Model Maker writes it, so that standard clients (MediaPipe
Tasks' ImageClassifier, the TFLite Task Library, Android Studio's model binding, Coral's examples) get the class
names, the input spec and the meaning of each output with no extra files. Written with the ``tflite-support``
metadata writers; also ``labels.txt`` next to the model (the Coral convention).

``tflite-support`` 0.4.4 (the last release) pins protobuf < 4, which TensorFlow 2.21 cannot share; its metadata
writers do not use protobuf, so it is installed without its dependencies (see :data:`INSTALL_HINT`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flowercam.errors import FlowercamError
from flowercam.model.metadata import LABEL_FILE
from flowercam.model.runtime import make_interpreter
from flowercam.model.scores import output_roles

INSTALL_HINT = ("embedding TFLite Metadata needs tflite-support's metadata writers: "
                "pip install --no-deps tflite-support==0.4.4 (and the libusb-1.0-0 system package)")
AUTHOR = "flowercam"
LICENSE = "Apache-2.0 (code); EfficientNet-Lite ImageNet weights Apache-2.0"


class MetadataWriterMissing(FlowercamError, RuntimeError):
    """tflite-support's metadata writers cannot be imported."""


def check_writers() -> None:
    """Raise :class:`MetadataWriterMissing` (before any long work) when the writers cannot be imported."""
    _writers()


def _writers():
    try:
        from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb
        from tensorflow_lite_support.metadata.python.metadata_writers import (
            metadata_info,
            metadata_writer,
            writer_utils,
        )
    except ImportError as err:
        raise MetadataWriterMissing(f"{INSTALL_HINT} ({err})") from None
    return fb, metadata_info, metadata_writer, writer_utils


def write_labels(folder: Path, labels: tuple[str, ...]) -> Path:
    """``labels.txt``: one class name a line, in output order."""
    path = folder / LABEL_FILE
    path.write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
    return path


def embed_metadata(model: Path, labels: tuple[str, ...], name: str, description: str, version: str,
                   scores: str) -> None:
    """Write TFLite Metadata and the label file into ``model`` (in place).

    Args:
        scores: "probabilities" (softmax with the temperature inside the graph) or "logits".
    """
    fb, info, writer, utils = _writers()
    interpreter, _ = make_interpreter(model)
    inp = interpreter.get_input_details()[0]
    size = int(inp["shape"][1])
    outputs = interpreter.get_output_details()
    buffer = model.read_bytes()
    label_file = write_labels(model.parent, labels)
    input_md = info.InputImageTensorMd(
        name="image", description=f"RGB photo, {size}x{size}, {np.dtype(inp['dtype']).name} 0-255: the centred "
        "square of the photo's short side; normalization is inside the model", norm_mean=[0.0], norm_std=[1.0],
        color_space_type=fb.ColorSpaceType.RGB, tensor_type=utils.get_input_tensor_types(buffer)[0])
    output_mds = []
    types = dict(zip(utils.get_output_tensor_names(buffer), utils.get_output_tensor_types(buffer)))
    roles = output_roles([int(np.prod(out["shape"])) for out in outputs], len(labels))
    for i, out in enumerate(outputs):
        if i == roles.classes:
            meaning = ("calibrated class probabilities (softmax with the temperature fitted on held-out photos, "
                       "inside the model); below the threshold in flowercam's sidecar the answer is 'uncertain'"
                       if scores == "probabilities" else
                       "class logits: apply softmax(logits / T) with the temperature T of flowercam's sidecar")
            output_mds.append(info.ClassificationTensorMd(
                name=scores, description=meaning, label_files=[info.LabelFileMd(str(label_file))],
                tensor_type=types[out["name"]], tensor_name=out["name"]))
        elif i == roles.similarity:
            output_mds.append(info.TensorMd(
                name="similarity", description="cosine similarity of the photo's features to the nearest class "
                "mean of the training photos; low: unlike every class (flowercam answers 'uncertain')",
                tensor_name=out["name"]))
        else:
            output_mds.append(info.TensorMd(
                name="embedding", description="the photo's L2-normalised pooled backbone features (unit length), "
                "for on-device learning (flowercam learn) and similarity search", tensor_name=out["name"]))
    general = info.GeneralMd(name=name, version=version, description=description, author=AUTHOR,
                             licenses=LICENSE)
    populated = writer.MetadataWriter.create_from_metadata_info(
        buffer, general, [input_md], output_mds, associated_files=[str(label_file)]).populate()
    model.write_bytes(bytes(populated))


def metadata_json(model: Path) -> str:
    """The embedded metadata as JSON, by tflite-support's own displayer (for checks and tests)."""
    _writers()
    from tensorflow_lite_support.metadata.python import metadata

    return metadata.MetadataDisplayer.with_model_file(str(model)).get_metadata_json()
