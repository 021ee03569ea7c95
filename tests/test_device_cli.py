"""``flowercam classify`` and ``info`` as real processes on a real TFLite model."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import run_cli, write_broken_files, write_odd_images

KEYS = {"path", "label", "index", "score", "uncertain", "top_k", "latency_ms", "peak_rss_mb"}


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_classify_json_schema_and_accuracy(tiny_model, dataset_dir):
    from build_models.data import load_flowers102

    ds = load_flowers102(dataset_dir)
    done = run_cli("classify", "--model", str(tiny_model), "--json", "--top-k", "2",
                   *[str(s.path) for s in ds.test])
    assert done.returncode == 0, done.stderr
    rows = _lines(done.stdout)
    assert len(rows) == len(ds.test)
    for row in rows:
        assert set(row) >= KEYS
        assert set(row["latency_ms"]) == {"decode", "preprocess", "inference", "total"}
        assert row["label"] == row["top_k"][0]["label"] and row["index"] == row["top_k"][0]["index"]
        assert len(row["top_k"]) == 2 and row["top_k"][0]["score"] >= row["top_k"][1]["score"]
        assert row["peak_rss_mb"] > 0 and row["runtime"] == "ai-edge-litert"
    truth = {str(s.path): s.label for s in ds.test}
    accuracy = sum(r["index"] == truth[r["path"]] for r in rows) / len(rows)
    assert accuracy >= 0.8  # colour classes are easy: a broken pipeline would score ~1/3


def test_human_output_reports_latency_and_memory(tiny_model, dataset_dir):
    done = run_cli("classify", "--model", str(tiny_model), str(dataset_dir / "jpg" / "image_00001.jpg"))
    assert done.returncode == 0
    assert "latency: decode" in done.stdout and "inference" in done.stdout and "peak RSS" in done.stdout


def test_folder_with_odd_and_broken_files(tiny_model, tmp_path):
    odd = write_odd_images(tmp_path / "photos")
    broken = write_broken_files(tmp_path / "photos" / "broken")
    done = run_cli("classify", "--model", str(tiny_model), "--json", str(tmp_path / "photos"))
    assert done.returncode == 1  # some failed, the rest classified
    rows = {r["path"]: r for r in _lines(done.stdout)}
    for path in odd.values():
        assert "label" in rows[str(path)], rows[str(path)]
    for path in broken.values():
        assert "error" in rows[str(path)] and "\n" not in rows[str(path)]["error"]
    assert "Traceback" not in done.stderr


def test_broken_files_in_human_mode_give_one_line_each(tiny_model, tmp_path):
    broken = write_broken_files(tmp_path)
    done = run_cli("classify", "--model", str(tiny_model), *map(str, broken.values()))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("flowercam:")]
    assert len(errors) == len(broken) and "Traceback" not in done.stderr


def test_usage_errors_exit_2(tiny_model, tmp_path):
    assert run_cli("classify", "--model", str(tiny_model), str(tmp_path)).returncode == 2  # no images
    assert run_cli("classify", "--top-k", "0", "x.jpg").returncode == 2
    assert run_cli("nonsense").returncode == 2


@pytest.mark.parametrize("damage", ["garbage", "sha", "labels", "no_sidecar", "shape", "temperature_hot",
                                    "temperature_zero", "threshold_range", "unknown_key", "duplicate_label"])
def test_bad_models_are_refused_with_one_line(tiny_model, dataset_dir, tmp_path, damage):
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_model, model)
    sidecar_path = model.with_suffix(".json")
    shutil.copy(tiny_model.with_suffix(".json"), sidecar_path)
    sidecar = json.loads(sidecar_path.read_text())
    if damage == "garbage":
        model.write_bytes(b"not a flatbuffer" * 100)
        from flowercam.model.sidecar import sha256_file

        sidecar["sha256"] = sha256_file(model)
    elif damage == "sha":
        model.write_bytes(model.read_bytes() + b"\0")
    elif damage == "labels":
        sidecar["labels"] = sidecar["labels"][:-1]
    elif damage == "no_sidecar":
        sidecar_path.unlink()
    elif damage == "shape":
        sidecar["input"]["shape"] = [1, 64, 64, 3]
    elif damage == "temperature_hot":
        sidecar["temperature"] = "hot"  # was a traceback in classify, an endless reconnect loop in the daemon
    elif damage == "temperature_zero":
        sidecar["temperature"] = 0  # was NaN scores, exit 0 and invalid JSON
    elif damage == "threshold_range":
        sidecar["uncertain_below"] = 1.5
    elif damage == "unknown_key":
        sidecar["temprature"] = 1.0
    elif damage == "duplicate_label":
        sidecar["labels"][1] = sidecar["labels"][0]
    if sidecar_path.exists():
        sidecar_path.write_text(json.dumps(sidecar))
    done = run_cli("classify", "--model", str(model), str(dataset_dir / "jpg" / "image_00001.jpg"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("flowercam: error:"), done.stderr


def test_info_describes_model(tiny_model):
    done = run_cli("info", "--model", str(tiny_model), "--json")
    assert done.stdout.count("\n") == 1  # one JSON object on one line, as --json says
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["runtime"] == "ai-edge-litert" and info["input"]["dtype"] == "uint8"
    assert info["outputs"][0]["dtype"] == "uint8" and len(info["labels"]) == 3 and info["temperature"] == 1.5
    assert info["edgetpu"].startswith("ready")


def test_uncertain_threshold(tiny_model, dataset_dir):
    image = str(dataset_dir / "jpg" / "image_00001.jpg")
    always = _lines(run_cli("classify", "-m", str(tiny_model), "--json", "--uncertain-below", "1", image).stdout)
    never = _lines(run_cli("classify", "-m", str(tiny_model), "--json", "--uncertain-below", "0", image).stdout)
    assert always[0]["uncertain"] is True and never[0]["uncertain"] is False


def test_edgetpu_absent_is_a_clear_error(tiny_model, dataset_dir):
    done = run_cli("classify", "-m", str(tiny_model), "--edgetpu", str(dataset_dir / "jpg" / "image_00001.jpg"))
    # An uncompiled model with --edgetpu: one line saying so (a compiled one meeting no Coral: tests/test_coral.py)
    assert done.returncode == 2 and "not compiled for the Edge TPU" in done.stderr and "Traceback" not in done.stderr


def test_importing_flowercam_never_loads_tensorflow():
    import subprocess
    import sys

    code = ("import sys, flowercam, flowercam.cli, flowercam.model.classifier, flowercam.model.edgetpu, "
            "flowercam.cli.describe;"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'tensorflow imported'")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_bench_json_matches_benchmark_model_schema(tiny_model):
    done = run_cli("bench", "--model", str(tiny_model), "--model", str(tiny_model), "--runs", "20", "--json")
    assert done.returncode == 0, done.stderr
    reports = _lines(done.stdout)
    assert len(reports) == 2
    for r in reports:
        assert {"model", "model_size_mb", "runtime", "threads", "init_ms", "first_inference_ms", "warmup_avg_ms",
                "latency_ms", "throughput_ips", "peak_rss_mb", "rss_delta_mb"} <= set(r)
        lat = r["latency_ms"]
        assert set(lat) == {"min", "max", "mean", "std", "p50", "p90", "p95", "p99"}
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert r["count"] == 20 and r["throughput_ips"] > 0 and set(r["rss_delta_mb"]) == {"init", "overall"}
    table = run_cli("bench", "-m", str(tiny_model), "-m", str(tiny_model), "--runs", "5")
    assert table.returncode == 0 and "x faster" in table.stdout


def test_bench_pipeline_on_real_photos(tiny_model, dataset_dir):
    done = run_cli("bench", "-m", str(tiny_model), "--images", str(dataset_dir / "jpg"), "--pipeline", "--runs", "10",
                   "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["latency_ms"]) == {"decode", "preprocess", "inference", "total"}
    assert result["latency_ms"]["total"]["mean"] >= result["latency_ms"]["inference"]["mean"]
    human = run_cli("bench", "-m", str(tiny_model), "--images", str(dataset_dir / "jpg"), "--pipeline", "--runs", "5")
    assert human.returncode == 0 and "photos/s" in human.stdout and "{" not in human.stdout  # no JSON without --json


def test_bench_refuses_a_broken_model(tmp_path):
    (tmp_path / "x.tflite").write_bytes(b"junk")
    done = run_cli("bench", "-m", str(tmp_path / "x.tflite"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_bad_paths_and_photos_give_one_line_each(tiny_model, tmp_path):
    """bench --images with a corrupt photo names the photo (it said 'not a valid TFLite model'); a config that
    is a folder or an over-long path, a FIFO named on the command line: one line, no traceback, no hang."""
    import os

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "bad.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 50)
    done = run_cli("bench", "-m", str(tiny_model), "--images", str(photos), "--runs", "2")
    assert done.returncode == 2 and "bad.jpg" in done.stderr and "TFLite" not in done.stderr
    assert done.stderr.count("\n") == 1
    long_path = "/" + "x" * 5000 + ".toml"
    for args in (["daemon", "-c", str(tmp_path)], ["daemon", "-c", long_path], ["classify", "--model", long_path,
                                                                               str(photos / "bad.jpg")]):
        done = run_cli(*args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, args
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    done = run_cli("classify", "--model", str(tiny_model), str(fifo))
    assert done.returncode == 1 and "not a regular file" in done.stderr


def test_help_shows_flags_as_flags():
    done = run_cli("classify", "--help")
    assert done.returncode == 0 and "--json" in done.stdout and "<bool>" not in done.stdout
    built = run_cli("train", "--help", module="build_models")
    assert built.returncode == 0 and "<bool>" not in built.stdout
    for option in ("--size", "--max-per-class", "--phase1-epochs", "--phase2-epochs"):
        line = next(text for text in built.stdout.splitlines() if option in text)
        assert len(line.split(option, 1)[1].split()) > 1, line  # a help text after the option
