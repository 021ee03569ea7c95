"""Field views: seeded, the right shape, and really different framings of the photo."""

from __future__ import annotations

import numpy as np
from flowercam.model.preprocess import Preprocess
from PIL import Image

from build_models.field_views import FieldViews


def _photo() -> Image.Image:
    """A 3:2 photo: a bright disc (the flower) in the middle of a dark green field."""
    yy, xx = np.mgrid[0:200, 0:300]
    disc = (xx - 150) ** 2 + (yy - 100) ** 2 < 40 ** 2
    pixels = np.zeros((200, 300, 3), np.uint8)
    pixels[..., 1] = 80
    pixels[disc] = (250, 220, 30)
    return Image.fromarray(pixels)


def test_views_are_seeded_and_shaped():
    views = FieldViews(64)
    a = views(_photo(), np.random.default_rng(3))
    b = views(_photo(), np.random.default_rng(3))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)


def test_views_change_the_framing():
    photo, views = _photo(), FieldViews(64, p_blur=0, p_noise=0, p_jpeg=0, p_cast=0)
    center = Preprocess(64).to_array(photo)
    flower_share = [(views(photo, np.random.default_rng(i))[..., 0] > 200).mean() for i in range(60)]
    base = (center[..., 0] > 200).mean()
    assert min(flower_share) < 0.6 * base  # zoom-outs and whole-photo views show the flower smaller
    assert max(flower_share) > 1.4 * base  # crops show it larger


def test_faults_change_pixels_but_not_the_scene():
    photo = _photo()
    clean = FieldViews(64, p_crop=0, p_zoom_out=0, p_whole=0, p_blur=0, p_noise=0, p_jpeg=0, p_cast=0)
    faulty = FieldViews(64, p_crop=0, p_zoom_out=0, p_whole=0, p_blur=1, p_noise=1, p_jpeg=1, p_cast=1)
    a, b = clean(photo, np.random.default_rng(0)), faulty(photo, np.random.default_rng(0))
    assert not np.array_equal(a, b)
    assert abs(a.astype(float) - b.astype(float)).mean() < 40


def test_mosaic_tiles_photos_of_the_class():
    """A mosaic shows the photo and its peers side by side: several small flowers, as in a field or a bouquet."""
    photo = _photo()
    peer = Image.new("RGB", photo.size, (20, 40, 230))  # a blue 'photo of the same class'
    views = FieldViews(60, p_mosaic=1.0, p_blur=0, p_noise=0, p_jpeg=0, p_cast=0)
    view = views(photo, np.random.default_rng(1), [peer])
    blue = (view[..., 2] > 150) & (view[..., 0] < 80)
    assert 0.3 < blue.mean() < 0.95  # peers fill most tiles, the photo at least one
    alone = views(photo, np.random.default_rng(1), [])  # no peers: another framing of the photo itself
    assert alone.shape == (60, 60, 3) and not ((alone[..., 2] > 150) & (alone[..., 0] < 80)).any()
