"""``model.fit`` for long runs on a CPU: per-epoch checkpoints written atomically (a killed run resumes), CSV
history, early stopping, a line every 30 s in a log; and batched prediction with a progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np
from flowercam.model.files import write_atomically

from .cache import CachedMaps
from .console import LogProgress, progress, say
from .distribute import Cluster
from .losses import SmoothedSparseCrossentropy
from .presets import TrainConfig


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
        write_atomically(self.folder / f"epoch{done}.weights.h5", self.model.save_weights)
        state = {"epoch": done, "iterations": int(self.model.optimizer.iterations.numpy())}
        write_atomically(self.folder / f"epoch{done}.json", lambda tmp: tmp.write_text(json.dumps(state)))
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


def fit(model: keras.Model, x, y, config: TrainConfig, work: Path, phase: str, epochs: int, validation_data,
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


def compile_model(model: keras.Model, config: TrainConfig, lr, num_classes: int) -> None:
    model.compile(_optimizer(config, lr), SmoothedSparseCrossentropy(num_classes, config.label_smoothing),
                  metrics=["accuracy"])


def _optimizer(config: TrainConfig, lr) -> keras.optimizers.Optimizer:
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    return keras.optimizers.SGD(lr, momentum=0.9)
