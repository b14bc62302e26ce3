#!/usr/bin/env python3
"""Does jitter averaging at enrolment pay (issue 14)? On dlib's own chips (HOG detector, 5 points,
150 px, padding 0.25) and our ONNX embedder, the enrolled side's template is the plain chip, chip +
mirror (what `anju` does), chip + N of dlib's `jitter_image` copies (small rotation, scale,
shift, random mirror), or all of them; the probe is a plain chip, as a camera frame is. Prints
TAR at FAR 1e-2 / 1e-3 over all ordered pairs.

    bash bench/vision/dlib_own.sh DIR 0 jitter N
"""
import csv, os, sys
import numpy as np, dlib, onnxruntime as ort
from PIL import Image
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
d = sys.argv[1]; M = sys.argv[2] + '/'; NJ = int(sys.argv[3])
det = dlib.get_frontal_face_detector()
sp = dlib.shape_predictor(M + 'shape_predictor_5_face_landmarks.dat')
so = ort.SessionOptions(); so.intra_op_num_threads = 1
emb = ort.InferenceSession(os.path.join(ROOT, 'models', 'dlib_resnet128.onnx'), so)
nm = emb.get_inputs()[0].name
def E(chips):
    x = np.stack([c.astype(np.float32).transpose(2, 0, 1) for c in chips])
    e = emb.run(None, {nm: x})[0]
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    return e
rows = list(csv.DictReader(open(os.path.join(d, 'labels.csv'))))
ids = []; T = {'plain': [], 'flip': [], 'jit': [], 'flipjit': []}
for r in rows:
    img = np.asarray(Image.open(os.path.join(d, r['file'])).convert('RGB')).copy()
    ids.append(r['identity'])
    dets = det(img, 1) or det(img, 2)
    if not dets:
        for k in T: T[k].append(None)
        continue
    s = sp(img, max(dets, key=lambda x: x.area()))
    chip = dlib.get_face_chip(img, s, 150, 0.25)
    jit = dlib.jitter_image(chip, NJ)
    e = E([chip, chip[:, ::-1].copy()] + list(jit))
    n = lambda v: v / np.linalg.norm(v)
    T['plain'].append(e[0]); T['flip'].append(n(e[0] + e[1]))
    T['jit'].append(n(e[0] + e[2:].sum(0))); T['flipjit'].append(n(e[0] + e[1] + e[2:].sum(0)))
def tar(G, P):
    same = []; diff = []
    for i in range(len(ids)):
        for j in range(len(ids)):
            if i == j: continue
            s = -9.0 if G[i] is None or P[j] is None else float(G[i] @ P[j])
            (same if ids[i] == ids[j] else diff).append(s)
    same = np.array(same); diff = np.sort(np.array(diff))[::-1]
    return {f: round(float((same > diff[int(f * len(diff))]).mean()), 4) for f in (1e-2, 1e-3)}
print(d, 'jitters', NJ)
for k in T: print('enrol', k, 'probe plain', tar(T[k], T['plain']))
print('both flip', tar(T['flip'], T['flip']))
