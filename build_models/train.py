"""Two-phase transfer learning on a feature cache: fast on a 2-core CPU.

The frozen bottom of the backbone does the same work every epoch, so its outputs are
computed once for ``views`` augmented views of each training image and cached. Phase 1
trains the new head on pooled features of the whole frozen backbone with a cyclical LR;
phase 2 unfreezes the top of the backbone (never BatchNorm) and trains it with the head
on the cached maps at a constant low LR. Early stopping on val_loss restores the best
weights; each phase checkpoints every epoch, and a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import numpy as np
from flowercam.model.files import write_atomically
from flowercam.model.preprocess import Preprocess
from flowercam.model.resources import peak_rss_mb

from .augment import augmenter
from .backbones import get_backbone
from .cache import CachedMaps
from .console import phase, progress
from .data import Flowers102, Sample
from .distribute import Cluster, DistributionError, make_cluster
from .field_views import FieldViews
from .fitting import compile_model, fit, predict_batches
from .heads import build_head, classifier, split_backbone
from .images import labels_of, load_arrays, load_photos
from .presets import TrainConfig
from .samples import training_samples
from .schedules import CyclicLR


def build_cache(bottom: keras.Model, samples: list[Sample], config: TrainConfig, path: Path,
                labels: np.ndarray | None = None) -> Path:
    """Bottom-of-backbone outputs for ``views`` views of each training photo (view 0 clean), float16, written to
    ``path`` batch by batch: photos are decoded per batch, so memory does not grow with the number of photos.

    With ``augment="field"``, views after the first are drawn from the whole photo by :class:`FieldViews`
    before the Keras augmenter. (Mosaics, ``p_mosaic > 0``, need every photo of a class at hand: those runs keep
    the decoded photos in memory.)
    """
    if path.exists():
        return path
    pre = Preprocess(config.size, config.crop_fraction)
    aug = augmenter(config.rotation_deg, config.zoom, config.brightness, config.saturation, config.seed)
    field = FieldViews(config.size, min_area=config.min_area, p_mosaic=config.p_mosaic) \
        if config.augment == "field" else None
    every_photo = load_photos(samples, config.size) if field is not None and config.p_mosaic > 0 else None
    peers = _peers(every_photo, labels) if every_photo is not None and labels is not None else None
    n, batch = len(samples), config.batch_size
    shape = (config.views * n, *bottom.output_shape[1:])
    partial = path.with_suffix(".partial.npy")
    # Written with plain writes, in row order: pages written through a memory map stay resident.
    with open(partial, "wb") as cache, \
            progress(f"caching {config.views} views", config.views * n) as advance:
        np.lib.format.write_array_header_2_0(cache, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)),
                                                     "fortran_order": False, "shape": shape})
        for view in range(config.views):
            for start in range(0, n, batch):
                chunk = samples[start:start + batch]
                if view and field is not None:
                    photos = every_photo[start:start + len(chunk)] if every_photo is not None else \
                        load_photos(chunk, config.size, None)
                    x = np.stack([field(photo, np.random.default_rng((config.seed, view, start + i)),
                                        peers[start + i] if peers is not None else ())
                                  for i, photo in enumerate(photos)]).astype(np.float32)
                else:
                    x = load_arrays(chunk, pre, None).astype(np.float32)
                if view:
                    x = keras.ops.convert_to_numpy(aug(x, training=True))
                cache.write(np.ascontiguousarray(bottom(x, training=False).numpy(), np.float16).tobytes())
                advance(len(x))
    partial.rename(path)
    return path


def _peers(photos: list, labels: np.ndarray) -> list[list]:
    """For each photo, the other photos of its class (for mosaic views)."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    return [[photos[j] for j in by_class[int(label)] if j != i] for i, label in enumerate(labels)]


def train(config: TrainConfig, dataset: Flowers102, run_dir: Path, cluster: Cluster | None = None) -> keras.Model:
    """Run both phases; returns the full Keras model (raw RGB in, logits out).

    Under a distributed ``cluster`` this worker caches and trains on its shard of the photos and writes to
    ``cluster.write_dir(run_dir)``; the steps of an epoch are those of the whole training set.
    """
    run = _Training(config, dataset, cluster or make_cluster("default"), run_dir)
    run.timed("cache", run.cache)
    run.timed("phase1", run.phase1)
    run.timed("phase2", run.phase2)
    return run.finish()


def _peak_rss_gb() -> float:
    return round(peak_rss_mb() / 1024, 2)


class _Training:
    """One run's shared state (the backbone cut, the head, the data and how it is batched) and its phases."""

    def __init__(self, config: TrainConfig, dataset: Flowers102, cluster: Cluster, run_dir: Path) -> None:
        self.config, self.cluster = config, cluster
        self.work = cluster.write_dir(run_dir)
        self.work.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(config.seed)
        self.spec = get_backbone(config.backbone)
        pre = Preprocess(config.size, config.crop_fraction)
        train_s, val_s = training_samples(config, dataset)
        if cluster.distributed and not config.cache:
            raise DistributionError("a distributed strategy trains on the feature cache: drop --no-cache")
        rows = len(train_s) * (config.views if config.cache else 1)
        batch = config.batch_size
        self.steps = (math.ceil(rows / batch), math.ceil(len(val_s) / batch))  # of the whole set, on every worker
        self.train_s, val_s = cluster.shard(train_s), cluster.shard(val_s)  # this worker's photos (all, by default)
        self.x_train = None if config.cache else load_arrays(self.train_s, pre, "loading train")  # cached: per batch
        self.y_train = self.y_views = labels_of(self.train_s)
        self.x_val, self.y_val = load_arrays(val_s, pre, "loading val"), labels_of(val_s)
        with cluster.strategy.scope():
            self.features = self.spec.build(config.size, config.weights)
            self.bottom, self.top = split_backbone(self.features, self.spec.split)
        self.head = None  # built at phase 1, after the cache (the order the seeded initialisers were drawn in)
        self.n_classes, self.early = dataset.num_classes, config.protocol == "paper"
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.timings: dict = {}
        self.layout = {"strategy": cluster.name, "workers": cluster.workers, "replicas": cluster.replicas,
                       "global_batch": batch, "steps_per_epoch": self.steps[0], "validation_steps": self.steps[1]}
        self.final_weights = self.work / "phase2.weights.h5"
        self.resumed_phase2 = False

    def timed(self, name: str, step) -> None:
        start = time.perf_counter()
        step()
        self.timings[f"{name}_s"] = time.perf_counter() - start
        self.timings[f"{name}_peak_rss_gb"] = _peak_rss_gb()

    def batches(self, read, labels, shuffle: bool = True):
        """Endless distributed batches (only under a distributed strategy)."""
        return self.cluster.batches(read, labels, self.config.batch_size, self.config.seed, shuffle, self.layout)

    def cache(self) -> None:
        """The frozen bottom's maps of every view of this worker's training photos, and of val."""
        config, cluster = self.config, self.cluster
        if not config.cache:
            return
        shard = f" (worker {cluster.worker}'s shard)" if cluster.workers > 1 else ""
        with phase(f"cache: frozen bottom of {config.backbone} on {config.views} views of {len(self.train_s)} "
                   f"images{shard}"):
            name = "cache_train.npy" if cluster.workers == 1 else \
                f"cache_train.worker{cluster.worker}of{cluster.workers}.npy"
            cache_file = build_cache(self.bottom, self.train_s, config, self.work / name, self.y_train)
            self.y_views = np.tile(self.y_train, config.views)
            self.cached = CachedMaps(cache_file, None, config.batch_size, shuffle=False)
            self.cached_batches = CachedMaps(cache_file, self.y_views, config.batch_size, seed=config.seed)
            self.val_maps = predict_batches(self.bottom, self.x_val, description="caching val")

    def phase1(self) -> None:
        """The head on pooled features of the frozen backbone, with a cyclical LR."""
        config, cluster = self.config, self.cluster
        with cluster.strategy.scope():
            self.head = head = build_head(self.spec, self.n_classes, self.features.output_shape[-1])
        head_weights = self.work / "phase1_head.weights.h5"
        if cluster.everywhere([head_weights.exists()])[0]:
            head.load_weights(head_weights)
            return
        with phase(f"phase 1: new head on the frozen backbone, cyclical LR, up to {config.phase1_epochs} epochs"):
            if config.cache:
                pooled_top = keras.Sequential([self.top, self.pool])
                x1 = predict_batches(pooled_top, self.cached, description="pooling")
                v1 = predict_batches(pooled_top, self.val_maps, description="pooling val")
            else:
                frozen = keras.Sequential([self.features, self.pool])
                x1, v1 = predict_batches(frozen, self.x_train), predict_batches(frozen, self.x_val)
            lr = CyclicLR(config.clr_base, config.clr_max, config.clr_step_factor * self.steps[0], config.clr_policy)
            with cluster.strategy.scope():
                compile_model(head, config, lr, self.n_classes)
            if cluster.distributed:
                x, y = self.batches(x1.__getitem__, self.y_views), None
                val = self.batches(v1.__getitem__, self.y_val, False)
            else:
                x, y, val = x1, self.y_views, (v1, self.y_val)
            fit(head, x, y, config, self.work, "phase1", config.phase1_epochs, val, self.early, cluster,
                self.steps if cluster.distributed else None)
            write_atomically(head_weights, head.save_weights)

    def phase2(self) -> None:
        """The top of the backbone unfrozen (BatchNorm stays frozen), trained with the head on the cached maps."""
        config, cluster = self.config, self.cluster
        self.resumed_phase2 = bool(cluster.everywhere([self.final_weights.exists()])[0])
        if not config.phase2_epochs or self.resumed_phase2:
            return
        with phase(f"phase 2: fine-tune the top of the backbone from {self.spec.split}, up to "
                   f"{config.phase2_epochs} epochs"):
            with cluster.strategy.scope():
                if config.cache:
                    inp = keras.Input(self.bottom.output_shape[1:])
                    model2 = keras.Model(inp, self.head(self.pool(self.top(inp))))
                else:
                    for layer in self.bottom.layers:
                        layer.trainable = False
                    model2 = classifier(self.features, self.head)
                compile_model(model2, config, config.phase2_lr, self.n_classes)
            if cluster.distributed:
                x2 = self.batches(self.cached_batches.rows, self.y_views)
                v2 = self.batches(self.val_maps.__getitem__, self.y_val, False)
            elif config.cache:
                x2, v2 = self.cached_batches, (self.val_maps, self.y_val)
            else:
                x2, v2 = _augmented_dataset(self.x_train, self.y_train, config), (self.x_val, self.y_val)
            fit(model2, x2, None, config, self.work, "phase2", config.phase2_epochs, v2, self.early, cluster,
                self.steps if cluster.distributed else None)
            write_atomically(self.final_weights, model2.save_weights)

    def finish(self) -> keras.Model:
        """The whole model, its timings (and the distribution's layout) written next to it."""
        model = classifier(self.features, self.head)
        if self.resumed_phase2 and self.config.phase2_epochs:  # phase 2 finished in an earlier, killed process
            _load_trained_top(model, self.head, self.top, self.bottom, self.final_weights, self.config.cache)
        (self.work / "timings.json").write_text(json.dumps(self.timings, indent=2))
        if self.cluster.distributed:
            (self.work / "distribution.json").write_text(json.dumps(self.layout, indent=2))
        return model


def _load_trained_top(model, head, top, bottom, weights: Path, cached: bool) -> None:
    """Reload phase-2 weights (needed when phase 2 finished in an earlier, interrupted process)."""
    if cached:
        inp = keras.Input(bottom.output_shape[1:])
        keras.Model(inp, head(keras.layers.GlobalAveragePooling2D()(top(inp)))).load_weights(weights)
    else:
        model.load_weights(weights)


def _augmented_dataset(x: np.ndarray, y: np.ndarray, config: TrainConfig):
    """The uncached path: augmentation on the fly every epoch (tf.data)."""
    import tensorflow as tf

    aug = augmenter(config.rotation_deg, config.zoom, config.brightness, config.saturation, config.seed)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=config.seed)
    ds = ds.batch(config.batch_size).map(lambda a, b: (aug(tf.cast(a, tf.float32), training=True), b))
    return ds.prefetch(2)
