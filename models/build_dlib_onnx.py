#!/usr/bin/env python3
"""Build an ONNX graph of dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1)
from the uint8-quantised tfjs weights shipped in npm `@vladmandic/face-api@1.7.15`.

Architecture (dlib's `anet_type`, same as face-api's FaceRecognitionNet):
conv 7x7/2 valid -> maxpool 3x3/2 valid -> 3 x res(32) -> resdown(64) + 3 x res(64)
-> resdown(128) + 2 x res(128) -> resdown(256) + 2 x res(256) -> resdown(256)
-> global mean -> fc 256x128.

Folding done here (exact, no accuracy change):
* every conv is followed by a frozen per-channel affine ("scale"): folded into conv weight/bias;
* input normalisation `(x - mean_rgb) / 256` is folded into the first conv. That conv has
  *valid* padding, so no border pixel ever sees a padded zero and the fold is exact.
  The graph input is therefore raw RGB in 0..255, NCHW [N,3,150,150].

Weights stay uint8 inside the file (per-tensor quantised in the source; after folding the affine,
per-output-channel `q * A[c] + B[c]`), dequantised by Cast/Mul/Add nodes that ONNX Runtime
constant-folds when the session is created. This keeps the file at ~6 MB instead of ~22 MB.

Usage: build_dlib_onnx.py MANIFEST_JSON BIN OUT_ONNX
"""
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float64)
INPUT_DIV = 256.0


def load_weights(manifest_path, bin_path):
    manifest = json.load(open(manifest_path))
    assert len(manifest) == 1 and manifest[0]["paths"] == ["face_recognition_model.bin"]
    data = open(bin_path, "rb").read()
    off = 0
    out = {}
    for w in manifest[0]["weights"]:
        n = int(np.prod(w["shape"]))
        q = w.get("quantization")
        if q:
            assert q["dtype"] == "uint8"
            raw = np.frombuffer(data, dtype=np.uint8, count=n, offset=off).reshape(w["shape"])
            off += n
            out[w["name"]] = ("q", raw, float(q["scale"]), float(q["min"]))
        else:
            assert w["dtype"] == "float32"
            raw = np.frombuffer(data, dtype="<f4", count=n, offset=off).reshape(w["shape"])
            off += 4 * n
            out[w["name"]] = ("f", raw.astype(np.float64), None, None)
    assert off == len(data), (off, len(data))
    return out


def deq(entry):
    kind, raw, scale, mn = entry
    if kind == "q":
        return raw.astype(np.float64) * scale + mn
    return raw


class Builder:
    def __init__(self, weights):
        self.w = weights
        self.nodes = []
        self.inits = []
        self.n = 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, name, arr, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=dtype), name))
        return name

    def node(self, op, inputs, base, **attrs):
        out = self.name(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, prefix, stride, pad, relu, first=False):
        filt = self.w[f"{prefix}/conv/filters"]  # tfjs [kh, kw, in, out]
        bias = deq(self.w[f"{prefix}/conv/bias"])
        a = deq(self.w[f"{prefix}/scale/weights"])
        t = deq(self.w[f"{prefix}/scale/biases"])
        wf = deq(filt).transpose(3, 2, 0, 1)  # -> [out, in, kh, kw]
        # y = (conv(x, W) + b) * a + t = conv(x, W * a) + (b * a + t)
        b_new = bias * a + t
        col_scale = a.copy()
        if first:
            # x_in = (x - m) / 256  ->  conv(x_in, W) = conv(x, W / 256) - sum(W * m) / 256
            b_new = b_new - a * np.einsum("oikl,i->o", wf, MEAN_RGB) / INPUT_DIV
            col_scale = col_scale / INPUT_DIV
        kind, raw, qs, qm = filt
        if kind == "q":
            q = raw.transpose(3, 2, 0, 1)
            a_c = (qs * col_scale).reshape(-1, 1, 1, 1)
            b_c = (qm * col_scale).reshape(-1, 1, 1, 1)
            qn = self.const(self.name(prefix + "/q"), np.ascontiguousarray(q), np.uint8)
            qf = self.node("Cast", [qn], prefix + "/qf", to=TensorProto.FLOAT)
            qa = self.node("Mul", [qf, self.const(self.name(prefix + "/A"), a_c)], prefix + "/qa")
            wname = self.node("Add", [qa, self.const(self.name(prefix + "/B"), b_c)], prefix + "/w")
        else:
            wname = self.const(self.name(prefix + "/w"), wf * col_scale.reshape(-1, 1, 1, 1))
        bname = self.const(self.name(prefix + "/b"), b_new)
        k = wf.shape[2]
        p = k // 2 if pad == "same" else 0
        y = self.node(
            "Conv", [x, wname, bname], prefix + "/conv",
            kernel_shape=[k, k], strides=[stride, stride], pads=[p, p, p, p],
        )
        return self.node("Relu", [y], prefix + "/relu") if relu else y

    def residual(self, x, prefix):
        y = self.conv(x, prefix + "/conv1", 1, "same", True)
        y = self.conv(y, prefix + "/conv2", 1, "same", False)
        return self.node("Relu", [self.node("Add", [y, x], prefix + "/add")], prefix + "/out")

    def residual_down(self, x, prefix, in_hw, in_c, out_c):
        y = self.conv(x, prefix + "/conv1", 2, "valid", True)
        y = self.conv(y, prefix + "/conv2", 1, "same", False)
        conv_hw = (in_hw - 3) // 2 + 1
        pool_hw = in_hw // 2
        pooled = self.node("AveragePool", [x], prefix + "/pool", kernel_shape=[2, 2], strides=[2, 2])
        if conv_hw != pool_hw:
            # dlib adds tensors of different sizes as if the smaller were zero-padded at the end.
            assert pool_hw == conv_hw + 1
            pads = self.const(self.name(prefix + "/padhw"), [0, 0, 0, 0, 0, 0, 1, 1], np.int64)
            y = self.node("Pad", [y, pads], prefix + "/padhw")
        if in_c != out_c:
            pads = self.const(self.name(prefix + "/padc"), [0, 0, 0, 0, 0, out_c - in_c, 0, 0], np.int64)
            pooled = self.node("Pad", [pooled, pads], prefix + "/padc")
        out = self.node("Relu", [self.node("Add", [pooled, y], prefix + "/add")], prefix + "/out")
        return out, pool_hw


def build(weights):
    b = Builder(weights)
    x = b.conv("input", "conv32_down", 2, "valid", True, first=True)  # 150 -> 72
    x = b.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2])  # 72 -> 35
    hw = 35
    for i in (1, 2, 3):
        x = b.residual(x, f"conv32_{i}")
    x, hw = b.residual_down(x, "conv64_down", hw, 32, 64)
    for i in (1, 2, 3):
        x = b.residual(x, f"conv64_{i}")
    x, hw = b.residual_down(x, "conv128_down", hw, 64, 128)
    for i in (1, 2):
        x = b.residual(x, f"conv128_{i}")
    x, hw = b.residual_down(x, "conv256_down", hw, 128, 256)
    for i in (1, 2):
        x = b.residual(x, f"conv256_{i}")
    x, hw = b.residual_down(x, "conv256_down_out", hw, 256, 256)
    g = b.node("ReduceMean", [x], "gap", axes=[2, 3], keepdims=0)
    fc = b.const("fc", deq(weights["fc"]))
    mm = b.node("MatMul", [g, fc], "fc")
    b.nodes.append(helper.make_node("Identity", [mm], ["embedding"], name="embedding"))
    graph = helper.make_graph(
        b.nodes,
        "dlib_resnet128",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 150, 150])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])],
        b.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13)],
        producer_name="anju-models/build_dlib_onnx.py",
    )
    model.ir_version = 7
    model.doc_string = (
        "dlib_face_recognition_resnet_model_v1 (public domain, Davis King) from tfjs weights of "
        "@vladmandic/face-api@1.7.15 (MIT). Input raw RGB 0..255 NCHW 150x150 aligned chip; "
        "mean (122.782,117.001,104.298)/256 folded into the first conv. Output 128-d, L2-normalise."
    )
    onnx.checker.check_model(model)
    return model


def main():
    manifest, binp, out = sys.argv[1:4]
    model = build(load_weights(manifest, binp))
    onnx.save(model, out)


if __name__ == "__main__":
    main()
