#!/usr/bin/env bash
# The Pi targets resolve: every requirement of the device install (flowercam[camera]) has a binary wheel for
# linux aarch64 with CPython 3.11 (Raspberry Pi OS Bookworm) and 3.13 (Trixie). Markers are evaluated for aarch64.
# picamera2 is left out: on the Pi it comes from apt (python3-picamera2, installed by systemd/install.sh into the
# venv's system site packages), so pip finds it satisfied; its PyPI release needs compilers for its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
mapfile -t requirements < <("$python" - <<'PY'
import configparser
from packaging.markers import default_environment
from packaging.requirements import Requirement

cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
lines = cfg["options"]["install_requires"].strip().splitlines() + \
    cfg["options.extras_require"]["camera"].strip().splitlines()
for version in ("3.11", "3.13"):
    env = {**default_environment(), "platform_machine": "aarch64", "python_version": version,
           "python_full_version": version + ".0", "sys_platform": "linux"}
    for line in lines:
        req = Requirement(line)
        if req.name != "picamera2" and (req.marker is None or req.marker.evaluate(env)):
            print(f"{version} {str(req).split(';')[0]}")
PY
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# glibc of each target: Bookworm 2.36 (CPython 3.11), Trixie 2.41 (3.13); pip takes --platform tags literally.
for target in 3.11:36 3.13:41; do
  version=${target%:*}
  platforms=(--platform manylinux2014_aarch64 --platform linux_aarch64)
  for minor in $(seq 17 "${target#*:}"); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
  reqs=()
  for line in "${requirements[@]}"; do
    [ "${line%% *}" = "$version" ] && reqs+=("${line#* }")
  done
  "$python" -m pip download --quiet --only-binary=:all: --dest "$tmp/$version" --python-version "$version" \
    --implementation cp "${platforms[@]}" "${reqs[@]}"
  echo "aarch64 CPython $version: $(ls "$tmp/$version" | wc -l) wheels resolve (${reqs[*]})"
done
