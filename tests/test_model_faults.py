"""A corrupted model whose sidecar matches it (its sha256 rewritten): every one is one line and exit 2, never a
traceback or an abort, for classify, bench and the daemon's --check-config. Real bytes, the real interpreter."""

from __future__ import annotations

import dataclasses
import random

import pytest
from flowercam.model.sidecar import read_sidecar, sha256_file, write_sidecar

from tests.helpers import daemon_config, run_cli, write_odd_images


def _corrupt(tmp_path, tiny_model, change) -> object:
    model = tmp_path / "m.tflite"
    data = bytearray(tiny_model.read_bytes())
    change(data)
    model.write_bytes(bytes(data))
    write_sidecar(model, dataclasses.replace(read_sidecar(tiny_model), sha256=sha256_file(model)))
    return model


def _structural(kind: str):
    def change(data: bytearray) -> None:
        import flatbuffers
        from ai_edge_litert import schema_py_generated as schema

        root = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
        graph = root.subgraphs[0]
        if kind == "opcode":
            graph.operators[0].opcodeIndex = 999
        elif kind == "tensor":
            graph.operators[-1].inputs[0] = 5000
        elif kind == "buffer":
            graph.tensors[0].buffer = 10_000
        elif kind == "output":
            graph.outputs[0] = 4242
        builder = flatbuffers.Builder(len(data))
        builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
        packed = bytes(builder.Output())
        del root
        data[:] = packed
    return change


@pytest.mark.parametrize("kind", ["opcode", "tensor", "buffer", "output"])
def test_broken_indices_are_one_line(tmp_path, tiny_model, kind):
    model = _corrupt(tmp_path, tiny_model, _structural(kind))
    photo = write_odd_images(tmp_path / "photos")["cmyk.jpg"]
    done = run_cli("classify", "--model", str(model), str(photo))
    assert done.returncode == 2 and "not a valid TFLite model" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    done = run_cli("bench", "-m", str(model), "--runs", "2")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow  # 30 corrupted models through the CLI (~15 s): CI runs it with -m slow
def test_random_byte_flips_never_crash(tmp_path, tiny_model, video):
    """30 one-byte changes anywhere in the file: each runs, or is one line with exit 2."""
    rng = random.Random(0)
    size = tiny_model.stat().st_size
    photo = write_odd_images(tmp_path / "photos")["cmyk.jpg"]
    outcomes = []
    for i in range(30):
        offset, value = rng.randrange(8, size), rng.randrange(256)

        def flip(data: bytearray, offset=offset, value=value) -> None:
            data[offset] = value

        model = _corrupt(tmp_path, tiny_model, flip)
        done = run_cli("classify", "--model", str(model), str(photo))
        ok = done.returncode == 0 or (done.returncode in (1, 2) and len(done.stderr.strip().splitlines()) == 1
                                      and "Traceback" not in done.stderr)
        assert ok, (offset, value, done.returncode, done.stderr[-500:])
        outcomes.append(done.returncode)
        if i < 3:  # the daemon refuses it at check time the same way
            config = daemon_config(tmp_path, model, video)
            check = run_cli("daemon", "--config", str(config), "--check-config")
            assert check.returncode in (0, 2) and "Traceback" not in check.stderr
    assert set(outcomes) <= {0, 1, 2}
    for offset in range(4):  # the flatbuffer's root offset: a model with it broken must be refused, in one line
        def broken(data: bytearray, offset=offset) -> None:
            data[offset] ^= 0xFF

        done = run_cli("classify", "--model", str(_corrupt(tmp_path, tiny_model, broken)), str(photo))
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, (offset, done.stderr[-300:])
