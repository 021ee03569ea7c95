"""Every committed results page, the model card and the README's generated blocks are what their scripts render
from the committed JSON: a hand edit, or a JSON changed without re-rendering, fails here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDER = _bench("render")


@pytest.mark.parametrize("name", sorted(RENDER.RENDERERS))
def test_results_page_is_rendered_from_its_json(name):
    assert (RENDER.RESULTS / f"{name}.md").read_text() == RENDER.rendered(name)


def test_every_results_page_has_a_renderer():
    pages = {p.stem for p in RENDER.RESULTS.glob("*.md")}
    assert pages == set(RENDER.RENDERERS)


def test_model_card_is_rendered_from_sidecar_and_results():
    card = _bench("model_card")
    assert card.CARD.read_text() == card.render_card()


def test_readme_blocks_are_rendered():
    card = _bench("model_card")
    assert (ROOT / "README.md").read_text() == card.render_readme((ROOT / "README.md").read_text())
