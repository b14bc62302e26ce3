#!/usr/bin/env python3
"""Make a converter's ONNX output byte-reproducible. tf2onnx names generated tensors and orders
nodes differently from run to run. This re-emits the graph in a name-independent order (depth-first
post-order from the graph outputs, inputs in operand order), renames nodes n0.., internal tensors
t0.. and initializers w0.. in that order, and drops unreachable nodes.
Graph input/output names are kept. Usage: canonicalize_onnx.py IN OUT"""
import sys

import onnx

sys.setrecursionlimit(100000)
m = onnx.load(sys.argv[1])
g = m.graph
producer = {o: n for n in g.node for o in n.output}
inits = {t.name: t for t in g.initializer}
keep = {v.name for v in g.input} | {v.name for v in g.output}
order, seen = [], set()


def visit(tensor):
    n = producer.get(tensor)
    if n is None or id(n) in seen:
        return
    seen.add(id(n))
    for i in n.input:
        visit(i)
    order.append(n)


for o in g.output:
    visit(o.name)
rename, used_inits = {}, []
for k in keep:
    rename[k] = k
for idx, n in enumerate(order):
    for i in n.input:
        if i and i not in rename:
            if i in inits:
                rename[i] = f"w{len(used_inits)}"
                used_inits.append(inits[i])
            else:
                raise SystemExit(f"unresolved input {i}")
    for o in n.output:
        if o and o not in rename:
            rename[o] = f"t{len(rename)}"
    n.name = f"n{idx}"
for n in order:
    n.input[:] = [rename.get(i, i) for i in n.input]
    n.output[:] = [rename.get(o, o) for o in n.output]
for t in used_inits:
    t.name = rename[t.name]
nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in order]
new_inits = [onnx.TensorProto.FromString(t.SerializeToString()) for t in used_inits]
del g.node[:]
g.node.extend(nodes)
del g.initializer[:]
g.initializer.extend(new_inits)
del g.value_info[:]
onnx.checker.check_model(m)
onnx.save(m, sys.argv[2])
