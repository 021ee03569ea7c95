"""What a newcomer hit (issue "What a newcomer hits"): the default threads, watch's last line and first rate,
bench's memory per model, check-config for a missing camera library and for peers beyond loopback."""

from __future__ import annotations

import json

import pytest
from flowercam.model.runtime import MAX_DEFAULT_THREADS, cores, threads_for

from tests.helpers import daemon_config, run_cli


def test_threads_default_to_the_cores_capped_and_requests_are_capped_at_the_cores(tiny_model):
    assert threads_for(None) == min(cores(), MAX_DEFAULT_THREADS)
    assert threads_for(64) == cores() and threads_for(1) == 1
    done = run_cli("bench", "-m", str(tiny_model), "--runs", "3", "--warmup", "0", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["threads"] == min(cores(), MAX_DEFAULT_THREADS)
    assert "at most 4" in run_cli("classify", "--help").stdout


def test_watch_says_why_it_stopped_and_shows_no_rate_before_two_frames(tiny_model, video):
    done = run_cli("watch", "-s", str(video), "-m", str(tiny_model), "--max-frames", "3", "--fps", "50", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 3 and rows[0]["fps"] is None and rows[2]["fps"] > 0
    assert "--max-frames reached" in done.stderr and "source ended" not in done.stderr
    done = run_cli("watch", "-s", str(video), "-m", str(tiny_model), "--fps", "100")
    assert done.returncode == 0 and "source ended" in done.stderr
    assert "– fps" in done.stdout.splitlines()[0]


def test_bench_tells_each_models_memory_from_the_processs(tiny_model, tmp_path):
    done = run_cli("bench", "-m", str(tiny_model), "-m", str(tiny_model), "--runs", "3", "--warmup", "0")
    assert done.returncode == 0, done.stderr
    assert "RSS+ MB" in done.stdout and "this model: RSS +" in done.stdout and "the process: peak RSS" in done.stdout


def test_check_config_refuses_a_missing_camera_library_and_names_peers_beyond_loopback(tmp_path, tiny_model,
                                                                                       video):
    import importlib.util

    config = daemon_config(tmp_path, tiny_model, "picamera2")
    done = run_cli("daemon", "--config", str(config), "--check-config")
    if importlib.util.find_spec("picamera2") is None:  # here (no Pi): refused at check time, one line, exit 2
        assert done.returncode == 2 and "picamera2 library is not installed" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    else:
        assert done.returncode == 0
    config = daemon_config(tmp_path, tiny_model, video, mqtt={"host": "192.168.1.5"},
                           http={"bind": "0.0.0.0:8089", "allow_remote": True})
    done = run_cli("daemon", "--config", str(config), "--check-config")
    assert done.returncode == 0, done.stderr
    assert "the MQTT broker 192.168.1.5" in done.stdout and "0.0.0.0:8089" in done.stdout
    assert "network.conf.example" in done.stdout
    config = daemon_config(tmp_path, tiny_model, video, mqtt={"host": "127.0.0.1"})
    assert "note:" not in run_cli("daemon", "--config", str(config), "--check-config").stdout


def test_evaluate_leaves_out_the_photos_the_model_trained_on(tmp_path, tiny_model, dataset_dir):
    import dataclasses
    import shutil

    from flowercam.model.sidecar import photo_fingerprint, read_sidecar, sidecar_path, write_sidecar

    model = tmp_path / "m.tflite"
    shutil.copy(tiny_model, model)
    shutil.copy(sidecar_path(tiny_model), sidecar_path(model))
    photos = sorted((dataset_dir / "jpg").glob("*.jpg"))[:6]
    folder = tmp_path / "garden" / "synthetic_1"
    folder.mkdir(parents=True)
    for i, photo in enumerate(photos):
        shutil.copy(photo, folder / f"renamed_{i}.jpg")  # other names: matched by content
    seen = tuple(sorted(photo_fingerprint(p) for p in photos[:4]))
    write_sidecar(model, dataclasses.replace(read_sidecar(model), trained_on=seen))
    done = run_cli("evaluate", "--json", "--model", str(model), str(tmp_path / "garden"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["left_out_training_photos"] == 4 and report["overall"]["all"]["photos"] == 2
    done = run_cli("evaluate", "--model", str(model), str(tmp_path / "garden"))
    assert "left out: 4 photos the model was trained or validated on" in done.stdout
    done = run_cli("evaluate", "--json", "--include-training", "--model", str(model), str(tmp_path / "garden"))
    assert json.loads(done.stdout)["overall"]["all"]["photos"] == 6


def test_help_texts_and_a_dash_named_photo(tmp_path, tiny_model):
    import shutil

    from tests.helpers import flower_like

    for command, options in (("lr-find", ("--size", "--max-per-class")), ("make-test-data", ("--classes",
                             "--per-class")), ("train", ("--views", "--phase1-epochs", "--weights"))):
        text = run_cli(command, "--help", module="build_models").stdout
        for option in options:
            line = text[text.index(option):].split("\n")[0]
            assert len(line.split()) > 2, (command, option, line)  # a help text, not only the option
    assert "the preset's" in run_cli("train", "--help", module="build_models").stdout
    listed = run_cli("presets", module="build_models").stdout
    assert "lite0 " in listed and "px" in listed and "tiny" in listed
    done = run_cli("train", "nosuch", module="build_models")
    assert done.returncode == 2 and "unknown preset 'nosuch'" in done.stderr and "TensorFlow" not in done.stderr
    flower_like().save(tmp_path / "-dash.jpg")
    shutil.copy(tmp_path / "-dash.jpg", tmp_path / "plain.jpg")
    done = run_cli("classify", "--model", str(tiny_model), "--json", "--", str(tmp_path / "-dash.jpg"))
    assert done.returncode == 0, done.stderr


def test_ci_runs_readme_command_2_as_written():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = root / "README.md"
    lines = readme.read_text().splitlines()
    command2 = lines[next(i for i, line in enumerate(lines) if line.startswith("# 2.")) + 1]
    assert "install_dev.sh" in command2 and "pytest" in command2
    ci = (root / ".ci" / "run").read_text()
    assert "awk '/^# 2\\./" in ci and 'bash -c "$command2"' in ci  # read from the README, not a copy
    installer = (root / ".ci" / "install_dev.sh").read_text()
    for package in ("libusb-1.0-0", "chromium", "chromium-driver", "mosquitto"):
        assert package in installer


@pytest.mark.slow  # trains and exports (~1 min on 2 cores)
def test_the_readme_python_api_example_runs(tmp_path):
    """The Python API block (docs/building.md, linked from the README), run as written on made-up data."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    building = (Path(__file__).resolve().parents[1] / "docs" / "building.md").read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", building, re.S).group(1)
    assert run_cli("make-test-data", str(tmp_path / "flowers"), module="build_models").returncode == 0
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test top-1" in done.stdout and (tmp_path / "runs" / "api" / "export" / "tiny_int8.tflite").is_file()
    assert (tmp_path / "runs" / "api" / "data.json").is_file()


def test_the_readme_serves_the_pi_owner_first_and_its_links_resolve():
    """Under 300 lines; the two commands, then installing on the Pi, before anything about training (which lives
    in docs/); every relative link of the README and docs/ names a file that exists."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    lines = readme.splitlines()
    headings = [line for line in lines if line.startswith("## ")]
    assert len(lines) < 300 and headings[0] == "## Install on a Raspberry Pi", headings
    training = [i for i, h in enumerate(headings) if re.search(r"train|build|model", h, re.I)]
    commands = "".join(re.findall(r"```bash\n(.*?)```", readme, re.S))
    assert training and min(training) > 0 and "build-models train" not in commands  # docs/building.md has them
    assert readme.index("# 1.") < readme.index("# 2.") < readme.index("## Install on a Raspberry Pi")
    for page in (root / "README.md", *sorted((root / "docs").glob("*.md"))):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), (page.name, target)


def test_the_workflow_uses_only_run_folders_its_commands_create():
    """docs/building.md's workflow block: every runs/NAME it reads is made by a train command before it (it read
    runs/lite0-trainval, which none of them made)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "building.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    made: set[str] = set()
    for line in block.splitlines():
        command = line.split("#", 1)[0]
        for found in re.finditer(r"build-models train (\S+)(?:.*?--protocol (\S+))?", command):
            made.add(f"{found.group(1)}-{found.group(2) or 'paper'}")
        for name in re.findall(r"runs/([\w.-]+)", re.sub(r"build-models train .*", "", command)):
            assert name in made, f"workflow reads runs/{name} before any command makes it: {line.strip()}"


def test_ci_checks_the_pi_userland_and_its_page_says_what_it_proves():
    """CI runs the arm64 check (`.ci/pi_userland.sh`: bench/pi_userland.py under QEMU, about 4 minutes; its own
    exit status fails CI); the committed page is its last run, with the answers equal for both Pi CPU profiles."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert "bash .ci/pi_userland.sh" in (root / ".ci" / "run").read_text()
    script = (root / ".ci" / "pi_userland.sh").read_text()
    assert "timeout" in script and "SKIPPED" in script and "--only-binary" not in script  # bounded; said when skipped
    data = json.loads((root / "bench" / "results" / "pi_userland.json").read_text())
    assert data["ok"] and set(data["profiles"]) == {"Pi 5 (Cortex-A76)", "Pi 4 (Cortex-A72)"}
    assert all(w.endswith(("_aarch64.whl", "-none-any.whl")) for w in data["install"]["wheels"])
    readme = (root / "README.md").read_text()
    assert "pi_userland.md" in readme and "not its speed, the camera or the Coral" in readme
