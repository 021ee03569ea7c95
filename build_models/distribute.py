"""``tf.distribute`` for training: the strategy, who writes what, and the batches each replica reads.

- ``default``: one device, the plain Keras path (what every published figure was measured with).
- ``mirrored``: synchronous data parallelism over this machine's GPUs; on a machine without one, over
  ``cpu_replicas`` logical CPU devices (a check of correctness: one CPU gets no faster).
- ``multiworker``: ``MultiWorkerMirroredStrategy`` over the machines of the standard ``TF_CONFIG``.

Under a distributed strategy every worker caches and reads only its shard of the photos (every
``workers``-th photo); a replica reads ``global batch / replicas`` rows a step, and all workers take the same
number of steps an epoch. The chief (worker 0) writes the run folder; another worker writes its shard of the
cache and its checkpoints to ``RUN.workerN`` beside it, as TensorFlow's multi-worker guide prescribes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from flowercam.errors import FlowercamError

from .console import say

STRATEGIES = ("default", "mirrored", "multiworker")


class DistributionError(FlowercamError, ValueError):
    """The strategy cannot be set up or used as asked (an unknown name, no TF_CONFIG or a bad one, no cache)."""


@dataclass(frozen=True)
class Cluster:
    """The strategy and this process's place in it."""

    strategy: object  # tf.distribute.Strategy
    name: str
    worker: int = 0
    workers: int = 1

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def distributed(self) -> bool:
        return self.name != "default"

    @property
    def is_chief(self) -> bool:
        return self.worker == 0

    def write_dir(self, run_dir: Path) -> Path:
        """Where this worker writes: the run folder for the chief, ``RUN.workerN`` for the others."""
        return run_dir if self.is_chief else run_dir.with_name(f"{run_dir.name}.worker{self.worker}")

    def shard(self, items: list) -> list:
        """This worker's share of ``items`` (every ``workers``-th, starting at its index)."""
        return items[self.worker::self.workers]

    def describe(self) -> str:
        devices = ", ".join(sorted({d.split("/")[-1] for d in self.strategy.extended.worker_devices}))
        where = f"worker {self.worker} of {self.workers}, " if self.workers > 1 else ""
        return f"strategy {self.name}: {where}{self.replicas} replica(s) in sync ({devices} here)"

    def batches(self, read: Callable[[np.ndarray], np.ndarray], labels: np.ndarray, global_batch: int,
                seed: int, shuffle: bool = True, record: dict | None = None):
        """Endless batches of this worker's rows for its replicas (a ``DistributedDatasetsFromFunction``):
        ``read(indices)`` gives rows ``indices`` (ascending) as float32; each replica gets
        ``global_batch / replicas`` rows a step. ``record`` receives the per-replica batch size TensorFlow asks for.
        Batches are whole: the last of a pass wraps around to the first rows, so the val figures logged while
        training count up to one global batch twice (the run's evaluation afterwards is exact).
        """
        sample = read(np.arange(1))

        def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
            size = context.get_per_replica_batch_size(global_batch)
            if record is not None:
                record["per_replica_batch"] = size

            def rows():
                rng = np.random.default_rng((seed, self.worker))
                while True:
                    order = rng.permutation(len(labels)) if shuffle else np.arange(len(labels))
                    order = np.resize(order, math.ceil(len(order) / size) * size)  # whole batches: wrap around
                    for start in range(0, len(order), size):
                        indices = np.sort(order[start:start + size])
                        yield read(indices), labels[indices]

            spec = (tf.TensorSpec((size, *sample.shape[1:]), tf.float32), tf.TensorSpec((size,), labels.dtype))
            return tf.data.Dataset.from_generator(rows, output_signature=spec).prefetch(2)

        return self.strategy.distribute_datasets_from_function(make)

    def everywhere(self, flags: list[bool]) -> np.ndarray:
        """Which of ``flags`` hold on every worker (e.g. which epochs every worker has a checkpoint of)."""
        local = np.asarray(flags, bool)
        if self.workers == 1:
            return local

        @tf.function
        def replicas_holding():
            per_replica = self.strategy.run(lambda: tf.constant(local.astype(np.float32)))
            return self.strategy.reduce("SUM", per_replica, axis=None)

        return replicas_holding().numpy() == self.replicas


def make_cluster(name: str, cpu_replicas: int = 2) -> Cluster:
    """Set up the strategy ``name``; call it right after importing TensorFlow, before any other op runs."""
    if name not in STRATEGIES:
        raise DistributionError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    if name == "default":
        return Cluster(tf.distribute.get_strategy(), name)
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return Cluster(tf.distribute.MirroredStrategy(), name)  # all GPUs, NCCL all-reduce
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return Cluster(tf.distribute.MirroredStrategy(devices), name)
    config = _tf_config()
    workers, index = config["cluster"]["worker"], int(config["task"]["index"])
    say(f"worker {index}: waiting for the {len(workers)} workers of TF_CONFIG ({', '.join(workers)})")
    return Cluster(_MultiWorkerStrategy(), name, index, len(workers))


def _tf_config() -> dict:
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise DistributionError("--strategy multiworker needs TF_CONFIG (the cluster's workers and this one's "
                                "index); see README, 'Training on several machines'")
    try:
        config = json.loads(text)
        workers, task = config["cluster"]["worker"], config["task"]
        if task["type"] != "worker" or not 0 <= int(task["index"]) < len(workers):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise DistributionError(f"TF_CONFIG {text!r}: expected {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, "
                                "\"task\": {\"type\": \"worker\", \"index\": N}}") from None
    return config


class _MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """Keras 3's ``fit`` asks this strategy for ``reduce("MEAN", value, axis=0)`` of scalar metrics and of whole
    (x, y) batches, which ``MultiWorkerMirroredStrategy`` refuses (keras-team/keras#20585). Reduced leaf by leaf,
    a scalar across replicas, the result is what ``MirroredStrategy`` gives."""

    def reduce(self, reduce_op, value, axis=None):
        def one(leaf):
            scalar = all(t.shape.rank == 0 for t in self.experimental_local_results(leaf))
            return super(_MultiWorkerStrategy, self).reduce(reduce_op, leaf, None if scalar else axis)

        return tf.nest.map_structure(one, value)


def lost_worker(cluster: Cluster, err: BaseException) -> bool:
    """Whether ``err`` is how TensorFlow stops the other workers when one of a cluster dies."""
    return cluster.workers > 1 and isinstance(err, (tf.errors.UnavailableError, tf.errors.AbortedError,
                                                    tf.errors.DeadlineExceededError, tf.errors.CancelledError))
