"""flowercam learn: an adapter from class folders, on a real int8 model with an embedding output; the adapter
everywhere; and every bad input a one-line error with the previous adapter left in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from build_models.synthetic import class_image
from tests.helpers import run_cli


def _folder(root, name: str, label: int, n: int = 8, seed: int = 0):
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + label)
    for i in range(n):
        class_image(label, rng, (80, 60)).save(folder / f"{label}_{i}.jpg", quality=90)
    return folder


@pytest.fixture()
def garden(tmp_path):
    """Two of the model's classes (folder names by the one rule) and a new one it has never seen."""
    root = tmp_path / "garden"
    _folder(root, "Synthetic_1", 0)
    _folder(root, "synthetic__2", 1)
    _folder(root, "violet", 4)  # a colour the model never saw: a new class
    return root


def _classify(model, adapter, photo):
    done = run_cli("classify", "--model", str(model), "--adapter", str(adapter), "--json", str(photo))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_learn_adds_a_class_keeps_the_indices_and_is_used_everywhere(tmp_path, learning_model, garden):
    adapter = tmp_path / "var" / "adapter.npz"
    done = run_cli("learn", str(garden), "--out", str(adapter), "--model", str(learning_model))
    assert done.returncode == 0, done.stderr
    assert "classes added: violet" in done.stdout and adapter.is_file()
    assert "synthetic 1, synthetic 2, violet: fewer than 20 photos" in done.stderr  # 8 photos a class
    assert adapter.stat().st_mode & 0o777 == 0o644  # learned by hand (root), read by the daemon's own user
    new = _folder(tmp_path / "more", "violet", 4, n=3, seed=7)
    rows = [_classify(learning_model, adapter, photo) for photo in sorted(new.iterdir())]
    assert all(row["label"] == "violet" and row["index"] == 3 for row in rows), rows
    old = _folder(tmp_path / "more", "synthetic 1", 0, n=2, seed=9)
    row = _classify(learning_model, adapter, next(old.iterdir()))
    assert (row["label"], row["index"]) == ("synthetic 1", 0)
    info = run_cli("info", "--model", str(learning_model), "--adapter", str(adapter), "--json")
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)["adapter"]
    assert described["classes_added"] == ["violet"] and described["photos"]["synthetic 2"] == 8
    evaluation = run_cli("evaluate", "--model", str(learning_model), "--adapter", str(adapter), "--json",
                         str(tmp_path / "more"))
    assert evaluation.returncode == 0, evaluation.stderr
    folders = {f["folder"]: f for f in json.loads(evaluation.stdout)["folders"]}
    assert folders["violet"]["class"] == 3 and folders["violet"]["top1"] == 1.0
    bench = run_cli("bench", "--model", str(learning_model), "--adapter", str(adapter), "--runs", "20", "--json")
    cost = json.loads(bench.stdout)
    assert bench.returncode == 0 and cost["adapter_classes"] == 4
    slower = cost["model_ms"]["mean"] - cost["model_alone_ms"]["mean"]
    assert cost["slowdown_ms"] == pytest.approx(slower, abs=2e-4)  # a model the adapter slows shows
    assert cost["adapter_share"] == pytest.approx(cost["adapter_ms"]["mean"] / cost["model_alone_ms"]["mean"], 0.01)


def test_the_model_alone_cannot_name_the_new_class(tmp_path, learning_model):
    photo = _folder(tmp_path, "violet", 4, n=1) / "4_0.jpg"
    done = run_cli("classify", "--model", str(learning_model), "--json", str(photo))
    assert json.loads(done.stdout)["index"] < 3  # it has only its own three classes


def _one_line_error(done, fragment: str):
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr and fragment in lines[0], done.stderr


@pytest.mark.parametrize("layout, fragment", [
    ("empty", "no photos in class folders"),
    ("one_class", "only one class folder"),
    ("collision", "are both the class"),
    ("unreadable_only", "no photo could be read"),
])
def test_bad_folders_fail_in_one_line_and_keep_the_previous_adapter(tmp_path, learning_model, garden, layout,
                                                                    fragment):
    adapter = tmp_path / "adapter.npz"
    assert run_cli("learn", str(garden), "--out", str(adapter), "--model", str(learning_model)).returncode == 0
    before = adapter.read_bytes()
    bad = tmp_path / layout
    bad.mkdir()
    if layout == "one_class":
        _folder(bad, "violet", 4)
    elif layout == "collision":
        _folder(bad, "violet", 4)
        _folder(bad, "Violet_", 4, seed=3)
    elif layout == "unreadable_only":
        for name in ("a", "b"):
            (bad / name).mkdir()
            (bad / name / "x.jpg").write_bytes(b"not a photo")
    _one_line_error(run_cli("learn", str(bad), "--out", str(adapter), "--model", str(learning_model)), fragment)
    assert adapter.read_bytes() == before


def test_unreadable_photos_get_an_error_row_and_are_skipped(tmp_path, learning_model, garden):
    (garden / "violet" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)
    done = run_cli("learn", str(garden), "--out", str(tmp_path / "a.npz"), "--model", str(learning_model))
    assert done.returncode == 0, done.stderr
    assert "broken.jpg" in done.stderr and "(1 unreadable)" in done.stdout


def test_a_class_whose_photos_are_all_unreadable_is_no_class(tmp_path, learning_model, garden):
    from flowercam.model.adapter import read_adapter

    (garden / "tulip").mkdir()
    for i in range(3):  # truncated JPEGs
        (garden / "tulip" / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    adapter = tmp_path / "a.npz"
    done = run_cli("learn", str(garden), "--out", str(adapter), "--model", str(learning_model))
    assert done.returncode == 0, done.stderr
    learned = read_adapter(adapter)
    assert "tulip" not in learned.labels and learned.labels[-1] == "violet" and "tulip" not in learned.photos
    only = tmp_path / "only"
    _folder(only, "violet", 4)
    (only / "tulip").mkdir()
    (only / "tulip" / "0.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    _one_line_error(run_cli("learn", str(only), "--out", str(adapter), "--model", str(learning_model)),
                    "only one class (violet)")


def test_anchors_made_for_another_model_are_refused_in_one_line(tmp_path, learning_model, garden):
    import shutil

    model = tmp_path / "model" / learning_model.name
    model.parent.mkdir()
    for part in learning_model.parent.glob(learning_model.stem + ".*"):
        shutil.copy(part, model.parent / part.name)
    anchors = model.with_name(model.stem + ".anchors.npz")
    with np.load(anchors) as data:
        arrays = dict(data)
    np.savez(anchors, **{**arrays, "model_sha256": np.frombuffer(b"0" * 64, np.uint8)})
    _one_line_error(run_cli("learn", str(garden), "--out", str(tmp_path / "a.npz"), "--model", str(model)),
                    "was made for another model")


def test_broken_or_foreign_adapters_are_refused_in_one_line(tmp_path, learning_model, garden):
    from flowercam.model.adapter import read_adapter

    adapter = tmp_path / "adapter.npz"
    assert run_cli("learn", str(garden), "--out", str(adapter), "--model", str(learning_model)).returncode == 0
    data = adapter.read_bytes()
    sample = str(_folder(tmp_path / "p", "x", 0, n=1) / "0_0.jpg")
    for name, content in (("truncated.npz", data[: len(data) // 2]), ("corrupt.npz", b"PK\x03\x04" + b"\x00" * 64),
                          ("text.npz", b"hello")):
        (tmp_path / name).write_bytes(content)
        _one_line_error(run_cli("classify", "--model", str(learning_model), "--adapter", str(tmp_path / name),
                                sample), "adapter")
    other = read_adapter(adapter)
    import dataclasses

    dataclasses.replace(other, base_sha256="0" * 64).save(tmp_path / "foreign.npz")
    _one_line_error(run_cli("classify", "--model", str(learning_model), "--adapter", str(tmp_path / "foreign.npz"),
                            sample), "learned for another model")
    _one_line_error(run_cli("classify", "--adapter", str(adapter), sample), "learned for another model")


def _blobs(rng, dim: int = 16, base_classes: int = 5):
    """Pure-numpy stand-ins for embedded photos: class c lies around the c-th axis."""
    from flowercam.learning.fit import Photos

    centres = np.eye(dim)

    def photos(label, n, base_label=None, spread=0.05):
        emb = centres[label] + rng.normal(0, spread, (n, dim))
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        probs = np.full((n, base_classes), 0.02)
        probs[:, label if base_label is None else base_label] = 0.92
        return Photos(emb, probs, np.full(n, label))

    return photos


def _join(parts):
    from flowercam.learning.fit import Photos

    return Photos(*(np.concatenate([getattr(a, k) for a in parts]) for k in ("embeddings", "probs", "labels")))


BASE_RULE = (0.5, None)


@pytest.mark.parametrize("kind", ["gate", "residual"])
def test_adapter_leaves_untaught_classes_as_the_model_had_them(kind):
    """Pure numpy: a taught class only takes a photo that looks like it; elsewhere the base ranking stands."""
    from flowercam.learning.fit import Recipe, fit, predict

    photos = _blobs(np.random.default_rng(0))
    anchors = _join([photos(c, 10) for c in range(5)])
    own = _join([photos(0, 10), photos(5, 10, base_label=1)])  # class 0 taught, class 5 new (base calls it 1)
    adapter = fit(own, anchors, tuple("abcdef"), 5, "sha", Recipe(kind=kind))
    for label in (1, 2, 3, 4):  # untaught: still the base answer
        assert (predict(adapter, photos(label, 5), None, BASE_RULE).probabilities.argmax(1) == label).all()
    assert (predict(adapter, photos(5, 5, base_label=1), None, BASE_RULE).probabilities.argmax(1) == 5).all()


def test_a_species_nobody_taught_stays_uncertain_after_learning():
    """A photo the base model confidently calls a taught class (0.92 for class 0) but that resembles the owner's
    photos of that class less than photos of another class is answered uncertain once class 0 is taught (before,
    learning made such answers confident); the owner's own kind of photo of class 0 is answered confidently."""
    from flowercam.learning.fit import fit, predict
    from flowercam.model.scores import is_uncertain

    photos = _blobs(np.random.default_rng(1))
    anchors = _join([photos(c, 10) for c in range(5)])
    own = _join([photos(0, 20), photos(1, 20)])
    adapter = fit(own, anchors, tuple("abcde"), 5, "sha")
    stranger = photos(3, 20, base_label=0)  # unlike the owner's class 0, like other photos; the model says 0
    for batch, expect_uncertain in ((stranger, True), (photos(0, 20), False)):
        a = predict(adapter, batch, None, BASE_RULE)
        assert (a.probabilities.argmax(1) == 0).all()
        unsure = is_uncertain(a.probabilities.max(1), a.similarity, a.uncertain_below, a.similarity_below)
        assert unsure.all() if expect_uncertain else not unsure.any(), a.similarity


def test_the_command_fits_the_default_its_help_names(tmp_path, learning_model, garden):
    """One default: ``flowercam learn`` without --kind fits DEFAULT_KIND, and --help says which."""
    from flowercam.learning.fit import DEFAULT_KIND
    from flowercam.model.adapter import read_adapter

    assert f"default: {DEFAULT_KIND}" in " ".join(run_cli("learn", "--help").stdout.split())
    out = tmp_path / "adapter.npz"
    assert run_cli("learn", str(garden), "--out", str(out), "--model", str(learning_model)).returncode == 0
    assert read_adapter(out).kind == DEFAULT_KIND


def test_the_command_the_daemons_learn_and_the_bench_fit_the_same_adapter(tmp_path, learning_model, garden, video):
    """What bench/learning.py measures (embed, then learn_photos) is what ``flowercam learn`` and the daemon's
    Learn button write, array for array; and the classifier answers each photo as the bench's batch does."""
    import shutil

    from flowercam.daemon.classifying import classifier_for
    from flowercam.daemon.config import load_config
    from flowercam.daemon.web.review import Review
    from flowercam.learning.learn import anchors_for, embed, learn_photos, read_folders
    from flowercam.model.adapter import read_adapter
    from flowercam.model.classifier import Classifier
    from flowercam.model.scores import is_uncertain

    from tests.helpers import daemon_config

    command = tmp_path / "command.npz"
    assert run_cli("learn", str(garden), "--out", str(command), "--model", str(learning_model)).returncode == 0
    review = Review(tmp_path / "review")
    shutil.copytree(garden, review.garden.folder, dirs_exist_ok=True)
    config = load_config(daemon_config(tmp_path, learning_model, video, review={"dir": str(tmp_path / "review")},
                                       model={"adapter": str(tmp_path / "daemon.npz")}))
    review.learner.run(lambda: classifier_for(config, with_adapter=False), tmp_path / "daemon.npz", lambda a: None)
    classifier = Classifier(learning_model, threads=1)
    folders = read_folders(garden, classifier.sidecar.labels)
    rows, photos, sim = embed(classifier, folders.paths)
    own = type(photos)(photos.embeddings, photos.probs, folders.classes[rows])
    bench = learn_photos(own, anchors_for(learning_model, classifier.sidecar), folders.labels, classifier.sidecar)
    for written in (read_adapter(command), read_adapter(tmp_path / "daemon.npz")):
        for name in ("weights", "bias", "references", "floor", "margin"):
            assert np.allclose(getattr(written, name), getattr(bench, name), atol=1e-3, equal_nan=True), name
        assert (written.kind, written.labels, written.uncertain_below) == (bench.kind, bench.labels,
                                                                          bench.uncertain_below)
    adapted = Classifier(learning_model, threads=1, adapter=command)
    a = bench.answers(photos.probs, photos.embeddings, sim, adapted.sidecar.thresholds_for("center"))
    unsure = is_uncertain(a.probabilities.max(1), a.similarity, a.uncertain_below, a.similarity_below)
    for i, path in enumerate(folders.paths):
        result = adapted.classify(path)
        assert (result.top_k[0].index, result.uncertain) == (int(a.probabilities[i].argmax()), bool(unsure[i]))


def test_daemon_config_names_the_adapter_and_checks_it(tmp_path, learning_model, garden, video):
    from tests.helpers import daemon_config

    adapter = tmp_path / "adapter.npz"
    assert run_cli("learn", str(garden), "--out", str(adapter), "--model", str(learning_model)).returncode == 0
    config = daemon_config(tmp_path, learning_model, video, model={"adapter": str(adapter)})
    done = run_cli("daemon", "--config", str(config), "--check-config")
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr
    (tmp_path / "bad.npz").write_bytes(b"broken")
    config = daemon_config(tmp_path, learning_model, video, model={"adapter": str(tmp_path / "bad.npz")})
    _one_line_error(run_cli("daemon", "--config", str(config), "--check-config"), "adapter")


def test_the_nearest_references_are_those_of_a_brute_force_search():
    """Adapter.nearest (one product, or a photo's non-zero dimensions block by block; then each class's maximum)
    gives, for every photo and class, the cosine to the nearest owner photo of the class and to the nearest
    reference of any other class, as a search over every reference does; with classes that have no owner photo, no
    anchor, or neither."""
    import dataclasses

    from flowercam.learning.fit import fit
    from flowercam.model.neighbours import Nearest

    rng = np.random.default_rng(3)
    photos = _blobs(rng)
    adapter = fit(_join([photos(0, 6), photos(5, 3, base_label=1)]), _join([photos(c, 4) for c in (0, 1, 2, 4)]),
                  tuple("abcdef"), 5, "sha")
    refs = rng.normal(size=(len(adapter.references), 300)).astype(np.float32)  # a photo's ~150 non-zeros: 3 blocks
    adapter = dataclasses.replace(adapter, references=refs / np.linalg.norm(refs, axis=1, keepdims=True))
    x = np.maximum(rng.normal(size=(30, refs.shape[1])), 0).astype(np.float32)  # zeros, as after a ReLU
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ adapter.references.T
    one_by_one = [adapter.nearest(x[i:i + 1]) for i in range(len(x))]  # the camera's path: a photo's non-zeros
    stacked = Nearest(*(np.concatenate([getattr(n, f.name) for n in one_by_one]) for f in dataclasses.fields(Nearest)))
    def same(a, b):  # float32 sums in another order: equal to a few ulps
        return np.allclose(a, b, rtol=0, atol=1e-6)

    for near in (adapter.nearest(x), stacked):
        for c in range(len(adapter.labels)):
            mine = (adapter.reference_labels == c) & adapter.reference_owner
            models = (adapter.reference_labels == c) & ~adapter.reference_owner
            others = adapter.reference_labels != c
            assert same(near.own[:, c], np.where(mine, sims, -1.0).max(axis=1, initial=-1.0))
            assert same(near.model[:, c], np.where(models, sims, -1.0).max(axis=1, initial=-1.0))
            assert same(near.other(np.full(len(x), c)), np.where(others, sims, -1.0).max(axis=1, initial=-1.0))


def test_what_the_model_was_sure_of_stays_sure_after_learning():
    """A taught class's photo like the model's own training photos of it (not like the owner's, taken in another
    style), which the model alone answered confidently, is still answered confidently after learning (it became
    "uncertain": one garden photo a class made the camera less sure than the model alone on Oxford's roses)."""
    from flowercam.learning.fit import Photos, fit, predict
    from flowercam.model.scores import is_uncertain

    photos = _blobs(np.random.default_rng(2))
    anchors = _join([photos(c, 10) for c in range(5)])
    garden = photos(6, 20, base_label=0)  # the owner's class 0, in another style than the model's photos of it
    own = _join([Photos(garden.embeddings, garden.probs, np.zeros(20, int)), photos(1, 20)])
    adapter = fit(own, anchors, tuple("abcde"), 5, "sha")
    a = predict(adapter, photos(0, 20), None, BASE_RULE)
    assert (a.probabilities.argmax(1) == 0).all()
    assert not is_uncertain(a.probabilities.max(1), a.similarity, a.uncertain_below, a.similarity_below).any()


def test_what_the_model_was_clearly_sure_of_a_class_nobody_taught_keeps():
    """A photo of a class nobody taught (2), which the model alone answers confidently and with a high similarity,
    nearer to the model's own photos of it than to the owner's photos of a taught class (0) yet near enough to them
    for the gate, keeps the model's own answer and probabilities (the gate took a share of such photos: Oxford's
    colt's foot lost up to 9.5 points of test top-1 once dandelions were taught, and 1.8 % more test photos became
    "uncertain"). Without a similarity (the rule cannot tell "clearly sure"), the gate decides as before."""
    from flowercam.learning.fit import Photos, fit, predict
    from flowercam.model.scores import is_uncertain

    rng = np.random.default_rng(4)
    photos = _blobs(rng)
    anchors = _join([photos(c, 10) for c in range(5)])
    adapter = fit(_join([photos(0, 20), photos(1, 20)]), anchors, tuple("abcde"), 5, "sha")
    emb = np.eye(16)[2] + 0.9 * np.eye(16)[0] + rng.normal(0, 0.02, (20, 16))
    probs = np.full((20, 5), 0.02)
    probs[:, 2] = 0.92
    between = Photos(emb / np.linalg.norm(emb, axis=1, keepdims=True), probs, np.full(20, 2))
    a = predict(adapter, between, np.full(20, 0.9), (0.5, 0.3))
    assert np.allclose(a.probabilities[:, :5], probs)
    assert not is_uncertain(a.probabilities.max(1), a.similarity, a.uncertain_below, a.similarity_below).any()
    assert not np.allclose(predict(adapter, between, None, BASE_RULE).probabilities[:, :5], probs)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS runs one thread whatever flowercam sets")
def test_numpy_runs_one_blas_thread_beside_the_interpreter():
    """Importing flowercam sets numpy's BLAS to one thread (an adapter's product per photo, on a BLAS thread pool
    that spins beside the interpreter's threads, slowed every inference by 60-75 % on 2 cores); the owner's own
    OPENBLAS_NUM_THREADS is kept."""
    code = ("import flowercam, numpy, threadpoolctl; print(sum(p['num_threads'] for p in "
            "threadpoolctl.threadpool_info() if p['user_api'] == 'blas'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    for setting, threads in ((None, 1), ("2", 2)):
        run_env = env if setting is None else {**env, "OPENBLAS_NUM_THREADS": setting}
        done = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, check=True)
        assert int(done.stdout) == threads


def test_an_adapter_of_the_previous_format_is_read_as_it_was_made(tmp_path):
    """An adapter learned before the keep rule (format 2: no keep_margin) still works after an upgrade, answering
    as it did (the rule off), rather than being refused and moved aside by the daemon; an unknown format is
    refused in one line."""
    import dataclasses
    import json as json_

    from flowercam.learning.fit import fit, predict
    from flowercam.model.adapter import AdapterError, read_adapter

    photos = _blobs(np.random.default_rng(5))
    adapter = fit(_join([photos(0, 10), photos(1, 10)]), _join([photos(c, 10) for c in range(5)]), tuple("abcde"), 5,
                  "sha")
    path = adapter.save(tmp_path / "new.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json_.loads(bytes(arrays.pop("meta")).decode())
    for fmt, name in (("flowercam-adapter/2", "old.npz"), ("flowercam-adapter/9", "future.npz")):
        old = {k: v for k, v in meta.items() if k != "keep_margin"} | {"format": fmt}
        np.savez(tmp_path / name, meta=np.frombuffer(json_.dumps(old).encode(), np.uint8), **arrays)
    previous = read_adapter(tmp_path / "old.npz")
    assert previous.keep_margin == np.inf and read_adapter(path).keep_margin == adapter.keep_margin
    batch = photos(2, 10)
    off = dataclasses.replace(read_adapter(path), keep_margin=np.inf)
    assert np.array_equal(predict(previous, batch, np.full(10, 0.9), (0.5, 0.3)).probabilities,
                          predict(off, batch, np.full(10, 0.9), (0.5, 0.3)).probabilities)
    with pytest.raises(AdapterError, match="another flowercam version"):
        read_adapter(tmp_path / "future.npz")
