#!/usr/bin/env bash
# README command 2's installer: the system packages the tests use (Debian/Ubuntu), then a venv (.venv) with
# everything (training stack, camera, MQTT, dev tools, the TFLite clients). Safe to run again.
#   libusb-1.0-0            tflite-support's metadata writers load it
#   chromium chromium-driver the status page is tested in a real headless browser
#   mosquitto               MQTT is tested against a real broker
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
ldconfig -p 2>/dev/null | grep -q "libusb-1.0.so.0" || missing+=(libusb-1.0-0)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "install these system packages yourself (no apt-get here): ${missing[*]}" >&2
  else
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing system packages: ${missing[*]}" >&2
    # a fresh machine updates itself for minutes after boot: wait for apt's lock instead of failing at once
    apt=($sudo apt-get -o DPkg::Lock::Timeout=900 -q)
    "${apt[@]}" install -y "${missing[@]}" || ("${apt[@]}" update && "${apt[@]}" install -y "${missing[@]}")
  fi
fi
echo "installing the venv (.venv): every extra and the TFLite clients, a few minutes" >&2
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[build,camera,mqtt,dev]"
.venv/bin/pip install --quiet --no-deps -r requirements-nodeps.txt
