#!/usr/bin/python3
"""Two styles split by a mask, in the network (per-region statistics), measured on validation
pairs with the shared scorer's teacher: per-region style error, the seam, and the same against the
one-style results and against two one-style passes blended by pixels.

    /usr/bin/python3 weights/eval_masked.py [--pairs 8] [--psize 256] [--steps 2] [--feather 16]
        [--out DIR]

Each pair is a validation photo and two paintings by validation artists (train.py's split,
fixed seed); the mask is 1 (first style) on the left half and 0 (second style) on the right,
with a linear ramp of `feather` px (at the scorer's 384-px content size) across the seam, and it
reaches the network at the processing size, as the element scales it. Per-region style error:
for each region, the teacher's Gram matrices (relu1_1, relu2_1, relu3_1) of the output restricted
to the region (weights: the region's hard half, 0.5 at the seam excluded, at each feature size)
against the Gram matrices of that region's style, relative Frobenius error, mean of the levels
(the scorer's style figure on a region). The one-style figure is the same region of the output
with that style alone on the whole frame. Seam: the mean absolute change per pixel of the output
against the one-style output of the region's own style, by distance from the seam; where the two
regions leak into each other, the change grows towards the seam beyond the feather. Writes
DIR/results.json and, per pair, DIR/masked_NN.png (two styles | first alone | second alone).
"""

import argparse
import json
import os
import random
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
SHARED = os.path.abspath(os.path.join(HERE, "..", "..", "shared"))
sys.path.insert(0, os.path.join(SHARED, "eval"))

import graph as G  # noqa: E402
import model as M  # noqa: E402
import train as T  # noqa: E402
import val_score as V  # noqa: E402
import score  # noqa: E402


def seam_mask(h, w, feather):
    """[1, 1, h, w]: 1 on the left, 0 on the right, a linear ramp of `feather` px at w / 2."""
    x = torch.arange(w, dtype=torch.float32) + 0.5 - w / 2.0
    m = (0.5 - x / max(feather, 1e-3)).clamp(0, 1) if feather > 0 else (x < 0).float()
    return m.view(1, 1, 1, w).expand(1, 1, h, w).contiguous()


def region_gram(f, r):
    """The Gram matrix of features f [1, C, H, W] over the region weights r [1, 1, H, W]."""
    c = f.shape[1]
    x = f.reshape(c, -1)
    w = r.reshape(1, -1)
    return (x * w) @ x.t() / w.sum().clamp(min=1e-6)


def region_style_error(teacher, y, style_feats, region):
    fo = teacher(y)
    errs = []
    for a, b in zip(fo, style_feats):
        r = F.interpolate(region, size=a.shape[-2:], mode="area")
        gb = score.gram(b)
        errs.append(float(torch.linalg.norm(region_gram(a, r) - gb) / torch.linalg.norm(gb)))
    return float(np.mean(errs))


@torch.no_grad()
def stylize(net, content, S, psize, steps, mask=None, S2=None):
    c = V.scale_longer(content, psize)
    m = None if mask is None else F.interpolate(mask, size=c.shape[-2:], mode="bilinear",
                                                align_corners=False)
    outs, _ = net(c, None, steps, S=S, mask=m, S2=S2)
    y = F.interpolate(outs[-1], size=content.shape[-2:], mode="bilinear", align_corners=False)
    return y.clamp(0, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--psize", type=int, default=256, help="processing size (0 = full)")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--feather", type=float, default=16.0)
    ap.add_argument("--out", default="/tmp/eval_masked")
    ap.add_argument("--model", default=os.path.join(HERE, "styletransfer.safetensors"),
                    help="the model file (default: the shipped one)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a config entry of the network (e.g. style_size=128)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    _, c_val, _, s_val = T.splits()
    rng = random.Random(a.seed)
    styles = sorted(p for files in s_val.values() for p in files)
    contents = rng.sample(sorted(c_val), a.pairs)
    style_pairs = [rng.sample(styles, 2) for _ in range(a.pairs)]
    teacher = score.Teacher()
    net = M.with_sets(V.load_model_file(a.model), a.set)
    net.eval()
    G.set_strength(1.0)
    bins = [0, 4, 8, 16, 32, 64, 128, 1 << 20]  # px from the seam at the scorer's size
    rows = []
    for i, (cp, (sa, sb)) in enumerate(zip(contents, style_pairs)):
        content = score.load_image(os.path.join(T.DATA, cp))
        h, w = content.shape[-2:]
        mask = seam_mask(h, w, a.feather)
        half = a.feather / 2.0
        xdist = torch.arange(w, dtype=torch.float32) + 0.5 - w / 2.0
        hard = [(xdist < -half).float().view(1, 1, 1, w).expand(1, 1, h, w),
                (xdist > half).float().view(1, 1, 1, w).expand(1, 1, h, w)]
        S, feats = [], []
        for sp in (sa, sb):
            s = T.to_tensor(Image.open(os.path.join(T.DATA, sp)).convert("RGB"))[None]
            S.append(net.style(V.scale_longer(s, net.cfg["style_size"])))
            feats.append(teacher(score.load_image(os.path.join(T.DATA, sp))))
        one = [stylize(net, content, St, a.psize, a.steps) for St in S]
        two = stylize(net, content, S[0], a.psize, a.steps, mask, S[1])
        pix = one[0] * mask + one[1] * (1 - mask)
        row = {"content": cp, "styles": [sa, sb]}
        for k in range(2):
            row["one_style_r%d" % k] = region_style_error(teacher, one[k], feats[k], hard[k])
            row["two_styles_r%d" % k] = region_style_error(teacher, two, feats[k], hard[k])
            row["pixel_blend_r%d" % k] = region_style_error(teacher, pix, feats[k], hard[k])
        # seam profile: |two - one[region]| per pixel by distance from the seam
        d = (two - torch.where(xdist.view(1, 1, 1, w) < 0, one[0], one[1])).abs().mean(dim=(0, 1, 2))
        ad = xdist.abs()
        row["seam_profile"] = [float(d[(ad >= lo) & (ad < hi)].mean())
                               for lo, hi in zip(bins[:-1], bins[1:])]
        # transition: per column, where the output lies between the two one-style outputs
        # (t = 1 the first, 0 the second; least squares over the column's pixels and channels),
        # against the mask; its width is the distance between the columns where t crosses 0.9
        # and 0.1 nearest the seam (the feather's own width is 0.8 x feather)
        da = one[0] - one[1]
        t = ((two - one[1]) * da).sum(dim=(0, 1, 2)) / (da * da).sum(dim=(0, 1, 2)).clamp(min=1e-9)
        row["transition"] = [float(v) for v in t]
        rows.append(row)
        sheet = torch.cat([two, one[0], one[1]], dim=3)
        V.to_pil(sheet).save(os.path.join(a.out, "masked_%02d.png" % i))
        print("%2d  region 1: one %.3f two %.3f pixel %.3f | region 2: one %.3f two %.3f pixel %.3f"
              % (i, row["one_style_r0"], row["two_styles_r0"], row["pixel_blend_r0"],
                 row["one_style_r1"], row["two_styles_r1"], row["pixel_blend_r1"]), flush=True)
    summary = {}
    for key in ("one_style", "two_styles", "pixel_blend"):
        summary[key] = float(np.mean([r["%s_r%d" % (key, k)] for r in rows for k in range(2)]))
    summary["two_over_one"] = summary["two_styles"] / summary["one_style"]
    summary["seam_bins_px"] = bins
    summary["seam_profile"] = list(np.mean([r["seam_profile"] for r in rows], axis=0))
    print("mean per-region style error: one style %.3f  two styles %.3f (%.3fx)  pixel blend %.3f"
          % (summary["one_style"], summary["two_styles"], summary["two_over_one"],
             summary["pixel_blend"]))
    print("seam: mean |two styles - the region's one-style output| by px from the seam:")
    for lo, hi, v in zip(bins[:-1], bins[1:], summary["seam_profile"]):
        print("  %4d-%-6s %.4f" % (lo, hi if hi < 1 << 20 else "", v))
    mid = min(len(r["transition"]) for r in rows) // 2  # columns each side of the seam
    tm = np.mean([r["transition"][len(r["transition"]) // 2 - mid:len(r["transition"]) // 2 + mid]
                  for r in rows], axis=0)
    n = 2 * mid

    def crossing(level, side):
        """Distance in px from the seam of the first column, going outwards on `side` (-1 left,
        +1 right), from which t stays beyond `level` (above on the left, below on the right)."""
        xs = range(mid - 1, -1, -1) if side < 0 else range(mid, n)
        for k, x in enumerate(xs):
            if (tm[x] >= level) if side < 0 else (tm[x] <= level):
                return k + 0.5
        return float("inf")

    width = crossing(0.9, -1) + crossing(0.1, 1)
    summary["transition_mean"] = list(tm)
    summary["transition_width_px"] = width
    print("transition (0.9 -> 0.1 of the way from the first style's output to the second's, mean "
          "over pairs): %.1f px (the mask's ramp: %.1f px)" % (width, 0.8 * a.feather))
    print("  t by px from the seam: " + "  ".join(
        "%+d: %.2f" % (dx, tm[mid + dx]) for dx in (-64, -32, -16, -8, -4, 0, 4, 8, 16, 32, 64)
        if 0 <= mid + dx < n))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"args": vars(a), "summary": summary, "pairs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
