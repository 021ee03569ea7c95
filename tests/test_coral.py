"""The Coral path: build-models compiles an exported model (edgetpu_compiler) and writes the compiled model's own
sidecar; flowercam runs it with --edgetpu and says in one line what is wrong otherwise. The compiler and the Coral
cannot exist here (no Coral repository, no USB accelerator): the compiler is a stand-in script that writes a
model of the compiler's shape (an ``edgetpu-custom-op``) and the compiler's log lines; the delegate is absent,
and its absence is one of the lines tested."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

SAMPLE = Path(__file__).resolve().parents[1] / "device" / "flowercam" / "samples" / "image_01315.jpg"
FAKE_COMPILER = """#!{python}
# A stand-in for edgetpu_compiler (-s -o OUT MODEL): the compiler's output shape and log lines.
import sys
from pathlib import Path

import pytest
sys.path.insert(0, {root!r})
from tests.helpers import edgetpu_compiled
out, model = Path(sys.argv[3]), Path(sys.argv[4])
(out / (model.stem + "_edgetpu.tflite")).write_bytes(edgetpu_compiled(model.read_bytes()))
print("Edge TPU Compiler version 16.0.384591198")
print("Number of operations that will run on Edge TPU: 9")
print("Number of operations that will run on CPU: 1")
"""


def _model(tmp_path, tiny_model) -> Path:
    import shutil

    from flowercam.model.sidecar import sidecar_path

    model = tmp_path / "tiny_int8.tflite"
    shutil.copy(tiny_model, model)
    shutil.copy(sidecar_path(tiny_model), sidecar_path(model))
    return model


def _one_line(done, needle: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert needle in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_compile_writes_the_compiled_models_sidecar_and_flowercam_tells_the_two_apart(tmp_path, tiny_model):
    model = _model(tmp_path, tiny_model)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    compiler = bin_dir / "edgetpu_compiler"
    compiler.write_text(FAKE_COMPILER.format(python=sys.executable, root=str(Path(__file__).resolve().parents[1])))
    compiler.chmod(compiler.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "build_models", "compile", str(model)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "9 ops on the Edge TPU, 1 on the CPU" in done.stdout
    compiled = tmp_path / "tiny_int8_edgetpu.tflite"
    sidecar = json.loads(compiled.with_suffix(".json").read_text())
    original = json.loads(model.with_suffix(".json").read_text())
    import hashlib

    assert sidecar["sha256"] == hashlib.sha256(compiled.read_bytes()).hexdigest() != original["sha256"]
    assert sidecar["compiled_from"] == original["sha256"] and sidecar["labels"] == original["labels"]
    # the compiled model without --edgetpu, the uncompiled one with it: one line each
    _one_line(run_cli("classify", "--model", str(compiled), str(SAMPLE)), "compiled for the Edge TPU")
    _one_line(run_cli("classify", "--edgetpu", "--model", str(model), str(SAMPLE)), "not compiled for the Edge TPU")
    _one_line(run_cli("bench", "-m", str(compiled), "--runs", "2"), "compiled for the Edge TPU")
    # with --edgetpu it finds its sidecar and goes for the delegate (absent here: Coral's runtime is not installed)
    done = run_cli("classify", "--edgetpu", "--model", str(compiled), str(SAMPLE))
    _one_line(done, "Edge TPU delegate")
    assert "sidecar" not in done.stderr


def test_without_the_compiler_export_says_the_exact_command(tmp_path, tiny_model):
    model = _model(tmp_path, tiny_model)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no edgetpu_compiler on it
    done = subprocess.run([sys.executable, "-m", "build_models", "compile", str(model)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 1
    assert f"edgetpu_compiler -s -o {tmp_path} {model}" in done.stdout and "Traceback" not in done.stderr
    # compiled elsewhere and copied back: compile writes the sidecar of the compiled file it finds
    from tests.helpers import edgetpu_compiled

    (tmp_path / "tiny_int8_edgetpu.tflite").write_bytes(edgetpu_compiled(model.read_bytes()))
    done = subprocess.run([sys.executable, "-m", "build_models", "compile", str(model)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0 and (tmp_path / "tiny_int8_edgetpu.json").is_file(), done.stderr[-1000:]


def test_the_tensorflow_fallback_runtime_has_the_delegate_and_resolver_too(tiny_model, monkeypatch):
    """On a workstation without ai-edge-litert or tflite-runtime, tf.lite is the interpreter: the readiness
    check (no default delegates) works there and --edgetpu without a Coral is one clear error."""
    from flowercam.model import runtime
    from flowercam.model.edgetpu import check_readiness

    monkeypatch.setattr(runtime, "_BACKENDS", tuple(b for b in runtime._BACKENDS if b[0] == "tensorflow"))
    interpreter, name = runtime.make_interpreter(tiny_model, plain=True)
    assert name == "tensorflow" and interpreter.get_input_details()[0]["dtype"].__name__ == "uint8"
    assert check_readiness(tiny_model).ops > 0
    with pytest.raises(runtime.RuntimeMissing, match="Edge TPU delegate"):
        runtime.make_interpreter(tiny_model, edgetpu=True)
