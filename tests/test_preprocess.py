"""The shared preprocessing: odd but valid images work, broken ones fail with one line."""

from __future__ import annotations

import numpy as np
import pytest
from flowercam.model.preprocess import ImageError, Preprocess, decode, find_images
from PIL import Image

from tests.helpers import flower_like, write_broken_files, write_odd_images


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    return write_odd_images(tmp_path_factory.mktemp("odd"))


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return write_broken_files(tmp_path_factory.mktemp("broken"))


def test_every_odd_image_becomes_rgb_input(odd):
    pre = Preprocess(64)
    for name, path in odd.items():
        array = pre(path)
        assert array.shape == (64, 64, 3) and array.dtype == np.uint8, name


def test_sixteen_bit_keeps_its_range(odd):
    gray16 = np.asarray(decode(odd["gray16.png"]))
    gray8 = np.asarray(decode(odd["gray.jpg"]))
    assert gray16.max() > 200  # not clipped to 255 everywhere, not crushed to black
    assert abs(float(gray16.mean()) - float(gray8.mean())) < 10


def test_alpha_is_composited_on_white(tmp_path):
    clear = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    clear.save(tmp_path / "clear.png")
    assert np.asarray(decode(tmp_path / "clear.png")).min() == 255


def test_exif_orientation_is_applied(odd):
    assert decode(odd["rotated.jpg"]).size == (90, 120)  # stored 120×90, displayed rotated
    assert decode(odd["cmyk.jpg"]).mode == "RGB"


def test_large_jpeg_is_decoded_in_draft_mode(odd):
    pre = Preprocess(224)
    image = decode(odd["camera.jpg"], pre)
    assert min(image.size) >= 224 and image.size[0] <= 1000  # 4000×3000 decoded at 1/4 or less
    assert decode(odd["camera.jpg"]).size == (2000, 1500)  # without a spec: whole factors down to MAX_WORKING_SIDE


@pytest.mark.parametrize("name, words", [
    ("truncated.jpg", "truncated or corrupt"), ("corrupt.jpg", "corrupt"), ("empty.jpg", "empty file"),
    ("notes.txt.jpg", "not an image"), ("bomb.png", "decompression bomb")])
def test_broken_files_raise_one_line_errors(broken, name, words):
    with pytest.raises(ImageError) as err:
        Preprocess(32)(broken[name])
    assert words in str(err.value) and "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        decode(tmp_path / "nope.jpg")


def test_crop_box_is_centred_square():
    assert Preprocess(10, 1.0).crop_box(200, 100) == (50.0, 0.0, 150.0, 100.0)
    assert Preprocess(10, 0.5).crop_box(100, 100) == (25.0, 25.0, 75.0, 75.0)
    with pytest.raises(ValueError):
        Preprocess(10, 0.0)


def test_find_images_walks_folders_and_keeps_named_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel, fmt in (("a/1.jpg", "JPEG"), ("a/b/2.PNG", "PNG"), ("a/3.tif", "TIFF"), ("a/4.gif", "GIF"),
                     ("a/notes.txt", "PNG")):
        flower_like().save(tmp_path / rel, format=fmt)
    found = find_images([tmp_path / "a", tmp_path / "a" / "notes.txt"])
    assert [p.name for p in found] == ["1.jpg", "3.tif", "4.gif", "2.PNG", "notes.txt"]  # every format Pillow reads
    assert all(decode(p).mode == "RGB" for p in found[:4])


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    import os

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # open() on it would block until a writer comes: forever
    with pytest.raises(ImageError, match="not a regular file"):
        decode(fifo)


def test_a_100_megapixel_camera_photo_is_not_a_bomb(tmp_path):
    path = tmp_path / "huge.jpg"
    Image.new("L", (11_000, 9_100), 128).save(path, quality=50)  # 100 MP: over Pillow's default limit of 89 MP
    image = decode(path, Preprocess(224))  # draft mode: decoded at 1/8 scale
    assert image.mode == "RGB" and min(image.size) >= 224


def test_camera_photos_are_decoded_alike_by_both_paths(tiny_model, odd):
    """A huge camera JPEG: the classifier's input (draft decode, then crop) is the one ``Preprocess`` gives."""
    from flowercam.model.classifier import Classifier

    classifier = Classifier(tiny_model)
    camera = classifier.load(odd["camera.jpg"])[0][0]
    assert camera.tobytes() == classifier.preprocess(odd["camera.jpg"]).tobytes()


def test_symlink_loops_are_named_as_such(tmp_path):
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(tmp_path / "loop.jpg")
    with pytest.raises(ImageError, match="too many levels of symbolic links"):
        decode(loop)
