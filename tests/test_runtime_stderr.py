"""Catching the runtime's native lines on fd 2 never loses the process's stderr, however threads overlap."""

from __future__ import annotations

import os
import sys
import threading

from flowercam.model.runtime import filtered_stderr


def test_overlapping_filtered_blocks_leave_fd_2_where_it_was(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stderr", os.fdopen(2, "w", closefd=False))  # fd 2 itself, not pytest's capture
    log = tmp_path / "journal"
    saved = os.dup(2)
    sys.stderr.flush()
    with open(log, "wb") as journal:
        os.dup2(journal.fileno(), 2)  # fd 2 is the journal, as under systemd
        try:
            entered, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

            def first() -> None:  # a slow interpreter build, which ends while the second is still building
                with filtered_stderr(lambda line: True):
                    entered.set()
                    second_in.wait(0.3)
                first_out.set()

            def second() -> None:
                entered.wait()
                with filtered_stderr(lambda line: True):
                    second_in.set()
                    first_out.wait(0.3)

            threads = [threading.Thread(target=first), threading.Thread(target=second)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            os.write(2, b"a log line after both builds\n")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    assert b"a log line after both builds" in log.read_bytes()
