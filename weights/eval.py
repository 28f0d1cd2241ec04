#!/usr/bin/python3
"""Evaluates the trained network on held-out content photos and held-out style artists.

    /usr/bin/python3 weights/eval.py [--pairs 8] [--size 256] [--figure weights/figures/val.png]
    /usr/bin/python3 weights/eval.py --tradeoff [--pairs 16] [--size 192]
    /usr/bin/python3 weights/eval.py --still 10 [--steps 2] [--pairs 8] [--size 192]

Reports, per method (AdaIN baseline when its decoder is trained, the EFA fusion decoded at the
same size as AdaIN, then the element's path with `steps` = 0..3):
- content: relative MSE of teacher relu3_1 features to the content's (lower = more content kept);
- style: relative Gram error at relu1_1..relu3_1 vs the style image (lower = closer style);
- flicker: mean |out(frame 2) - shifted out(frame 1)| over a pair of frames that differ by a
  3-pixel shift plus sensor noise (temporal on for the refine steps), in 0..1 units;
- ms/frame of the PyTorch model on this machine (CPU, 2 threads) at the given size.
Writes a figure grid: content | style | AdaIN | EFA | steps 0 | 1 | 2 | 3.
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


# Contact sheet (committed, so only redistributable pictures): public-domain paintings by artists
# held out of training, and content that training never saw: a held-out CC-BY-SA photo and frames
# of the CC-BY-4.0 clips (training uses photos only).
SHEET_STYLES = [
    "style/nstyle_starry_night.jpg",
    "style/peopleart_carl-spitzweg_thunderstorm.jpg",
    "style/peopleart_gustave-moreau_the-unicorns.jpg",
    "style/peopleart_berthe-morisot_the-piano.jpg",
    "style/peopleart_charles-francois-daubigny_the-banks-of-the-river-1868.jpg",
    "style/peopleart_jehan-georges-vibert_the-duet-1897.jpg",
    "style/peopleart_richard-friese_the-tiger-1890.jpg",
    "style/peopleart_konstantin-bogaevsky_atlantis-1922.jpg",
    "style/peopleart_ion-theodorescu-sion_boats-1927.jpg",
    "style/peopleart_thomas-eakins_study-for-the-meadows.jpg",
    "style/peopleart_konstantin-makovsky_cupids-with-flowers.jpg",
    "style/peopleart_alexandre-cabanel_the-death-of-moses-1851.jpg",
]
SHEET_CONTENT = ["content/deb-mate_Wood.jpg", "video/asl_walk.mkv#20", "video/asl_book.mkv#40",
                 "video/asl_again.mkv#10"]


def video_frame(path, index, tmp):
    """Frame `index` of a clip as a PIL image (decoded with gst-launch-1.0)."""
    import subprocess
    out = os.path.join(tmp, "f%05d.png")
    subprocess.run(["gst-launch-1.0", "-q", "filesrc", "location=" + path, "!", "decodebin", "!",
                    "videoconvert", "!", "video/x-raw,format=RGB", "!", "identity",
                    "eos-after=%d" % (index + 1), "!", "pngenc", "!", "multifilesink",
                    "location=" + out], check=True)
    return Image.open(out % index).convert("RGB")


def load_content(spec, tmp):
    if "#" in spec:
        path, idx = spec.split("#")
        return video_frame(os.path.join(T.DATA, path), int(idx), tmp)
    return T.load_rgb(os.path.join(T.DATA, spec))


def contact_sheet(net, has_adain, size, out, tile=112):
    """content | style | AdaIN | EFA | steps 0 | 1 | 2 | 3 for the SHEET pairs (AdaIN and EFA
    decoded at full size; steps 0 is the element's EFA start at 1/4 size)."""
    import tempfile
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        contents = [load_content(c, tmp) for c in SHEET_CONTENT]
    G.set_strength(1.0)
    for i, sp in enumerate(SHEET_STYLES):
        c = T.to_tensor(center_crop(contents[i % len(contents)], size))
        s = style_input(os.path.join(T.DATA, sp), net.cfg["style_size"])
        with torch.no_grad():
            S = net.style(s[None])
            ys = [c[None], T.to_tensor(center_crop(T.load_rgb(os.path.join(T.DATA, sp)),
                                                   size))[None]]
            if has_adain:
                ys.append(T.adain_direct(net, c[None], s[None]))
            ys.append(T.efa_direct(net, c[None], S)[0])
            outs, _ = net(c[None], None, 3, S=S)
            ys += outs
        ys = [F.interpolate(y, size=(tile, tile), mode="bilinear", align_corners=False,
                            antialias=True).clamp(0, 1)[0] for y in ys]
        pad = torch.ones(3, tile, 2)
        rows.append(torch.cat([t for y in ys for t in (y, pad)][:-1], dim=2))
    gap = torch.ones(3, 2, rows[0].shape[2])
    grid = torch.cat([t for r in rows for t in (r, gap)][:-1], dim=1)
    # a 256-colour palette keeps the committed PNG small
    img = Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    img.quantize(256, method=Image.MEDIANCUT).save(out, optimize=True)
    print("contact sheet: %s (columns: content, style, %sEFA, steps 0, 1, 2, 3)" % (
        out, "AdaIN, " if has_adain else ""))


def still_scene(net, teacher, contents, styles, size, frames, steps, sigma=2 / 255, seed=0):
    """A still camera: `frames` frames of the same crop, each with fresh sensor noise, through
    `steps` refinement steps with the temporal state handed on (reuse) and without (off), as the
    element runs a stream with `temporal` on (temporal-smoothing 0) and off. Prints, per pair of
    consecutive frames, the mean squared output change (mean over the pairs of images), and the
    content / style errors of the first and the last frame with reuse."""
    g = torch.Generator().manual_seed(seed)
    ch = {"off": np.zeros(frames - 1), "reuse": np.zeros(frames - 1)}
    err = {"first": [], "last": []}
    for cp, sp in zip(contents, styles):
        c = T.to_tensor(center_crop(T.load_rgb(cp), size))[None]
        s = style_input(sp, net.cfg["style_size"])[None]
        noisy = [(c + sigma * torch.randn(c.shape, generator=g)).clamp(0, 1) for _ in range(frames)]
        with torch.no_grad():
            sgrams = [T.gram_t(f) for f in teacher(T.to_tensor(T.style_view(sp, 256))[None])]
            S = net.style(s)
            for mode in ("off", "reuse"):
                prev, last = None, None
                for t, f in enumerate(noisy):
                    outs, fr = net(f, None, steps, prev_res=prev if mode == "reuse" else None, S=S)
                    y = F.interpolate(outs[-1], size=(size, size), mode="bilinear").clamp(0, 1)
                    if last is not None:
                        ch[mode][t - 1] += ((y - last) ** 2).mean().item() / len(contents)
                    if mode == "reuse" and t in (0, frames - 1):
                        lc, ls = T.perceptual(teacher, y, c, sgrams, torch.ones(1))
                        err["first" if t == 0 else "last"].append((lc.item(), ls.item()))
                    last, prev = y, fr["residual"]
    print("still scene, %d pairs, %dx%d, steps %d, noise sigma %.4f, %d frames" % (
        len(contents), size, size, steps, sigma, frames))
    print("output change (MSE) per pair of frames t-1 -> t:")
    print("%-6s " % "t" + " ".join("%9d" % t for t in range(1, frames)))
    for mode in ("off", "reuse"):
        print("%-6s " % mode + " ".join("%9.2e" % v for v in ch[mode]))
    print("reuse/off: all pairs %.3f, from frame 1 on (first pair left out) %.3f" % (
        ch["reuse"].sum() / ch["off"].sum(), ch["reuse"][1:].sum() / ch["off"][1:].sum()))
    for k in ("first", "last"):
        e = np.array(err[k])
        print("frame %-5s with reuse: content %.4f style %.4f" % (k, e[:, 0].mean(), e[:, 1].mean()))
    return ch


TRADEOFF_STRENGTHS = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]


def interp_style_at(curve, content):
    """Style error of a (content, style) curve linearly interpolated at `content` (None when the
    curve does not reach that content error)."""
    pts = sorted(curve)
    for (c0, s0), (c1, s1) in zip(pts, pts[1:]):
        if c0 <= content <= c1:
            return s0 + (s1 - s0) * (content - c0) / max(c1 - c0, 1e-12)
    return None


def tradeoff(net, teacher, contents, styles, size):
    """EFA vs AdaIN at comparable content error: both fusions at strengths 1 .. 0.5 (the fused
    features blended with the content's), decoded at full size, mean content and style errors
    over the pairs; then each method's style error interpolated at the other's content error at
    strength 1."""
    # acc[method][strength index] = ([content errors], [style errors]) over the pairs
    acc = {m: [([], []) for _ in TRADEOFF_STRENGTHS] for m in ("adain", "efa")}
    for cp, sp in zip(contents, styles):  # inputs, teacher Grams and style side once per pair
        c = T.to_tensor(center_crop(T.load_rgb(cp), size))[None]
        s = style_input(sp, net.cfg["style_size"])[None]
        with torch.no_grad():
            sgrams = [T.gram_t(f) for f in teacher(T.to_tensor(T.style_view(sp, 256))[None])]
            S = net.style(s)
            for i, st in enumerate(TRADEOFF_STRENGTHS):
                G.set_strength(st)
                ys = {"adain": T.adain_direct(net, c, s, st), "efa": T.efa_direct(net, c, S)[0]}
                for m, y in ys.items():
                    lc, ls = T.perceptual(teacher, y.clamp(0, 1), c, sgrams, torch.ones(1))
                    acc[m][i][0].append(lc.item())
                    acc[m][i][1].append(ls.item())
    G.set_strength(1.0)
    curves = {m: [(float(np.mean(a[0])), float(np.mean(a[1]))) for a in acc[m]] for m in acc}
    print("strength " + " ".join("%14s" % ("%s c / s" % m) for m in curves))
    for i, st in enumerate(TRADEOFF_STRENGTHS):
        print("%8.2f " % st + " ".join("%6.4f/%6.4f " % curves[m][i] for m in curves))
    for a, b in (("adain", "efa"), ("efa", "adain")):
        ca, sa = curves[a][0]
        sb = interp_style_at(curves[b], ca)
        print("at %s's content error %.4f (strength 1): %s style %.4f, %s style %s" % (
            a, ca, a, sa, b, "%.4f" % sb if sb is not None else "(not reached)"))
    return curves


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--size", type=int, default=256, help="processing size (square crops)")
    ap.add_argument("--figure", default=os.path.join(HERE, "figures", "val.png"))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--tradeoff", action="store_true",
                    help="EFA vs AdaIN at comparable content error (strength sweep) only")
    ap.add_argument("--sheet", help="write only the contact sheet of redistributable held-out\n"
                                    "pairs to this PNG (e.g. weights/contact_sheet.png)")
    ap.add_argument("--still", type=int, default=0, metavar="FRAMES",
                    help="still scene with sensor noise only: output change per frame with and\n"
                         "without the temporal state, over this many frames")
    ap.add_argument("--steps", type=int, default=2, help="refinement steps for --still")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net, stage, _ = T.load_model_from_checkpoints(with_adain=True)
    net.eval()
    has_adain = os.path.exists(T.ckpt_path("adain"))
    print("checkpoints:", T.trained_stages())
    if a.sheet:
        contact_sheet(net, has_adain, a.size, a.sheet)
        return
    teacher = T.Teacher()
    c_train, c_val, s_train, s_val = T.splits()
    rng = random.Random(a.seed)
    val_styles = sorted(p for files in s_val.values() for p in files)
    contents = rng.sample(sorted(c_val), a.pairs)
    styles = rng.sample(val_styles, a.pairs)
    if a.tradeoff:
        tradeoff(net, teacher, contents, styles, a.size)
        return
    if a.still:
        still_scene(net, teacher, contents, styles, a.size, a.still, a.steps)
        return
    # "adain" and "efa" decode the fused features at full size (the same network around two
    # fusions, trained with the same budget); "stepsN" is the element's path (EFA at 1/4 size,
    # then N refinement steps).
    methods = (["adain"] if has_adain else []) + ["efa", "steps0", "steps1", "steps2", "steps3"]
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
                elif m == "efa":
                    Se = net.style(s[None])
                    y1 = T.efa_direct(net, c1[None], Se)[0]
                    ms = (time.time() - t0) * 1000
                    y2 = T.efa_direct(net, c2[None], Se)[0]
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
