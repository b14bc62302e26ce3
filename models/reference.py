#!/usr/bin/env python3
"""Reference face pipeline in Python (numpy + onnxruntime + Pillow).

It defines the behaviour the Rust crate `anju-vision` reproduces:
BlazeFace full-range (letterbox, anchor decode, weighted NMS) -> 4-point Umeyama similarity
alignment onto dlib's 150x150 template (bilinear, black border) -> dlib ResNet embedding ->
L2 normalisation -> cosine similarity.

Commands (run with the project venv: `.venv/bin/python models/reference.py ...`):
  eval DIR            verification on an evaluation folder (labels.csv or one sub-folder per identity)
  golden OUT_JSON     writes the golden file for the Rust test (synthetic seeded input, no photos)
  bench               per-call timings of detector and embedder (batch 1, 1 thread)
  gallery-bench       numpy brute-force top-2 over 15,000 x 128 templates
  face-path           per-face cost of the whole reference pipeline on a 640x360 frame
"""
import csv
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
DET = os.path.join(HERE, "blazeface_full_range.onnx")
EMB = os.path.join(HERE, "dlib_resnet128.onnx")
S = 192
GRID = 48
TEMPLATE = np.array(
    [[47.733, 47.140], [100.281, 47.123], [74.013, 76.562], [74.013, 106.009]], dtype=np.float64
)
CHIP = 150


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def anchors():
    ys, xs = np.mgrid[0:GRID, 0:GRID]
    return np.stack([(xs.ravel() + 0.5) / GRID, (ys.ravel() + 0.5) / GRID], axis=1)


ANCHORS = anchors()


def letterbox(img):
    """RGB PIL image -> (NHWC float32 tensor in -1..1, scale)."""
    w, h = img.size
    scale = S / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = img.resize((nw, nh), Image.BILINEAR)
    canvas = np.zeros((S, S, 3), dtype=np.float32)
    canvas[:nh, :nw] = np.asarray(small, dtype=np.float32)
    return (canvas / 127.5 - 1.0)[None], scale


def iou(a, b):
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2])
    y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])
    return inter / (area(a) + area(b) - inter + 1e-12)


def detect(det, img, min_score=0.5, iou_thr=0.3):
    """Returns list of (score, box[x0,y0,x1,y1], kps[6,2]) in image pixel coordinates."""
    x, scale = letterbox(img)
    reg, cls = det.run(None, {det.get_inputs()[0].name: x})
    reg, cls = reg[0], cls[0, :, 0]
    scores = 1.0 / (1.0 + np.exp(-np.clip(cls, -100, 100)))
    keep = scores >= min_score
    if not keep.any():
        return []
    r, a, sc = reg[keep], ANCHORS[keep], scores[keep]
    cx = a[:, 0] + r[:, 0] / S
    cy = a[:, 1] + r[:, 1] / S
    w = r[:, 2] / S
    h = r[:, 3] / S
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = np.stack([a[:, None, 0] + r[:, 4::2] / S, a[:, None, 1] + r[:, 5::2] / S], axis=2)
    order = np.argsort(-sc, kind="stable")
    boxes, kps, sc = boxes[order], kps[order], sc[order]
    used = np.zeros(len(sc), dtype=bool)
    out = []
    for i in range(len(sc)):
        if used[i]:
            continue
        ious = iou(boxes[i], boxes)
        members = (~used) & (ious > iou_thr)
        members[i] = True
        used |= members
        wgt = sc[members][:, None]
        b = (boxes[members] * wgt).sum(0) / wgt.sum()
        k = (kps[members] * wgt[:, :, None]).sum(0) / wgt.sum()
        out.append((float(sc[i]), b * S / scale, k * S / scale))
    return out


def umeyama(src, dst):
    """Similarity transform (no reflection) mapping src -> dst: returns 2x3 matrix."""
    n = src.shape[0]
    ms, md = src.mean(0), dst.mean(0)
    sc, dc = src - ms, dst - md
    cov = dc.T @ sc / n
    u, d, vt = np.linalg.svd(cov)
    sgn = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sgn[1, 1] = -1
    rot = u @ sgn @ vt
    var = (sc**2).sum() / n
    s = np.trace(np.diag(d) @ sgn) / var
    t = md - s * rot @ ms
    return np.hstack([s * rot, t[:, None]])


def warp(img_arr, m, size=CHIP):
    """Bilinear inverse warp; img_arr HxWx3 float; m maps source pixel (centre-indexed) -> chip."""
    a = m[:, :2]
    inv = np.linalg.inv(a)
    ys, xs = np.mgrid[0:size, 0:size]
    pts = np.stack([xs.ravel(), ys.ravel()], 0).astype(np.float64) - m[:, 2:3]
    src = inv @ pts
    sx, sy = src[0], src[1]
    h, w = img_arr.shape[:2]
    x0 = np.floor(sx).astype(np.int64)
    y0 = np.floor(sy).astype(np.int64)
    fx, fy = (sx - x0)[:, None], (sy - y0)[:, None]

    def px(yy, xx):
        ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        v = np.zeros((len(xx), 3), dtype=np.float64)
        v[ok] = img_arr[yy[ok], xx[ok]]
        return v

    out = (
        px(y0, x0) * (1 - fx) * (1 - fy)
        + px(y0, x0 + 1) * fx * (1 - fy)
        + px(y0 + 1, x0) * (1 - fx) * fy
        + px(y0 + 1, x0 + 1) * fx * fy
    )
    return out.reshape(size, size, 3)


def align(img_arr, kps):
    src = kps[:4].astype(np.float64) - 0.5  # edge-based continuous -> centre-indexed pixels
    return warp(img_arr, umeyama(src, TEMPLATE))


def embed(emb, chips):
    x = np.ascontiguousarray(np.stack(chips).transpose(0, 3, 1, 2).astype(np.float32))
    e = emb.run(None, {"input": x})[0]
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def pick(faces):
    """The labelled face: the largest detection."""
    return max(faces, key=lambda f: (f[1][2] - f[1][0]) * (f[1][3] - f[1][1]))


def load_rgb(path):
    return Image.open(path).convert("RGB")


def list_eval(d):
    lab = os.path.join(d, "labels.csv")
    if os.path.exists(lab):
        with open(lab) as f:
            return [(os.path.join(d, r["file"]), r["identity"]) for r in csv.DictReader(f)]
    items = []
    for ident in sorted(os.listdir(d)):
        p = os.path.join(d, ident)
        if os.path.isdir(p):
            for fn in sorted(os.listdir(p)):
                if fn.lower().endswith((".jpg", ".jpeg", ".png")):
                    items.append((os.path.join(p, fn), ident))
    return items


def tar_at_far(same, diff, far):
    d = np.sort(diff)[::-1]
    k = int(np.floor(far * len(d)))
    thr = d[k] if k < len(d) else -np.inf
    return float((same > thr).mean()), float(thr)


def eer(same, diff):
    best = (2.0, 0.0)
    for t in np.unique(np.concatenate([same, diff])):
        frr = (same < t).mean()
        far = (diff >= t).mean()
        if abs(frr - far) < best[0]:
            best = (abs(frr - far), (frr + far) / 2)
    return float(best[1])


def cmd_eval(d, flip=False):
    det, emb = session(DET), session(EMB)
    items = list_eval(d)
    embs, ids, times = [], [], []
    for i, (path, ident) in enumerate(items):
        img = load_rgb(path)
        t0 = time.perf_counter()
        faces = detect(det, img)
        if faces:
            f = pick(faces)
            chip = align(np.asarray(img, dtype=np.float64), f[2])
            chips = [chip, chip[:, ::-1]] if flip else [chip]
            e = embed(emb, chips).sum(0)
            embs.append(e / np.linalg.norm(e))
            times.append((time.perf_counter() - t0) * 1000)
        else:
            embs.append(None)
        ids.append(ident)
        print(f"\r{i + 1}/{len(items)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    same, diff = [], []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            s = float(embs[i] @ embs[j]) if embs[i] is not None and embs[j] is not None else -1.0
            (same if ids[i] == ids[j] else diff).append(s)
    same, diff = np.array(same), np.array(diff)
    t2, thr2 = tar_at_far(same, diff, 1e-2)
    t3, thr3 = tar_at_far(same, diff, 1e-3)
    print(json.dumps({
        "images": len(items),
        "faces_detected": sum(e is not None for e in embs),
        "pairs_same": len(same),
        "pairs_diff": len(diff),
        "tar_at_far_1e-2": round(t2, 4),
        "tar_at_far_1e-3": round(t3, 4),
        "eer": round(eer(same, diff), 4),
        "threshold_at_far_1e-2": round(thr2, 4),
        "threshold_at_far_1e-3": round(thr3, 4),
        "ms_per_face": round(float(np.median(times)), 2),
        "flip": flip,
    }, indent=1))


def golden_input():
    """Deterministic synthetic chip (same formula in the Rust test): smooth pattern, 0..255."""
    ys, xs = np.mgrid[0:CHIP, 0:CHIP].astype(np.float64)
    chans = []
    for c in range(3):
        v = 127.5 + 100.0 * np.sin(xs * (0.05 + 0.01 * c) + ys * 0.031 * (c + 1)) * np.cos(ys * 0.043 - c)
        chans.append(v)
    return np.stack(chans, axis=2)  # HWC


def cmd_golden(out):
    emb = session(EMB)
    chip = golden_input()
    e = embed(emb, [chip])[0]
    e_flip = embed(emb, [chip[:, ::-1]])[0]
    res = {
        "model": "dlib_resnet128.onnx",
        "input": "golden_input(): chip[y][x][c] = 127.5 + 100 sin(x(0.05+0.01c) + y 0.031(c+1)) cos(0.043y - c)",
        "embedding": [round(float(v), 7) for v in e],
        "embedding_flipped": [round(float(v), 7) for v in e_flip],
    }
    # Optional: reference embeddings on the pinned face_recognition test photos, if cached.
    photos = os.path.join(HERE, "..", ".cache", "test-photos")
    if os.path.isdir(photos):
        det = session(DET)
        refs = {}
        for fn in sorted(os.listdir(photos)):
            if fn.endswith(".jpg"):
                img = load_rgb(os.path.join(photos, fn))
                faces = detect(det, img)
                if faces:
                    f = pick(faces)
                    chip = align(np.asarray(img, dtype=np.float64), f[2])
                    refs[fn] = {
                        "keypoints": [[round(float(a), 3) for a in p] for p in f[2][:4]],
                        "embedding": [round(float(v), 7) for v in embed(emb, [chip])[0]],
                    }
        res["photos"] = refs
    with open(out, "w") as f:
        json.dump(res, f, indent=0)
        f.write("\n")


def cmd_bench():
    det, emb = session(DET), session(EMB)
    rng = np.random.RandomState(0)
    xd = rng.uniform(-1, 1, (1, S, S, 3)).astype(np.float32)
    xe = rng.uniform(0, 255, (1, 3, CHIP, CHIP)).astype(np.float32)
    res = {}
    for name, s, x in (("detector", det, xd), ("embedder", emb, xe)):
        feed = {s.get_inputs()[0].name: x}
        for _ in range(10):
            s.run(None, feed)
        ts = []
        for _ in range(200):
            t0 = time.perf_counter()
            s.run(None, feed)
            ts.append((time.perf_counter() - t0) * 1000)
        res[name] = {"median_ms": round(float(np.median(ts)), 3), "p99_ms": round(float(np.percentile(ts, 99)), 3)}
    print(json.dumps(res))


def cmd_face_path():
    """Per-face cost of the reference pipeline on a 640x360 frame (the photo scaled into it, as the
    Rust bench builds it): letterbox + detect + 4-point align + embed, 1 thread."""
    det, emb = session(DET), session(EMB)
    photo = os.path.join(HERE, "..", ".cache", "test-photos", "obama.jpg")
    small = load_rgb(photo).resize((320, 240), Image.BILINEAR)
    frame = Image.new("RGB", (640, 360), (90, 90, 90))
    frame.paste(small, (160, 60))
    arr = np.asarray(frame, dtype=np.float64)

    def run():
        f = pick(detect(det, frame))
        embed(emb, [align(arr, f[2])])

    for _ in range(10):
        run()
    ts = []
    for _ in range(200):
        t0 = time.perf_counter()
        run()
        ts.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"face_path_640x360": {"median_ms": round(float(np.median(ts)), 3),
                                            "p99_ms": round(float(np.percentile(ts, 99)), 3)}}))


def cmd_gallery_bench():
    rng = np.random.RandomState(1)
    g = rng.standard_normal((15000, 128)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    qs = rng.standard_normal((1000, 128)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    ts = []
    for q in qs:
        t0 = time.perf_counter()
        s = g @ q
        top = np.argpartition(-s, 2)[:2]
        top = top[np.argsort(-s[top])]
        _ = (int(top[0]), float(s[top[0]]), float(s[top[0]] - s[top[1]]))
        ts.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"gallery": "15000x128 f32", "median_ms": round(float(np.median(ts)), 4),
                      "p99_ms": round(float(np.percentile(ts, 99)), 4)}))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "eval":
        cmd_eval(sys.argv[2], flip="--flip" in sys.argv)
    elif cmd == "golden":
        cmd_golden(sys.argv[2])
    elif cmd == "bench":
        cmd_bench()
    elif cmd == "gallery-bench":
        cmd_gallery_bench()
    elif cmd == "face-path":
        cmd_face_path()
    else:
        print(__doc__)
        sys.exit(2)
