#!/usr/bin/env bash
# Face engine benchmarks: Rust (anju-vision) vs Python onnxruntime on the same models and the same
# libonnxruntime, one thread, spinning off; gallery search vs numpy brute force. Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash models/setup-ort.sh >/dev/null
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-vision} cargo build -q --release -p anju-vision --example bench --example eval_faces
echo "rust:   $(${CARGO_TARGET_DIR:-target-vision}/release/examples/bench)"
echo "python: $(.venv/bin/python models/reference.py bench)"
echo "numpy:  $(.venv/bin/python models/reference.py gallery-bench)"
echo "python: $(.venv/bin/python models/reference.py face-path)"
