#!/usr/bin/env bash
# Installs ONNX Runtime (PyPI wheel `onnxruntime`, which ships libonnxruntime.so) plus numpy/Pillow for
# models/reference.py into the project-local venv .venv/. Idempotent. anju-vision finds
#   .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*
# by itself (searching upwards from the current directory and from the executable); ORT_DYLIB_PATH overrides.
# For NVIDIA GPUs install `onnxruntime-gpu` instead (ORT_PACKAGE=onnxruntime-gpu bash models/setup-ort.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=${ORT_PACKAGE:-onnxruntime}
VER=${ORT_VERSION:-1.32.0}
PY=$(command -v python3.11 || command -v python3)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! .venv/bin/python -c "import onnxruntime, numpy, PIL, sys; sys.exit(onnxruntime.__version__ != '$VER')" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check "$PKG==$VER" numpy==1.26.4 pillow==10.4.0
fi
ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* | head -1
