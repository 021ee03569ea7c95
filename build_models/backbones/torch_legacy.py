"""A small reader for PyTorch's legacy (non-zip) ``torch.save`` files, without torch.

The legacy format is a sequence of pickles: magic number, protocol version, system
info, the object itself (tensors refer to storages by persistent id), the list of
storage keys, then each storage's raw bytes prefixed by its element count (int64).
Only what a state dict of float tensors needs is supported, and every pickle is read by an
unpickler that refuses any other class or function: a crafted ``--weights`` file cannot run code.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from flowercam.errors import FlowercamError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFileError(FlowercamError, ValueError):
    """The file is not a legacy PyTorch state dict this reader understands."""


class _StorageType:
    def __init__(self, name: str) -> None:
        if name not in _STORAGE_DTYPES:
            raise TorchFileError(f"unsupported storage type {name}")
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _TensorRef:
    """A view on a storage, resolved once the storages have been read."""

    def __init__(self, key: str, offset: int, size: tuple, stride: tuple) -> None:
        self.key, self.offset, self.size, self.stride = key, offset, tuple(size), tuple(stride)

    def resolve(self, storages: dict[str, np.ndarray]) -> np.ndarray:
        """The tensor's values, after checking that every element it names lies inside its storage (a crafted
        file could otherwise make ``as_strided`` read memory past the buffer)."""
        if self.key not in storages:
            raise TorchFileError(f"a tensor refers to storage {self.key!r}, which the file does not hold")
        data = storages[self.key]
        numbers = (self.offset, *self.size, *self.stride)
        if len(self.size) != len(self.stride) or not all(type(n) is int and n >= 0 for n in numbers):
            raise TorchFileError(f"a tensor of storage {self.key!r} has a bad offset, size or stride")
        if 0 not in self.size and self.offset + sum((n - 1) * st for n, st in zip(self.size, self.stride)) \
                >= len(data):
            raise TorchFileError(f"a tensor of storage {self.key!r} reaches past its {len(data)} elements")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * data.dtype.itemsize for s in self.stride),
        )
        return np.array(view)  # own the memory, contiguous


def _rebuild_tensor(storage, offset, size, stride, *_args) -> _TensorRef:
    return _TensorRef(storage, offset, size, stride)


class _PlainUnpickler(pickle.Unpickler):
    """For the header records and the key list: plain data only, never a class or function (a crafted file
    could otherwise run code)."""

    def find_class(self, module: str, name: str) -> Any:
        raise TorchFileError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> Any:
        raise TorchFileError("unexpected persistent id in a weights file header")


def _plain(f: BinaryIO) -> Any:
    return _PlainUnpickler(f).load()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storage_dtypes: dict[str, np.dtype] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise TorchFileError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: tuple) -> str:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise TorchFileError(f"unknown persistent id {str(pid)[:40]!r}")
        storage_type, key = pid[1], pid[2]
        self.storage_dtypes[key] = storage_type.dtype
        return key


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a legacy ``torch.save`` state dict into numpy arrays, keyed by name."""
    with open(path, "rb") as f:
        try:
            magic = _plain(f)
        except TorchFileError:
            raise
        except Exception as err:
            raise TorchFileError(f"{path}: not a legacy PyTorch file ({err})") from None
        if magic != MAGIC_NUMBER:
            raise TorchFileError(f"{path}: bad magic number (zip-format files are not supported)")
        if _plain(f) != PROTOCOL_VERSION:
            raise TorchFileError(f"{path}: unsupported protocol version")
        _plain(f)  # system info (endianness, type sizes)
        unpickler = _Unpickler(f)
        try:
            obj = unpickler.load()
            keys = _plain(f)
        except TorchFileError:
            raise
        except Exception as err:  # a torn or garbled pickle raises many types
            raise TorchFileError(f"{path}: not a legacy PyTorch state dict ({err})") from None
        storages = {}
        if not isinstance(keys, list) or not set(keys) <= set(unpickler.storage_dtypes):
            raise TorchFileError(f"{path}: its storage list does not match its tensors")
        for key in keys:
            dtype = unpickler.storage_dtypes[key]
            head = f.read(8)
            count = struct.unpack("<q", head)[0] if len(head) == 8 else -1
            if count < 0:
                raise TorchFileError(f"{path}: truncated or bad storage {key}")
            raw = f.read(count * dtype.itemsize)
            if len(raw) != count * dtype.itemsize:
                raise TorchFileError(f"{path}: truncated storage {key}")
            storages[key] = np.frombuffer(raw, dtype=dtype)
    if not isinstance(obj, dict):
        raise TorchFileError(f"{path}: expected a state dict, found {type(obj).__name__}")
    try:
        return {name: ref.resolve(storages) for name, ref in obj.items() if isinstance(ref, _TensorRef)}
    except TorchFileError as err:
        raise TorchFileError(f"{path}: {err}") from None
