#!/usr/bin/env bash
# The Pi's own userland: flowercam installed from aarch64 wheels into Debian bookworm arm64 (64-bit Raspberry Pi OS's
# base) and run under QEMU user-mode emulation with the Pi 5 and Pi 4 CPU profiles; its answers must equal this
# machine's (bench/pi_userland.py says what is checked and why). About 4 minutes, at most 20.
# Skipped, saying why, only where emulation is unavailable (not root, or no binfmt_misc for qemu-aarch64).
set -euo pipefail
cd "$(dirname "$0")/.."
skip() { echo "pi_userland: SKIPPED: $*" >&2; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root (mmdebstrap --mode=root, mounts in the arm64 root)"
[ "$(uname -m)" != "aarch64" ] || skip "this machine is arm64 itself: no emulation to check"
missing=()
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null || missing+=(binfmt-support)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || skip "no apt-get to install ${missing[*]}"
  apt=(apt-get -o DPkg::Lock::Timeout=900 -q)
  "${apt[@]}" install -y "${missing[@]}" || ("${apt[@]}" update && "${apt[@]}" install -y "${missing[@]}")
fi
binfmt=/proc/sys/fs/binfmt_misc
[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || \
  skip "binfmt_misc cannot be mounted here (a container without it): no arm64 emulation"
[ -e "$binfmt/qemu-aarch64" ] || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
grep -q enabled "$binfmt/qemu-aarch64" 2>/dev/null || skip "qemu-aarch64 is not registered with binfmt_misc"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
timeout 1200 .venv/bin/python bench/pi_userland.py --root "${FLOWERCAM_PI_ROOT:-/var/tmp/flowercam-pi-root}" \
  --out "$out"
