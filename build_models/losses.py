"""The training loss: sparse categorical cross-entropy on logits with label smoothing."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="flowercam")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels against logits, with label smoothing (Keras's sparse loss has none)."""

    def __init__(self, num_classes: int, label_smoothing: float = 0.0, name: str = "smoothed_sparse_ce",
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes, self.label_smoothing = int(num_classes), float(label_smoothing)

    def call(self, y_true, y_pred):
        onehot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        return keras.losses.categorical_crossentropy(onehot, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "label_smoothing": self.label_smoothing}
