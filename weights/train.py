#!/usr/bin/python3
"""Trains the style-transfer network in stages (see weights/README.md).

    /usr/bin/python3 weights/train.py --stage distill --steps 600
    /usr/bin/python3 weights/train.py --stage efa --steps 900 --minutes 40

Every stage resumes from weights/checkpoints/<stage>.pt when present, otherwise starts from the
checkpoint of the latest earlier stage. Checkpoints hold only the student's tensors (+ optimizer).
Runs on CUDA when available, otherwise on the CPU with 2 threads.
"""

import argparse
import hashlib
import io
import json
import math
import os
import random
import signal
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import graph as G  # noqa: E402
import model as M  # noqa: E402
import st_io  # noqa: E402

DATA = os.environ.get("ST_DATA", "/work/shared/data")
TEACHER = os.environ.get("ST_TEACHER", "/work/shared/teacher/vgg19_block1-3.safetensors")
CKPT_DIR = os.environ.get("ST_CKPT_DIR", os.path.join(HERE, "checkpoints"))
LOG_DIR = os.environ.get("ST_LOG_DIR", os.path.join(HERE, "logs"))
CACHE_DIR = os.path.join(HERE, "cache")
# Training styles per artist (0 = all); small for short CPU runs so that the cache stays warm.
STYLES_PER_ARTIST = int(os.environ.get("ST_STYLES_PER_ARTIST", "3"))
STAGES = ["distill", "efa", "refine0", "refine1", "temporal", "adain", "chain"]

# Per-stage settings: batch, crop (content crop at processing size), lr.
STAGE_CFG = {
    "distill": {"batch": 8, "crop": 128, "lr": 1e-3},
    "efa": {"batch": 4, "crop": 128, "lr": 5e-4},
    "refine0": {"batch": 4, "crop": 256, "lr": 5e-4},
    "refine1": {"batch": 2, "crop": 192, "lr": 5e-4},
    "temporal": {"batch": 2, "crop": 192, "lr": 2e-4},
    "adain": {"batch": 4, "crop": 128, "lr": 5e-4},
    "chain": {"batch": 8, "crop": 128, "lr": 5e-4},
}
W_CONTENT = 1.0
W_CHAIN_FEAT = 0.5
W_STYLE = 1.5
W_WHITEN = 0.2
W_TEMPORAL = 100.0
W_TEMPORAL_STILL = 200.0
# Frame c of a chain against frame a (the first frame, computed without a temporal state): how
# much more than against frame b (the first step change of a stream is what a viewer sees).
W_FIRST = 2.0
# Deep supervision in the temporal stage: the element shows the output of any step count (steps
# 1 and 2 included, 2 is its default), upscaled to the frame, so those outputs are also judged at
# full size, with this weight each, besides the last step's.
W_DEEP = 0.5
DEEP_STEPS = (1, 2)
W_MONO_MARGIN = 0.02
# The refinement stages: at W_STYLE the refined output drifted back toward the photo (on the 12
# validation pairs, chain x0 content 0.960 / style 0.517, after refine0 at 1785 steps 0.774 /
# 0.636: worse style, with content to spare under the bar of 1.0), judged at half size against
# the half-size photo while the element and the scorer see it upscaled. So refine0 is judged
# upscaled to the frame, both stages weigh style more, and they pay for any output whose style
# error does not undercut their input's (one step fewer) by W_MONO_MARGIN.
W_STYLE_REFINE = 4.0
# The temporal stage's style weight (ST_W_STYLE_TEMPORAL; the temporal stage trained with
# W_STYLE until step 648 of the wide line).
W_STYLE_TEMPORAL = float(os.environ.get("ST_W_STYLE_TEMPORAL", W_STYLE_REFINE))
# The element's CPU default processes a downscaled frame (processing-size 256: a 576 x 384 photo
# at 256 x 171) and upscales the output; the temporal stage otherwise judges every output at its
# processing size, so nothing teaches the steps what survives that upscaling (on the 12
# validation pairs the wide line's full-size steps-3 output, itself downscaled to 256 and
# upscaled back, scores 0.763 / 0.376, its own output at 256 / steps 2 0.847 / 0.499). With
# ST_LOWRES_FRAC > 0 that share of the temporal stage's steps is one frame of LOWRES_CROP pixels
# downscaled by a factor in LOWRES_FACTOR, run at steps 2 and judged upscaled back to the crop
# (step 1 too, W_DEEP), as the element shows it.
LOWRES_FRAC = float(os.environ.get("ST_LOWRES_FRAC", "0"))
LOWRES_CROP = int(os.environ.get("ST_LOWRES_CROP", "288"))
LOWRES_FACTOR = (1.5, 2.5)
GATE_LR_MULT = 20.0


def log_line(stage, text):
    os.makedirs(LOG_DIR, exist_ok=True)
    with open(os.path.join(LOG_DIR, stage + ".log"), "a") as f:
        f.write(text + "\n")


# ----------------------------------------------------------------------------------------------
# Data


def _hash01(s):
    return int(hashlib.sha1(s.encode()).hexdigest()[:8], 16) / float(1 << 32)


def read_manifest():
    content, style = [], []
    with open(os.path.join(DATA, "MANIFEST.tsv")) as f:
        next(f)
        for line in f:
            p = line.rstrip("\n").split("\t")[0]
            if p.startswith("content/"):
                content.append(p)
            elif p.startswith("style/"):
                style.append(p)
    artists = {}
    with open(os.path.join(DATA, "style_artists.tsv")) as f:
        next(f)
        for line in f:
            p, a = line.rstrip("\n").split("\t")[:2]
            artists[p] = a
    return content, style, artists


def splits():
    """Fixed hash split: 5% of content photos and 5% of style artists are held out."""
    content, style, artists = read_manifest()
    c_train = [p for p in content if _hash01("c:" + p) >= 0.05]
    c_val = [p for p in content if _hash01("c:" + p) < 0.05]
    by_artist = {}
    for p in style:
        a = artists.get(p, "unknown")
        if a == "unknown":
            # the 256 Chinese paintings form one group; other unknown-artist files (the classic
            # style images of style-transfer projects) count as one artist each
            src = os.path.basename(p).split("_")[0]
            a = "unknown:cnpaint" if src == "cnpaint" else "unknown:" + p
        by_artist.setdefault(a, []).append(p)
    # Spellings of one artist that differ in case ("Vincent van Gogh", "Vincent Van Gogh") are one
    # artist, held out when any spelling hashes into the held-out 5%.
    held = {a.lower() for a in by_artist if _hash01("s:" + a) < 0.05}
    s_train, s_val = {}, {}
    for a, files in sorted(by_artist.items()):
        (s_val if a.lower() in held else s_train)[a] = files
    if STYLES_PER_ARTIST > 0:  # a smaller training pool keeps the teacher-Gram cache warm
        for a in s_train:
            s_train[a] = sorted(s_train[a], key=lambda p: _hash01("k:" + p))[:STYLES_PER_ARTIST]
    return c_train, c_val, s_train, s_val


def load_rgb(path):
    return Image.open(os.path.join(DATA, path)).convert("RGB")


def to_tensor(img):
    a = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(a).permute(2, 0, 1).float() / 255.0


def random_crop(img, crop, rng, scale_max=2.0):
    """Resizes so that the short side is uniform in [crop, crop*scale_max] (at most the original
    short side unless that is smaller than crop), then crops crop x crop at random, random flip."""
    w, h = img.size
    short = min(w, h)
    hi = max(crop, min(short, crop * scale_max))
    target = rng.uniform(crop, hi)
    s = target / short
    nw, nh = max(crop, round(w * s)), max(crop, round(h * s))
    img = img.resize((nw, nh), Image.BILINEAR)
    x0 = rng.randint(0, nw - crop)
    y0 = rng.randint(0, nh - crop)
    img = img.crop((x0, y0, x0 + crop, y0 + crop))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def style_view(path, size=256):
    """Deterministic style view used in training: short side `size`, centre crop size x size."""
    img = load_rgb(path)
    w, h = img.size
    s = size / min(w, h)
    img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = img.size
    x0, y0 = (w - size) // 2, (h - size) // 2
    return img.crop((x0, y0, x0 + size, y0 + size))


# ----------------------------------------------------------------------------------------------
# Teacher (training only; never exported)


class Teacher(torch.nn.Module):
    def __init__(self, path=TEACHER):
        super().__init__()
        t, _ = st_io.read(path)
        self.w = {}
        for name in ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2",
                     "block3_conv1"):
            self.register_buffer(name + "_w", torch.from_numpy(t[name + ".weight"].copy()))
            self.register_buffer(name + "_b", torch.from_numpy(t[name + ".bias"].copy()))
        self.register_buffer("mean", torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1))

    def _c(self, x, n):
        return F.relu(F.conv2d(x, getattr(self, n + "_w"), getattr(self, n + "_b"), padding=1))

    def forward(self, rgb):
        x = rgb.flip(1) * 255.0 - self.mean
        r11 = self._c(x, "block1_conv1")
        h = F.max_pool2d(self._c(r11, "block1_conv2"), 2)
        r21 = self._c(h, "block2_conv1")
        h = F.max_pool2d(self._c(r21, "block2_conv2"), 2)
        r31 = self._c(h, "block3_conv1")
        return r11, r21, r31


def gram_t(f):
    B, C, H, W = f.shape
    f = f.reshape(B, C, H * W)
    return torch.bmm(f, f.transpose(1, 2)) / (H * W)


class StylePool:
    """Training styles sampled by artist; style views and teacher Grams cached (memory + disk)."""

    def __init__(self, by_artist, teacher, device, size=256):
        self.artists = sorted(by_artist)
        self.by_artist = by_artist
        self.teacher = teacher
        self.device = device
        self.size = size
        self.mem = {}
        os.makedirs(os.path.join(CACHE_DIR, "style%d" % size), exist_ok=True)

    def get(self, path):
        if path in self.mem:
            return self.mem[path]
        key = hashlib.sha1(path.encode()).hexdigest()[:16]
        cp = os.path.join(CACHE_DIR, "style%d" % self.size, key + ".pt")
        if os.path.exists(cp):
            d = torch.load(cp)
        elif self.teacher is None:  # images only (stage chain): nothing to cache on disk
            img = to_tensor(style_view(path, self.size))
            d = {"img": (img * 255).round().to(torch.uint8), "grams": None}
        else:
            img = to_tensor(style_view(path, self.size))
            with torch.no_grad():
                feats = self.teacher(img[None].to(self.device))
                grams = [gram_t(f)[0].bfloat16().cpu() for f in feats]  # fp16 overflows
            d = {"img": (img * 255).round().to(torch.uint8), "grams": grams}
            torch.save(d, cp)
        if len(self.mem) < 3000:
            self.mem[path] = d
        return d

    def sample(self, rng, n):
        imgs, grams = [], [[], [], []]
        for _ in range(n):
            a = self.artists[rng.randrange(len(self.artists))]
            files = self.by_artist[a]
            d = self.get(files[rng.randrange(len(files))])
            imgs.append(d["img"].float() / 255.0)
            for k in range(3):
                if d["grams"] is not None:
                    grams[k].append(d["grams"][k].float())
        return (torch.stack(imgs).to(self.device),
                [torch.stack(g).to(self.device) for g in grams if g])


# ----------------------------------------------------------------------------------------------
# Losses


def rel_mse(a, b):
    return ((a - b) ** 2).mean() / (b ** 2).mean().clamp(min=1e-6)


def perceptual(teacher, out, content, style_grams, sw):
    """Content at relu3_1 vs the content image; Gram style loss at relu1_1..3_1 (relative).
    sw: per-sample style weight [B]."""
    fo = teacher(out)
    with torch.no_grad():
        fc = teacher(content)[2]
    lc = rel_mse(fo[2], fc)
    ls = 0.0
    for k in range(3):
        go = gram_t(fo[k])
        gs = style_grams[k]
        per = ((go - gs) ** 2).mean(dim=(1, 2)) / (gs ** 2).mean(dim=(1, 2)).clamp(min=1e-6)
        ls = ls + (per * sw).mean()
    return lc, ls


def whiten_loss(chat):
    g = gram_t(chat - chat.mean(dim=(2, 3), keepdim=True))
    eye = torch.eye(g.shape[-1], device=g.device)
    return ((g - eye) ** 2).mean()


# ----------------------------------------------------------------------------------------------
# Stages


# The parts of the student each stage trains (attribute paths in StyleNet).
STAGE_PARTS = {
    "distill": ["enc", "heads", "dec_rec"],
    "efa": ["efa", "dec_efa"],
    "refine0": ["refines.0"],
    "refine1": ["refines.1"],
    "temporal": ["refines.0", "refines.1"],
    "adain": ["dec_adain"],
    "chain": ["dec_c3", "dec_c2", "dec_c1"],
}


def stage_modules(net, stage):
    return [net.get_submodule(n) for n in STAGE_PARTS[stage]]


def refresh_parts(net, stage):
    """Replaces the parts that `stage` trains with their tensors from that stage's checkpoint
    (e.g. a longer-trained EFA block under already trained refine steps). Returns the network:
    a new one when the EFA block's base (adain, wct) changes, since its modules differ."""
    ck = torch.load(ckpt_path(stage), map_location="cpu")
    if stage == "efa":  # the EFA block's fusion comes with it
        base = M.cfg_of(ck["cfg"])["efa_base"]
        if base != net.cfg["efa_base"]:
            device = next(net.parameters()).device
            old = net.state_dict()
            net = M.StyleNet(dict(net.cfg, efa_base=base)).to(device)
            M.load_student(net, {k: v for k, v in old.items()
                                 if not k.startswith(("efa.eye.", "efa.pick."))})
    prefixes = tuple(n + "." for n in STAGE_PARTS[stage])
    sd = net.state_dict()
    n = 0
    for k, v in ck["model"].items():
        if k.startswith(prefixes):
            sd[k] = v
            n += 1
    net.load_state_dict(sd)
    print("refreshed %d tensors of %s from its checkpoint (step %d)" % (n, stage, ck["step"]))
    return net


def trainable(net, stage):
    if stage not in STAGE_PARTS:
        raise ValueError(stage)
    mods = stage_modules(net, stage)
    for p in net.parameters():
        p.requires_grad_(False)
    params = []
    for m in mods:
        for p in m.parameters():
            p.requires_grad_(True)
            params.append(p)
    return params


def sample_strength(rng, B, device):
    s = [1.0 if rng.random() < 0.7 else rng.uniform(0.2, 1.0) for _ in range(B)]
    return torch.tensor(s, device=device)


def efa_direct(net, c, S, want_whiten=False):
    """The `initial` path without its two pools (content already at the coarse level)."""
    f1, f2, f3 = net.enc(c)
    r = net.efa(f3, S, want_whiten=want_whiten)
    fused, chat = r if want_whiten else (r, None)
    x0 = net.dec_efa(fused, f2, f1)
    return x0, chat


def adain_direct(net, c, s, strength=1.0):
    """AdaIN baseline; strength < 1 blends the fused features with the content's (AdaIN's alpha,
    the same blend as the EFA block's `strength`)."""
    f1, f2, f3 = net.enc(c)
    fs = net.enc(s)[2]
    mc, sc = G.moments(f3)
    ms, ss = G.moments(fs)
    fused = (f3 - mc[..., None, None]) / sc[..., None, None] * ss[..., None, None] + ms[..., None, None]
    if strength != 1.0:
        fused = strength * fused + (1.0 - strength) * f3
    return net.dec_adain(fused, f2, f1)


translate_state = M.translate_state


def random_crops(imgs, crop, rng):
    """A random crop x crop window of each image of a batch (style views are 256 x 256)."""
    out = []
    for im in imgs:
        h, w = im.shape[-2:]
        y0, x0 = rng.randint(0, h - crop), rng.randint(0, w - crop)
        out.append(im[:, y0:y0 + crop, x0:x0 + crop])
    return torch.stack(out)


def load_batch(paths, rng, crop, n, device):
    return torch.stack([to_tensor(random_crop(load_rgb(paths[rng.randrange(len(paths))]), crop, rng))
                        for _ in range(n)]).to(device)


def step_loss(stage, net, teacher, styles, c_train, rng, device):
    cfg = STAGE_CFG[stage]
    B, crop = cfg["batch"], cfg["crop"]
    logs = {}
    if stage == "distill":
        x = load_batch(c_train, rng, crop, B, device)
        f = net.enc(x)
        with torch.no_grad():
            t = teacher(x)
        # targets scaled to unit RMS so that the 1x1 heads need no huge weights
        ld = sum(rel_mse(net.heads[k](f[k]), t[k] / (t[k] ** 2).mean().sqrt().clamp(min=1e-6))
                 for k in range(3))
        rec = net.dec_rec(f[2], f[1], f[0])
        lr_ = (rec - x).abs().mean()
        logs.update(distill=ld.item(), recon_l1=lr_.item())
        return ld + 5.0 * lr_, logs

    if stage == "chain":
        # reconstruction of photos and paintings from each encoder level (the decoders of a
        # whitening/colouring chain see features with a painting's statistics): L1 in pixels and
        # the relative error of the decoded image's features at the same level
        x = load_batch(c_train, rng, crop, B // 2, device)
        s_img, _ = styles.sample(rng, B - B // 2)
        x = torch.cat([x, random_crops(s_img, crop, rng)])
        with torch.no_grad():
            f = net.enc(x)
        ys = [net.dec_c1(f[0]), net.dec_c2(f[1], f[0]), net.dec_c3(f[2], f[1], f[0])]
        loss = 0.0
        for k, y in enumerate(ys):
            l1 = (y - x).abs().mean()
            lf = rel_mse(net.enc(y)[k], f[k])
            logs["l1_%d" % (k + 1)] = l1.item()
            logs["feat_%d" % (k + 1)] = lf.item()
            loss = loss + l1 + W_CHAIN_FEAT * lf
        return loss, logs

    s_img, s_grams = styles.sample(rng, B)
    strength = sample_strength(rng, B, device)
    G.set_strength(strength)
    if stage == "efa":
        S = net.style(s_img)  # encoder frozen; the style branch of EFA trains
    else:
        with torch.no_grad():
            S = net.style(s_img)

    if stage == "efa":
        c = load_batch(c_train, rng, crop, B, device)
        out, chat = efa_direct(net, c, S, want_whiten=True)
        lc, ls = perceptual(teacher, out, c, s_grams, strength)
        lw = whiten_loss(chat)
        logs.update(content=lc.item(), style=ls.item(), whiten=lw.item())
        return W_CONTENT * lc + W_STYLE * ls + W_WHITEN * lw, logs

    if stage == "adain":
        c = load_batch(c_train, rng, crop, B, device)
        out = adain_direct(net, c, s_img)
        lc, ls = perceptual(teacher, out, c, s_grams, torch.ones(B, device=device))
        logs.update(content=lc.item(), style=ls.item())
        return W_CONTENT * lc + W_STYLE * ls, logs

    if stage in ("refine0", "refine1"):
        c = load_batch(c_train, rng, crop, B, device)
        zero = torch.zeros_like(c)
        with torch.no_grad():
            x, x0 = net.initial(c, S)
            Fr = {"x0": x0}
            if stage == "refine1":
                x, _ = net.refine(0, x, c, zero, S, Fr)
        x_prev = x
        if stage == "refine0":
            x, _ = net.refine(0, x, c, zero, S, Fr)
            # judged as the element shows it (and as the scorer sees it): upscaled to the frame
            x = F.interpolate(x, size=c.shape[-2:], mode="bilinear", align_corners=False)
            ct = c
        else:
            x, _ = net.refine(1, x, c, zero, S, Fr)
            if rng.random() < 0.5:
                x, _ = net.refine(2, x, c, zero, S, Fr)
            ct = c
        lc, ls = perceptual(teacher, x, ct, s_grams, strength)
        with torch.no_grad():  # the stage's input (steps one fewer), judged the same way
            x_in = x_prev
            if x_in.shape[-2:] != ct.shape[-2:]:
                x_in = F.interpolate(x_in, size=ct.shape[-2:], mode="bilinear",
                                     align_corners=False)
            _, ls_in = perceptual(teacher, x_in, ct, s_grams, strength)
        mono = F.relu(ls - (1.0 - W_MONO_MARGIN) * ls_in)
        logs.update(content=lc.item(), style=ls.item(), style_in=ls_in.item(), mono=mono.item())
        return W_CONTENT * lc + W_STYLE_REFINE * (ls + mono), logs

    if stage == "temporal":
        # Chains of three frames (a, b, c), as the element runs them: b is a moved by (dy, dx)
        # (often 0: a still camera), c is b moved by the same amount, all with fresh sensor noise;
        # sometimes c is another picture (a cut). Frame b gets a's final residual as its temporal
        # state and c gets b's (mostly), each moved by the shift as the engine does, so the
        # training sees a state that was itself computed from a state (two-frame pairs alone let
        # the feedback drift over longer runs). The loss asks each supervised output of c to
        # equal b's moved by the shift and a's moved by twice the shift, besides the content and
        # style losses. The step count of the chain is 1, 2 or 3 (1/5, 2/5, 2/5), so the state is
        # the final residual of any of them (the element's default is 2).
        # The style weight of the refinement stages it fine-tunes (W_STYLE_TEMPORAL, default
        # W_STYLE_REFINE): at W_STYLE the wide line's full-size steps-3 output went from content
        # 1.027 / style 0.301 (refine1) to 0.769 / 0.333 after 385 steps, back toward the photo.
        w_style = W_STYLE_TEMPORAL
        if LOWRES_FRAC > 0 and rng.random() < LOWRES_FRAC:
            return lowres_loss(net, teacher, S, s_grams, strength, c_train, rng, B, w_style,
                               device)
        pad = 10
        big = load_batch(c_train, rng, crop + 2 * pad, B, device)
        r = rng.random()
        still = r < 0.4
        cut = r > 0.9
        dy, dx = (0, 0) if still else (rng.randint(-4, 4), rng.randint(-4, 4))
        noise = rng.uniform(0.0, 0.03)

        def noisy(f):  # every frame gets its own sensor noise
            return (f + noise * torch.randn_like(f)).clamp(0, 1)

        def frame(k):  # frame k of the chain (k = 0, 1, 2)
            y0, x0 = pad + k * dy, pad + k * dx
            return big[:, :, y0:y0 + crop, x0:x0 + crop]

        ca, cb = noisy(frame(0)), noisy(frame(1))
        cc = noisy(load_batch(c_train, rng, crop, B, device) if cut else frame(2))
        steps = rng.choice((1, 2, 2, 3, 3))
        use_prev = rng.random() < 0.85

        def moved(res):
            # the element moves the previous residual by the global motion it estimates between
            # the two input frames (compute/motion.c); mostly exact here, sometimes off by 1 px
            ey, ex = (0, 0) if rng.random() < 0.8 else (rng.randint(-1, 1), rng.randint(-1, 1))
            return translate_state(res, dy + ey, dx + ex)

        with torch.no_grad():
            outs_a, fa = net(ca, None, steps, S=S)
            outs_b, fb = net(cb, None, steps, prev_res=moved(fa["residual"]), S=S)
        prev = None
        if use_prev:
            prev = fb["residual"] if cut else moved(fb["residual"])
        outs_c, _ = net(cc, None, steps, prev_res=prev, S=S)

        def full_size(y):  # a 1/2-size output is judged as the element shows it: upscaled
            if y.shape[-2:] == cc.shape[-2:]:
                return y
            return F.interpolate(y, size=cc.shape[-2:], mode="bilinear", align_corners=False)

        lc, ls = perceptual(teacher, full_size(outs_c[-1]), cc, s_grams, strength)
        deep = torch.zeros((), device=device)
        for k in DEEP_STEPS:
            if k >= steps:
                continue
            lck, lsk = perceptual(teacher, full_size(outs_c[k]), cc, s_grams, strength)
            deep = deep + W_DEEP * (W_CONTENT * lck + w_style * lsk)
            logs["style%d" % k] = lsk.item()
            if k == steps - 1:
                # each step must lower the style error: the last step pays extra where it does
                # not undercut the step before by W_MONO_MARGIN (relative)
                deep = deep + w_style * F.relu(ls - (1.0 - W_MONO_MARGIN) * lsk.detach())

        def shifted_mse(oc, ob, n):
            # frame c pixel (i, j) shows pixel (i + n dy, j + n dx) of the frame n before, at any
            # level's scale; None where that is a fraction of a pixel at this level
            sc = ob.shape[-1] / crop
            ky, kx = int(round(n * dy * sc)), int(round(n * dx * sc))
            if abs(ky - n * dy * sc) > 1e-6 or abs(kx - n * dx * sc) > 1e-6:
                return None
            h, w = ob.shape[-2:]
            ya0, yb0 = max(ky, 0), max(-ky, 0)
            xa0, xb0 = max(kx, 0), max(-kx, 0)
            hh, ww = h - abs(ky), w - abs(kx)
            return ((oc[:, :, yb0:yb0 + hh, xb0:xb0 + ww] -
                     ob[:, :, ya0:ya0 + hh, xa0:xa0 + ww]) ** 2).mean()

        # Against b (the frame before) and against a, the chain's first frame, computed without
        # a temporal state: the state must not lead the picture away from what the first frame
        # of a stream shows (else a still camera sees the picture settle over several frames).
        lt = torch.zeros((), device=device)
        if not cut:
            for k in range(1, steps + 1):
                wk = 1.0 if k == steps else W_DEEP
                for n, o_prev, tag, wf in ((1, outs_b, "temporal", 1.0),
                                           (2, outs_a, "temporal_first", W_FIRST)):
                    d = shifted_mse(outs_c[k], o_prev[k], n)
                    if d is None:
                        continue
                    lt = lt + wk * wf * d
                    if k == steps:
                        logs[tag + ("_still" if still else "_shift")] = d.item()
        logs.update(content=lc.item(), style=ls.item(), temporal=lt.item())
        # A still camera must give a still picture: the gate can keep the previous residual
        # without any cost in style, so still pairs weigh more.
        wt = W_TEMPORAL_STILL if still else W_TEMPORAL
        return W_CONTENT * lc + w_style * ls + deep + wt * lt, logs
    raise ValueError(stage)


def lowres_loss(net, teacher, S, s_grams, strength, c_train, rng, B, w_style, device):
    """One frame processed downscaled, judged upscaled back to its size (LOWRES_FRAC)."""
    full = load_batch(c_train, rng, LOWRES_CROP, B, device)
    p = max(32, 4 * round(LOWRES_CROP / rng.uniform(*LOWRES_FACTOR) / 4))
    c = F.interpolate(full, size=(p, p), mode="bilinear", align_corners=False)
    outs, _ = net(c, None, 2, S=S)

    def up(y):
        return F.interpolate(y, size=full.shape[-2:], mode="bilinear", align_corners=False)

    lc, ls = perceptual(teacher, up(outs[2]), full, s_grams, strength)
    lc1, ls1 = perceptual(teacher, up(outs[1]), full, s_grams, strength)
    mono = F.relu(ls - (1.0 - W_MONO_MARGIN) * ls1.detach())
    logs = {"lowres_content": lc.item(), "lowres_style": ls.item(), "lowres_style1": ls1.item(),
            "lowres_p": p}
    return (W_CONTENT * lc + w_style * (ls + mono) +
            W_DEEP * (W_CONTENT * lc1 + w_style * ls1)), logs


# ----------------------------------------------------------------------------------------------
# Checkpoints


def ckpt_path(stage):
    return os.path.join(CKPT_DIR, stage + ".pt")


def own_keys(state, stage):
    """The tensors of `state` that belong to the parts `stage` trains."""
    prefixes = tuple(p + "." for p in STAGE_PARTS[stage])
    return {k: v for k, v in state.items() if k.startswith(prefixes)}


def save_ckpt(stage, net, opt, step, elapsed):
    """A stage's checkpoint holds only the tensors of the parts it trains (+ its optimizer): the
    network is assembled from all stage checkpoints (assemble()). Checkpoints written before
    session 7 hold the whole network; assemble() reads both."""
    os.makedirs(CKPT_DIR, exist_ok=True)
    tmp = ckpt_path(stage) + ".tmp"
    model = {k: v.detach().cpu() for k, v in own_keys(net.state_dict(), stage).items()}
    torch.save({"stage": stage, "step": step, "elapsed": elapsed, "cfg": net.cfg, "model": model,
                "opt": opt.state_dict() if opt is not None else None}, tmp)
    os.replace(tmp, ckpt_path(stage))


def assemble(upto="temporal", with_adain=False):
    """The network's tensors from the stage checkpoints: each part from the last stage up to
    `upto` (in STAGES order) that trains it, dec_adain from the AdaIN baseline's checkpoint when
    with_adain. Returns (cfg, state, {stage: steps}); cfg is the latest stage's with the EFA base
    of the EFA checkpoint. Parts no checkpoint has are absent (their initial values stand)."""
    order = STAGES[:STAGES.index(upto) + 1]
    if with_adain and "adain" not in order:
        order.append("adain")
    cfg, state, steps, efa_base = None, {}, {}, None
    for st in order:
        if not os.path.exists(ckpt_path(st)):
            continue
        ck = torch.load(ckpt_path(st), map_location="cpu")
        state.update(own_keys(ck["model"], st))
        steps[st] = int(ck["step"])
        if st != "adain":
            cfg = M.cfg_of(ck["cfg"])
        if st == "efa":
            efa_base = cfg["efa_base"]
    if cfg is not None and efa_base is not None:
        cfg["efa_base"] = efa_base
    if cfg is not None and cfg.get("initial") == "chain" and "chain" not in order:
        add_chain(state, steps)
    return cfg, state, steps


def add_chain(state, steps):
    """The closed-form chain's decoders (stage chain) into `state`, for a network whose initial
    image is the chain."""
    if not os.path.exists(ckpt_path("chain")):
        raise SystemExit("the initial image is the chain, but %s is missing" % ckpt_path("chain"))
    ck = torch.load(ckpt_path("chain"), map_location="cpu")
    state.update(own_keys(ck["model"], "chain"))
    steps["chain"] = int(ck["step"])


def trained_stages():
    """{stage: steps} of every stage checkpoint present."""
    return {st: int(torch.load(ckpt_path(st), map_location="cpu")["step"])
            for st in STAGES if os.path.exists(ckpt_path(st))}


def build(cfg, state, device="cpu"):
    """A StyleNet of `cfg` with the tensors of `state` (parts it lacks keep their initial
    values)."""
    net = M.StyleNet(cfg)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected:
        raise RuntimeError("checkpoints do not match the model: unexpected %s" % unexpected)
    return net.to(device)


def load_model_from_checkpoints(device="cpu", with_adain=False, initial=""):
    """(network, latest stage, steps): every trained part from its stage's checkpoint. With
    initial, that initial image (model.DEFAULT_CFG "initial") instead of the checkpoints' one;
    "chain" takes its decoders from the chain stage's checkpoint."""
    cfg, state, steps = assemble("temporal", with_adain)
    if cfg is None:
        return M.StyleNet().to(device), None, {}
    latest = [st for st in STAGES if st in steps and st not in ("adain", "chain")][-1]
    if initial:
        cfg = dict(cfg, initial=initial)
    if cfg.get("initial") == "chain" and "chain" not in steps:
        add_chain(state, steps)
    return build(cfg, state, device), latest, steps


def compact(folder):
    """Rewrites the whole-network checkpoints of `folder` (before session 7) as per-stage ones,
    checking that the assembled network is unchanged; finished stages (all but the newest EFA
    and temporal ones) lose their optimizer state."""
    global CKPT_DIR
    CKPT_DIR = folder
    before = assemble("temporal", True)
    for st in STAGES:
        if not os.path.exists(ckpt_path(st)):
            continue
        ck = torch.load(ckpt_path(st), map_location="cpu")
        ck["model"] = own_keys(ck["model"], st)
        if st not in ("efa", "temporal"):
            ck["opt"] = None
        tmp = ckpt_path(st) + ".tmp"
        torch.save(ck, tmp)
        os.replace(tmp, ckpt_path(st))
        print("%s: %d tensors, %.1f MiB" % (st, len(ck["model"]), os.path.getsize(ckpt_path(st)) / 2**20))
    after = assemble("temporal", True)
    if before[0] != after[0] or before[2] != after[2] or before[1].keys() != after[1].keys() or \
            any(not torch.equal(before[1][k], after[1][k]) for k in before[1]):
        raise SystemExit("compact: the assembled network changed")
    print("compact: the assembled network is unchanged (%d tensors)" % len(after[1]))


def bench(stage, n, device, arch=None):
    """Times n steps of a stage from fresh weights (nothing saved)."""
    net = M.StyleNet(dict(M.DEFAULT_CFG, **(arch or {}))).to(device)
    params = trainable(net, stage)
    opt = torch.optim.Adam(params, lr=1e-4)
    teacher = Teacher().to(device)
    c_train, c_val, s_train, s_val = splits()
    styles = StylePool(s_train, None if stage == "chain" else teacher, device)
    rng = random.Random(0)
    times = []
    for i in range(n + 1):
        t = time.time()
        loss, logs = step_loss(stage, net, teacher, styles, c_train, rng, device)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.time() - t)
        print(stage, i, "%.2fs" % times[-1], {k: round(v, 5) for k, v in logs.items()}, flush=True)
    per = sum(times[1:]) / n
    print("%s: %.2f s/step, %.0f steps/h (batch %d, crop %d)" % (
        stage, per, 3600 / per, STAGE_CFG[stage]["batch"], STAGE_CFG[stage]["crop"]), flush=True)


# The widths a stage that starts afresh (a new EFA block, AdaIN, the chain decoders) takes from
# the checkpoint it builds on, and the only keys --arch may set (for a distillation from scratch).
ARCH_KEYS = ("enc", "dec")


def train(stage, steps, minutes, seed, device, ckpt_every=300.0, budget_minutes=0.0,
          refresh=(), drop_prev_input=False, arch=None, initial=""):
    torch.manual_seed(seed)
    cfg = STAGE_CFG[stage]
    start_step, elapsed0, opt_state = 0, 0.0, None
    if os.path.exists(ckpt_path(stage)):
        ck = torch.load(ckpt_path(stage), map_location="cpu")
        start_step, elapsed0, opt_state = ck["step"], ck.get("elapsed", 0.0), ck["opt"]
        cfg_saved, state, _ = assemble(stage)
        if stage == "adain":
            cfg_saved, state, _ = assemble("distill")
            state.update(own_keys(ck["model"], "adain"))
        if drop_prev_input and cfg_saved.get("prev_input"):
            cfg_saved, state = M.drop_prev_input(cfg_saved, state)
            opt_state = None  # a tensor changed shape: the optimizer's moments start afresh
            print("the previous residual is no longer a decoder input (prev_input off)")
        net = build(cfg_saved, state, device)
        missing = sorted(set(own_keys(net.state_dict(), stage)) - set(state))
        if missing:  # written before the gate existed: its optimizer state does not fit
            print("checkpoint lacks %s: new parts start from their initial values" % missing)
            opt_state = None
        print("resuming %s at step %d" % (stage, start_step))
    else:
        prev = STAGES[:STAGES.index(stage)]
        if stage in ("adain", "chain"):
            prev = ["distill"]
        net = None
        for st in reversed(prev):
            if os.path.exists(ckpt_path(st)):
                cfg_prev, sd, steps_prev = assemble(st)
                # a new EFA block (or distillation, AdaIN) gets today's config; later stages
                # keep the config of the EFA block they build on
                keep = stage not in ("distill", "efa", "adain", "chain")
                # the new EFA/AdaIN parts keep their initial values (not the checkpoint's)
                if not keep:
                    new_parts = own_keys(sd, stage)
                    sd = {k: v for k, v in sd.items() if k not in new_parts}
                # today's config, with the widths of the parts it builds on
                cfg_new = cfg_prev if keep else \
                    dict(M.DEFAULT_CFG, **{k: cfg_prev[k] for k in ARCH_KEYS})
                if initial:
                    cfg_new = dict(cfg_new, initial=initial)
                    if initial == "chain":
                        add_chain(sd, steps_prev)
                net = build(cfg_new, sd, device)
                print("starting %s from checkpoint %s (step %d)" % (stage, st, steps_prev[st]))
                break
        else:
            net = M.StyleNet(dict(M.DEFAULT_CFG, **(arch or {}))).to(device)
            if stage != "distill":
                print("warning: no earlier checkpoint; %s starts from random weights" % stage)
        if stage == "efa" and net.cfg["efa_base"] == "adain" and os.path.exists(ckpt_path("adain")):
            # EFA = AdaIN + a correction that starts at zero: start from the AdaIN baseline's
            # trained decoder (so EFA starts where AdaIN is and must improve on it)
            ad = torch.load(ckpt_path("adain"), map_location="cpu")
            net.dec_efa.load_state_dict({k[len("dec_adain."):]: v for k, v in ad["model"].items()
                                         if k.startswith("dec_adain.")})
            print("EFA decoder starts from the AdaIN decoder (step %d)" % ad["step"])
        elif stage == "efa":  # the reconstruction decoder is a good start for the EFA decoder
            net.dec_efa.load_state_dict(net.dec_rec.state_dict())
        if stage == "adain":
            net.dec_adain.load_state_dict(net.dec_rec.state_dict())
        if stage == "chain":  # the level-3 decoder starts from the reconstruction decoder
            net.dec_c3.load_state_dict(net.dec_rec.state_dict())
        if stage == "refine1":  # start from the trained half-resolution step
            net.refines[1].load_state_dict(net.refines[0].state_dict())
    for st in refresh:
        net = refresh_parts(net, st)
    if start_step >= steps:
        print("%s: already at step %d >= %d, nothing to do" % (stage, start_step, steps))
        return
    if budget_minutes and elapsed0 >= budget_minutes * 60:
        print("%s: already trained %.0f min >= budget %.0f min, nothing to do" % (
            stage, elapsed0 / 60, budget_minutes))
        return
    net.train()
    params = trainable(net, stage)
    # The temporal gate's few parameters live on a larger scale (a threshold of a few units) than
    # conv weights: they get a larger learning rate.
    gate_ids = {id(p) for n, p in net.named_parameters() if ".gate." in n}
    groups = [{"params": [p for p in params if id(p) not in gate_ids], "lr_mult": 1.0}]
    if any(id(p) in gate_ids for p in params):
        groups.append({"params": [p for p in params if id(p) in gate_ids], "lr_mult": GATE_LR_MULT})
    opt = torch.optim.Adam(groups, lr=cfg["lr"])
    if opt_state is not None:
        try:
            opt.load_state_dict(opt_state)
        except ValueError as e:  # parameter groups changed: restart the optimizer's moments
            print("optimizer state not restored (%s)" % e)
    teacher = Teacher().to(device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    c_train, c_val, s_train, s_val = splits()
    styles = StylePool(s_train, None if stage == "chain" else teacher, device)
    rng = random.Random(seed * 1000003 + start_step)
    bar = None
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm
            bar = tqdm(total=steps, initial=start_step, desc=stage)
        except ImportError:
            bar = None
    stop = []  # SIGTERM/SIGINT: finish the step, checkpoint, exit
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    t0 = time.time()
    last_ck = t0
    avg = {}
    step = start_step
    log_line(stage, "# start step %d device %s batch %d crop %d lr %g" %
             (step, device, cfg["batch"], cfg["crop"], cfg["lr"]))
    while step < steps and not stop:
        if minutes and time.time() - t0 > minutes * 60:
            break
        if budget_minutes and elapsed0 + time.time() - t0 > budget_minutes * 60:
            break
        lr = cfg["lr"] * min(1.0, (step + 1) / 50.0) / (1.0 + step / 2000.0)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
        loss, logs = step_loss(stage, net, teacher, styles, c_train, rng, device)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        G.set_strength(1.0)
        step += 1
        logs["loss"] = loss.item()
        for k, v in logs.items():
            avg[k] = 0.9 * avg.get(k, v) + 0.1 * v
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: "%.4g" % v for k, v in avg.items()})
        if step % 10 == 0 or step == steps:
            el = time.time() - t0
            rate = (step - start_step) / el * 3600.0
            log_line(stage, "step %d  t %.0fs  %.0f steps/h  lr %.2e  %s" % (
                step, elapsed0 + el, rate, lr,
                "  ".join("%s %.5g" % (k, v) for k, v in sorted(avg.items()))))
        if time.time() - last_ck > ckpt_every:
            save_ckpt(stage, net, opt, step, elapsed0 + time.time() - t0)
            last_ck = time.time()
    save_ckpt(stage, net, opt, step, elapsed0 + time.time() - t0)
    el = time.time() - t0
    log_line(stage, "# stop at step %d after %.0fs (%.0f steps/h)" %
             (step, el, (step - start_step) / max(el, 1e-6) * 3600.0))
    if bar is not None:
        bar.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--stage", required=True, choices=STAGES)
    ap.add_argument("--steps", type=int, default=0, help="total step budget of the stage")
    ap.add_argument("--bench", type=int, default=0, help="time this many steps, save nothing")
    ap.add_argument("--minutes", type=float, default=0, help="stop (and checkpoint) after this")
    ap.add_argument("--budget-minutes", type=float, default=0,
                    help="stop when the stage's total training time (all runs) reaches this")
    ap.add_argument("--refresh", default="",
                    help="comma-separated stages whose parts are reloaded from their own\n"
                         "checkpoints before training (e.g. efa after more EFA training)")
    ap.add_argument("--drop-prev-input", action="store_true",
                    help="resume a checkpoint whose refine steps take the previous residual as a\n"
                         "decoder input (sessions 1-4) without that input (model.py prev_input)")
    ap.add_argument("--arch", default="",
                    help='widths of a network trained from scratch (stage distill with no\n'
                         'checkpoint), JSON, e.g. \'{"enc": [32, 64, 128]}\'; keys: %s' %
                         ", ".join(ARCH_KEYS))
    ap.add_argument("--initial", default="", choices=["", "efa", "chain"],
                    help="the initial image of refinement steps trained from scratch (stages\n"
                         "refine0, refine1, temporal with no checkpoint); chain takes the\n"
                         "decoders of the chain stage's checkpoint")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-every", type=float, default=300.0, help="seconds between checkpoints")
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(a.threads)
    else:
        torch.backends.cudnn.benchmark = True
    arch = json.loads(a.arch) if a.arch else None
    if a.bench:
        bench(a.stage, a.bench, device, dict(arch or {}, **({"initial": a.initial} if a.initial else {})))
        return
    if not a.steps:
        ap.error("--steps is required (or --bench)")
    refresh = [s for s in a.refresh.split(",") if s]
    for s in refresh:
        if s not in STAGES or not os.path.exists(ckpt_path(s)):
            ap.error("--refresh: no checkpoint of stage %r" % s)
    if arch and (set(arch) - set(ARCH_KEYS) or a.stage != "distill"
                 or os.path.exists(ckpt_path(a.stage))):
        ap.error("--arch: only %s, only for a distillation that starts from scratch"
                 % ", ".join(ARCH_KEYS))
    if a.initial and (a.stage not in ("refine0", "refine1", "temporal")
                      or os.path.exists(ckpt_path(a.stage))):
        ap.error("--initial: only for a refinement stage that starts from scratch")
    train(a.stage, a.steps, a.minutes, a.seed, device, a.ckpt_every, a.budget_minutes, refresh,
          a.drop_prev_input, arch, a.initial)


if __name__ == "__main__":
    main()
