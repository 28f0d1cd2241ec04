#!/usr/bin/python3
"""Pure-PyTorch interpreter of a `styletransfer-graph` model file (weights/FORMAT.md).

It knows only the op kinds and the orchestration of FORMAT.md, not the network, so it checks
that an exported file describes the same computation as weights/model.py. Usage:

    /usr/bin/python3 weights/run_graph.py MODEL.safetensors --content-f32 c.f32 --shape 3,H,W ...

(mostly used as a module by weights/test_export.py and weights/eval.py).
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


class GraphError(Exception):
    pass


def _act(x, act, alpha):
    if act in (None, "none"):
        return x
    if act == "relu":
        return torch.relu(x)
    if act == "lrelu":
        return F.leaky_relu(x, alpha)
    if act == "tanh":
        return torch.tanh(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    raise GraphError("unknown act %r" % act)


def _reflect_index(n):
    return [0, 0, 0] if n == 1 else [1] + list(range(n)) + [n - 2]


def translate(x, sy, sx):
    """[C, H, W] -> [C, H, W]: out[:, y, x] = x[:, clamp(y + sy), clamp(x + sx)]."""
    H, W = x.shape[-2:]
    iy = (torch.arange(H) + int(sy)).clamp(0, H - 1)
    ix = (torch.arange(W) + int(sx)).clamp(0, W - 1)
    return x[..., iy[:, None], ix[None, :]]


class Model:
    def __init__(self, path):
        tensors, meta = st_io.read(path)
        if meta.get("format") != "styletransfer-graph" or meta.get("format_version") != "1":
            raise GraphError("%s: not a styletransfer-graph v1 file" % path)
        self.tensors = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()}
        self.graph = json.loads(meta["graph"])
        self.arch = json.loads(meta.get("arch", "{}"))
        self.strength = 1.0
        self.state_valid = 0.0

    def scalar(self, k):
        if isinstance(k, str):
            return {"strength": self.strength, "neg_strength": -self.strength,
                    "one_minus_strength": 1.0 - self.strength,
                    "state_valid": self.state_valid}[k]
        return float(k)

    def run_subgraph(self, name, env):
        sg = self.graph["subgraphs"][name]
        env = dict(env)
        for i in sg["inputs"]:
            if i not in env:
                raise GraphError("%s: input %s not bound" % (name, i))
        for op in sg["ops"]:
            ins = [env[n] for n in op["in"]]
            out = self.run_op(op, ins, env)
            if isinstance(op["out"], list):
                for n, v in zip(op["out"], out):
                    env[n] = v
            else:
                env[op["out"]] = out
        return {o: env[o] for o in sg["outputs"]}

    def run_op(self, op, ins, env):
        k = op["op"]
        alpha = op.get("alpha", 0.2)
        act = op.get("act", "none")
        if k == "conv2d":
            x = ins[0]
            wname = op["weight"]
            if wname in self.tensors:
                w = self.tensors[wname]
            else:
                w = env[wname]
                w = w[:, :, None, None]
            b = self.tensors[op["bias"]] if op.get("bias") else None
            kk = w.shape[-1]
            if kk == 3:
                if op.get("pad", "zero") == "reflect":
                    ih = torch.tensor(_reflect_index(x.shape[1]))
                    iw = torch.tensor(_reflect_index(x.shape[2]))
                    x = x.index_select(1, ih).index_select(2, iw)
                else:
                    x = F.pad(x, (1, 1, 1, 1))
            y = F.conv2d(x[None], w, b, stride=op.get("stride", 1))[0]
            return _act(y, act, alpha)
        if k == "pool":
            x = ins[0][None]
            if op["mode"] == "avg":
                return F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)[0]
            return F.max_pool2d(x, 2, 2, ceil_mode=True)[0]
        if k == "resize":
            size = tuple(ins[1].shape[-2:])
            if op.get("mode", "bilinear") == "bilinear":
                return F.interpolate(ins[0][None], size=size, mode="bilinear",
                                     align_corners=False)[0]
            return F.interpolate(ins[0][None], size=size, mode="nearest")[0]
        if k in ("add", "mul", "div"):
            a, b = ins
            if b.dim() == 1 and a.dim() == 3:
                b = b[:, None, None]
            if k == "add":
                y = self.scalar(op.get("ka", 1)) * a + self.scalar(op.get("kb", 1)) * b
            elif k == "mul":
                y = a * b
            else:
                y = a / b
            return _act(y, act, alpha)
        if k == "moments":
            x = ins[0].reshape(ins[0].shape[0], -1)
            if len(ins) == 1:
                m = x.mean(1)
                v = ((x - m[:, None]) ** 2).mean(1)
            else:  # weighted by the mask [1, H, W]
                w = ins[1].reshape(1, -1)
                s = w.sum() + 1e-6
                m = (x * w).sum(1) / s
                v = (w * (x - m[:, None]) ** 2).sum(1) / s
            return [m, torch.sqrt(v + op.get("eps", 1e-5))]
        if k == "gram":
            x = ins[0].reshape(ins[0].shape[0], -1)
            y = x if len(ins) == 1 else ins[1].reshape(ins[1].shape[0], -1)
            if op.get("center"):
                x = x - x.mean(1, keepdim=True)
                y = y - y.mean(1, keepdim=True)
            g = x @ y.t() / x.shape[1]
            if op.get("sqrt"):
                g = torch.sqrt(torch.clamp(g, min=0) + 1e-8)
            return g
        if k == "matmul":
            a, b = ins
            a = a.t() if op.get("ta") else a
            b = b.t() if op.get("tb") else b
            return a @ b
        if k == "linear":
            w = self.tensors[op["weight"]]
            b = self.tensors[op["bias"]] if op.get("bias") else None
            return _act(F.linear(ins[0].reshape(-1), w, b), act, alpha)
        if k == "softmax":
            return torch.softmax(ins[0] * op.get("scale", 1.0), dim=-1)
        if k == "reshape":
            return ins[0].reshape(op["shape"])
        if k == "concat":
            return torch.cat(ins, 0)
        if k == "act":
            return _act(ins[0], act, alpha)
        raise GraphError("unknown op %r" % k)

    # ------------------------------------------------------------------------------------------
    def set_style(self, style, second=None):
        """style: [3, h, w] already at style_size (longer side); second: the second style, for
        frames with a mask (FORMAT.md, "Two styles by a mask"), or None."""
        with torch.no_grad():
            self.style_state = self.run_subgraph("style", {"style": style})
            if second is not None:
                prefix = self.graph["masked"]["style_prefix"]
                s2 = self.run_subgraph("style", {"style": second})
                self.style_state.update({prefix + k[2:]: v for k, v in s2.items()})

    def run_frame(self, content, steps, strength=1.0, prev_residual=None, prev_shift=(0, 0),
                  mask=None):
        """Returns (final x, frame state). prev_residual None = zeros (temporal off/first).
        prev_shift (dy, dx): the global motion the engine applies to prev_residual first
        (this frame's (y, x) shows the previous frame's (y + dy, x + dx); edges repeat).
        mask: [1, H, W] at the content's size (1: the style, 0: the second style) for the
        masked subgraphs, or None."""
        if prev_residual is not None and tuple(prev_shift) != (0, 0):
            prev_residual = translate(prev_residual, *prev_shift)
        self.strength = strength
        self.state_valid = 0.0 if prev_residual is None else 1.0
        g = self.graph if mask is None else dict(self.graph["masked"])
        extra = {} if mask is None else {g["input"]: mask}
        with torch.no_grad():
            env = dict(self.style_state, content=content, **extra)
            fs = self.run_subgraph(g.get("initial", "initial"), env)
            state = dict(fs)
            prev = prev_residual if prev_residual is not None else torch.zeros_like(content)
            refine = g["refine"]
            for i in range(steps):
                env = dict(self.style_state, **extra)
                env.update(state)
                env["content"] = content
                env["prev_residual"] = prev
                out = self.run_subgraph(refine[min(i, len(refine) - 1)], env)
                state.update(out)
        return state["x"], state


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--test-data", help="check every case of DIR/index.json against this file")
    a = ap.parse_args()
    m = Model(a.model)
    if not a.test_data:
        print(json.dumps({k: len(v["ops"]) for k, v in m.graph["subgraphs"].items()}))
        return
    d = a.test_data
    idx = json.load(open(os.path.join(d, "index.json")))

    def load(name, shape):
        return torch.from_numpy(np.fromfile(os.path.join(d, name), "<f4").reshape(shape))

    m.set_style(load(idx["style"]["file"], idx["style"]["shape"]))
    worst = 0.0
    for c in idx["cases"]:
        y, _ = m.run_frame(load(c["content"], c["content_shape"]), c["steps"], c["strength"])
        worst = max(worst, (y - load(c["output"], c["output_shape"])).abs().max().item())
    for s in idx["sequences"]:
        prev = None
        for fr in s["frames"]:
            y, st = m.run_frame(load(fr["content"], fr["content_shape"]), s["steps"],
                                s["strength"], prev, fr.get("state_shift", (0, 0)))
            prev = st.get("residual") if s["temporal"] else None
            worst = max(worst, (y - load(fr["output"], fr["output_shape"])).abs().max().item())
    print("max abs difference over all cases: %.3g" % worst)
    sys.exit(0 if worst < 1e-3 else 1)


if __name__ == "__main__":
    main()
