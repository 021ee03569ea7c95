"""Test helpers: odd, valid and broken image files (real encoders, no mocks), and running the CLIs."""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def flower_like(size=(120, 90), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def write_odd_images(folder: Path) -> dict[str, Path]:
    """Valid but unusual files: CMYK, grayscale, 16-bit, palette, alpha, EXIF-rotated, tiny, huge."""
    folder.mkdir(parents=True, exist_ok=True)
    base = flower_like()
    files = {}

    def save(name: str, image: Image.Image, **kw) -> None:
        files[name] = folder / name
        image.save(files[name], **kw)

    save("cmyk.jpg", base.convert("CMYK"))
    save("gray.jpg", base.convert("L"))
    save("gray16.png", Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257))
    save("palette.png", base.convert("P", palette=Image.Palette.ADAPTIVE))
    palette_alpha = base.convert("P", palette=Image.Palette.ADAPTIVE)
    save("palette_transparent.png", palette_alpha, transparency=0)
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    save("alpha.png", rgba)
    save("la.png", base.convert("LA"))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    save("rotated.jpg", base, exif=exif)
    save("tiny.png", Image.new("RGB", (1, 1), (200, 30, 30)))
    save("photo.webp", base)
    save("photo.bmp", base)
    save("camera.jpg", flower_like((4000, 3000), seed=1), quality=85)
    return files


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_broken_files(folder: Path) -> dict[str, Path]:
    """Files that must fail with a one-line error: truncated, corrupt, empty, not an image, bomb."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    flower_like((300, 200)).save(buffer, "JPEG", quality=90)
    jpeg = buffer.getvalue()
    files = {
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "corrupt.jpg": jpeg[:20] + b"\x00" * (len(jpeg) - 20),
        "empty.jpg": b"",
        "notes.txt.jpg": b"these are not the pixels you are looking for\n" * 20,
        # a valid PNG header claiming 100000 × 100000 pixels (10 gigapixels): a decompression bomb
        "bomb.png": b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + _png_chunk(b"IEND", b""),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


def run_cli(*args: str, env: dict | None = None, module: str = "flowercam") -> subprocess.CompletedProcess:
    """Run a console entry point in a fresh interpreter (the real process, exit code and streams)."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


# -- the daemon as a real process ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_config(tmp_path: Path, model_file: Path, uri: Path | str, **sections) -> Path:
    """A daemon config in ``tmp_path``: the model, the source, an events file; ``sections`` override."""
    base = {"model": {"path": str(model_file), "threads": 1},
            "source": {"uri": str(uri), "fps": 50, "loop": True, "reconnect_initial_s": 0.1,
                       "reconnect_max_s": 0.4},
            "events": {"file": str(tmp_path / "events.jsonl"), "heartbeat_s": 0.5}}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                   for name, values in base.items())
    path = tmp_path / "flowercam.toml"
    path.write_text(text)
    return path


def start_daemon(config: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flowercam", "daemon", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            env={**os.environ, **(env or {})})


def events_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return True
        except OSError:  # e.g. a daemon not listening yet
            pass
        time.sleep(0.05)
    return False


def edgetpu_compiled(model: bytes) -> bytes:
    """A model in the shape edgetpu_compiler writes: its first op replaced by the custom op
    ``edgetpu-custom-op`` (only the Edge TPU delegate can run it), the rest left for the CPU."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    root = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = "edgetpu-custom-op"
    root.operatorCodes.append(code)
    root.subgraphs[0].operators[0].opcodeIndex = len(root.operatorCodes) - 1
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
