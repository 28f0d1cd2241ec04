#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the reference data of the element-level end-to-end test (tests/gst/test_e2e.c).

    /usr/bin/python3 weights/make_e2e_data.py [--model tests/data/model_random.safetensors]
                                             [--out tests/data/e2e]

For a model file it writes, in --out:
- style.png: a synthetic style picture (ours), or the --style picture, exactly the graph's
  style_size on its longer side, so that the engine's style resize is the identity;
- content_WxH.rgba: synthetic content frames, raw 8-bit RGBA (alpha 255, rows packed);
- expected_*.rgba: the 8-bit RGBA frame that the element must output, computed as the element
  does (weights/FORMAT.md, "Orchestration"; compute/net.c; shaders/float_to_frame.comp) with the
  pure-PyTorch graph interpreter weights/run_graph.py:
    content bytes / 255 -> graph (style: the 8-bit PNG decoded / 255, bound as is) -> final x
    -> bilinear resize (align_corners=False) to the frame size -> clamp [0, 1]
    -> floor(255 v + 0.5); alpha 255.
  The element runs with processing-size=0 (the network works at the frame size).
- for a model with masked subgraphs, style2.png (the second style, made as style.png) and
  two-style cases: mcontent_WxH.rgba, whose alpha is a soft mask, and expected_masked_*.rgba
  (the masked subgraphs with mask = alpha / 255; alpha passed through) for the element with
  mask-source=alpha and style-2;
- index.json: the cases (single frames with temporal state off/first frame, and a three-frame
  sequence with temporal state on, the last frame still with faint noise), the model's path
  relative to --out, its SHA-256 and the command that wrote the data set.

This script is not run by the build or CI; its outputs are committed. Two data sets are
committed, each registered as a meson test (tests/gst/meson.build); rerun the matching command
whenever its model file changes (the test checks the model's SHA-256 and says so):

    # the random test model (tests/data/model_random.safetensors)
    /usr/bin/python3 weights/make_e2e_data.py
    # the shipped, trained model (weights/styletransfer.safetensors)
    /usr/bin/python3 weights/make_e2e_data.py --model weights/styletransfer.safetensors \
        --out tests/data/e2e_trained --sizes 64x48,97x61,33x17 \
        --style examples/default-style.jpg --style-colors 256

With --style, style.png is that picture (a natural artwork, which a trained model should see)
resized (PIL, Lanczos) to style_size on its longer side, optionally reduced to --style-colors
palette colours (no dithering) to keep the committed PNG small; the reference uses the PNG as
decoded, so the test stays exact. Any other index.json can be given to the test as its first
argument or in ST_E2E_INDEX.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import run_graph  # noqa: E402

# (width, height): even, odd, landscape, portrait, and sizes where the pyramid levels round up.
DEFAULT_SIZES = "64x48,33x17,97x61,19x37"
DEFAULT_STEPS = "0,1,2,3"


def synthetic_rgb(h, w, seed):
    """A deterministic uint8 [h, w, 3] picture: gradients, discs, stripes and a little noise."""
    rng = np.random.RandomState(seed)
    yy, xx = np.meshgrid(np.linspace(0.0, 1.0, h), np.linspace(0.0, 1.0, w), indexing="ij")
    ph = rng.uniform(0, 6.28, 3)
    img = np.stack([0.5 + 0.4 * np.sin(4.0 * xx + ph[0]),
                    0.5 + 0.4 * np.cos(3.0 * yy + ph[1]),
                    0.5 + 0.4 * np.sin(5.0 * (xx + yy) + ph[2])], axis=-1)
    for _ in range(5):
        cy, cx, r = rng.uniform(0, 1, 3)
        col = rng.uniform(0, 1, 3)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < (0.08 + 0.25 * r) ** 2
        img[mask] = col
    freq = rng.uniform(15, 40)
    img += 0.12 * np.sin(freq * (xx * rng.uniform(0.5, 1.5) + yy))[..., None]
    img += 0.03 * rng.randn(h, w, 3)
    return np.clip(np.floor(img * 255.0 + 0.5), 0, 255).astype(np.uint8)


def to_tensor(rgb):
    """uint8 [h, w, 3] -> float32 [3, h, w] in [0, 1] (bytes / 255, as frame_to_float.comp)."""
    return torch.from_numpy(rgb.astype(np.float32).transpose(2, 0, 1).copy()) / 255.0


def to_frame(x, h, w):
    """Final x [3, h', w'] -> uint8 [h, w, 3] as float_to_frame.comp: resize, clamp, round."""
    y = F.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    y = torch.floor(y.clamp(0.0, 1.0) * 255.0 + 0.5)
    return y.clamp(0, 255).to(torch.uint8).numpy().transpose(1, 2, 0).copy()


def write_rgba(path, rgb, alpha=None):
    h, w, _ = rgb.shape
    if alpha is None:
        alpha = np.full((h, w), 255, np.uint8)
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1)
    rgba.tofile(path)


def soft_mask(h, w, seed):
    """A deterministic uint8 [h, w] mask for two styles: a soft disc (255 inside, 0 far
    outside, a ramp between) on a left-to-right ramp, so that both styles and the soft values
    between them appear."""
    rng = np.random.RandomState(seed)
    yy, xx = np.meshgrid(np.linspace(0.0, 1.0, h), np.linspace(0.0, 1.0, w), indexing="ij")
    cy, cx = rng.uniform(0.35, 0.65, 2)
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    disc = np.clip((0.4 - d) / 0.15, 0.0, 1.0)
    m = np.maximum(disc, np.clip((0.3 - xx) / 0.3, 0.0, 1.0))
    return np.floor(m * 255.0 + 0.5).astype(np.uint8)


def style_picture(path, ss, seed, colors):
    """The style picture: a file resized (Lanczos) to ss on its longer side, or synthetic."""
    if path is None:
        img = Image.fromarray(synthetic_rgb(max(1, round(ss * 3 / 4)), ss, seed), "RGB")
    else:
        img = Image.open(path).convert("RGB")
        sc = ss / max(img.size)
        img = img.resize((max(1, round(img.width * sc)), max(1, round(img.height * sc))),
                         Image.LANCZOS)
    if colors > 0:
        img = img.quantize(colors, method=Image.MEDIANCUT, dither=Image.NONE)
    return img


def save_style(img, out, name, ss, colors):
    """Stores the style PNG and returns it as decoded (what the element reads)."""
    img.save(os.path.join(out, name), optimize=True)
    rgb = np.asarray(Image.open(os.path.join(out, name)).convert("RGB"))
    assert max(rgb.shape[:2]) == ss
    if colors == 0:
        assert np.array_equal(rgb, np.asarray(img.convert("RGB")))
    return rgb


def psnr8(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def parse_sizes(s):
    out = []
    for item in s.split(","):
        w, h = item.lower().split("x")
        out.append((int(w), int(h)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "tests", "data",
                                                    "model_random.safetensors"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "e2e"))
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="WxH,WxH,... (default %(default)s)")
    ap.add_argument("--steps", default=DEFAULT_STEPS, help="step counts (default %(default)s)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--style", default=None,
                    help="style picture (default: a synthetic one), resized to style_size")
    ap.add_argument("--style-2", default=None,
                    help="second style picture for the two-style cases of a model with masked "
                         "subgraphs (default: a synthetic one)")
    ap.add_argument("--style-colors", type=int, default=0,
                    help="store the style PNG with this many palette colours (0: full RGB)")
    a = ap.parse_args()
    torch.set_num_threads(2)

    m = run_graph.Model(a.model)
    ss = int(m.graph["style_size"])
    os.makedirs(a.out, exist_ok=True)
    with open(a.model, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()

    # Style: longer side == style_size (the engine's resize is then the identity), stored
    # losslessly as PNG; the reference uses the PNG as decoded.
    style_rgb = save_style(style_picture(a.style, ss, a.seed + 1000, a.style_colors), a.out,
                           "style.png", ss, a.style_colors)
    m.set_style(to_tensor(style_rgb))

    index = {
        "description": "Element-level end-to-end reference (weights/make_e2e_data.py): raw 8-bit "
                       "RGBA frames (rows packed, alpha 255); 'expected' is the element's output "
                       "computed with weights/run_graph.py for processing-size=0. Compare RGB. "
                       "masked_cases (if any): the content's alpha is the mask of two styles "
                       "(mask-source=alpha, style-2), passed through to the output.",
        "model": os.path.relpath(os.path.abspath(a.model), os.path.abspath(a.out)),
        "model_sha256": sha,
        "command": " ".join(["/usr/bin/python3 weights/make_e2e_data.py"] + sys.argv[1:]),
        "style": "style.png",
        "style_size": [int(style_rgb.shape[1]), int(style_rgb.shape[0])],
        "cases": [],
        "sequences": [],
    }

    steps_list = [int(s) for s in a.steps.split(",")]
    for k, (w, h) in enumerate(parse_sizes(a.sizes)):
        rgb = synthetic_rgb(h, w, a.seed + k)
        cname = "content_%dx%d.rgba" % (w, h)
        write_rgba(os.path.join(a.out, cname), rgb)
        content = to_tensor(rgb)
        prev_out = None
        for n in steps_list:
            for strength in ((1.0, 0.5) if (k == 0 and n == 2) else (1.0,)):
                x, _ = m.run_frame(content, n, strength)
                out = to_frame(x, h, w)
                oname = "expected_%dx%d_n%d%s.rgba" % (w, h, n,
                                                      "" if strength == 1.0 else "_s%g" % strength)
                write_rgba(os.path.join(a.out, oname), out)
                case = {"width": w, "height": h, "content": cname, "steps": n,
                        "strength": strength, "expected": oname,
                        "network_output_size": [int(x.shape[2]), int(x.shape[1])]}
                if prev_out is not None and strength == 1.0:
                    # how far the previous step count's output is: the test must tell them apart
                    case["psnr_vs_previous_steps"] = round(psnr8(out, prev_out), 2)
                index["cases"].append(case)
                print("%dx%d steps %d strength %g: x %s -> %s" %
                      (w, h, n, strength, tuple(x.shape), oname))
                if strength == 1.0:
                    prev_out = out

    # Sequence, temporal state on: frame 2 = frame 1 moved by (2, 1) px plus noise.
    w, h, n = 64, 48, 2
    base = synthetic_rgb(h + 4, w + 4, a.seed + 50)
    rng = np.random.RandomState(a.seed + 51)
    f1 = base[2:2 + h, 2:2 + w]
    f2 = np.clip(base[3:3 + h, 4:4 + w].astype(np.int32) + rng.randint(-4, 5, (h, w, 3)), 0,
                 255).astype(np.uint8)
    # frame 3: frame 2 with fresh faint noise (a still camera: the temporal gate keeps)
    f3 = np.clip(f2.astype(np.int32) + rng.randint(-1, 2, (h, w, 3)), 0, 255).astype(np.uint8)
    seq = {"width": w, "height": h, "steps": n, "strength": 1.0, "temporal": True, "frames": []}
    # The element estimates the global motion between its input frames (motion-compensation
    # on) and moves the previous residual by it: frame 2 shows frame 1 moved by (dy, dx) = (1, 2).
    shifts = [(0, 0), (1, 2), (0, 0)]
    prev = None
    for i, fr in enumerate((f1, f2, f3)):
        x, state = m.run_frame(to_tensor(fr), n, 1.0, prev, shifts[i])
        prev = state.get("residual")
        out = to_frame(x, h, w)
        cname = "seq_frame%d_%dx%d.rgba" % (i, w, h)
        oname = "expected_seq%d_%dx%d_n%d.rgba" % (i, w, h, n)
        write_rgba(os.path.join(a.out, cname), fr)
        write_rgba(os.path.join(a.out, oname), out)
        entry = {"content": cname, "expected": oname, "state_shift": list(shifts[i])}
        if i > 0:
            # the same frame without temporal state: the test must tell the two apart
            x0, _ = m.run_frame(to_tensor(fr), n, 1.0, None)
            entry["psnr_without_temporal_state"] = round(psnr8(out, to_frame(x0, h, w)), 2)
        seq["frames"].append(entry)
    index["sequences"].append(seq)

    # Two styles by a mask (a model with masked subgraphs, FORMAT.md "Two styles by a mask"):
    # the element runs with mask-source=alpha and style-2; the content's alpha is the mask,
    # which the element passes through. At processing-size=0 the engine's mask resize is the
    # identity, so the graph's mask is alpha / 255.
    if "masked" in m.graph:
        style2_rgb = save_style(style_picture(a.style_2, ss, a.seed + 2000, a.style_colors),
                                a.out, "style2.png", ss, a.style_colors)
        m.set_style(to_tensor(style_rgb), to_tensor(style2_rgb))
        index["style_2"] = "style2.png"
        index["masked_cases"] = []
        sizes = parse_sizes(a.sizes)
        masked = [(sizes[0], n) for n in steps_list] + [(sizes[1], steps_list[-1])]
        for (w, h), n in masked:
            k = sizes.index((w, h))
            rgb = synthetic_rgb(h, w, a.seed + k)
            alpha = soft_mask(h, w, a.seed + 300 + k)
            cname = "mcontent_%dx%d.rgba" % (w, h)
            write_rgba(os.path.join(a.out, cname), rgb, alpha)
            mask = torch.from_numpy(alpha.astype(np.float32))[None] / 255.0
            x, _ = m.run_frame(to_tensor(rgb), n, 1.0, mask=mask)
            out = to_frame(x, h, w)
            oname = "expected_masked_%dx%d_n%d.rgba" % (w, h, n)
            write_rgba(os.path.join(a.out, oname), out, alpha)
            # how far each one-style output is: the test must tell the masked one apart
            x1, _ = m.run_frame(to_tensor(rgb), n, 1.0)
            case = {"width": w, "height": h, "content": cname, "steps": n, "strength": 1.0,
                    "expected": oname,
                    "psnr_vs_one_style": round(psnr8(out, to_frame(x1, h, w)), 2)}
            index["masked_cases"].append(case)
            print("masked %dx%d steps %d -> %s" % (w, h, n, oname))

    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(a.out, p)) for p in os.listdir(a.out))
    print("wrote %d cases, %d sequence(s) to %s (%.0f KiB)" %
          (len(index["cases"]), len(index["sequences"]), a.out, total / 1024))


if __name__ == "__main__":
    main()
