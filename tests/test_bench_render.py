"""Every committed results page, the model card and the README's generated blocks are what their scripts render
from the committed JSON: a hand edit, or a JSON changed without re-rendering, fails here."""

from __future__ import annotations

import importlib.util
import json
import re
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


def _headline() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("<!-- generated:headline -->", 1)[1].split("<!-- /generated:headline -->", 1)[0]


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "") for n in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", re.sub(r"`[^`]*`", "", text))]


def _in_page(figure: str, page: str) -> bool:
    """``figure`` is one of the page's numbers, rounded as the README writes it (4.25 for 4.254)."""
    digits = len(figure.partition(".")[2])
    return any(f"{float(n):.{digits}f}" == figure for n in _numbers(page))


def _rows() -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in _headline().splitlines()
            if line.startswith("| ") and not line.startswith("| |")]


def _links(cell: str) -> list[tuple[str, str]]:
    """(path, the machine the cell names after the link, or "") for each link in a "from" cell."""
    return re.findall(r"\]\(([^)]+)\)(?: \(on ([^)]+\)?)\))?", cell)


def test_headline_figures_come_from_the_machine_it_names():
    """One machine named for the headline; a row citing a page measured elsewhere names that page's machine."""
    machine = re.search(r"Measured on (.+?) \(2 cores", _headline()).group(1)
    assert _rows(), "no headline table"
    for row in _rows():
        assert _links(row[-1]), f"row cites no results page: {row[0]}"
        for path, named in _links(row[-1]):
            page = (ROOT / path).read_text()
            found = re.search(r"^- machine: (.+?), \d+ cores", page, re.M)
            if found:
                assert found.group(1) == (named or machine), f"{row[0]}: {path} was measured on {found.group(1)}"


def test_headline_figures_are_in_the_pages_they_cite():
    """Every number of the seed/previous/now columns is a number of a page its row cites (rounded as written)."""
    for row in _rows():
        pages = [(ROOT / path).read_text() for path, _ in _links(row[-1])]
        for figure in _numbers(" ".join(row[1:-1])):
            assert any(_in_page(figure, page) for page in pages), f"{row[0]}: {figure} is in none of its pages"


def test_edge_tpu_op_count_is_the_shipped_models():
    """The sidecar's readiness figure, the README's and `flowercam info`'s are the shipped file's (was 69 vs 70)."""
    import json

    from flowercam.model.edgetpu import check_readiness

    model = ROOT / "device" / "flowercam" / "models" / "flowercam.tflite"
    live = check_readiness(model).summary()
    sidecar = json.loads(model.with_suffix(".json").read_text())
    assert sidecar["metrics"]["edgetpu_readiness"] == live
    assert live in _headline()


def test_run_all_regenerates_every_page():
    """Each results page's command (its ``- command:`` line) is a script bench/run_all.sh calls."""
    run_all = (ROOT / "bench" / "run_all.sh").read_text()
    for page in sorted(RENDER.RESULTS.glob("*.md")):
        found = re.search(r"^- command: `python (bench/\w+\.py)", page.read_text(), re.M)
        assert found, f"{page.name} names no command"
        assert f"python {found.group(1)}" in run_all, f"{page.name}: {found.group(1)} is not in bench/run_all.sh"


def test_the_default_anchor_weight_is_the_one_the_learning_page_picks():
    """Recipe.anchor_weight is the lowest weight on the committed learning page that keeps the Oxford test at most
    8 % uncertain and at least 95 % top-1, and the page was measured with the whole default recipe (a default
    changed without re-measuring fails)."""
    from dataclasses import asdict

    from flowercam.learning.fit import DEFAULT_RECIPE

    learning = _bench("learning")
    result = json.loads((RENDER.RESULTS / "learning.json").read_text())
    assert asdict(DEFAULT_RECIPE) == result["recipe"]
    assert DEFAULT_RECIPE.anchor_weight == learning.anchor_weight_pick(result)
