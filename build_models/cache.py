"""The feature cache on disk, read back in batches: memory does not grow with the data.

The cache is one ``.npy`` file of float16 feature maps (views × images rows). It is read with ``pread`` (not
memory-mapped: mapped pages count in the process's resident memory), one batch at a time, as a Keras
``PyDataset`` shuffled every epoch; so phase 2 holds a batch, not the whole cache.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras
import numpy as np


class CachedMaps(keras.utils.PyDataset):
    """Batches of (feature maps as float32, labels) from a cache file; ``labels=None`` yields maps only."""

    def __init__(self, path: Path, labels: np.ndarray | None, batch_size: int, shuffle: bool = True,
                 seed: int = 0) -> None:
        super().__init__()
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            self.shape, _, self.dtype = read_header(f)
            self.offset = f.tell()
        self.path, self.labels, self.batch_size = path, labels, batch_size
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self.shuffle, self.rng = shuffle, np.random.default_rng(seed)
        self.order = self.rng.permutation(self.shape[0]) if shuffle else np.arange(self.shape[0])
        self._fd: int | None = None

    def __len__(self) -> int:
        return math.ceil(self.shape[0] / self.batch_size)

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """The rows ``indices`` (ascending) as float32, one read per run of consecutive rows."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        out = np.empty((len(indices), *self.shape[1:]), np.float32)
        breaks = np.flatnonzero(np.diff(indices) != 1) + 1
        at = 0
        for run in np.split(indices, breaks):
            data = os.pread(self._fd, len(run) * self.row_bytes, self.offset + int(run[0]) * self.row_bytes)
            out[at:at + len(run)] = np.frombuffer(data, self.dtype).reshape(len(run), *self.shape[1:])
            at += len(run)
        return out

    def __getitem__(self, index: int):
        indices = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        maps = self.rows(indices)
        return maps if self.labels is None else (maps, self.labels[indices])

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = self.rng.permutation(self.shape[0])

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
