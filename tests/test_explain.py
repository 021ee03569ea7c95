"""Explanations on a tiny model whose class is decided by a coloured patch in one corner."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from build_models.explain import Embeddings, gradcam, lime_explanation, lime_panel

SIZE, PATCH = 32, 10


def _images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(60, 160, (n, SIZE, SIZE, 3)).astype(np.float32)  # grey-ish noise
    y = np.arange(n) % 2
    x[y == 1, :PATCH, :PATCH] = (250, 20, 20)  # class 1: a red patch in the top-left corner
    return x, y


def _superpixels(image: np.ndarray) -> np.ndarray:
    """About 16 SLIC superpixels of a 0-255 image (no Lab conversion: it expects 0-1 and merges noise to one)."""
    from skimage.segmentation import slic

    segments = slic(image, n_segments=16, compactness=10, start_label=0, convert2lab=False)
    assert len(np.unique(segments)) >= 8
    return segments


@pytest.fixture(scope="module")
def patch_model():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = _images(256, rng)
    inputs = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inputs)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=15, verbose=0)
    x_test, y_test = _images(40, rng)
    assert (model.predict(x_test, verbose=0).argmax(1) == y_test).mean() > 0.95
    return model


def test_gradcam_peaks_in_the_patch_corner(patch_model):
    image, _ = _images(2, np.random.default_rng(5))
    heatmap, cls = gradcam(patch_model, "last_conv", image[1], class_index=1)
    assert cls == 1 and heatmap.shape == (SIZE, SIZE) and heatmap.max() == pytest.approx(1.0)
    row, col = np.unravel_index(heatmap.argmax(), heatmap.shape)
    assert row < PATCH + 2 and col < PATCH + 2


def test_lime_top_superpixel_is_in_the_patch_corner(patch_model):
    image, _ = _images(2, np.random.default_rng(6))
    explanation = lime_explanation(patch_model, image[1], labels=(1,), num_samples=200,
                                   segmenter=_superpixels)
    _, mask = lime_panel(image[1], explanation, 1, num_features=1)  # the region the figure shows first
    rows, cols = np.nonzero(mask)
    assert rows.mean() < SIZE / 2 and cols.mean() < SIZE / 2  # the corner's quadrant
    assert mask[: PATCH, : PATCH].mean() > 0.3


def test_similarity_search_finds_the_image_itself_first(patch_model, tmp_path):
    from build_models.heads import embedding_model

    x, y = _images(20, np.random.default_rng(7))
    emb = Embeddings.load_or_compute(tmp_path / "emb.npz", patch_model, lambda: x, y, [f"{i}" for i in range(20)])
    queries = embedding_model(patch_model).predict(x, verbose=0)
    for metric in ("euclidean", "cosine"):
        for i in (0, 7, 13):
            found = emb.nearest(queries[i], k=5, metric=metric)
            assert found[0][0] == i and found[0][1] == pytest.approx(0.0, abs=1e-4)
            distances = [d for _, d in found]
            assert distances == sorted(distances)
    same_class = emb.nearest(queries[3], k=3, within_class=0)
    assert all(y[i] == 0 for i, _ in same_class)
    assert Embeddings.load_or_compute(tmp_path / "emb.npz", patch_model, lambda: 1 / 0, y, []).vectors.shape[0] == 20


def test_lime_panel_colours_the_chosen_regions_and_dims_the_rest(patch_model):
    from build_models.explain import lime_panel

    image, _ = _images(2, np.random.default_rng(6))
    explanation = lime_explanation(patch_model, image[1], labels=(1,), num_samples=200,
                                   segmenter=_superpixels)
    panel, mask = lime_panel(image[1], explanation, 1, num_features=1)
    assert panel.shape == image[1].shape and panel.dtype == np.uint8 and 0 < mask.mean() < 1
    diff = np.abs(panel.astype(float) - image[1])
    assert diff[mask].mean() > 25  # tinted
    assert panel[mask][:, 1].mean() > image[1][mask][:, 1].mean()  # green goes up where LIME chose
    assert panel[~mask].mean() < 0.6 * image[1][~mask].mean()  # the rest is dimmed
    assert mask[:PATCH, :PATCH].mean() > 0.3


@pytest.fixture(scope="module")
def weak_run(dataset_dir, tmp_path_factory):
    """A tiny lite0 run trained for one epoch: it makes mistakes, so every figure type has something to show."""
    from build_models.data import load_flowers102
    from build_models.presets import get_preset
    from build_models.run import start_run

    run = tmp_path_factory.mktemp("runs") / "tiny"
    start_run(get_preset("tiny", phase1_epochs=1, phase2_epochs=0), load_flowers102(dataset_dir), run)
    return run


def test_every_figure_type_renders_with_its_titles_inside_the_canvas(weak_run, dataset_dir, tmp_path, monkeypatch):
    from PIL import Image

    from build_models import report
    from build_models.data import load_flowers102

    saved: list[str] = []
    real_save = report.save_figure

    def checked_save(fig, path, dpi=80):
        fig.canvas.draw()
        width, height = fig.bbox.width, fig.bbox.height
        texts = [ax.title for ax in fig.axes if ax.get_title()] + ([fig._suptitle] if fig._suptitle else [])
        assert texts
        for text in texts:
            box = text.get_window_extent()
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, text.get_text()
            assert text.get_fontsize() >= 11
        real_save(fig, path, dpi)
        saved.append(path.name)
        with Image.open(path) as image:
            assert image.mode == "RGB"  # no 256-colour palette: smooth heatmaps

    monkeypatch.setattr(report, "save_figure", checked_save)
    ds = load_flowers102(dataset_dir)
    sample = ds.test[0]
    summary = report.explain_image(weak_run, ds, sample.path, tmp_path / "explain", sample.label, lime_samples=40)
    assert "uncalibrated (T = 1" in summary["probabilities"]  # not exported: said plainly
    index = report.report_run(weak_run, ds, tmp_path / "report", gallery=3)
    assert saved == [f"{sample.path.stem}_explained.jpg", f"{sample.path.stem}_neighbours.jpg",
                     "misclassified_gallery.jpg"]
    assert "![gallery](misclassified_gallery.jpg)" in index.read_text()
    no_gallery = report.report_run(weak_run, ds, tmp_path / "report0", gallery=0)
    assert "--gallery 0" in no_gallery.read_text() and not (tmp_path / "report0" / "misclassified_gallery.jpg").exists()
