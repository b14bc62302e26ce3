#!/usr/bin/env python3
"""dlib's own face pipeline beside ours, on an evaluation folder (issue 14).

Is the gap to dlib's published LFW figure in our detector and alignment, in the
uint8 weights of the ONNX port (`models/dlib_resnet128.onnx`, from face-api's
tfjs files), or in the embedder itself? Each photo goes through dlib's HOG
detector and 5-point shape predictor, then three embedders on the same face:

  float  dlib's own network and float weights (`compute_face_descriptor`)
  onnx   our ONNX port on dlib's own chip (`get_face_chip`, 150 px, padding 0.25)
  jitter dlib's network averaged over N jittered copies (`num_jitters`, if N > 0)

and prints TAR at FAR 1e-2 / 1e-3 over all pairs (cosine of L2-normalised
descriptors; a photo without a face never matches), as `anju eval faces` does.

    bash bench/vision/dlib_own.sh DIR [JITTERS]

(the wrapper makes a venv with PyPI dlib-bin, onnxruntime, numpy and Pillow in
.cache/dlib-venv and fetches the sdist face_recognition_models==0.3.0, public
domain models, into .cache/; nothing here is shipped).
"""
import csv
import os
import sys

import dlib
import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    d = sys.argv[1]
    models = sys.argv[2]
    jit = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(os.path.join(models, "shape_predictor_5_face_landmarks.dat"))
    fr = dlib.face_recognition_model_v1(os.path.join(models, "dlib_face_recognition_resnet_model_v1.dat"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    emb = ort.InferenceSession(os.path.join(ROOT, "models", "dlib_resnet128.onnx"), so)
    rows = list(csv.DictReader(open(os.path.join(d, "labels.csv"))))
    out = {"float": [], "onnx": [], "jitter": []}
    ids = []
    for r in rows:
        img = np.asarray(Image.open(os.path.join(d, r["file"])).convert("RGB")).copy()
        ids.append(r["identity"])
        dets = det(img, 1) or det(img, 2)
        if not dets:
            for k in out:
                out[k].append(None)
            continue
        s = sp(img, max(dets, key=lambda x: x.area()))
        out["float"].append(np.array(fr.compute_face_descriptor(img, s)))
        chip = dlib.get_face_chip(img, s, 150, 0.25)
        x = chip.astype(np.float32).transpose(2, 0, 1)[None]
        out["onnx"].append(emb.run(None, {emb.get_inputs()[0].name: x})[0][0])
        out["jitter"].append(np.array(fr.compute_face_descriptor(img, s, jit)) if jit else None)
    found = sum(e is not None for e in out["float"])
    print(f"{d}: {len(ids)} photos, dlib's HOG found a face in {found}")
    for k, e in out.items():
        if any(v is not None for v in e):
            print(k, tar(e, ids))


def tar(emb, ids):
    v = [None if e is None else e / np.linalg.norm(e) for e in emb]
    same, diff = [], []
    for i in range(len(v)):
        for j in range(i + 1, len(v)):
            s = -9.0 if v[i] is None or v[j] is None else float(v[i] @ v[j])
            (same if ids[i] == ids[j] else diff).append(s)
    same = np.array(same)
    diff = np.sort(np.array(diff))[::-1]
    return {f"tar_at_far_{f}": round(float((same > diff[int(f * len(diff))]).mean()), 4) for f in (1e-2, 1e-3)}


if __name__ == "__main__":
    main()
