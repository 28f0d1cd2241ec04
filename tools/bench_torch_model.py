#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Times the shipped model in PyTorch with the same sizes, steps and columns as
`st-bench MODEL --table`, so the engine/PyTorch ratio can be read off two tables.

The model is the same file (weights/styletransfer.safetensors) run by the graph interpreter of
weights/run_graph.py (imported, not copied): the same ops in the same order as the engine, eager
PyTorch. Per frame (processing size = frame size, temporal on as in the element):
  upload   = RGBA uint8 frame -> device -> float [3,H,W] in 0..1
  initial  = the `initial` subgraph (encoder + EFA + decoder)
  refine_i = refine subgraph i (refine[min(i, n-1)])
  download = clamp, to RGBA uint8, device -> host
Median of --frames timed frames after one warm-up frame; on CUDA every stage boundary is a
torch.cuda.synchronize(). fps = 1000 / median wall ms of the whole frame.

    /usr/bin/python3 tools/bench_torch_model.py [--device cpu|cuda] [--fp16 no|yes|both]
        [--sizes 320x240,640x360,...] [--steps-max 3] [--frames 5] [--threads 2]

fp16 = the model's weights and activations in torch.float16 (CUDA; on CPU fp16 is refused by
default since many CPU kernels lack it). Progress goes to stderr, the Markdown table to stdout.
"""

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "weights"))
import run_graph as R  # noqa: E402


class DeviceModel(R.Model):
    """run_graph.Model with its tensors on a device / in a dtype. The only op whose interpreter
    code builds a CPU tensor (reflect padding's index list) is routed through F.pad(reflect),
    identical for sizes >= 2 (the bench sizes)."""

    def __init__(self, path, device, dtype):
        super().__init__(path)
        self.device, self.dtype = device, dtype
        self.tensors = {k: v.to(device=device, dtype=dtype) for k, v in self.tensors.items()}

    def run_op(self, op, ins, env):
        if (op["op"] == "conv2d" and op.get("pad") == "reflect" and
                min(ins[0].shape[1:]) >= 2 and op["weight"] in self.tensors):
            w = self.tensors[op["weight"]]
            if w.shape[-1] == 3:
                b = self.tensors[op["bias"]] if op.get("bias") else None
                x = F.pad(ins[0][None], (1, 1, 1, 1), mode="reflect")
                y = F.conv2d(x, w, b, stride=op.get("stride", 1))[0]
                return R._act(y, op.get("act", "none"), op.get("alpha", 0.2))
        return super().run_op(op, ins, env)


def parse_sizes(s):
    out = []
    for item in s.split(","):
        w, h = item.lower().split("x")
        out.append((int(w), int(h)))
    return out


def synthetic_frame(w, h, f):
    """RGBA uint8 [H,W,4], the same pattern as st-bench's frames."""
    x = torch.arange(w)[None, :].expand(h, w)
    y = torch.arange(h)[:, None].expand(h, w)
    r = ((x + 3 * f) * 255 // (w + 1)) % 256
    g = y * 255 // (h + 1)
    b = torch.where(((x // 16 + y // 16) % 2) == 1, 200, 40)
    a = torch.full_like(r, 255)
    return torch.stack([r, g, b, a], -1).to(torch.uint8)


def synthetic_style():
    """[3, 240, 320] in 0..1, the stripes of st-bench, resized so the longer side is 256."""
    yy, xx = torch.meshgrid(torch.arange(240.0), torch.arange(320.0), indexing="ij")
    s = torch.stack([127 + 127 * torch.sin((xx + yy) * 0.11),
                     127 + 127 * torch.sin(xx * 0.05 - yy * 0.07),
                     127 + 127 * torch.cos(yy * 0.13)]).floor() / 255.0
    return F.interpolate(s[None], size=(192, 256), mode="bilinear", align_corners=False)[0]


def run_frame(m, rgba, steps, prev, sync):
    """One frame; returns (residual for the next frame, {stage: ms}, wall ms)."""
    times = {}
    t_start = time.perf_counter()
    t = t_start

    def mark(name):
        nonlocal t
        sync()
        now = time.perf_counter()
        times[name] = (now - t) * 1000.0
        t = now

    with torch.no_grad():
        x = rgba.to(m.device, non_blocking=False)
        content = x[..., :3].permute(2, 0, 1).to(m.dtype) / 255.0
        mark("upload")
        m.state_valid = 0.0 if prev is None else 1.0
        env = dict(m.style_state)
        env["content"] = content
        state = dict(m.run_subgraph("initial", env))
        mark("initial")
        p = prev if prev is not None else torch.zeros_like(content)
        refine = m.graph["refine"]
        for i in range(steps):
            env = dict(m.style_state)
            env.update(state)
            env["content"] = content
            env["prev_residual"] = p
            state.update(m.run_subgraph(refine[min(i, len(refine) - 1)], env))
            mark("refine_%d" % i)
        out = (state["x"].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu()
        mark("download")
    del out
    wall = (time.perf_counter() - t_start) * 1000.0
    res = state.get(m.graph["state"]["from"]) if steps > 0 else None
    return res, times, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "weights", "styletransfer.safetensors"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--fp16", default="no", choices=["no", "yes", "both"])
    ap.add_argument("--sizes", default="320x240,640x360,1280x720,1920x1080")
    ap.add_argument("--steps-max", type=int, default=3)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_torch_model: CUDA is not available")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    precs = {"no": [torch.float32], "yes": [torch.float16],
             "both": [torch.float32, torch.float16]}[a.fp16]
    if dev.type == "cpu" and torch.float16 in precs:
        print("bench_torch_model: fp16 skipped on the CPU", file=sys.stderr)
        precs = [p for p in precs if p != torch.float16]
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        name = "CPU, %d threads" % torch.get_num_threads()

    rows, cols = [], []
    for dt in precs:
        m = DeviceModel(a.model, dev, dt)
        m.strength = 1.0
        m.set_style(synthetic_style().to(device=dev, dtype=dt))
        for (w, h) in parse_sizes(a.sizes):
            for steps in range(a.steps_max + 1):
                label = "%dx%d steps %d %s" % (w, h, steps, "fp16" if dt == torch.float16
                                                 else "fp32")
                print("bench_torch_model: %s " % label, end="", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                prev = None
                walls, stages = [], {}
                for f in range(a.frames + 1):  # frame 0: warm-up
                    prev, times, wall = run_frame(m, synthetic_frame(w, h, f), steps, prev, sync)
                    if f == 0:
                        continue
                    walls.append(wall)
                    for k, v in times.items():
                        stages.setdefault(k, []).append(v)
                        if k not in cols:
                            cols.append(k)
                    print(".", end="", file=sys.stderr, flush=True)
                med = {k: statistics.median(v) for k, v in stages.items()}
                fps = 1000.0 / statistics.median(walls)
                rows.append(((w, h), steps, "fp16" if dt == torch.float16 else "fp32", fps,
                             sum(med.values()), med))
                print(" %.2f fps (%.1f s)" % (fps, time.perf_counter() - t0), file=sys.stderr)
        del m
        if dev.type == "cuda":
            torch.cuda.empty_cache()

    def rank(c):
        if c == "upload":
            return 0
        if c == "initial":
            return 1
        if c.startswith("refine_"):
            return 10 + int(c[7:])
        return 1000

    cols.sort(key=rank)
    print("PyTorch %s eager (tools/bench_torch_model.py) on %s, the same model file through "
          "weights/run_graph.py, processing size = frame size, median of %d frames after one "
          "warm-up frame; stage columns are ms between synchronisations.\n" %
          (torch.__version__, name, a.frames))
    print("| frame | steps | precision | fps | total ms | " + " | ".join(cols) + " |")
    print("|---|---|---|---|---|" + "---|" * len(cols))
    for (w, h), steps, prec, fps, total, med in rows:
        cells = ["%.1f" % med[c] if c in med else "-" for c in cols]
        print("| %dx%d | %d | %s | %.2f | %.1f | %s |" % (w, h, steps, prec, fps, total,
                                                          " | ".join(cells)))


if __name__ == "__main__":
    main()
