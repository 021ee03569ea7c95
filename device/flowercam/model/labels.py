"""Class names from folder names: the one rule for ``build-models`` (training on class folders),
``flowercam evaluate`` and ``flowercam learn``."""

from __future__ import annotations

NOT_A_FLOWER = "not a flower"  # learn: a folder of this name (not_a_flower) holds photos that are no flower


def class_name(folder: str) -> str:
    """A class name from its folder name: underscores are spaces, runs of spaces are one (``common__dandelion``
    -> ``common dandelion``)."""
    return " ".join(folder.replace("_", " ").split())


def folder_class(folder: str, labels: tuple[str, ...]) -> int | None:
    """The index of the class a folder name stands for (any case), else None."""
    wanted = class_name(folder).casefold()
    return next((i for i, label in enumerate(labels) if class_name(label).casefold() == wanted), None)
