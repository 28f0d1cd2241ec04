#!/usr/bin/python3
"""Evaluates the trained network on held-out content photos and held-out style artists.

    /usr/bin/python3 weights/eval.py [--pairs 8] [--size 256] [--figure weights/figures/val.png]

Reports, per method (AdaIN baseline when its decoder is trained, then `steps` = 0..3):
- content: relative MSE of teacher relu3_1 features to the content's (lower = more content kept);
- style: relative Gram error at relu1_1..relu3_1 vs the style image (lower = closer style);
- flicker: mean |out(frame 2) - shifted out(frame 1)| over a pair of frames that differ by a
  3-pixel shift plus sensor noise (temporal on for the refine steps), in 0..1 units;
- ms/frame of the PyTorch model on this machine (CPU, 2 threads) at the given size.
Writes a figure grid: content | style | AdaIN | steps 0 | 1 | 2 | 3.
"""

import argparse
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import graph as G  # noqa: E402
import train as T  # noqa: E402


def center_crop(img, size):
    w, h = img.size
    s = size / min(w, h)
    img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = img.size
    return img.crop(((w - size) // 2, (h - size) // 2, (w - size) // 2 + size,
                     (h - size) // 2 + size))


def style_input(path, size):
    """As the element does: longer side = size, aspect kept."""
    img = T.load_rgb(path)
    w, h = img.size
    s = size / max(w, h)
    return T.to_tensor(img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--size", type=int, default=256, help="processing size (square crops)")
    ap.add_argument("--figure", default=os.path.join(HERE, "figures", "val.png"))
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(2)
    net, stage, ck = T.load_model_from_checkpoints()
    net.eval()
    has_adain = os.path.exists(T.ckpt_path("adain"))
    if has_adain:
        net.dec_adain.load_state_dict(
            {k[len("dec_adain."):]: v for k, v in torch.load(T.ckpt_path("adain"))["model"].items()
             if k.startswith("dec_adain.")})
    print("checkpoints:", T.trained_stages())
    teacher = T.Teacher()
    c_train, c_val, s_train, s_val = T.splits()
    rng = random.Random(a.seed)
    val_styles = sorted(p for files in s_val.values() for p in files)
    contents = rng.sample(sorted(c_val), a.pairs)
    styles = rng.sample(val_styles, a.pairs)
    methods = (["adain"] if has_adain else []) + ["steps0", "steps1", "steps2", "steps3"]
    stats = {m: {"content": [], "style": [], "flicker": [], "ms": []} for m in methods}
    rows = []
    G.set_strength(1.0)
    for cp, sp in zip(contents, styles):
        big = T.to_tensor(center_crop(T.load_rgb(cp), a.size + 8))
        c1 = big[:, 4:4 + a.size, 4:4 + a.size]
        c2 = (big[:, 7:7 + a.size, 6:6 + a.size] + 0.02 * torch.randn(3, a.size, a.size)).clamp(0, 1)
        s = style_input(sp, net.cfg["style_size"])
        with torch.no_grad():
            sv = T.to_tensor(T.style_view(sp, 256))
            sgrams = [T.gram_t(f) for f in teacher(sv[None])]
            S = net.style(s[None])
            row = [c1, F.interpolate(s[None], size=(a.size, a.size), mode="bilinear")[0]]
            for m in methods:
                t0 = time.time()
                if m == "adain":
                    y1 = T.adain_direct(net, c1[None], s[None])
                    ms = (time.time() - t0) * 1000
                    y2 = T.adain_direct(net, c2[None], s[None])
                else:
                    n = int(m[-1])
                    outs, fr = net(c1[None], None, n, S=S)
                    ms = (time.time() - t0) * 1000
                    y1 = outs[-1]
                    outs2, _ = net(c2[None], None, n, S=S,
                                   prev_res=fr.get("residual"))
                    y2 = outs2[-1]
                y1 = F.interpolate(y1, size=(a.size, a.size), mode="bilinear").clamp(0, 1)
                y2 = F.interpolate(y2, size=(a.size, a.size), mode="bilinear").clamp(0, 1)
                lc, ls = T.perceptual(teacher, y1, c1[None], sgrams, torch.ones(1))
                # frame 2 pixel (i, j) shows frame 1 pixel (i + 3, j + 2)
                fl = (y2[:, :, :-3, :-2] - y1[:, :, 3:, 2:]).abs().mean()
                st = stats[m]
                st["content"].append(lc.item())
                st["style"].append(ls.item())
                st["flicker"].append(fl.item())
                st["ms"].append(ms)
                row.append(y1[0])
        rows.append(torch.cat(row, dim=2))
    print("%-8s %8s %8s %8s %8s" % ("method", "content", "style", "flicker", "ms"))
    for m in methods:
        st = stats[m]
        print("%-8s %8.4f %8.4f %8.4f %8.0f" % (m, np.mean(st["content"]), np.mean(st["style"]),
                                                np.mean(st["flicker"]), np.median(st["ms"])))
    grid = torch.cat(rows, dim=1).clamp(0, 1)
    os.makedirs(os.path.dirname(os.path.abspath(a.figure)), exist_ok=True)
    Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(a.figure)
    print("figure:", a.figure, "(columns: content, style, " + ", ".join(methods) + ")")


if __name__ == "__main__":
    main()
