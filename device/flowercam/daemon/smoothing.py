"""Temporal smoothing of per-frame predictions, so that the reported label does not flicker.

Calibrated probabilities are averaged over the last ``window`` frames. A class is entered
once its average reaches ``enter`` and kept while it stays at or above ``stay``
(hysteresis); otherwise the answer is "uncertain" (None).
"""

from __future__ import annotations

from collections import deque

import numpy as np


class Smoother:
    def __init__(self, window: int = 5, enter: float = 0.6, stay: float = 0.4) -> None:
        if not 0 <= stay <= enter <= 1:
            raise ValueError(f"need 0 <= stay <= enter <= 1, got stay={stay}, enter={enter}")
        self.window, self.enter, self.stay = window, enter, stay
        self._frames: deque[np.ndarray] = deque(maxlen=window)
        self.current: int | None = None
        self.confidence = 0.0

    def update(self, probs: np.ndarray) -> bool:
        """Add one frame's probabilities; returns True when the reported class changed."""
        self._frames.append(np.asarray(probs, dtype=np.float64))
        mean = np.mean(self._frames, axis=0)
        best = int(mean.argmax())
        previous = self.current
        if self.current is not None and mean[self.current] >= self.stay:
            pass  # keep it
        elif mean[best] >= self.enter:
            self.current = best
        else:
            self.current = None
        self.confidence = float(mean[self.current]) if self.current is not None else float(mean[best])
        return self.current != previous
