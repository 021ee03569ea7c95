"""Cyclical learning rates (Smith 2017) as a Keras schedule, and the LR range test."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

POLICIES = ("triangular", "triangular2", "exp_range")


@keras.saving.register_keras_serializable(package="flowercam")
class CyclicLR(keras.optimizers.schedules.LearningRateSchedule):
    """Triangular, triangular2 or exp_range cyclical learning rate.

    ``step_size`` is half a cycle, in iterations (the paper's rule: 2-10× iterations per epoch).
    """

    def __init__(self, base_lr: float, max_lr: float, step_size: int, policy: str = "triangular",
                 gamma: float = 0.99994) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown CLR policy {policy!r}; valid: {', '.join(POLICIES)}")
        if not 0 < base_lr <= max_lr:
            raise ValueError(f"need 0 < base_lr <= max_lr, got {base_lr}, {max_lr}")
        self.base_lr, self.max_lr, self.step_size = float(base_lr), float(max_lr), int(step_size)
        self.policy, self.gamma = policy, float(gamma)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        cycle = ops.floor(1.0 + step / (2.0 * self.step_size))
        x = ops.abs(step / self.step_size - 2.0 * cycle + 1.0)
        amplitude = (self.max_lr - self.base_lr) * ops.maximum(0.0, 1.0 - x)
        if self.policy == "triangular2":
            amplitude = amplitude / ops.power(2.0, cycle - 1.0)
        elif self.policy == "exp_range":
            amplitude = amplitude * ops.power(self.gamma, step)
        return self.base_lr + amplitude

    def get_config(self) -> dict:
        return {"base_lr": self.base_lr, "max_lr": self.max_lr, "step_size": self.step_size,
                "policy": self.policy, "gamma": self.gamma}


def lr_range_test(model: keras.Model, x: np.ndarray, y: np.ndarray, min_lr: float = 1e-5,
                  max_lr: float = 10.0, steps: int = 200, batch_size: int = 64,
                  optimizer: str = "sgd", loss=None) -> tuple[np.ndarray, np.ndarray]:
    """Train with an exponentially rising LR, one batch a step. Returns (lrs, smoothed losses).

    Stops early once the loss explodes (4× the best and 1.5× the first). ``model`` must be compiled-free;
    its weights are changed.
    """
    rng = np.random.default_rng(0)
    lrs = min_lr * (max_lr / min_lr) ** (np.arange(steps) / max(1, steps - 1))
    opt = keras.optimizers.SGD(learning_rate=min_lr, momentum=0.9) if optimizer == "sgd" \
        else keras.optimizers.Adam(learning_rate=min_lr)
    model.compile(optimizer=opt, loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses, smooth, best = [], 0.0, math.inf
    for i, lr in enumerate(lrs):
        opt.learning_rate.assign(lr)
        idx = rng.integers(0, len(x), batch_size)
        loss = float(model.train_on_batch(x[idx], y[idx]))
        smooth = 0.9 * smooth + 0.1 * loss  # exponential moving average, bias-corrected below
        losses.append(smooth / (1 - 0.9 ** (i + 1)))
        best = min(best, losses[-1])
        if not math.isfinite(loss) or losses[-1] > max(4 * best, 1.5 * losses[0]):
            break
    return lrs[: len(losses)], np.array(losses)


def suggest_band(lrs: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """The CLR band from a range test: max_lr a third of the LR at the loss minimum, base_lr = max_lr / 8."""
    i_min = int(np.argmin(losses))
    max_lr = float(lrs[i_min]) / 3.0  # back off from where the loss bottoms out
    return max_lr / 8.0, max_lr
