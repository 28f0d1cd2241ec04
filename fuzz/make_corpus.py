#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the hand-made seeds of fuzz/corpus/ (deterministic; run from anywhere):

  corpus/model/: a small valid model that uses every op kind of weights/FORMAT.md (fp32 and fp16
    weights), edge cases of the container (empty, short, header length 0 / huge / past the end,
    header not JSON, offsets past the end, overlapping tensors, holes, unknown dtype, shapes that
    overflow, ...) and of the graph (unknown ops, undefined names, names assigned twice, wrong
    weight shapes, ...), and the test model's header with its data cut short;
  corpus/json/: the graph of the test model and of the small model, deep nesting around the
    parser's limit, long strings, escapes, surrogates, invalid UTF-8, numbers at the limits.

Regression inputs found by the fuzzers are committed beside them under other names (regress-*).
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL_DIR = os.path.join(HERE, "corpus", "model")
JSON_DIR = os.path.join(HERE, "corpus", "json")


def tensor_bytes(shape, dtype):
    n = 1
    for d in shape:
        n *= d
    # deterministic small values (the loader does not look at them)
    if dtype == "F16":
        return b"".join(struct.pack("<e", ((i % 7) - 3) / 8.0) for i in range(n))
    return b"".join(struct.pack("<f", ((i % 7) - 3) / 8.0) for i in range(n))


def op(kind, inputs, out, **attrs):
    d = {"op": kind, "in": inputs, "out": out}
    d.update(attrs)
    return d


def small_graph():
    style = [
        op("conv2d", ["style"], "s1", weight="c1.w", bias="c1.b", stride=1, pad="reflect", act="relu"),
        op("pool", ["s1"], "s2", mode="max"),
        op("gram", ["s2"], "s_gram", center=True, sqrt=True),
        op("moments", ["s2"], ["s_mean", "s_std"], eps=1e-5),
        op("linear", ["s_gram"], "s_lin", weight="lin.w", bias="lin.b", act="lrelu", alpha=0.1),
    ]
    initial = [
        op("conv2d", ["content"], "i1", weight="c1.w", bias="c1.b", stride=2, pad="zero"),
        op("add", ["i1", "s_mean"], "i2", ka=1, kb="neg_strength"),
        op("mul", ["i2", "s_std"], "i3"),
        op("div", ["i3", "s_lin"], "i4", act="relu"),
        op("resize", ["i4", "content"], "i5", mode="bilinear"),
        op("pool", ["i5"], "i6", mode="avg"),
        op("resize", ["i6", "content"], "i7", mode="nearest"),
        op("conv2d", ["i7"], "x", weight="c2.w", bias="c2.b"),
    ]
    refine0 = [
        op("conv2d", ["x"], "r1", weight="c1.w", pad="reflect"),
        op("gram", ["r1", "i7"], "r2", center=False, sqrt=False),
        op("softmax", ["r2"], "r3", scale="strength"),
        op("matmul", ["r3", "s_gram"], "r4", ta=True, tb=False),
        op("conv2d", ["r1"], "r5", weight="r4", pad="zero"),
        op("concat", ["r5", "i7"], "r6"),
        op("reshape", ["r2"], "r7", shape=[2, 8]),
        op("reshape", ["r7"], "r8", shape=[16]),
        op("linear", ["r8"], "r9", weight="lin.w"),
        op("conv2d", ["r6"], "r10", weight="c3.w", bias="c2.b"),
        op("act", ["r10"], "residual", act="tanh"),
        op("add", ["residual", "prev"], "r11", ka="one_minus_strength", kb="state_valid"),
        op("add", ["x", "r11"], "x", act="none"),
    ]
    refine1 = [
        op("act", ["x"], "q1", act="sigmoid"),
        op("add", ["q1", "residual"], "x", ka=0.5, kb=-0.5),
    ]
    return {
        "style_size": 16,
        "subgraphs": {
            "style": {"inputs": ["style"], "outputs": ["s_gram", "s_mean", "s_std", "s_lin"], "ops": style},
            "initial": {"inputs": ["content"], "outputs": ["x", "i7"], "ops": initial},
            "refine_0": {"inputs": ["x", "content", "prev"], "outputs": ["x", "residual"], "ops": refine0},
            "refine_1": {"inputs": ["x"], "outputs": ["x"], "ops": refine1},
        },
        "refine": ["refine_0", "refine_1"],
        "state": {"name": "prev", "from": "residual"},
    }


def small_tensors(conv_dtype="F32"):
    return [
        ("c1.w", conv_dtype, [4, 3, 3, 3]),
        ("c1.b", "F32", [4]),
        ("c2.w", conv_dtype, [3, 4, 1, 1]),
        ("c2.b", "F32", [3]),
        ("c3.w", conv_dtype, [3, 8, 1, 1]),
        ("lin.w", "F32", [4, 16]),
        ("lin.b", "F32", [4]),
    ]


def container(tensors, graph, meta_extra=None, header_edit=None, data_edit=None):
    """tensors: [(name, dtype, shape)]; graph: dict or str. Returns the file's bytes."""
    header = {}
    data = b""
    for name, dtype, shape in tensors:
        b = tensor_bytes(shape, dtype)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    meta = {"format": "styletransfer-graph", "format_version": "1",
            "arch": json.dumps({"fuzz": "seed"}),
            "graph": graph if isinstance(graph, str) else json.dumps(graph, separators=(",", ":"))}
    if meta_extra:
        meta.update(meta_extra)
    header["__metadata__"] = meta
    if header_edit:
        header_edit(header)
    h = json.dumps(header, separators=(",", ":")).encode()
    if data_edit:
        data = data_edit(data)
    return struct.pack("<Q", len(h)) + h + data


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def model_seeds():
    d = MODEL_DIR
    g = small_graph()
    t = small_tensors()
    valid = container(t, g)
    write(d, "valid-small-f32.safetensors", valid)
    write(d, "valid-small-f16.safetensors", container(small_tensors("F16"), g))
    # the same model without temporal state (refine_0 then reads an undefined 'prev')
    g2 = small_graph()
    del g2["state"]
    write(d, "graph-no-state.safetensors", container(t, g2))
    # container edge cases
    write(d, "empty", b"")
    write(d, "short-7-bytes", valid[:7])
    write(d, "header-length-0", struct.pack("<Q", 0) + b"{}")
    write(d, "header-length-huge", struct.pack("<Q", 0xFFFFFFFFFFFFFFF0) + valid[8:200])
    write(d, "header-length-past-end", struct.pack("<Q", len(valid)) + valid[8:])
    write(d, "header-length-short", struct.pack("<Q", 40) + valid[8:])
    write(d, "header-not-json", struct.pack("<Q", 12) + b"hello world!")
    write(d, "header-array", struct.pack("<Q", 2) + b"[]")
    write(d, "header-empty-object", struct.pack("<Q", 2) + b"{}")
    write(d, "truncated-data", valid[:-10])
    write(d, "extra-data", valid + b"\0" * 16)

    def edit(name, fn, **kw):
        write(d, name, container(t, g, header_edit=fn, **kw))

    def dup_name(h):  # a second entry with the same name cannot exist in JSON: key case-variant
        h["C1.w"] = dict(h["c1.w"])
    edit("tensor-duplicate-data.safetensors", dup_name)
    edit("tensor-offsets-past-end.safetensors",
         lambda h: h["lin.b"].update(data_offsets=[h["lin.b"]["data_offsets"][0], 1 << 40]))
    edit("tensor-offsets-reversed.safetensors",
         lambda h: h["lin.b"].update(data_offsets=list(reversed(h["lin.b"]["data_offsets"]))))
    edit("tensor-offsets-negative.safetensors", lambda h: h["c1.w"].update(data_offsets=[-4, 0]))
    edit("tensor-offsets-float.safetensors", lambda h: h["c1.w"].update(data_offsets=[0.5, 216]))
    edit("tensor-offsets-2pow53.safetensors",
         lambda h: h["c1.w"].update(data_offsets=[9007199254740992, 9007199254740992]))

    def overlap(h):
        h["c1.b"]["data_offsets"] = [h["c1.b"]["data_offsets"][0] - 8, h["c1.b"]["data_offsets"][1] - 8]
    edit("tensor-overlap.safetensors", overlap)

    def hole(h):
        h["lin.b"]["data_offsets"] = [h["lin.b"]["data_offsets"][0] + 4, h["lin.b"]["data_offsets"][1] + 4]
    edit("tensor-hole.safetensors", hole, data_edit=lambda x: x + b"\0" * 4)
    edit("tensor-dtype-bf16.safetensors", lambda h: h["c1.b"].update(dtype="BF16"))
    edit("tensor-dtype-number.safetensors", lambda h: h["c1.b"].update(dtype=32))
    edit("tensor-rank-0.safetensors", lambda h: h["c1.b"].update(shape=[]))
    edit("tensor-rank-5.safetensors", lambda h: h["c1.b"].update(shape=[1, 1, 1, 1, 4]))
    edit("tensor-shape-0.safetensors", lambda h: h["c1.b"].update(shape=[0]))
    edit("tensor-shape-overflow.safetensors",
         lambda h: h["c1.b"].update(shape=[16777216, 16777216, 16777216, 16777216]))
    edit("tensor-shape-2pow63.safetensors", lambda h: h["c1.b"].update(shape=[9223372036854775808]))
    edit("tensor-shape-negative.safetensors", lambda h: h["c1.b"].update(shape=[-4]))
    edit("tensor-shape-mismatch.safetensors", lambda h: h["c1.b"].update(shape=[5]))
    edit("tensor-not-object.safetensors", lambda h: h.update({"c1.b": [1, 2]}))
    edit("tensor-missing-shape.safetensors", lambda h: h["c1.b"].pop("shape"))
    edit("metadata-missing.safetensors", lambda h: h.pop("__metadata__"))
    edit("metadata-not-string.safetensors", lambda h: h["__metadata__"].update(arch={"a": 1}))
    edit("metadata-format-wrong.safetensors", lambda h: h["__metadata__"].update(format="pytorch"))
    edit("metadata-version-2.safetensors", lambda h: h["__metadata__"].update(format_version="2"))
    edit("metadata-no-graph.safetensors", lambda h: h["__metadata__"].pop("graph"))
    edit("metadata-graph-not-json.safetensors", lambda h: h["__metadata__"].update(graph="{\"style_size\":"))
    edit("metadata-graph-array.safetensors", lambda h: h["__metadata__"].update(graph="[]"))

    # graph edge cases
    def gedit(name, fn, tensors=None):
        gg = small_graph()
        fn(gg)
        write(d, name, container(tensors or t, gg))

    sg = lambda gg, n: gg["subgraphs"][n]["ops"]
    gedit("graph-style-size-0.safetensors", lambda gg: gg.update(style_size=0))
    gedit("graph-style-size-4097.safetensors", lambda gg: gg.update(style_size=4097))
    gedit("graph-no-subgraphs.safetensors", lambda gg: gg.pop("subgraphs"))
    gedit("graph-missing-initial.safetensors", lambda gg: gg["subgraphs"].pop("initial"))
    gedit("graph-refine-unknown.safetensors", lambda gg: gg.update(refine=["refine_0", "refine_9"]))
    gedit("graph-refine-empty.safetensors", lambda gg: gg.update(refine=[]))
    gedit("graph-refine-number.safetensors", lambda gg: gg.update(refine=[0]))
    gedit("graph-state-bad.safetensors", lambda gg: gg.update(state={"name": "prev"}))
    gedit("graph-op-unknown.safetensors", lambda gg: sg(gg, "initial")[2].update(op="conv3d"))
    gedit("graph-op-not-object.safetensors", lambda gg: sg(gg, "initial").insert(0, "conv2d"))
    gedit("graph-input-undefined.safetensors", lambda gg: sg(gg, "initial")[2].update({"in": ["i2", "nowhere"]}))
    gedit("graph-output-never-computed.safetensors",
          lambda gg: gg["subgraphs"]["initial"].update(outputs=["x", "i99"]))
    gedit("graph-subgraph-input-unavailable.safetensors",
          lambda gg: gg["subgraphs"]["refine_1"].update(inputs=["x", "i1"]))
    gedit("graph-assigned-twice.safetensors", lambda gg: sg(gg, "initial")[3].update(out="i2"))
    gedit("graph-weight-missing.safetensors", lambda gg: sg(gg, "style")[0].update(weight="nope"))
    gedit("graph-weight-wrong-shape.safetensors", lambda gg: sg(gg, "style")[0].update(weight="lin.w"))
    gedit("graph-bias-wrong.safetensors", lambda gg: sg(gg, "style")[0].update(bias="c2.b"))
    gedit("graph-runtime-weight-wrong.safetensors", lambda gg: sg(gg, "refine_0")[4].update(weight="r1"))
    gedit("graph-stride-3.safetensors", lambda gg: sg(gg, "style")[0].update(stride=3))
    gedit("graph-pad-unknown.safetensors", lambda gg: sg(gg, "style")[0].update(pad="wrap"))
    gedit("graph-act-unknown.safetensors", lambda gg: sg(gg, "style")[0].update(act="tanh"))
    gedit("graph-mode-unknown.safetensors", lambda gg: sg(gg, "style")[1].update(mode="min"))
    gedit("graph-scalar-unknown.safetensors", lambda gg: sg(gg, "initial")[1].update(kb="weakness"))
    gedit("graph-eps-negative.safetensors", lambda gg: sg(gg, "style")[3].update(eps=-1))
    gedit("graph-moments-one-out.safetensors", lambda gg: sg(gg, "style")[3].update(out="m"))
    gedit("graph-reshape-mismatch.safetensors", lambda gg: sg(gg, "refine_0")[6].update(shape=[3, 5]))
    gedit("graph-reshape-huge.safetensors",
          lambda gg: sg(gg, "refine_0")[6].update(shape=[268435456, 268435456, 268435456]))
    gedit("graph-concat-mismatch.safetensors", lambda gg: sg(gg, "refine_0")[5].update({"in": ["r5", "r2"]}))
    gedit("graph-concat-65-inputs.safetensors", lambda gg: sg(gg, "refine_0")[5].update({"in": ["r5"] * 65}))
    gedit("graph-matmul-mismatch.safetensors", lambda gg: sg(gg, "refine_0")[3].update({"in": ["r3", "s_lin"]}))
    gedit("graph-linear-mismatch.safetensors", lambda gg: sg(gg, "style")[4].update({"in": ["s2"]}))
    gedit("graph-x-not-rgb.safetensors",
          lambda gg: sg(gg, "refine_1").__setitem__(1, op("act", ["i7"], "x", act="relu")))
    gedit("graph-style-output-is-input.safetensors",
          lambda gg: gg["subgraphs"]["style"].update(outputs=["style"]))
    gedit("graph-bool-not-bool.safetensors", lambda gg: sg(gg, "style")[2].update(center=1))
    # Regressions: found while writing the harness (UBSan: signed overflow in the planner's
    # concat channel count, net.c); values of more than 2^40 elements are refused since.
    def concat_chain(gg, n):
        ops = gg["subgraphs"]["initial"]["ops"]
        prev = "i7"
        for k in range(n):
            ops.insert(-1, op("concat", [prev] * 64, "cc%d" % k))
            prev = "cc%d" % k
        return prev

    gedit("regress-concat-channels-overflow.safetensors", lambda gg: concat_chain(gg, 6))

    def gram_huge(gg):
        last = concat_chain(gg, 4)  # [2^26, H, W]
        gg["subgraphs"]["initial"]["ops"].insert(-1, op("gram", [last], "gg"))
    gedit("regress-value-numel-2pow52.safetensors", gram_huge)

    # Regressions: graphs whose check took hours in a header of up to 64 MiB (the planner is
    # quadratic in the ops): at most 64 refine entries, 16384 ops (a subgraph once per use).
    gedit("regress-refine-65.safetensors", lambda gg: gg.update(refine=["refine_1"] * 65))

    def many_ops(gg):
        gg["subgraphs"]["refine_1"]["ops"][-1:-1] = [op("act", ["q1"], "q%d" % k) for k in range(2, 300)]
        gg["refine"] = ["refine_0"] + ["refine_1"] * 63
    gedit("regress-ops-over-16384.safetensors", many_ops)

    # the test model's header (its whole graph) with the data area cut short
    tm = os.path.join(ROOT, "tests", "data", "model_random.safetensors")
    if os.path.exists(tm):
        with open(tm, "rb") as f:
            b = f.read()
        n = struct.unpack("<Q", b[:8])[0]
        write(d, "test-model-header-data-cut.safetensors", b[:8 + n + 4096])


def json_seeds():
    d = JSON_DIR
    write(d, "graph-small.json", json.dumps(small_graph(), indent=1))
    tm = os.path.join(ROOT, "tests", "data", "model_random.safetensors")
    if os.path.exists(tm):
        with open(tm, "rb") as f:
            b = f.read()
        n = struct.unpack("<Q", b[:8])[0]
        h = json.loads(b[8:8 + n])
        write(d, "graph-test-model.json", h["__metadata__"]["graph"])
        write(d, "header-test-model.json", b[8:8 + n])
    cases = {
        "empty": "",
        "ws-only": " \t\r\n",
        "literals": "[true,false,null]",
        "literal-truncated": "[tru",
        "nested-64": "[" * 64 + "]" * 64,
        "nested-65": "[" * 65 + "]" * 65,
        "nested-objects-64": '{"a":' * 64 + "1" + "}" * 64,
        "nested-deep-unclosed": "[{\"a\":" * 200,
        "long-string": '"' + "abcdefghijklmnopqrstuvwxyz0123456789" * 900 + '"',
        "escapes": r'["\"\\\/\b\f\n\r\t","\u0041\u00e9\u20ac\ud83d\ude00","\uD834\uDD1E"]',
        "escape-bad": r'"\x"',
        "escape-truncated": '"\\u12',
        "surrogate-lone-high": r'"\ud800"',
        "surrogate-lone-low": r'"\udc00x"',
        "surrogate-bad-pair": r'"\ud800\u0041"',
        "nul-escape": r'"\u0000"',
        "utf8-valid": '"h\u00e9llo \u20ac \U0001F600"',
        "numbers": "[0,-0,1,-1,0.5,1e10,1E-10,1.5e+300,-1.7976931348623157e308,4.9e-324,"
                   "2.2250738585072014e-308,9007199254740993,123456789012345678901234567890]",
        "number-overflow": "1e309",
        "number-underflow": "1e-400",
        "number-63-digits": "1" * 63,
        "number-64-digits": "1" * 64,
        "number-leading-zero": "012",
        "number-bad-frac": "1.",
        "number-bad-exp": "1e+",
        "number-minus": "-",
        "trailing-comma": "[1,2,]",
        "trailing-comma-object": '{"a":1,}',
        "trailing-garbage": "{} x",
        "duplicate-key": '{"a":1,"b":2,"a":3}',
        "key-not-string": "{1:2}",
        "missing-colon": '{"a" 1}',
        "control-char": '"a\tb"',
        "object-many-keys": "{" + ",".join('"k%d":%d' % (i, i) for i in range(300)) + "}",
        "array-many": "[" + ",".join(str(i) for i in range(2000)) + "]",
        "bom": "\ufeff{}",
        "comment": "/* c */ {}",
        "single-quotes": "{'a':1}",
    }
    for name, text in cases.items():
        write(d, name + ".json", text.encode("utf-8"))
    bad_utf8 = {
        "utf8-overlong": b'"\xc0\xaf"',
        "utf8-surrogate": b'"\xed\xa0\x80"',
        "utf8-too-big": b'"\xf4\x90\x80\x80"',
        "utf8-truncated": b'"\xe2\x82',
        "utf8-lone-continuation": b'"\x80"',
        "utf8-f8": b'"\xf8\x88\x80\x80\x80"',
        "nul-byte": b'"a\x00b"',
    }
    for name, data in bad_utf8.items():
        write(d, name + ".json", data)


def main():
    os.makedirs(MODEL_DIR, exist_ok=True)
    os.makedirs(JSON_DIR, exist_ok=True)
    model_seeds()
    json_seeds()


if __name__ == "__main__":
    main()
