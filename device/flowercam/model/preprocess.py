"""Image decoding and preprocessing, shared by training, calibration and the device.

The one place that turns a file into the model's input, so that the three can never
disagree. numpy and Pillow only: no TensorFlow.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageFilter, ImageOps, UnidentifiedImageError

from ..errors import FlowercamError

MAX_WORKING_SIDE = 2048  # px: a decoded photo larger than this is reduced at once (peak memory: its decode only)
MAX_PIXELS = 120_000_000  # larger than any camera photo (108 MP phones); beyond: a decompression bomb
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own default (89 M) would refuse 90-120 MP camera photos first
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM", b"RIFF")
ImageFile.LOAD_TRUNCATED_IMAGES = False
CROP_SETS = ("center", "multi")
CORNER_SIDE = 0.6  # the corner squares of "multi", as a fraction of the short side


class ImageError(FlowercamError):
    """A file that cannot be turned into a model input; the message is one line."""


@dataclass(frozen=True)
class Preprocess:
    """How a photo becomes the model's (size, size, 3) uint8 RGB input.

    The central square of side ``crop_fraction`` × short side is resized to ``size``
    (bilinear, antialiased). Normalization is inside the model, which takes raw pixels.
    """

    size: int = 224
    crop_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 8 <= self.size <= 2048:
            raise ValueError(f"size={self.size}, expected 8..2048")
        if not 0.1 <= self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction={self.crop_fraction}, expected 0.1..1.0")

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The centred square (left, top, right, bottom) that is resized to the input."""
        side = min(width, height) * self.crop_fraction
        left, top = (width - side) / 2, (height - side) / 2
        return (left, top, left + side, top + side)

    def draft_size(self, width: int, height: int) -> tuple[int, int]:
        """Smallest full-image size that still gives the crop ``size`` pixels (for JPEG draft)."""
        scale = self.size / (min(width, height) * self.crop_fraction)
        return (math.ceil(width * scale), math.ceil(height * scale))

    def to_array(self, image: Image.Image) -> np.ndarray:
        """Crop and resize an RGB image. Returns (size, size, 3) uint8."""
        box = self.crop_box(*image.size)
        resized = image.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)
        return np.asarray(resized, dtype=np.uint8)

    def whole(self, image: Image.Image, side: float = 1.0, where: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
        """The whole photo fitted into ``side`` of the square, on its own blurred centre square; ``where`` places it
        (0..1 of the free space, horizontally and vertically). Returns (size, size, 3) uint8."""
        canvas = Image.fromarray(self.to_array(image)).filter(ImageFilter.GaussianBlur(self.size / 16))
        scale = side * self.size / max(image.size)
        w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        left, top = int(where[0] * (self.size - w)), int(where[1] * (self.size - h))
        canvas.paste(image.resize((w, h), Image.Resampling.BILINEAR), (left, top))
        return np.asarray(canvas)

    def crops(self, image: Image.Image, crop_set: str = "center") -> list[np.ndarray]:
        """The inputs classified for one photo: ``center`` (the centred square) or ``multi`` (the centred
        square, the whole photo and its four corner squares of 0.6 × the short side), each (size, size, 3) uint8.
        """
        if crop_set not in CROP_SETS:
            raise ValueError(f"crops={crop_set!r}, expected one of {', '.join(CROP_SETS)}")
        arrays = [self.to_array(image)]
        if crop_set == "multi":
            width, height = image.size
            side = min(width, height) * CORNER_SIDE
            arrays.append(self.whole(image))
            for left, top in ((0, 0), (width - side, 0), (0, height - side), (width - side, height - side)):
                box = (left, top, left + side, top + side)
                arrays.append(np.asarray(image.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)))
        return arrays

    def __call__(self, path: str | Path) -> np.ndarray:
        """Decode ``path`` and preprocess it. Returns (size, size, 3) uint8."""
        return self.to_array(decode(path, self))

    def to_dict(self) -> dict:
        return {"size": self.size, "crop_fraction": self.crop_fraction, "resample": "bilinear",
                "layout": "NHWC RGB uint8 0-255"}


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode (CMYK, 16-bit, palette, alpha, grayscale) to 8-bit RGB.

    Transparent pixels are composited onto white.
    """
    if image.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image, dtype=np.int64)
        image = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def decode(path: str | Path, spec: Preprocess | None = None) -> Image.Image:
    """Decode an image file to RGB with EXIF orientation applied.

    With ``spec``, large JPEGs are decoded at a reduced scale (draft mode) that still
    covers the crop, which is faster and leaner for camera photos.

    Raises:
        ImageError: missing, empty, truncated, corrupt or non-image file, or a decompression bomb.
    """
    path = Path(path)
    try:
        if path.exists() and not path.is_file():  # a FIFO would block open() forever; a device, a socket...
            if path.is_dir():
                raise ImageError("is a directory" if os.access(path, os.R_OK | os.X_OK) else
                                 "a folder that cannot be read (permission denied)")
            raise ImageError("not a regular file (a FIFO, socket or device)")
        if path.is_symlink() and not path.exists():
            raise ImageError(_broken_link(path))
        with warnings.catch_warnings(record=True) as said:  # a library's warnings go into the error, not stderr
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _warnings_kept(said), Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageError(f"{width}x{height} pixels exceeds the limit of {MAX_PIXELS:,} "
                                     "(decompression bomb?)")
                if spec is not None and image.format == "JPEG":
                    image.draft(None, spec.draft_size(width, height))
                image.load()
                image = _bounded(image)
                image = ImageOps.exif_transpose(image) or image
                return to_rgb(image)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a directory") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(_unidentified(path)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"decompression bomb: {err}") from None
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENAMETOOLONG, errno.EACCES):
            raise ImageError(os.strerror(err.errno).lower()) from None
        raise ImageError(f"truncated or corrupt image ({_one_line(err)})") from None
    except (SyntaxError, ValueError, EOFError, struct.error) as err:
        raise ImageError(f"truncated or corrupt image ({_one_line(err)})") from None


def _broken_link(path: Path) -> str:
    """What is wrong with a link that leads nowhere: a loop, or a missing target."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a link that loops (too many levels of symbolic links)"
    return "a broken link (its target does not exist)"


def _bounded(image: Image.Image) -> Image.Image:
    """A decoded photo reduced (box filter, a whole factor) to at most MAX_WORKING_SIDE on its long side, before
    any copy of it is made: the model reads a few hundred pixels."""
    factor = math.ceil(max(image.size) / MAX_WORKING_SIDE)
    if factor <= 1:
        return image
    try:
        return image.reduce(factor)
    except ValueError:  # a mode reduce() does not take (palette, 1-bit, CMYK...)
        return image.convert("RGBA" if "transparency" in image.info or "A" in image.mode else "RGB").reduce(factor)


@contextlib.contextmanager
def _warnings_kept(said: list):
    """On a failure inside, the library's warnings are added to the error's message."""
    try:
        yield
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        if said:
            notes = "; ".join(dict.fromkeys(_one_line(w.message) for w in said))[:200]
            err.args = (f"{_one_line(err)}; the library said: {notes}",)
        raise


def _unidentified(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return "empty file"
    if head.startswith(_IMAGE_MAGIC) or head[8:12] == b"WEBP":
        return "corrupt image (its header cannot be read)"
    return "not an image (or an unsupported format)"


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:200]


def image_suffixes() -> frozenset[str]:
    """File name endings of every format Pillow can read (.jpg, .png, .tif, .gif, .webp, .heic with a plugin…)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def find_images(paths: list[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into the photos to classify, sorted within each folder.

    In folders, every entry whose ending is a format Pillow reads is kept, whatever it is (a FIFO, a socket,
    a broken link or a folder named ``x.jpg`` is kept so that it gets its error row, never skipped without a
    word), and so is every sub-folder that cannot be read. Files named explicitly are kept whatever their
    suffix, so that a wrong file gets a clear error instead of being silently skipped.
    """
    suffixes = image_suffixes()
    found: list[Path] = []
    for entry in map(Path, paths):
        if not _is_dir(entry):
            found.append(entry)
            continue
        unreadable: list[Path] = []
        for folder, dirs, files in os.walk(entry, onerror=lambda err, seen=unreadable: seen.append(Path(err.filename))):
            dirs.sort()
            names = files + [d for d in dirs if Path(d).suffix.lower() in suffixes]  # a folder named x.jpg
            found.extend(Path(folder) / n for n in sorted(names) if Path(n).suffix.lower() in suffixes)
        found.extend(unreadable)
    return found


def _is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; a path that cannot even be looked at (inside a folder that may not be read)
    is not, so that it gets its own error row."""
    try:
        return path.is_dir()
    except OSError:
        return False
