"""Fuzzing what a user or a camera hands flowercam: a corpus of broken and odd inputs, each run through the real
``flowercam classify`` in its own process (the bundled model, a regular install's code).

The corpus (seeded, rebuilt each run): truncations and byte flips of JPEG, PNG, WebP, GIF, TIFF and BMP photos,
wrong extensions, headers claiming huge sizes, special files (FIFO, socket, broken and looping links, a folder
named x.jpg, a link to /dev/zero), files and folders the user may not read (run as ``nobody``), and models
corrupted with their sidecar rewritten to match (byte flips, truncations, broken indices), broken sidecars and
label files, learned adapters (``--adapter``) flipped, truncated or with a field of every kind tampered with (a
wrong type, NaN, infinity, a wrong shape, a class out of range, another model's); plus valid odd photos
(CMYK, 16-bit, palette, alpha, EXIF-rotated, tiny, large) that must just work.
Verdicts: a valid input is classified (exit 0); a bad one is one line on stderr and a non-zero exit; never a
traceback, an abort (a signal) or a hang (60 s).

Usage: python bench/fuzz_inputs.py [--workers 2]  ->  bench/results/fuzz_inputs.{json,md}
"""

from __future__ import annotations

import dataclasses
import io
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import typer
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402

TIMEOUT_S = 60
FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "tif": "TIFF", "bmp": "BMP"}


@dataclasses.dataclass
class Case:
    kind: str  # the family, for the table
    name: str
    args: list[str]  # flowercam arguments
    valid: bool | None = False  # None: either outcome is right (a flip that may still decode)
    user: list[str] = dataclasses.field(default_factory=list)  # a command prefix running it as another user


def _photo(seed: int = 0, size=(320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.zeros((size[1], size[0], 3), np.uint8)
    base[..., 0] = np.linspace(40, 220, size[0], dtype=np.uint8)
    base[..., 1] = rng.integers(0, 80, (size[1], size[0]), dtype=np.uint8)
    base[..., 2] = 120
    return Image.fromarray(base, "RGB")


def _encoded(fmt: str, seed: int = 0) -> bytes:
    out = io.BytesIO()
    _photo(seed).save(out, FORMATS[fmt])
    return out.getvalue()


def _valid(root: Path) -> list[Case]:
    base = _photo(1)
    made = {"cmyk.jpg": base.convert("CMYK"), "gray.png": base.convert("L"), "palette.gif": base.convert("P"),
            "alpha.png": base.convert("RGBA"), "tiny.png": base.resize((8, 6)), "large.jpg": base.resize((6000, 4500)),
            "gray16.png": Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257), "la.png": base.convert("LA"),
            "bw.bmp": base.convert("1"), "webp.webp": base}
    cases = []
    for name, image in made.items():
        image.save(root / name)
        cases.append(Case("valid odd photo", name, [str(root / name)], valid=True))
    exif = base.getexif()
    exif[0x0112] = 6  # rotated 90°
    base.save(root / "rotated.jpg", exif=exif)
    cases.append(Case("valid odd photo", "rotated.jpg", [str(root / "rotated.jpg")], valid=True))
    return cases


def _broken_photos(root: Path, rng: random.Random) -> list[Case]:
    cases = []
    for fmt in FORMATS:
        data = _encoded(fmt)
        for i, fraction in enumerate((0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99)):
            path = root / f"trunc_{i}.{fmt}"
            path.write_bytes(data[:max(0, int(len(data) * fraction))])
            cases.append(Case(f"truncated {fmt}", path.name, [str(path)]))
        for i in range(30 if fmt == "tif" else 20):
            flipped = bytearray(data)
            for _ in range(rng.randint(1, 12)):
                flipped[rng.randrange(min(len(flipped), 4096))] = rng.randrange(256)  # headers and tables
            path = root / f"flip_{i}.{fmt}"
            path.write_bytes(bytes(flipped))
            cases.append(Case(f"byte flips {fmt}", path.name, [str(path)], valid=None))  # may still decode
    return cases


def _wrong(root: Path) -> list[Case]:
    items = {"png_named.jpg": _encoded("png"), "text.jpg": b"hello, not a photo\n" * 10, "empty.jpg": b"",
             "zip.png": b"PK\x03\x04" + bytes(200), "html.webp": b"<html><body>404</body></html>",
             "pdf.tif": b"%PDF-1.4\n" + bytes(500), "nul.bmp": bytes(4096), "elf.gif": b"\x7fELF" + bytes(300),
             "jpeg_magic_only.jpg": b"\xff\xd8\xff", "png_magic_only.png": b"\x89PNG\r\n\x1a\n",
             "model.jpg": Path(_bundled()).read_bytes()[:100_000], "noext": _encoded("jpg"),
             "double.jpg.png": _encoded("jpg"), "UPPER.JPG": _encoded("jpg"), "space name.jpg": _encoded("jpg")}
    cases = []
    for name, data in items.items():
        (root / name).write_bytes(data)
        ok = name in ("png_named.jpg", "noext", "double.jpg.png", "UPPER.JPG", "space name.jpg")
        cases.append(Case("wrong extension or content", name, [str(root / name)], valid=ok))
    return cases


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _huge_headers(root: Path) -> list[Case]:
    import struct
    import zlib

    cases = []
    for side in (20_000, 65_535, 100_000, 2_000_000):
        png = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
               + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + _png_chunk(b"IEND", b""))
        (root / f"bomb_{side}.png").write_bytes(png)
        cases.append(Case("huge header", f"bomb_{side}.png", [str(root / f"bomb_{side}.png")]))
    jpeg = bytearray(_encoded("jpg"))
    sof = jpeg.index(b"\xff\xc0")
    for side in (30_000, 65_000):
        patched = bytearray(jpeg)
        patched[sof + 5:sof + 9] = struct.pack(">HH", side, side)
        (root / f"sof_{side}.jpg").write_bytes(bytes(patched))
        cases.append(Case("huge header", f"sof_{side}.jpg", [str(root / f"sof_{side}.jpg")]))
    gif = bytearray(_encoded("gif"))
    gif[6:10] = struct.pack("<HH", 65_535, 65_535)
    (root / "screen.gif").write_bytes(bytes(gif))
    cases.append(Case("huge header", "screen.gif", [str(root / "screen.gif")], valid=None))
    bmp = bytearray(_encoded("bmp"))
    bmp[18:26] = struct.pack("<ii", 50_000, 50_000)
    (root / "dims.bmp").write_bytes(bytes(bmp))
    cases.append(Case("huge header", "dims.bmp", [str(root / "dims.bmp")]))
    return cases


def _special(root: Path) -> tuple[list[Case], socket.socket]:
    os.mkfifo(root / "fifo.jpg")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "socket.jpg"))
    (root / "dangling.jpg").symlink_to(root / "nowhere.jpg")
    (root / "loop.jpg").symlink_to(root / "loop.jpg")
    (root / "folder.jpg").mkdir()
    (root / "zero.jpg").symlink_to("/dev/zero")
    names = ["fifo.jpg", "socket.jpg", "dangling.jpg", "loop.jpg", "folder.jpg", "zero.jpg", "missing.jpg"]
    cases = [Case("special file", n, [str(root / n)]) for n in names]
    (root / "-dash.jpg").write_bytes(_encoded("jpg"))
    cases.append(Case("special file", "-dash.jpg (after --)", ["--", str(root / "-dash.jpg")], valid=True))
    return cases, server


NOBODY = 65534


def _unreadable(root: Path) -> list[Case]:
    """Files and folders the user running flowercam may not read (a photo, a folder, a model, a sidecar). As root
    nothing is unreadable, so these run as ``nobody`` (setpriv); without root or setpriv they are left out."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return []
    shared = Path(tempfile.mkdtemp(prefix="flowercam-unreadable-", dir="/tmp"))
    shared.chmod(0o755)
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    (shared / "ok.jpg").write_bytes(_encoded("jpg", 5))
    (shared / "locked.jpg").write_bytes(_encoded("jpg", 6))
    (shared / "locked.jpg").chmod(0)
    (shared / "closed").mkdir()
    (shared / "closed" / "inside.jpg").write_bytes(_encoded("jpg", 7))
    (shared / "closed").chmod(0)
    model = shared / "model"
    model.mkdir()
    for name in ("flowercam.tflite", "flowercam.json", "labels.txt"):
        shutil.copy(_bundled().with_name(name), model / name)
    sidecar_locked = shared / "model_sidecar_locked"
    shutil.copytree(model, sidecar_locked)
    (model / "flowercam.tflite").chmod(0)
    (sidecar_locked / "flowercam.json").chmod(0)
    for entry in (model, sidecar_locked, sidecar_locked / "flowercam.tflite", sidecar_locked / "labels.txt",
                  model / "flowercam.json", model / "labels.txt", shared / "ok.jpg"):
        entry.chmod(entry.stat().st_mode | 0o555 if entry.is_dir() else 0o644)
    ok = str(shared / "ok.jpg")
    cases = [Case("unreadable (as nobody)", "a photo mode 000", [str(shared / "locked.jpg")]),
             Case("unreadable (as nobody)", "a photo in a folder mode 000", [str(shared / "closed" / "inside.jpg")]),
             Case("unreadable (as nobody)", "a folder mode 000", [str(shared / "closed")]),
             Case("unreadable (as nobody)", "a model mode 000", ["--model", str(model / "flowercam.tflite"), ok]),
             Case("unreadable (as nobody)", "a sidecar mode 000",
                  ["--model", str(sidecar_locked / "flowercam.tflite"), ok]),
             Case("unreadable (as nobody)", "a readable photo (the control)", [ok], valid=True)]
    for case in cases:
        case.user = as_nobody
    return cases


def _bundled() -> Path:
    from flowercam.model.sidecar import BUNDLED_MODEL

    return BUNDLED_MODEL


def _models(root: Path, rng: random.Random) -> list[Case]:
    from flowercam.model.sidecar import read_sidecar, sha256_file, write_sidecar

    source = _bundled()
    sidecar = read_sidecar(source)
    data = source.read_bytes()
    photo = root / "photo.jpg"
    photo.write_bytes(_encoded("jpg", 3))
    cases = []

    def add(name: str, blob: bytes, kind: str, valid=False) -> None:
        folder = root / "models" / name
        folder.mkdir(parents=True)
        model = folder / "m.tflite"
        model.write_bytes(blob)
        write_sidecar(model, dataclasses.replace(sidecar, sha256=sha256_file(model)))
        shutil.copy(source.with_name("labels.txt"), folder / "labels.txt")
        cases.append(Case(kind, name, ["--model", str(model), str(photo)], valid=valid))

    tail = len(data) - 200_000  # the tables and metadata live past the weights
    for i in range(60):
        flipped = bytearray(data)
        where = rng.randrange(tail, len(data)) if i % 2 else rng.randrange(len(data))
        flipped[where] = rng.randrange(256)
        add(f"flip_{i}_{where}", bytes(flipped), "model: byte flip, sidecar matching", valid=None)
    for i, fraction in enumerate((0.0, 0.001, 0.1, 0.5, 0.9, 0.999)):
        add(f"trunc_{i}", data[:int(len(data) * fraction)], "model: truncated, sidecar matching")
    add("not_a_model", _encoded("png"), "model: not a model, sidecar matching")
    broken = root / "models" / "bad_sidecar"
    broken.mkdir(parents=True)
    shutil.copy(source, broken / "m.tflite")
    for i, text in enumerate(("{", "[]", '{"format": "flowercam-model/1"}', "", "\x00" * 50)):
        (broken / "m.json").write_text(text)
        copy = broken.with_name(f"bad_sidecar_{i}")
        shutil.copytree(broken, copy)
        cases.append(Case("model: broken sidecar", copy.name, ["--model", str(copy / "m.tflite"), str(photo)]))
    shutil.rmtree(broken)
    other = root / "models" / "labels_mismatch"
    other.mkdir(parents=True)
    shutil.copy(source, other / "m.tflite")
    labels = list(sidecar.labels)
    write_sidecar(other / "m.tflite", dataclasses.replace(sidecar, labels=tuple(labels[:-1])))
    cases.append(Case("model: labels that do not match", other.name,
                      ["--model", str(other / "m.tflite"), str(photo)]))
    return cases


def _adapters(root: Path, rng: random.Random) -> list[Case]:
    """A real adapter for the bundled model (``flowercam learn``'s own function on two folders of photos), then
    broken copies of it: classify --adapter must classify with the good one and refuse every broken one in one
    line (a byte flip may leave it readable: either is right)."""
    import json

    from flowercam.learning.learn import learn
    from flowercam.model.classifier import Classifier

    garden = root / "adapters" / "garden"
    for c, name in enumerate(("rose", "meadow_flower")):
        (garden / name).mkdir(parents=True)
        for i in range(6):
            _photo(100 * c + i).save(garden / name / f"{i}.jpg", quality=90)
    good = learn(Classifier(threads=1), garden).save(root / "adapters" / "good.npz")
    data = good.read_bytes()
    photo = root / "photo.jpg"
    cases = [Case("adapter: valid", "good", ["--adapter", str(good), str(photo)], valid=True)]

    def add(name: str, blob: bytes, kind: str, valid=False) -> None:
        path = root / "adapters" / f"{name}.npz"
        path.write_bytes(blob)
        cases.append(Case(kind, name, ["--adapter", str(path), str(photo)], valid=valid))

    for i in range(30):
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        add(f"adapter_flip_{i}", bytes(flipped), "adapter: byte flip", valid=None)
    for i, fraction in enumerate((0.0, 0.01, 0.5, 0.99)):
        add(f"adapter_trunc_{i}", data[:int(len(data) * fraction)], "adapter: truncated")
    with np.load(good) as npz:
        arrays = dict(npz)
    meta = json.loads(bytes(arrays["meta"]).decode())
    tampered = {"uncertain_below": "high", "gate_slack": None, "labels": "rose", "base_classes": -3,
                "base_sha256": "0" * 64, "format": "flowercam-adapter/1", "kind": "magic", "scale": float("nan")}
    for field, value in tampered.items():
        blob = io.BytesIO()
        np.savez(blob, **{**arrays, "meta": np.frombuffer(json.dumps({**meta, field: value}).encode(), np.uint8)})
        add(f"adapter_meta_{field}", blob.getvalue(), "adapter: a field tampered with")
    first = next(iter(arrays))
    for name, change in (("references", lambda a: np.full_like(a, np.nan)), ("weights", lambda a: a * np.inf),
                         ("floor", lambda a: a[:-1]), ("reference_labels", lambda a: a + 10_000),
                         ("margin", lambda a: a.astype(np.float64).reshape(-1, 1)), (first, lambda a: a[:0])):
        if name not in arrays or name == "meta":
            continue
        blob = io.BytesIO()
        np.savez(blob, **{**arrays, name: change(arrays[name])})
        add(f"adapter_array_{name}", blob.getvalue(), "adapter: a field tampered with")
    return cases


def _run(case: Case) -> dict:
    try:
        done = subprocess.run([*case.user, sys.executable, "-m", "flowercam", "classify", *case.args],
                              capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL, env={**os.environ, "HOME": "/nonexistent"} if case.user
                              else None)
        rc, err = done.returncode, done.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, ""
    lines = [line for line in err.strip().splitlines() if line]
    outcome = ("hang" if rc is None else "abort" if rc < 0 else "traceback" if "Traceback" in err
               else ("classified" if not lines else "classified, with lines on stderr") if rc == 0
               else "one-line error" if len(lines) == 1 else "several lines")
    if case.valid is True:
        ok = outcome == "classified"
    elif case.valid is False:
        ok = outcome == "one-line error"
    else:  # a flip that may or may not still decode: either is fine
        ok = outcome in ("classified", "one-line error")
    return {"kind": case.kind, "name": case.name, "exit": rc, "outcome": outcome, "ok": ok,
            "stderr": lines[-1][:200] if lines else ""}


def main(workers: int = 2, seed: int = 0, out: Path = Path("bench/results")) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        special, server = _special(root)
        unreadable = _unreadable(root)
        cases = [*_valid(root), *_broken_photos(root, rng), *_wrong(root), *_huge_headers(root), *special,
                 *_models(root, rng), *_adapters(root, rng), *unreadable]
        typer.echo(f"{len(cases)} inputs, {workers} at a time", err=True)
        with ThreadPoolExecutor(workers) as pool:
            rows = list(pool.map(_run, cases))
        server.close()
        if unreadable:
            shared = Path(unreadable[0].args[0]).parent
            subprocess.run(["chmod", "-R", "u+rwx", str(shared)], check=False)
            shutil.rmtree(shared, ignore_errors=True)
    data = {"machine": machine_info(), "seed": seed, "rows": rows}
    write_results(out, "fuzz_inputs", data, render)


def render(data: dict) -> str:
    """fuzz_inputs.md from fuzz_inputs.json."""
    rows = data["rows"]
    outcomes = Counter(r["outcome"] for r in rows)
    lines = ["# Fuzzed inputs through `flowercam classify`\n", header_markdown(data["machine"]),
             f"{len(rows)} inputs (seed {data['seed']}), each in its own process. **{sum(r['ok'] for r in rows)} of "
             f"{len(rows)} as they should be**: tracebacks {outcomes['traceback']}, aborts {outcomes['abort']}, hangs "
             f"{outcomes['hang']}, errors of more than one line {outcomes['several lines']}, classified with lines on "
             f"stderr {outcomes['classified, with lines on stderr']}.\n",
             "| family | inputs | classified | one-line error | as it should be | example error |",
             "|---|---|---|---|---|---|"]
    kinds = dict.fromkeys(r["kind"] for r in rows)
    for kind in kinds:
        group = [r for r in rows if r["kind"] == kind]
        example = next((r["stderr"] for r in group if r["outcome"] == "one-line error"), "")
        example = example.replace("|", "\\|")[:110]
        lines.append(f"| {kind} | {len(group)} | {sum(r['outcome'] == 'classified' for r in group)} | "
                     f"{sum(r['outcome'] == 'one-line error' for r in group)} | {sum(r['ok'] for r in group)} | "
                     f"{example} |")
    bad = [r for r in rows if not r["ok"]]
    if bad:
        lines += ["\n## Not as they should be\n", "| family | input | outcome | exit | stderr |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['kind']} | {r['name']} | {r['outcome']} | {r['exit']} | {r['stderr'][:120]} |" for r in bad]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
