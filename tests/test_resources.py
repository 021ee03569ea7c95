"""Memory as every result reports it: this program's own peak, not its parent's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from flowercam.model.resources import current_rss_mb, peak_rss_mb


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_child_reports_its_own_peak_not_its_parents():
    """getrusage's ru_maxrss carries a parent's peak over fork and exec: a daemon started by a big process (a
    test runner, a bench script) would report that process's memory as its own."""
    ballast = np.ones(300 << 20, np.uint8)  # 300 MB held by the parent while the child runs
    code = "from flowercam.model.resources import peak_rss_mb; print(peak_rss_mb())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert ballast.sum() > 0 and child < 150, child
    assert peak_rss_mb() >= current_rss_mb() * 0.99 and peak_rss_mb() > 300
