"""The daemon's status page in a real headless Chromium (Debian's chromium and chromium-driver, through
Selenium): it shows the label, updates it as the video moves to another flower, and serves the frame."""

from __future__ import annotations

import shutil
import signal
import urllib.request

import pytest

from tests.helpers import daemon_config, free_port, start_daemon, wait_for


def _browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as err:
        pytest.skip(f"selenium is not installed ({err}); the dev extra has it")
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no chromium/chromedriver here: apt install chromium chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=420,900"):  # a phone-sized window
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_status_page_follows_the_label_in_a_real_browser(tmp_path, tiny_model, video):
    browser = _browser()  # first: a machine without a browser skips before a daemon is started (and leaked)
    port = free_port()
    proc = start_daemon(daemon_config(tmp_path, tiny_model, video, source={"fps": 10},
                          smoothing={"window": 1, "enter": 0.5, "stay": 0.5}, http={"bind": f"127.0.0.1:{port}"}))
    try:
        assert wait_for(lambda: b"fps" in urllib.request.urlopen(f"http://127.0.0.1:{port}/latest").read())
        browser.get(f"http://127.0.0.1:{port}/")
        label = browser.find_element("id", "label")
        assert wait_for(lambda: label.text not in ("", "–"), 30)
        first = label.text
        assert wait_for(lambda: label.text not in ("", "–", first), 30), "the page never showed another label"
        assert wait_for(lambda: browser.execute_script(
            "const i = document.getElementById('snap'); return i.complete && i.naturalWidth > 0;"), 10)
        assert wait_for(lambda: len(browser.find_elements("css selector", "#history li")) >= 2, 30)
        assert "fps" in browser.find_element("id", "stats").text
        browser.save_screenshot(str(tmp_path / "status.png"))
        assert (tmp_path / "status.png").stat().st_size > 5000
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot.jpg") as response:
            assert response.headers["Content-Type"] == "image/jpeg"
            assert "no-store" in response.headers["Cache-Control"]
            assert response.read()[:3] == b"\xff\xd8\xff"
    finally:
        browser.quit()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
