#!/usr/bin/env python3
"""MediaPipe Face Mesh as the landmark stage, measured against dlib's 5-point predictor (issue 14).

Each photo: dlib's HOG detector and 5-point predictor (the reference); the face box, enlarged
1.5x and turned upright on the eyes as MediaPipe's graph does, goes through Face Mesh
(`face_landmark.tflite` from npm `@mediapipe/face_mesh@0.4.1657299874`, Apache-2.0; 192x192
RGB in [0,1] -> 468 points). The mesh vertex nearest each of dlib's five points (mean over the
first 80 faces, in interocular distances) stands in for it; dlib's chip (150 px, padding 0.25)
is cut from dlib's points (dlib5), the mesh's (mesh5) and their mean (avg5), embedded by our
ONNX model, and TAR at FAR 1e-2 / 1e-3 printed over all pairs.

    bash bench/vision/dlib_own.sh DIR 0 mesh
"""
import csv, os, sys
import numpy as np, dlib, onnxruntime as ort
from PIL import Image
from ai_edge_litert.interpreter import Interpreter
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
d = sys.argv[1]; M = sys.argv[2] + '/'; TFLITE = sys.argv[3]
det = dlib.get_frontal_face_detector()
sp = dlib.shape_predictor(M + 'shape_predictor_5_face_landmarks.dat')
so = ort.SessionOptions(); so.intra_op_num_threads = 1
emb = ort.InferenceSession(os.path.join(ROOT, 'models', 'dlib_resnet128.onnx'), so)
nm = emb.get_inputs()[0].name
mesh = Interpreter(TFLITE); mesh.allocate_tensors()
mi = mesh.get_input_details()[0]['index']; mo = mesh.get_output_details()[0]['index']
def embed(chip):
    e = emb.run(None, {nm: chip.astype(np.float32).transpose(2, 0, 1)[None]})[0][0]
    return e / np.linalg.norm(e)
def run_mesh(img, s, box, scale):
    p = np.array([[s.part(k).x, s.part(k).y] for k in range(5)], float)
    # eye centres from dlib's 5 points (0,1 one eye; 2,3 the other)
    e1 = p[0:2].mean(0); e2 = p[2:4].mean(0)
    ang = np.arctan2(e1[1] - e2[1], e1[0] - e2[0])  # e2 -> e1 direction
    if e1[0] < e2[0]:
        ang = np.arctan2(e2[1] - e1[1], e2[0] - e1[0])
    c = np.array([(box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2])
    side = scale * max(box.width(), box.height())
    # crop pixel (u,v) in 192 -> image: c + R * ((u,v)/192 - 0.5) * side
    ca, sa = np.cos(ang), np.sin(ang)
    A = np.array([[ca, -sa], [sa, ca]]) * side / 192.0
    t = c - A @ np.array([96.0, 96.0])
    im = Image.fromarray(img).transform((192, 192), Image.AFFINE,
        data=(A[0, 0], A[0, 1], t[0], A[1, 0], A[1, 1], t[1]), resample=Image.BILINEAR)
    x = np.asarray(im, np.float32)[None] / 255.0
    mesh.set_tensor(mi, x); mesh.invoke()
    L = mesh.get_tensor(mo).reshape(468, 3)[:, :2]
    return (A @ L.T).T + t, p
rows = list(csv.DictReader(open(os.path.join(d, 'labels.csv'))))
ids = []; recs = []
for r in rows:
    img = np.asarray(Image.open(os.path.join(d, r['file'])).convert('RGB')).copy()
    ids.append(r['identity'])
    dets = det(img, 1) or det(img, 2)
    if not dets:
        recs.append(None); continue
    b = max(dets, key=lambda x: x.area())
    s = sp(img, b)
    L, p = run_mesh(img, s, b, 1.5)
    recs.append((img, b, s, L, p))
# which mesh vertex is each of dlib's 5 points (mean distance / interocular, first 80 faces)
D = np.zeros((5, 468)); n = 0
for rec in recs[:80]:
    if rec is None: continue
    img, b, s, L, p = rec
    io = np.linalg.norm(p[0:2].mean(0) - p[2:4].mean(0))
    for k in range(5):
        D[k] += np.linalg.norm(L - p[k], axis=1) / io
    n += 1
V = D.argmin(1); print('mesh vertices for dlib points', V.tolist(), 'mean err/interocular', (D.min(1) / n).round(3).tolist())
E = {'dlib5': [], 'mesh5': [], 'avg5': []}
for rec in recs:
    if rec is None:
        for k in E: E[k].append(None)
        continue
    img, b, s, L, p = rec
    E['dlib5'].append(embed(dlib.get_face_chip(img, s, 150, 0.25)))
    pts = dlib.points([dlib.point(int(round(L[v][0])), int(round(L[v][1]))) for v in V])
    s2 = dlib.full_object_detection(b, pts)
    E['mesh5'].append(embed(dlib.get_face_chip(img, s2, 150, 0.25)))
    pa = dlib.points([dlib.point(int(round((L[v][0] + p[k][0]) / 2)), int(round((L[v][1] + p[k][1]) / 2))) for k, v in enumerate(V)])
    E['avg5'].append(embed(dlib.get_face_chip(img, dlib.full_object_detection(b, pa), 150, 0.25)))
def tar(G):
    same = []; diff = []
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            v = -9.0 if G[i] is None or G[j] is None else float(G[i] @ G[j])
            (same if ids[i] == ids[j] else diff).append(v)
    same = np.array(same); diff = np.sort(np.array(diff))[::-1]
    return {f: round(float((same > diff[int(f * len(diff))]).mean()), 4) for f in (1e-2, 1e-3)}
print(d, sum(r is not None for r in recs), '/', len(ids))
for k in E: print(k, tar(E[k]))
