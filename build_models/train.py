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
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
from flowercam.preprocess import Preprocess

from .augment import augmenter
from .backbones import BackboneSpec, get_backbone
from .cache import CachedMaps
from .console import LogProgress, phase, progress, say
from .data import Flowers102, Sample
from .distribute import Cluster, DistributionError, make_cluster
from .field_views import FieldViews
from .images import labels_of, load_arrays, load_photos
from .losses import SmoothedSparseCrossentropy
from .presets import TrainConfig
from .schedules import CyclicLR


def build_head(spec: BackboneSpec, num_classes: int, feature_dim: int) -> keras.Sequential:
    """Pooled features -> logits: hidden Dense → BN → ReLU → Dropout blocks, then Dense(num_classes)."""
    reg = keras.regularizers.L2(spec.head_l2) if spec.head_l2 else None
    stack: list = [keras.Input((feature_dim,))]
    for i, units in enumerate(spec.hidden):
        stack += [keras.layers.Dense(units, kernel_regularizer=reg, name=f"head_dense{i}"),
                  keras.layers.BatchNormalization(name=f"head_bn{i}"),
                  keras.layers.ReLU(name=f"head_relu{i}"),
                  keras.layers.Dropout(spec.head_dropout, name=f"head_dropout{i}")]
    if not spec.hidden:
        stack.append(keras.layers.Dropout(spec.head_dropout, name="head_dropout"))
    stack.append(keras.layers.Dense(num_classes, name="logits"))
    return keras.Sequential(stack, name="head")


def split_backbone(features: keras.Model, split: str) -> tuple[keras.Model, keras.Model]:
    """(bottom, top) at layer ``split``: bottom is frozen and cached, top is fine-tuned in phase 2."""
    cut = features.get_layer(split).output
    bottom = keras.Model(features.input, cut, name="bottom")
    top = keras.Model(cut, features.output, name="top")
    for layer in top.layers:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    return bottom, top


def classifier(features: keras.Model, head: keras.Sequential) -> keras.Model:
    """The full model: raw RGB (0-255) -> logits."""
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features.output)
    return keras.Model(features.input, head(pooled), name="flowercam")


def _optimizer(config: TrainConfig, lr) -> keras.optimizers.Optimizer:
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    return keras.optimizers.SGD(lr, momentum=0.9)


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


def predict_batches(model: keras.Model, x, batch: int = 64, description: str = "predicting"):
    """``model(x)`` in batches with a progress bar (float32 numpy); ``x`` an array or a :class:`CachedMaps`."""
    if isinstance(x, CachedMaps):
        total, batches = x.shape[0], (x[index] for index in range(len(x)))
    else:
        total, batches = len(x), (np.asarray(x[i:i + batch], np.float32) for i in range(0, len(x), batch))
    outs = []
    with progress(description, total) as advance:
        for inputs in batches:
            outs.append(keras.ops.convert_to_numpy(model(inputs, training=False)))
            advance(len(outs[-1]))
    return np.concatenate(outs)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves weights and progress after every epoch, atomically, keeping the last ``keep``, so that a killed run
    resumes there; under a cluster every worker resumes at the last epoch that all of them saved.

    (Keras's BackupAndRestore writes its file in place: a kill during the write leaves it unreadable.)
    """

    def __init__(self, folder: Path, keep: int = 2) -> None:
        super().__init__()
        self.folder, self.keep = folder, keep

    def saved(self) -> list[int]:
        """The epochs with a whole checkpoint here (the state file is written after the weights)."""
        return sorted(int(p.stem[5:]) for p in self.folder.glob("epoch*.json")
                      if (self.folder / f"{p.stem}.weights.h5").exists())

    def restore(self, model: keras.Model, cluster: Cluster, epochs: int) -> int:
        """Load the last checkpoint every worker holds into a compiled ``model``; returns the epoch to start from
        (0: none in common)."""
        saved = set(self.saved())
        common = np.flatnonzero(cluster.everywhere([e in saved for e in range(epochs + 1)]))
        epoch = int(common[-1]) if len(common) else 0
        if epoch:
            state = json.loads((self.folder / f"epoch{epoch}.json").read_text())
            model.load_weights(self.folder / f"epoch{epoch}.weights.h5")
            model.optimizer.iterations.assign(state["iterations"])
        return epoch

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        done = epoch + 1
        save_atomically(self.model.save_weights, self.folder / f"epoch{done}.weights.h5")
        state = {"epoch": done, "iterations": int(self.model.optimizer.iterations.numpy())}
        save_atomically(lambda tmp: tmp.write_text(json.dumps(state)), self.folder / f"epoch{done}.json")
        for old in self.saved()[:-self.keep]:
            (self.folder / f"epoch{old}.json").unlink()
            (self.folder / f"epoch{old}.weights.h5").unlink()


def _truncate_history(path: Path, epochs: int) -> None:
    """Keep the CSV history of the first ``epochs`` epochs (a resumed run appends from there)."""
    if path.exists():
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:1 + epochs]))


class EpochLog(keras.callbacks.Callback):
    """In a log (stdout not a terminal), a line every 30 s inside long epochs: Keras's ``verbose=2`` prints
    only when an epoch ends, minutes apart in phase 2."""

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.log = LogProgress(f"epoch {epoch + 1}", self.params.get("steps") or 0, unit="batch", every_percent=101)

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.log.advance(1)


def save_atomically(save, path: Path) -> None:
    """``save(tmp)`` then rename over ``path``: readers never see a half-written file."""
    tmp = path.with_name(f".tmp-{path.name}")
    save(tmp)
    os.replace(tmp, path)


def _fit(model: keras.Model, x, y, config: TrainConfig, work: Path, phase: str, epochs: int, validation_data,
         early_stop: bool, cluster: Cluster, steps: tuple[int, int] | None = None) -> None:
    """``model.fit`` with per-epoch checkpoints (resumed if present), CSV history and early stopping; ``steps``
    (per epoch, per validation) when ``x`` and ``validation_data`` are endless distributed batches."""
    checkpoint = EpochCheckpoint(work / f"checkpoint_{phase}")
    with cluster.strategy.scope():
        start = checkpoint.restore(model, cluster, epochs)
    if start:
        say(f"resuming {phase} at epoch {start + 1}")
    history = work / f"history_{phase}.csv"
    _truncate_history(history, start)
    callbacks = [checkpoint, keras.callbacks.CSVLogger(str(history), append=True)]
    if not sys.stdout.isatty():
        callbacks.append(EpochLog())
    if early_stop:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=config.patience,
                                                       restore_best_weights=True))
    model.fit(x, y, batch_size=None if y is None else config.batch_size, epochs=epochs, initial_epoch=start,
              validation_data=validation_data, shuffle=isinstance(x, np.ndarray | CachedMaps), verbose=2,
              callbacks=callbacks, steps_per_epoch=steps and steps[0], validation_steps=steps and steps[1])


def _compile(model: keras.Model, config: TrainConfig, lr, num_classes: int) -> None:
    model.compile(_optimizer(config, lr), SmoothedSparseCrossentropy(num_classes, config.label_smoothing),
                  metrics=["accuracy"])


def train(config: TrainConfig, dataset: Flowers102, run_dir: Path, cluster: Cluster | None = None) -> keras.Model:
    """Run both phases; returns the full Keras model (raw RGB in, logits out).

    Under a distributed ``cluster`` this worker caches and trains on its shard of the photos and writes to
    ``cluster.write_dir(run_dir)``; the steps of an epoch are those of the whole training set.
    """
    cluster = cluster or make_cluster("default")
    work = cluster.write_dir(run_dir)
    work.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    spec = get_backbone(config.backbone)
    pre = Preprocess(config.size, config.crop_fraction)
    train_s, val_s = training_samples(config, dataset)
    if cluster.distributed and not config.cache:
        raise DistributionError("a distributed strategy trains on the feature cache: drop --no-cache")
    batch = config.batch_size
    rows = len(train_s) * (config.views if config.cache else 1)
    steps = (math.ceil(rows / batch), math.ceil(len(val_s) / batch))  # of the whole set, on every worker
    train_s, val_s = cluster.shard(train_s), cluster.shard(val_s)  # this worker's photos (all, by default)
    x_train = None if config.cache else load_arrays(train_s, pre, "loading train")  # cached: read per batch
    y_train = labels_of(train_s)
    x_val, y_val = load_arrays(val_s, pre, "loading val"), labels_of(val_s)
    with cluster.strategy.scope():
        features = spec.build(config.size, config.weights)
        bottom, top = split_backbone(features, spec.split)
    early = config.protocol == "paper"
    n_classes = dataset.num_classes
    timings = {}
    layout = {"strategy": cluster.name, "workers": cluster.workers, "replicas": cluster.replicas,
              "global_batch": batch, "steps_per_epoch": steps[0], "validation_steps": steps[1]}

    def batches(read, labels, shuffle=True):  # endless distributed batches, or None on the default path
        return cluster.batches(read, labels, batch, config.seed, shuffle, layout) if cluster.distributed else None

    t0 = time.perf_counter()
    if config.cache:
        shard = f" (worker {cluster.worker}'s shard)" if cluster.workers > 1 else ""
        with phase(f"cache: frozen bottom of {config.backbone} on {config.views} views of {len(train_s)} "
                   f"images{shard}"):
            name = "cache_train.npy" if cluster.workers == 1 else \
                f"cache_train.worker{cluster.worker}of{cluster.workers}.npy"
            cache_file = build_cache(bottom, train_s, config, work / name, y_train)
            y_views = np.tile(y_train, config.views)
            cache = CachedMaps(cache_file, None, batch, shuffle=False)
            cached_batches = CachedMaps(cache_file, y_views, batch, seed=config.seed)
            val_maps = predict_batches(bottom, x_val, description="caching val")
    timings["cache_s"] = time.perf_counter() - t0
    timings["cache_peak_rss_gb"] = peak_rss_gb()

    # Phase 1: head on pooled features of the frozen backbone.
    t0 = time.perf_counter()
    pool = keras.layers.GlobalAveragePooling2D()
    with cluster.strategy.scope():
        head = build_head(spec, n_classes, features.output_shape[-1])
    head_weights = work / "phase1_head.weights.h5"
    if cluster.everywhere([head_weights.exists()])[0]:
        head.load_weights(head_weights)
    else:
        with phase(f"phase 1: new head on the frozen backbone, cyclical LR, up to {config.phase1_epochs} epochs"):
            if config.cache:
                pooled_top = keras.Sequential([top, pool])
                x1 = predict_batches(pooled_top, cache, description="pooling")
                v1 = predict_batches(pooled_top, val_maps, description="pooling val")
            else:
                frozen = keras.Sequential([features, pool])
                x1, v1 = predict_batches(frozen, x_train), predict_batches(frozen, x_val)
                y_views = y_train
            lr = CyclicLR(config.clr_base, config.clr_max, config.clr_step_factor * steps[0], config.clr_policy)
            with cluster.strategy.scope():
                _compile(head, config, lr, n_classes)
            if cluster.distributed:
                x, y, val = batches(x1.__getitem__, y_views), None, batches(v1.__getitem__, y_val, False)
            else:
                x, y, val = x1, y_views, (v1, y_val)
            _fit(head, x, y, config, work, "phase1", config.phase1_epochs, val, early, cluster,
                 steps if cluster.distributed else None)
            save_atomically(head.save_weights, head_weights)
    timings["phase1_s"] = time.perf_counter() - t0
    timings["phase1_peak_rss_gb"] = peak_rss_gb()

    # Phase 2: unfreeze the top (BatchNorm stays frozen), train on the cached maps.
    t0 = time.perf_counter()
    final_weights = work / "phase2.weights.h5"
    resumed_phase2 = bool(cluster.everywhere([final_weights.exists()])[0])
    if config.phase2_epochs and not resumed_phase2:
        with phase(f"phase 2: fine-tune the top of the backbone from {spec.split}, up to "
                   f"{config.phase2_epochs} epochs"):
            with cluster.strategy.scope():
                if config.cache:
                    inp = keras.Input(bottom.output_shape[1:])
                    model2 = keras.Model(inp, head(pool(top(inp))))
                else:
                    for layer in bottom.layers:
                        layer.trainable = False
                    model2 = classifier(features, head)
                _compile(model2, config, config.phase2_lr, n_classes)
            if cluster.distributed:
                x2, v2 = batches(cached_batches.rows, y_views), batches(val_maps.__getitem__, y_val, False)
            elif config.cache:
                x2, v2 = cached_batches, (val_maps, y_val)
            else:
                x2, v2 = _augmented_dataset(x_train, y_train, config), (x_val, y_val)
            _fit(model2, x2, None, config, work, "phase2", config.phase2_epochs, v2, early, cluster,
                 steps if cluster.distributed else None)
            save_atomically(model2.save_weights, final_weights)
    timings["phase2_s"] = time.perf_counter() - t0
    timings["phase2_peak_rss_gb"] = peak_rss_gb()
    model = classifier(features, head)
    if resumed_phase2 and config.phase2_epochs:  # phase 2 finished in an earlier, interrupted process
        _load_trained_top(model, features, head, top, bottom, final_weights, config.cache)
    (work / "timings.json").write_text(json.dumps(timings, indent=2))
    if cluster.distributed:
        (work / "distribution.json").write_text(json.dumps(layout, indent=2))
    return model


def peak_rss_gb() -> float:
    """The process's peak resident memory so far (GB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)


def _load_trained_top(model, features, head, top, bottom, weights: Path, cached: bool) -> None:
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


def training_samples(config: TrainConfig, dataset: Flowers102) -> tuple[list[Sample], list[Sample]]:
    """(training samples, validation samples) under the config's protocol and subsampling."""
    train = list(dataset.split("trainval" if config.protocol == "trainval" else "train"))
    val = list(dataset.val)
    if config.max_per_class:
        train, val = _per_class(train, config.max_per_class), _per_class(val, config.max_per_class)
    return train, val


def evaluation_samples(config: TrainConfig, dataset: Flowers102, split: str) -> list[Sample]:
    """The samples a run is evaluated on: the split, with val subsampled like training when asked."""
    if split == "val" and config.max_per_class:
        return training_samples(config, dataset)[1]
    return list(dataset.split(split))


def _per_class(samples: list[Sample], limit: int) -> list[Sample]:
    counts: dict[int, int] = {}
    kept = []
    for s in samples:
        if counts.get(s.label, 0) < limit:
            kept.append(s)
            counts[s.label] = counts.get(s.label, 0) + 1
    return kept
