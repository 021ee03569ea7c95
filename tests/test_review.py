"""The review loop: the daemon keeps frames for the owner, the status page labels them (POST with the token only)
and one button learns and reloads; in a real headless Chromium, the labelled frame is then answered with its
label. Real files, a real daemon over loopback, a real video through OpenCV."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import numpy as np
import pytest
from flowercam.daemon.web.auth import authorised, read_token
from flowercam.daemon.web.garden import NearMiss, ReviewError, UnknownFrame, folder_for, near_miss
from flowercam.daemon.web.review import Review
from flowercam.model.classifier import Result
from flowercam.model.scores import Class

from build_models.synthetic import class_image
from tests.helpers import daemon_config, free_port, start_daemon, wait_for
from tests.test_status_page import _browser


def _result(uncertain: bool) -> Result:
    return Result("cam", (Class(0, "rose", 0.4 if uncertain else 0.9), Class(1, "tulip", 0.1)), uncertain, {}, 0.0)


def _frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (120, 160, 3), dtype=np.uint8)


def _settle(review: Review) -> None:
    """Until the writer has filed every frame offered so far (it marks each one done once written)."""
    assert wait_for(lambda: review._queue.unfinished_tasks == 0, 10)


def test_review_keeps_uncertain_frames_a_sample_of_confident_ones_rate_limited_within_its_quota(tmp_path):
    review = Review(tmp_path, every_s=10.0, confident_every=3, quota_bytes=1 << 30).start()
    assert review.offer(_frame(), _result(True), now=100.0)
    assert not review.offer(_frame(), _result(True), now=105.0)  # within every_s
    assert [review.offer(_frame(), _result(False), now=200.0 + 20 * i) for i in range(6)] == \
        [False, False, True, False, False, True]  # one in three confident frames
    _settle(review)
    frames, waiting = review.frames()
    assert waiting == len(frames)
    assert len(frames) == 3 and frames[-1]["uncertain"] and frames[-1]["top"][0]["label"] == "rose"
    size = next(review.pending.glob("*.jpg")).stat().st_size
    review.quota_bytes = int(size * 2.5)  # room for two: the oldest go first
    for i in range(4):
        review.offer(_frame(i), _result(True), now=1000.0 + 20 * i)
        _settle(review)
    kept = sorted(review.pending.glob("*.jpg"))
    assert len(kept) == 2 and sum(f.stat().st_size for f in kept) <= review.quota_bytes
    assert len(list(review.pending.glob("*.json"))) == 2


def test_labels_are_filed_by_the_one_rule_and_paths_never_come_from_the_request(tmp_path):
    review = Review(tmp_path, every_s=0).start()
    for i in range(5):
        review.offer(_frame(i), _result(True), now=float(i))
        _settle(review)
    ids = [f["id"] for f in review.frames()[0]]
    assert len(ids) == 5
    assert review.label(ids[0], "Garden  tulip") == "Garden_tulip"
    assert review.label(ids[1], "garden tulip") == "Garden_tulip"  # the same class in another spelling
    assert review.label(ids[2], "not a flower") == "not_a_flower"
    assert review.label(ids[3], "skip") == "" and not review.frame_path(ids[3])
    assert review.garden.counts() == {"Garden_tulip": 2, "not_a_flower": 1}
    for bad in ("../etc", "a/b", "", "x" * 100, "..", "tulip\x00"):
        with pytest.raises(ReviewError):
            review.label(ids[4], bad)
    for bad_id in ("../garden/Garden_tulip/" + ids[0], ids[0], "x", ""):
        with pytest.raises(UnknownFrame):
            review.label(bad_id, "rose")
    assert folder_for("common dandelion") == "common_dandelion"
    assert [near_miss(name, ["rose", "common dandelion"]) for name in ("rose.", "Roses", "Rose", "tulip",
                                                                      "common-dandelion")] == \
        ["rose", "rose", None, None, "common dandelion"]
    with pytest.raises(NearMiss):
        review.label(ids[4], "Garden tulips")
    assert review.label(ids[4], "Garden tulips", new=True) == "Garden_tulips"
    token = "t" * 12
    assert not authorised(token, None) and not authorised(token, "t" * 11) and authorised(token, "t" * 12)
    assert not authorised("", "")  # no token set: nobody changes anything
    token_file = tmp_path / "token"
    token = read_token(token_file)
    assert len(token) >= 16 and read_token(token_file) == token and token_file.stat().st_mode & 0o077 == 0


def _post(url: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"X-Flowercam-Token": token} if token is not None else {})
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _static_video(tmp_path, label: int):
    """A clip of one synthetic photo of ``label``, 30 frames, through OpenCV."""
    import cv2

    image = np.asarray(class_image(label, np.random.default_rng(7), (64, 48)))[..., ::-1].copy()
    path = tmp_path / "one_flower.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for _ in range(30):
        writer.write(image)
    writer.release()
    return path


def _review_daemon(tmp_path, model, label: int = 4, **review):
    port = free_port()
    garden = tmp_path / "state" / "garden" / "Synthetic_1"  # a class the owner labelled before
    garden.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        class_image(0, rng, (64, 48)).save(garden / f"old_{i}.jpg", quality=90)
    config = daemon_config(tmp_path, model, _static_video(tmp_path, label), source={"fps": 10},
                           smoothing={"window": 1, "enter": 0.5, "stay": 0.5},
                           http={"bind": f"127.0.0.1:{port}"},
                           model={"adapter": str(tmp_path / "state" / "adapter.npz")},
                           review={"dir": str(tmp_path / "state"), "every_s": 0.2, "confident_every": 1, **review})
    return start_daemon(config), f"http://127.0.0.1:{port}", tmp_path / "state"


def _frames(base: str) -> list[dict]:
    try:
        with urllib.request.urlopen(base + "/review", timeout=10) as response:
            return json.loads(response.read())["frames"]
    except OSError:  # not listening yet
        return []


def test_nothing_changes_without_the_token(tmp_path, learning_model):
    proc, base, state = _review_daemon(tmp_path, learning_model)
    try:
        assert wait_for(lambda: len(_frames(base)) >= 2, 60)
        token = (state / "token").read_text().strip()
        frame = _frames(base)[0]["id"]
        for wrong in (None, "", "x" * len(token), token[:-1]):
            assert _post(f"{base}/review/{frame}", {"label": "violet"}, wrong)[0] == 403
            assert _post(f"{base}/learn", {}, wrong)[0] == 403
        assert (state / "review" / f"{frame}.jpg").exists() and not (state / "adapter.npz").exists()
        assert _post(f"{base}/review/..%2F..%2Ftoken", {"label": "x"}, token)[0] == 404
        assert _post(f"{base}/review/{frame}", {"label": "../../etc"}, token)[0] == 400
        assert _post(f"{base}/review/{frame}", {"name": "violet"}, token)[0] == 400
        big = urllib.request.Request(f"{base}/review/{frame}", b"x" * 10000, method="POST",
                                     headers={"X-Flowercam-Token": token})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(big, timeout=10)
        assert err.value.code == 413
        with pytest.raises(urllib.error.HTTPError) as err:  # a GET never changes anything
            urllib.request.urlopen(f"{base}/learn", timeout=10)
        assert err.value.code == 404
        status, done = _post(f"{base}/review/{frame}", {"label": "violet"}, token)
        assert status == 200 and done["filed_as"] == "violet"
        assert (state / "garden" / "violet" / f"{frame}.jpg").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_label_a_frame_learn_and_the_page_answers_the_label_in_a_real_browser(tmp_path, learning_model):
    browser = _browser()  # first: a machine without a browser skips before a daemon is started (and leaked)
    proc, base, state = _review_daemon(tmp_path, learning_model)
    try:
        assert wait_for(lambda: len(_frames(base)) >= 3, 60)
        browser.get(base + "/")
        assert wait_for(lambda: len(browser.find_elements("css selector", "#queue li")) >= 3, 30)
        before = browser.find_element("id", "label").text
        assert before != "violet"
        token = browser.find_element("id", "token")
        token.send_keys((state / "token").read_text().strip())
        browser.execute_script("document.getElementById('token').dispatchEvent(new Event('change'))")
        for _ in range(3):  # label three frames of the new flower by typing its name
            item = browser.find_elements("css selector", "#queue li")[0]
            item.find_element("css selector", "input.name").send_keys("violet")
            item.find_element("xpath", ".//button[text()='Save']").click()
            assert wait_for(lambda: "filed as violet" in browser.find_element("id", "review-msg").text, 10)
            browser.execute_script("document.getElementById('review-msg').textContent = ''")
        assert len(list((state / "garden" / "violet").glob("*.jpg"))) == 3
        browser.find_element("id", "learn").click()
        learn_state = browser.find_element("id", "learn-state")
        assert wait_for(lambda: "learned" in learn_state.text, 120), learn_state.text
        assert "synthetic 1, violet: fewer than 20 photos" in learn_state.text  # what the command says
        assert (state / "adapter.npz").exists()
        label = browser.find_element("id", "label")
        confidence = browser.find_element("id", "confidence")
        assert wait_for(lambda: label.text == "violet", 30), (label.text, confidence.text)
        browser.save_screenshot(str(tmp_path / "review.png"))
    finally:
        browser.quit()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert any(e["event"] == "learn" and e["ok"] for e in events)


def _review_state(base: str) -> dict:
    with urllib.request.urlopen(base + "/review", timeout=10) as response:
        return json.loads(response.read())


def _latest_label(base: str) -> str:
    return _latest(base).get("label", "")


def test_learn_applies_its_adapter_though_the_config_file_broke_meanwhile(tmp_path, learning_model):
    """The Learn button swaps in the new adapter and nothing else: a config file edited (here broken) meanwhile
    waits for its own reload, and "learned" is said only once the camera answers with the new class."""
    proc, base, state = _review_daemon(tmp_path, learning_model)
    config = tmp_path / "flowercam.toml"
    try:
        assert wait_for(lambda: len(_frames(base)) >= 3, 60)
        token = (state / "token").read_text().strip()
        for frame in _frames(base)[:3]:
            assert _post(f"{base}/review/{frame['id']}", {"label": "violet"}, token)[0] == 200
        config.write_text(config.read_text() + "[model\n")  # broken by hand while the camera runs
        assert _post(f"{base}/learn", {}, token)[0] == 202
        assert wait_for(lambda: _review_state(base)["learning"]["state"] != "learning", 120)
        learning = _review_state(base)["learning"]
        assert learning["state"] == "done" and learning["classes_added"] == ["violet"], learning
        assert learning["advice"].startswith("synthetic 1, violet: fewer than 20 photos"), learning
        assert "violet" in _review_state(base)["labels"]
        assert wait_for(lambda: _latest_label(base) == "violet", 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["ok"] for e in events if e["event"] == "learn"] == [True]
    assert not any(e["event"] == "reload" for e in events)


def _post_raw(url: str, body: bytes, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, body, {"X-Flowercam-Token": token}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_every_review_request_gets_an_answer_even_with_its_folders_deleted(tmp_path, learning_model):
    """Odd bodies get a 400 with a plain reason, a deleted garden or queue folder is made again (owner-only), what
    the daemon files is the owner's alone, and the token is never logged."""
    import shutil
    import stat

    proc, base, state = _review_daemon(tmp_path, learning_model)
    try:
        assert wait_for(lambda: len(_frames(base)) >= 2, 60)
        token = (state / "token").read_text().strip()
        frame = _frames(base)[0]["id"]
        for body, reason in ((b"[1, 2]", "expected"), (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
                             (b"{not json", "not JSON"), (b'{"label": 3}', "expected")):
            if len(body) > 4096:  # past the body limit: refused before it is read
                assert _post_raw(f"{base}/review/{frame}", body, token)[0] == 413
                body = b"[" * 2000 + b"]" * 2000
            status, answer = _post_raw(f"{base}/review/{frame}", body, token)
            assert status == 400 and reason in answer["error"], (body[:20], status, answer)
        shutil.rmtree(state / "garden")
        status, answer = _post(f"{base}/review/{frame}", {"label": "violet"}, token)
        assert status == 200 and answer["garden"] == {"violet": 1}, answer
        filed = state / "garden" / "violet" / f"{frame}.jpg"
        assert stat.S_IMODE(filed.stat().st_mode) == 0o600
        assert stat.S_IMODE((state / "garden").stat().st_mode) & 0o077 == 0
        shutil.rmtree(state / "review")
        assert wait_for(lambda: len(_frames(base)) >= 1, 30)  # the queue folder is made again, and fills
        assert stat.S_IMODE(next((state / "review").glob("*.jpg")).stat().st_mode) == 0o600
        assert _post(f"{base}/review/{frame}", {"label": "violet"}, token)[0] == 404  # filed already: gone
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and token not in err and token not in out and "token" in err


def test_a_new_adapter_is_applied_on_sighup_without_a_restart(tmp_path, learning_model):
    """``flowercam learn`` writes the adapter the config names; SIGHUP applies it to the running daemon."""
    from tests.helpers import run_cli

    garden = tmp_path / "garden"
    rng = np.random.default_rng(0)
    for folder, label in (("Synthetic_1", 0), ("violet", 4)):
        (garden / folder).mkdir(parents=True)
        for i in range(8):
            class_image(label, rng, (64, 48)).save(garden / folder / f"{i}.jpg", quality=90)
    adapter = tmp_path / "adapter.npz"
    port = free_port()
    config = daemon_config(tmp_path, learning_model, _static_video(tmp_path, 4), source={"fps": 10},
                           http={"bind": f"127.0.0.1:{port}"}, model={"adapter": str(adapter)})
    learned = run_cli("learn", str(garden), "--out", str(tmp_path / "first.npz"), "--model", str(learning_model))
    assert learned.returncode == 0, learned.stderr
    config_without = config.read_text().replace(f'adapter = "{adapter}"', 'adapter = ""')
    config.write_text(config_without)
    proc = start_daemon(config)

    def label() -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/latest", timeout=5) as response:
                return json.loads(response.read()).get("label", "")
        except OSError:  # not listening yet, or a connection reset while it starts
            return ""

    try:
        assert wait_for(lambda: label() not in ("",), 60)
        assert label() != "violet"  # the model alone has never seen it
        (tmp_path / "first.npz").rename(adapter)
        config.write_text(config_without.replace('adapter = ""', f'adapter = "{adapter}"'))
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: label() == "violet", 30), (label(), proc.poll())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["ok"] for e in events if e["event"] == "reload"] == [True]


def test_review_config_needs_an_adapter_path_and_remote_binds_are_explicit(tmp_path):
    from flowercam.daemon.config import ConfigError, load_config

    def config(text: str):
        (tmp_path / "c.toml").write_text(text)
        return load_config(tmp_path / "c.toml")

    with pytest.raises(ConfigError, match="review.dir needs model.adapter"):
        config('[review]\ndir = "/var/lib/flowercam"\n')
    assert config('[model]\nadapter = "/x/a.npz"\n[review]\ndir = "/x"\n').review.dir == "/x"
    with pytest.raises(ConfigError, match="allow_remote"):
        config('[http]\nbind = "0.0.0.0:8089"\n')
    assert config('[http]\nbind = "0.0.0.0:8089"\nallow_remote = true\n').http.allow_remote
    with pytest.raises(ConfigError, match="review.quota_mb"):
        config('[model]\nadapter = "/x/a.npz"\n[review]\ndir = "/x"\nquota_mb = 0\n')


def test_a_corrupt_adapter_at_start_costs_the_learning_not_the_camera(tmp_path, learning_model):
    """A broken adapter file at start: the camera runs on the model alone, moves the file aside for inspection and
    says what it gave up in the journal, /healthz, /latest, the heartbeats and on the page (real Chromium)."""
    browser = _browser()
    adapter = tmp_path / "adapter.npz"
    adapter.write_bytes(b"PK\x03\x04 half an adapter")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_daemon(daemon_config(tmp_path, learning_model, _static_video(tmp_path, 4), source={"fps": 10},
                                      http={"bind": f"127.0.0.1:{port}"}, model={"adapter": str(adapter)}))

    def health() -> str:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                return response.read().decode()
        except OSError:
            return ""

    try:
        assert wait_for(lambda: health().startswith("ok"), 60), proc.poll()
        assert "learning off" in health() and "adapter" in health()
        assert _latest_label(base) != "" and "learning off" in json.dumps(_latest(base)["problems"])
        browser.get(base + "/")
        problems = browser.find_element("id", "problems")
        assert wait_for(lambda: problems.is_displayed() and "learning off" in problems.text, 20)
        events = tmp_path / "events.jsonl"
        assert wait_for(lambda: any('"heartbeat"' in line and "learning off" in line
                                    for line in events.read_text().splitlines()), 20)
        proc.send_signal(signal.SIGHUP)  # the same config, its adapter now moved aside: the reload still applies
        assert wait_for(lambda: '"reload"' in events.read_text(), 20)
        reload = next(json.loads(line) for line in events.read_text().splitlines() if '"reload"' in line)
        assert reload["ok"] is True, reload  # it failed: "adapter not found"
        assert "learning off" in health() and _latest_label(base) != ""
    finally:
        browser.quit()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "learning off" in err
    assert not adapter.exists() and [p.read_bytes() for p in tmp_path.glob("adapter.npz.broken-*")] == [
        b"PK\x03\x04 half an adapter"]
    heartbeats = [json.loads(line) for line in events.read_text().splitlines() if '"heartbeat"' in line]
    assert any("learning off" in e.get("problems", [""])[0] for e in heartbeats)


def _latest(base: str) -> dict:
    with urllib.request.urlopen(base + "/latest", timeout=10) as response:
        return json.loads(response.read())


def test_the_owner_fixes_labels_on_the_page_in_a_real_browser(tmp_path, learning_model):
    """A near-miss name is asked about, the last label undone, a labelled photo moved or deleted, the classes
    labelled but not yet learned offered while typing; the Learn's result, with the frames re-scored, by the
    button."""
    browser = _browser()
    proc, base, state = _review_daemon(tmp_path, learning_model)
    try:
        assert wait_for(lambda: len(_frames(base)) >= 4, 60)
        browser.get(base + "/")
        assert wait_for(lambda: len(browser.find_elements("css selector", "#queue li")) >= 4, 30)
        browser.find_element("id", "token").send_keys((state / "token").read_text().strip())
        browser.execute_script("document.getElementById('token').dispatchEvent(new Event('change'))")
        message, ask = browser.find_element("id", "review-msg"), browser.find_element("id", "ask")

        item = browser.find_elements("css selector", "#queue li")[0]
        item.find_element("css selector", "input.name").send_keys("Synthetic 1.")  # nearly "Synthetic 1"
        item.find_element("xpath", ".//button[text()='Save']").click()
        assert wait_for(lambda: "is 'Synthetic 1.' the class 'Synthetic 1'" in message.text, 10), message.text
        ask.find_element("xpath", ".//button[text()='Synthetic 1']").click()
        assert wait_for(lambda: message.text == "filed as Synthetic_1", 10), message.text
        assert len(list((state / "garden" / "Synthetic_1").glob("*.jpg"))) == 9

        browser.find_element("id", "undo").click()
        assert wait_for(lambda: "back in the queue" in message.text, 10), message.text
        assert len(list((state / "garden" / "Synthetic_1").glob("*.jpg"))) == 8

        garden = browser.find_element("id", "garden")
        assert wait_for(lambda: "Synthetic 1 8" in garden.text, 10), garden.text
        garden.find_element("xpath", ".//button[starts-with(text(), 'Synthetic 1')]").click()
        assert wait_for(lambda: len(browser.find_elements("css selector", "#labelled-photos li")) == 8, 10)
        photos = browser.find_elements("css selector", "#labelled-photos li")
        photos[0].find_element("xpath", ".//button[text()='Delete']").click()
        assert wait_for(lambda: message.text == "removed", 10), message.text
        photos[1].find_element("css selector", "input.name").send_keys("violet")
        photos[1].find_element("xpath", ".//button[text()='Move']").click()
        assert wait_for(lambda: message.text == "filed as violet", 10), message.text
        assert _review_state(base)["garden"] == {"Synthetic_1": 6, "violet": 1}
        assert wait_for(lambda: "violet 1 (new)" in garden.text, 10), garden.text
        options = [o.get_attribute("value") for o in browser.find_elements("css selector", "#classes option")]
        assert "violet" in options  # labelled, not yet learned: offered while typing

        for item in browser.find_elements("css selector", "#queue li")[:2]:
            item.find_element("css selector", "input.name").send_keys("violet")
            item.find_element("xpath", ".//button[text()='Save']").click()
            assert wait_for(lambda: message.text == "filed as violet", 10), message.text
            browser.execute_script("document.getElementById('review-msg').textContent = ''")
        browser.find_element("id", "learn").click()
        learn_state = browser.find_element("id", "learn-state")
        assert wait_for(lambda: "learned at" in learn_state.text, 120), learn_state.text
        assert "added violet" in learn_state.text and "re-scored" in learn_state.text, learn_state.text
        assert any(f.get("rescored") for f in _review_state(base)["frames"])
    finally:
        browser.quit()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
