"""The TFLite Metadata embedded in a model, read without TensorFlow or tflite-support.

Models exported by ``build-models`` carry it the way TFLite Model Maker writes it: a ``TFLITE_METADATA``
buffer in the model (a ``ModelMetadata`` flatbuffer: name, description, version, author, license) and the
associated files, here ``labels.txt``, packed as a zip archive appended to the model file. The sidecar stays
the device's source of truth; this reads just enough to show the metadata and to check that its labels are
the sidecar's.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
from flatbuffers.table import Table

LABEL_FILE = "labels.txt"
METADATA_NAME = "TFLITE_METADATA"
# Field slots of the tables read here (tensorflow/lite/schema/schema.fbs and tflite-support's
# metadata_schema.fbs): Model.buffers, Model.metadata; Metadata.name, .buffer; Buffer.data; ModelMetadata's strings.
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA = 0
_MODEL_METADATA_STRINGS = {"name": 0, "description": 1, "version": 2, "author": 4, "license": 5}


@dataclass(frozen=True)
class EmbeddedMetadata:
    """What the model's TFLite Metadata says, and its label file (None when it has none)."""

    name: str
    description: str
    version: str
    author: str
    license: str
    files: tuple[str, ...]
    labels: tuple[str, ...] | None

    def summary(self) -> dict:
        return {"name": self.name, "version": self.version, "description": self.description,
                "author": self.author, "license": self.license, "associated_files": list(self.files),
                "labels": len(self.labels) if self.labels is not None else None}


def _root(data: bytes, at: int = 0) -> Table:
    return Table(data, flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, at) + at)


def _slot(table: Table, slot: int) -> int:
    return table.Offset(4 + 2 * slot)


def _string(table: Table, slot: int) -> str:
    offset = _slot(table, slot)
    return table.String(offset + table.Pos).decode("utf-8") if offset else ""


def _tables(table: Table, slot: int) -> list[Table]:
    offset = _slot(table, slot)
    if not offset:
        return []
    start = table.Vector(offset)
    return [Table(table.Bytes, table.Indirect(start + 4 * i)) for i in range(table.VectorLen(offset))]


def _metadata_buffer(model: bytes) -> bytes | None:
    root = _root(model)
    for entry in _tables(root, _MODEL_METADATA):
        if _string(entry, _METADATA_NAME) == METADATA_NAME:
            offset = _slot(entry, _METADATA_BUFFER)
            index = entry.Get(flatbuffers.number_types.Uint32Flags, offset + entry.Pos) if offset else 0
            buffer = _tables(root, _MODEL_BUFFERS)[index]
            data = _slot(buffer, _BUFFER_DATA)
            if not data:
                return None
            start = buffer.Vector(data)
            return bytes(buffer.Bytes[start:start + buffer.VectorLen(data)])
    return None


def read_metadata(model: Path) -> EmbeddedMetadata | None:
    """The model's embedded metadata, or None for a model without any.

    Raises:
        ValueError: the metadata or its archive of associated files is broken.
    """
    data = model.read_bytes()
    try:
        buffer = _metadata_buffer(data)
    except (IndexError, ValueError, TypeError) as err:  # offsets outside the file: not a flatbuffer we know
        raise ValueError(f"unreadable model structure ({err})") from None
    if buffer is None:
        return None
    meta = _root(buffer)
    strings = {key: _string(meta, slot) for key, slot in _MODEL_METADATA_STRINGS.items()}
    files: tuple[str, ...] = ()
    labels = None
    if zipfile.is_zipfile(model):
        try:
            with zipfile.ZipFile(model) as archive:
                files = tuple(archive.namelist())
                if LABEL_FILE in files:
                    labels = tuple(archive.read(LABEL_FILE).decode("utf-8").splitlines())
        except (zipfile.BadZipFile, UnicodeDecodeError) as err:
            raise ValueError(f"broken associated files ({err})") from None
    return EmbeddedMetadata(**strings, files=files, labels=labels)


def label_mismatch(embedded: tuple[str, ...], sidecar: tuple[str, ...]) -> str | None:
    """Where the embedded labels differ from the sidecar's, in words; None when they are equal."""
    if embedded == sidecar:
        return None
    if len(embedded) != len(sidecar):
        return f"{len(embedded)} embedded labels, {len(sidecar)} in the sidecar"
    line = next(i for i, (a, b) in enumerate(zip(embedded, sidecar)) if a != b)
    return f"line {line + 1} of {LABEL_FILE} is {embedded[line]!r}, the sidecar says {sidecar[line]!r}"
