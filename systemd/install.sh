#!/usr/bin/env bash
# Install the flowercam daemon on a Raspberry Pi (run once, as root, from a checkout of flowercam):
#   sudo systemd/install.sh
# Creates the flowercam user, a venv in /opt/flowercam, the config, the udev rule and the service.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
prefix=/opt/flowercam

id flowercam >/dev/null 2>&1 || useradd --system --home-dir /var/lib/flowercam --shell /usr/sbin/nologin flowercam
for group in video plugdev; do getent group "$group" >/dev/null && usermod -aG "$group" flowercam; done

# On Raspberry Pi OS, picamera2 comes from apt; the venv sees it through --system-site-packages.
if command -v apt-get >/dev/null && ! python3 -c "import picamera2" 2>/dev/null; then
  apt-get install -y python3-picamera2 || echo "install.sh: python3-picamera2 not installed (no Pi camera?)" >&2
fi
python3 -m venv --system-site-packages "$prefix/venv"
"$prefix/venv/bin/pip" install --upgrade pip
"$prefix/venv/bin/pip" install "$repo[camera,mqtt]"
install -m 0644 "$repo/README.md" "$prefix/README.md"

# The config may hold a camera's password (rtsp://user:pass@...): readable by root and the service only.
install -d -m 0750 -o root -g flowercam /etc/flowercam
[ -e /etc/flowercam/flowercam.toml ] || install -m 0640 -o root -g flowercam "$here/flowercam.toml" /etc/flowercam/flowercam.toml
chown root:flowercam /etc/flowercam/flowercam.toml && chmod 0640 /etc/flowercam/flowercam.toml
# The MQTT password (sudo FLOWERCAM_MQTT_PASSWORD=... systemd/install.sh): its own file, 0640 root:flowercam, named
# by [mqtt] password_file; a password file the config already names gets the same owner and mode.
if [ -n "${FLOWERCAM_MQTT_PASSWORD:-}" ]; then
  (umask 0177 && printf '%s\n' "$FLOWERCAM_MQTT_PASSWORD" > /etc/flowercam/mqtt.password)
  chown root:flowercam /etc/flowercam/mqtt.password && chmod 0640 /etc/flowercam/mqtt.password
  grep -q '^password_file = ""' /etc/flowercam/flowercam.toml && \
    sed -i 's|^password_file = ""|password_file = "/etc/flowercam/mqtt.password"|' /etc/flowercam/flowercam.toml
fi
named=$(sed -n 's/^password_file = "\(.\+\)".*/\1/p' /etc/flowercam/flowercam.toml | head -1)
if [ -n "$named" ] && [ -f "$named" ]; then chown root:flowercam "$named" && chmod 0640 "$named"; fi
install -m 0644 "$here/99-coral-edgetpu.rules" /etc/udev/rules.d/99-coral-edgetpu.rules
udevadm control --reload-rules 2>/dev/null && udevadm trigger 2>/dev/null || true
install -m 0644 "$here/flowercam.service" /etc/systemd/system/flowercam.service
systemctl daemon-reload
systemctl enable --now flowercam.service
echo "flowercam installed: journalctl -u flowercam -f   (config: /etc/flowercam/flowercam.toml)"
echo "with [review] on, the page's labelling token (never logged): sudo cat /var/lib/flowercam/token"
