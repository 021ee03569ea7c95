"""One home for atomic writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import stat

import pytest
from flowercam.model.files import write_atomically


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "adapter.npz"
    path.write_bytes(b"previous")

    def half_then_fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["adapter.npz"]


def test_a_save_sees_the_names_suffixes_and_the_file_gets_its_mode(tmp_path):
    seen = []
    path = write_atomically(tmp_path / "sub" / "epoch1.weights.h5",
                            lambda tmp: (seen.append(tmp.name), tmp.write_bytes(b"new")), mode=0o600)
    assert seen[0].endswith(".epoch1.weights.h5") and seen[0].startswith(".")  # hidden while unfinished
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o600
