#!/usr/bin/python3
"""Exports the network to a `styletransfer-graph` model file (weights/FORMAT.md).

Trained model (the latest checkpoints in weights/checkpoints/):
    /usr/bin/python3 weights/export.py --checkpoint-dir weights/checkpoints \
        -o weights/styletransfer.safetensors
Random test model + reference input/output pairs for the engine's tests:
    /usr/bin/python3 weights/export.py --random --seed 1 --test-cfg \
        -o tests/data/model_random.safetensors --test-data tests/data

Convolution weights are stored as F16 (unless --fp32); the reference outputs are computed with
exactly the stored (rounded) weights.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import graph as G  # noqa: E402
import model as M  # noqa: E402
import st_io  # noqa: E402

# the second style's state in the masked subgraphs: s2_gram1 for s_gram1, ...
SECOND_PREFIX = "s2_"
STYLE_OUTPUTS = ["s_gram1", "s_gram2", "s_gram3", "s_mean", "s_lb", "s_tsa"]


def randomize(net, seed):
    """Random weights with activations of a useful size (not the vanishing default init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 4:  # conv: gain 1.6 (stable over repeated refine steps)
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) * (1.6 / fan_in) ** 0.5)
            elif p.dim() == 2:  # linear
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / p.shape[1]) ** 0.5)
            else:
                p.copy_((torch.rand(p.shape, generator=g) - 0.5) * 0.1)
        z = net.cfg["z"]
        eye = torch.eye(z).reshape(-1)
        for m in (net.efa.tc2, net.efa.ts2):
            m.weight.mul_(0.3)
            m.bias.add_(eye)
        for r in net.refines:
            for m in (r.v3, r.v2, r.v1):
                m.weight.mul_(0.1)


def is_conv_weight(name, t):
    return t.dim() == 4


def round_params(net, fp32):
    """Rounds conv weights to fp16 in place (what the file will hold)."""
    if fp32:
        return
    with torch.no_grad():
        for name, p in net.named_parameters():
            if is_conv_weight(name, p):
                p.copy_(p.half().float())


def record_graph(net, content_hw=(48, 64), style_hw=(48, 64)):
    """Runs the forward once per subgraph with the recorder on. Returns (graph dict, tensors)."""
    # parameters and the constant buffers that ops use as weights (model.Const)
    param_names = {id(p): n for n, p in list(net.named_parameters()) + list(net.named_buffers())}
    net.eval()
    G.set_strength(0.7)
    used = {}
    subgraphs = {}
    with torch.no_grad():
        style = torch.rand(1, 3, *style_hw)
        content = torch.rand(1, 3, *content_hw)
        prev = torch.rand(1, 3, *content_hw)

        rec = G.Recorder(param_names, prefix="st")
        rec.bind(style, "style")
        with G.recording(rec):
            S = net.style(style)
        style_outputs = [k for k in STYLE_OUTPUTS + ["s_std", "s_wct_sqrt"] if k in S]
        style_outputs += sorted(k for k in S if k not in style_outputs)  # e.g. the chain's
        for k in style_outputs:
            assert rec.name_of(S[k]) == k
        subgraphs["style"] = {"inputs": ["style"], "outputs": style_outputs, "ops": rec.ops}
        used.update(rec.used_params)

        def bind_state(rec, extra):
            for k in style_outputs:
                rec.bind(S[k], k)
            for k, v in extra.items():
                rec.bind(v, k)

        rec = G.Recorder(param_names, prefix="in")
        rec.bind(content, "content")
        bind_state(rec, {})
        with G.recording(rec):
            x, x0 = net.initial(content, S)
        subgraphs["initial"] = {"inputs": ["content"], "outputs": ["x", "x0"], "ops": rec.ops}
        used.update(rec.used_params)

        Fr = {"x0": x0}
        names = []
        for i in range(len(net.cfg["refine_levels"])):
            name = "refine_%d" % i
            rec = G.Recorder(param_names, prefix="r%d_" % i)
            rec.bind(x, "x")
            rec.bind(content, "content")
            rec.bind(prev, "prev_residual")
            bind_state(rec, Fr)
            before = set(Fr)
            with G.recording(rec):
                x, _ = net.refine(i, x, content, prev, S, Fr)
            outs = ["x", "residual"] + sorted(k for k in Fr if k not in before and k != "residual")
            for k in outs[1:]:
                assert rec.name_of(Fr[k]) == k, k
            subgraphs[name] = {"inputs": ["x", "content", "prev_residual"], "outputs": outs,
                               "ops": rec.ops}
            used.update(rec.used_params)
            names.append(name)
        masked = record_masked(net, content, prev, S, style_outputs, subgraphs, used)
    graph = {"style_size": int(net.cfg["style_size"]), "subgraphs": subgraphs, "refine": names,
             "state": {"name": "prev_residual", "from": "residual"}}
    if masked:
        graph["masked"] = masked
    return graph, used


def record_masked(net, content, prev, S, style_outputs, subgraphs, used):
    """The subgraphs of two styles split by a mask (weights/FORMAT.md, "Two styles by a mask"):
    initial_masked and refine_masked_i, with the input `mask` and the second style's state under
    the prefix s2_. Returns the graph's "masked" entry, or None for a model without them."""
    if net.cfg.get("initial", "efa") != "efa" or net.cfg.get("efa_base") == "wct":
        return None
    S2 = {k: v.clone() for k, v in S.items()}
    mask = torch.rand(1, 1, *content.shape[-2:])
    param_names = {id(p): n for n, p in list(net.named_parameters()) + list(net.named_buffers())}

    def recorder(prefix, extra):
        rec = G.Recorder(param_names, prefix=prefix)
        for k in style_outputs:
            rec.bind(S[k], k)
            rec.bind(S2[k], SECOND_PREFIX + k[2:])
        rec.bind(mask, "mask")
        for k, v in extra.items():
            rec.bind(v, k)
        return rec

    masks = net.masks.begin(mask)
    rec = recorder("min", {"content": content})
    with G.recording(rec):
        x, x0 = net.initial(content, S, two=(S2, masks))
    subgraphs["initial_masked"] = {"inputs": ["content", "mask"], "outputs": ["x", "x0"],
                                   "ops": rec.ops}
    used.update(rec.used_params)
    Fr = {"x0": x0}
    names = []
    for i in range(len(net.cfg["refine_levels"])):
        name = "refine_masked_%d" % i
        masks = net.masks.begin(mask)  # per subgraph: its own pooled masks
        rec = recorder("mr%d_" % i, dict(Fr, x=x, content=content, prev_residual=prev))
        before = set(Fr)
        with G.recording(rec):
            x, _ = net.refine(i, x, content, prev, S, Fr, two=(S2, masks))
        outs = ["x", "residual"] + sorted(k for k in Fr if k not in before and k != "residual")
        subgraphs[name] = {"inputs": ["x", "content", "prev_residual", "mask"], "outputs": outs,
                           "ops": rec.ops}
        used.update(rec.used_params)
        names.append(name)
    return {"initial": "initial_masked", "refine": names, "input": "mask",
            "style_prefix": SECOND_PREFIX}


def export(net, path, fp32=False, info=None):
    round_params(net, fp32)
    graph, used = record_graph(net)
    tensors = {}
    for name, p in used.items():
        a = p.detach().cpu().float().numpy()
        tensors[name] = a.astype(np.float16) if (not fp32 and is_conv_weight(name, p)) else a
    arch = dict(net.cfg)
    arch.update(info or {})
    meta = {"format": "styletransfer-graph", "format_version": "1",
            "arch": json.dumps(arch, sort_keys=True), "graph": json.dumps(graph)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    st_io.write(path, tensors, meta)
    return graph


# ----------------------------------------------------------------------------------------------
# Reference data for the engine's tests


def synthetic_image(h, w, seed):
    """A deterministic test picture: gradients, a few discs and stripes, some noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([xx, yy, 0.5 + 0.5 * torch.sin(6.28 * (xx + yy))]) * 0.6 + 0.2
    for _ in range(4):
        cy, cx, r = torch.rand(3, generator=g)
        col = torch.rand(3, 1, 1, generator=g)
        mask = (((yy - cy) ** 2 + (xx - cx) ** 2) < (0.1 + 0.3 * r) ** 2).float()
        img = img * (1 - mask) + col * mask
    img = img + 0.15 * torch.sin(40 * xx * (1 + torch.rand(1, generator=g)))[None]
    img = img + 0.03 * torch.randn(3, h, w, generator=g)
    return img.clamp(0, 1)


def run_model(net, content, S, steps, strength, prev=None):
    G.set_strength(strength)
    with torch.no_grad():
        outs, Fr = net(content[None], None, steps, prev_res=None if prev is None else prev[None],
                       S=S)
    return outs[-1][0], Fr.get("residual")


def write_f32(path, t):
    np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4")).tofile(path)


def write_test_data(net, model_path, out_dir, seed):
    os.makedirs(out_dir, exist_ok=True)
    net.eval()
    ss = net.cfg["style_size"]
    style = synthetic_image(ss * 3 // 4, ss, seed + 100)  # long side == style_size
    write_f32(os.path.join(out_dir, "style.f32"), style)
    index = {
        "description": "Reference outputs of %s (written by weights/export.py --test-data). Raw "
                       "little-endian float32 [C,H,W] planar files; images RGB in [0,1]. "
                       "'output' is the final x before the element's resize/clamp; the style "
                       "image is given at exactly style_size (longer side), so bind it as is."
                       % os.path.basename(model_path),
        "model": os.path.basename(model_path),
        "style": {"file": "style.f32", "shape": list(style.shape)},
        "cases": [], "sequences": [],
    }
    G.set_strength(1.0)
    with torch.no_grad():
        S = net.style(style[None])
    # (W, H, strengths, steps)
    plan = [(7, 5, (1.0, 0.5), (0, 1, 2, 3)), (33, 17, (1.0, 0.5), (0, 1, 2, 3)),
            (64, 48, (1.0, 0.5), (0, 1, 2, 3)), (257, 129, (1.0,), (1,))]
    for k, (w, h, strengths, steps_list) in enumerate(plan):
        content = synthetic_image(h, w, seed + k)
        cname = "content_%dx%d.f32" % (w, h)
        write_f32(os.path.join(out_dir, cname), content)
        for s in strengths:
            for n in steps_list:
                y, _ = run_model(net, content, S, n, s)
                oname = "out_%dx%d_s%g_n%d.f32" % (w, h, s, n)
                write_f32(os.path.join(out_dir, oname), y)
                index["cases"].append({"content": cname, "content_shape": [3, h, w],
                                       "strength": s, "steps": n, "temporal": False,
                                       "output": oname, "output_shape": list(y.shape)})
    # sequence with temporal on: frame 2 = frame 1 shifted by (2, 1) px plus noise
    w, h, steps, s = 64, 48, 3, 1.0
    base = synthetic_image(h + 4, w + 4, seed + 50)
    g = torch.Generator().manual_seed(seed + 51)
    frames = [base[:, 2:2 + h, 2:2 + w],
              (base[:, 3:3 + h, 4:4 + w] + 0.02 * torch.randn(3, h, w, generator=g)).clamp(0, 1)]
    # frame 3: frame 2 again with fresh faint noise (a still camera: the temporal gate keeps)
    frames.append((frames[1] + 0.004 * torch.randn(3, h, w, generator=g)).clamp(0, 1))
    # state_shift: the motion given to the engine for the temporal state (frame 2 shows frame 1
    # moved by (dy, dx) = (1, 2)); the reference moves the previous residual the same way
    shifts = [(0, 0), (1, 2), (0, 0)]
    seq = {"strength": s, "steps": steps, "temporal": True, "frames": []}
    prev = None
    for i, fr in enumerate(frames):
        if prev is not None:
            prev = M.translate_state(prev, *shifts[i])
        y, res = run_model(net, fr, S, steps, s, prev)
        prev = res[0]
        cname = "seq_frame%d_%dx%d.f32" % (i, w, h)
        oname = "seq_out%d_%dx%d_s%g_n%d.f32" % (i, w, h, s, steps)
        write_f32(os.path.join(out_dir, cname), fr)
        write_f32(os.path.join(out_dir, oname), y)
        seq["frames"].append({"content": cname, "content_shape": [3, h, w], "output": oname,
                              "output_shape": list(y.shape), "state_shift": list(shifts[i])})
    index["sequences"].append(seq)
    if "masked" in json.loads(st_io.read(model_path)[1]["graph"]):
        write_masked_cases(net, out_dir, index, S, seed)
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def write_masked_cases(net, out_dir, index, S, seed):
    """Two styles by a mask: a second style, and cases with a mask (8-bit, at the content's size:
    the reference uses bytes / 255, as the engine reads it at that processing size)."""
    ss = net.cfg["style_size"]
    style2 = synthetic_image(ss, ss * 2 // 3, seed + 200)
    write_f32(os.path.join(out_dir, "style2.f32"), style2)
    index["style2"] = {"file": "style2.f32", "shape": list(style2.shape)}
    with torch.no_grad():
        S2 = net.style(style2[None])
    index["masked_cases"] = []
    for w, h, steps, s in [(33, 17, 2, 1.0), (64, 48, 0, 1.0), (64, 48, 3, 0.5)]:
        content = synthetic_image(h, w, seed + 300 + w)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        m8 = ((0.5 + 2.5 * (xx - 0.5) + 0.4 * torch.sin(7 * yy)).clamp(0, 1) * 255).round()
        cname, mname = "mcontent_%dx%d.f32" % (w, h), "mask_%dx%d.u8" % (w, h)
        oname = "mout_%dx%d_s%g_n%d.f32" % (w, h, s, steps)
        write_f32(os.path.join(out_dir, cname), content)
        m8.to(torch.uint8).numpy().tofile(os.path.join(out_dir, mname))
        G.set_strength(s)
        with torch.no_grad():
            outs, _ = net(content[None], None, steps, S=S, mask=(m8 / 255.0)[None, None], S2=S2)
        write_f32(os.path.join(out_dir, oname), outs[-1][0])
        index["masked_cases"].append({"content": cname, "content_shape": [3, h, w], "mask": mname,
                                      "strength": s, "steps": steps, "output": oname,
                                      "output_shape": list(outs[-1][0].shape)})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint-dir", help="use the latest stage checkpoint found here")
    src.add_argument("--random", action="store_true", help="random weights (test model)")
    src.add_argument("--from-file", metavar="MODEL",
                     help="the weights of a model file, exported again with this exporter's graph "
                          "(e.g. the masked subgraphs added to a shipped model)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--test-cfg", action="store_true",
                    help="with --random: the smaller test configuration (model.TEST_CFG)")
    ap.add_argument("--efa-base", default="", help="with --random: the EFA base (adain, wct)")
    ap.add_argument("--initial", default="",
                    help="the initial image (efa, chain; default: the checkpoints' or efa)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a config entry of the network, e.g. refine_levels=[1,1] "
                         "(repeatable)")
    ap.add_argument("--fp32", action="store_true", help="store every tensor as F32")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--test-data", help="also write reference input/output pairs here")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.random:
        cfg = dict(M.TEST_CFG if a.test_cfg else M.DEFAULT_CFG)
        if a.efa_base:
            cfg["efa_base"] = a.efa_base
        if a.initial:
            cfg["initial"] = a.initial
        net = M.StyleNet(cfg)
        randomize(net, a.seed)
        info = {"weights": "random", "seed": a.seed}
    elif a.from_file:
        import val_score
        net = val_score.load_model_file(a.from_file)
        arch = json.loads(st_io.read(a.from_file)[1]["arch"])
        info = {k: v for k, v in arch.items() if k not in net.cfg}
    else:
        import train
        train.CKPT_DIR = os.path.abspath(a.checkpoint_dir)
        net, stage, steps = train.load_model_from_checkpoints(initial=a.initial)
        if stage is None:
            sys.exit("export: no checkpoint in %s" % a.checkpoint_dir)
        info = {"weights": "trained", "stages": steps}
    net = M.with_sets(net, a.set)
    export(net, a.output, fp32=a.fp32, info=info)
    print("wrote %s (%d bytes)" % (a.output, os.path.getsize(a.output)))
    if a.test_data:
        idx = write_test_data(net, a.output, a.test_data, a.seed)
        print("wrote %d cases and %d sequences to %s" % (len(idx["cases"]), len(idx["sequences"]),
                                                          a.test_data))


if __name__ == "__main__":
    main()
