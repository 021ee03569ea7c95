"""Writing a file so that readers see the old one or the new one, never half of one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, save: Callable[[Path], object], mode: int = 0o644) -> Path:
    """``save(tmp)`` to a hidden file beside ``path`` (same name and suffixes, so savers that check them work),
    fsync, set ``mode``, then rename over ``path``. A failed save leaves the previous file and no temporary one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{secrets.token_hex(4)}.{path.name}")
    try:
        save(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def is_temporary(path: Path) -> bool:
    """A file :func:`write_atomically` has not finished (listings skip it)."""
    return path.name.startswith(".")
