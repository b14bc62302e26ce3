#!/usr/bin/env bash
# Installs what Anju needs on a fresh Debian 12 machine, idempotently:
#  - Debian packages (build tools, FFmpeg's libraries for camera decoding,
#    GStreamer's RTSP server for camera tests and the demo's cameras,
#    PostgreSQL and Mosquitto for the test suite),
#  - ONNX Runtime (PyPI wheel) into the project-local .venv (models/setup-ort.sh).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  mosquitto mosquitto-clients
  python3-venv
  ca-certificates openssl
)
if [ "${ANJU_WITH_POSTGRES:-0}" = 1 ]; then PKGS+=(postgresql); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ONNX Runtime for the face engine (found by anju without any export).
bash models/setup-ort.sh >/dev/null
# Test photos (PyPI sdist face_recognition==1.3.0, sha256-pinned, cached in
# .cache/, never committed): the face tests and the demo's simulated camera.
bash models/fetch-test-photos.sh || echo "setup: test photos unavailable; face tests will skip loudly, the demo simulates face tracks" >&2
echo "setup: ok" >&2
