"""The small things a new user meets first: every usage error one line, a version, a learn that checks its output
before working, progress that reads in a log."""

from __future__ import annotations

from tests.helpers import run_cli

SAMPLE = "device/flowercam/samples/image_01315.jpg"


def test_usage_errors_are_one_line_and_exit_2():
    for args, words in ((("classify", "--threads", "0", SAMPLE), "--threads"),
                        (("classify", "--thredz", "2", SAMPLE), "No such option: --thredz"),
                        (("nonsense",), "No such command 'nonsense'")):
        done = run_cli(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
        assert lines[0].startswith("flowercam: error: ") and "--help" in lines[0]


def test_version():
    from importlib.metadata import version

    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"flowercam {version('flowercam')}"


def test_learn_refuses_an_output_folder_before_any_work_and_shows_plain_progress(tmp_path, learning_model):
    from tests.test_learn import _folder

    garden = tmp_path / "garden"
    _folder(garden, "Synthetic_1", 0, n=30)
    _folder(garden, "violet", 4, n=30)  # 60 photos: enough to show progress (fewer are done in a moment)
    done = run_cli("learn", str(garden), "--out", str(tmp_path), "--model", str(learning_model))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "is a folder" in lines[0] and "embedding" not in done.stderr
    done = run_cli("learn", str(garden), "--out", str(tmp_path / "a.npz"), "--model", str(learning_model))
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("embedding photos:")]
    assert len(progress) >= 5 and progress[-1] == "embedding photos: 60 of 60 (100 %)", done.stderr  # plain lines
    assert "" not in done.stderr.splitlines()  # no blank line left by a bar that was never drawn
