"""Re-render every bench/results/*.md from its committed JSON, or check that they match.

Usage: python bench/render.py [--check]   (exit 1 with --check when a page differs from its JSON)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).parent))
import cache_memory  # noqa: E402
import cache_speedup  # noqa: E402
import calibration_size  # noqa: E402
import classify_test_split  # noqa: E402
import clients  # noqa: E402
import daemon_soak  # noqa: E402
import data_checks  # noqa: E402
import distributed  # noqa: E402
import faults  # noqa: E402
import field  # noqa: E402
import fuzz_inputs  # noqa: E402
import latency  # noqa: E402
import learning  # noqa: E402
import mqtt_session  # noqa: E402
import own_flowers  # noqa: E402
import pi_userland  # noqa: E402
import shipped_bench  # noqa: E402
import sightings  # noqa: E402
import summary  # noqa: E402

RESULTS = Path(__file__).parent / "results"
RENDERERS: dict[str, Callable[[dict], str]] = {
    "accuracy": summary.render_accuracy, "training_cost": summary.render_cost, "latency": latency.render,
    "classify_test": classify_test_split.render, "daemon_soak": daemon_soak.render,
    "calibration_size": calibration_size.render, "cache_speedup": cache_speedup.render,
    "shipped_bench": shipped_bench.render, "data_checks": data_checks.render, "field": field.render,
    "field_experiments": field.render_experiments, "clients": clients.render, "own_flowers": own_flowers.render,
    "faults": faults.render, "mqtt": mqtt_session.render, "cache_memory": cache_memory.render,
    "distributed": distributed.render, "learning": learning.render,
    "fuzz_inputs": fuzz_inputs.render, "sightings": sightings.render, "pi_userland": pi_userland.render,
}


def rendered(name: str, results: Path = RESULTS) -> str:
    """The page ``name``.md as its renderer makes it from ``name``.json."""
    return RENDERERS[name](json.loads((results / f"{name}.json").read_text()))


def main(check: bool = typer.Option(False, "--check", help="Only compare; exit 1 on a difference.")) -> None:
    stale = []
    for name in RENDERERS:
        page = RESULTS / f"{name}.md"
        text = rendered(name)
        if check:
            if not page.exists() or page.read_text() != text:
                stale.append(page.name)
        else:
            page.write_text(text)
    if stale:
        typer.echo(f"differ from their JSON: {', '.join(stale)}", err=True)
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
