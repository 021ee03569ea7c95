"""build_models: the workstation side of flowercam (data, training, evaluation, export).

TensorFlow and Keras are imported only inside the modules that need them, so the data
tools and the command line start fast.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from .api import evaluate, export, load_data, train  # noqa: E402  (after the environment above)

__all__ = ["evaluate", "export", "load_data", "train"]
