#!/usr/bin/python3
"""Quality on the project's own validation split with the shared scorer, the WCT-16x peer side by
side on the same pairs in the same run.

    /usr/bin/python3 weights/val_score.py [--pairs 12] [--configs "256:2:1,0:3:1"] [--peer 0.3,0.5,0.7,1.0]
        [--out DIR] [--model FILE] [--set KEY=JSON ...] [--through N]

Pairs: validation photos (the 5% hash split of train.py) x paintings by validation artists
(artists training never sees), drawn with a fixed seed. Each config is PSIZE:STEPS:STRENGTH and
runs the shipped network's graph in PyTorch the way the element does: the content (384 px short
side, as the scorer loads it) is scaled so that its longer side is PSIZE (0 = as it is), the style
so that its longer side is the model's style_size, and the output is scaled back (bilinear) and
clamped. The peer runs `../shared/peers/wct16x/wct16x.py` at each alpha on the same pairs (its
--size is the longer side of the scorer's content size). Every output is scored by
`../shared/eval/score.py` (content: relative relu3_1 error; style: mean relative Gram error at
relu1_1..relu3_1; lower is better). Prints one row per system and writes DIR/results.json.
--set overrides an entry of the network's config after loading (model.with_sets; e.g.
style_size=128, refine_levels=[1,1], chain_pools=1); --through N also scores every output (the
element's and the peer's) after scaling it to longer side N and back (bilinear): what the
resolution of processing size N alone costs that output.
"""

import argparse
import json
import os
import random
import subprocess
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
import score  # noqa: E402

PEER = os.path.join(SHARED, "peers", "wct16x")


def pick_pairs(n, seed):
    """n (content, style) pairs from the validation split, paths relative to the data folder."""
    _, c_val, _, s_val = T.splits()
    rng = random.Random(seed)
    styles = sorted(p for files in s_val.values() for p in files)
    return list(zip(rng.sample(sorted(c_val), n), rng.sample(styles, n)))


def load_net(efa_base="", refresh_efa="", initial=""):
    """The network of the checkpoints (ST_CKPT_DIR picks the folder, as for train.py); with
    initial, another initial image ("chain": the closed-form chain, its decoders from chain.pt);
    with efa_base, the same weights around another EFA base (e.g. "wct" on a decoder trained for
    "adain"); with refresh_efa, the EFA block and its decoder from that folder's efa.pt (e.g. a
    newly trained EFA block under the refinement steps trained on the old one)."""
    net, _, steps = T.load_model_from_checkpoints(initial=initial)
    if "chain" in steps:
        print("chain decoders: step %d" % steps["chain"])
    if efa_base:
        state = {k: v for k, v in net.state_dict().items()
                 if not k.startswith(("efa.eye.", "efa.pick."))}
        net = T.build(dict(net.cfg, efa_base=efa_base), state)
    if refresh_efa:
        ckpt_dir, T.CKPT_DIR = T.CKPT_DIR, refresh_efa
        try:
            net = T.refresh_parts(net, "efa")
        finally:
            T.CKPT_DIR = ckpt_dir
    return net


def load_model_file(path):
    """The network of a model file (weights/FORMAT.md) in PyTorch: its arch, its tensors (the
    fp16-stored ones as the file holds them); training-only parts stay as initialised."""
    import st_io
    tensors, meta = st_io.read(path)
    arch = json.loads(meta["arch"])
    cfg = M.cfg_of({k: v for k, v in arch.items() if k in M.DEFAULT_CFG})
    net = M.StyleNet(cfg)
    own = net.state_dict()
    missing = [k for k in tensors if k not in own]
    if missing:
        raise SystemExit("%s: tensors the model does not have: %s" % (path, missing[:5]))
    net.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()},
                        strict=False)
    return net


def to_pil(x):
    a = (x.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(a)


def scale_longer(x, size):
    h, w = x.shape[-2:]
    if size <= 0 or max(h, w) == size:
        return x
    s = size / max(h, w)
    return F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="bilinear",
                         align_corners=False)


@torch.no_grad()
def stylize(net, content, style, psize, steps, strength):
    """content: 1x3xHxW at the scorer's size; returns the output at that size."""
    G.set_strength(strength)
    s = scale_longer(style, net.cfg["style_size"])
    S = net.style(s)
    c = scale_longer(content, psize)
    outs, _ = net(c, None, steps, S=S)
    y = F.interpolate(outs[-1], size=content.shape[-2:], mode="bilinear", align_corners=False)
    return y.clamp(0, 1)


def mean_scores(teacher, rows):
    ce, se = [], []
    for c, s, o in rows:
        a, b = score.score_pair(teacher, c, s, o)
        ce.append(a)
        se.append(b)
    return float(np.mean(ce)), float(np.mean(se))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--configs", default="256:2:1,0:3:1",
                    help="comma-separated PSIZE:STEPS:STRENGTH (PSIZE 0 = full size)")
    ap.add_argument("--peer", default="0.3,0.5,0.7,1.0", help="WCT-16x alphas ('' = none)")
    ap.add_argument("--out", default="/tmp/val_score")
    ap.add_argument("--efa-base", default="", help="override the EFA base (adain, wct)")
    ap.add_argument("--refresh-efa", default="", metavar="DIR",
                    help="take the EFA block and its decoder from DIR/efa.pt")
    ap.add_argument("--initial", default="", help="override the initial image (efa, chain)")
    ap.add_argument("--model", default="",
                    help="score this model file instead of the checkpoints (e.g. the shipped one)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a config entry of the network (repeatable)")
    ap.add_argument("--through", type=int, default=0, metavar="N",
                    help="also score each output scaled to longer side N and back")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    pairs = pick_pairs(a.pairs, a.seed)
    cpaths = [os.path.join(T.DATA, c) for c, _ in pairs]
    spaths = [os.path.join(T.DATA, s) for _, s in pairs]
    teacher = score.Teacher()
    results = {"pairs": pairs, "systems": {}}

    def report(name, rows, through=True):
        c, s = mean_scores(teacher, rows)
        results["systems"][name] = {"content": c, "style": s}
        print("%-28s content %.3f  style %.3f" % (name, c, s), flush=True)
        if a.through and through:
            thr_rows = []
            for k, (cp, sp, op) in enumerate(rows):
                x = T.to_tensor(Image.open(op).convert("RGB"))[None]
                y = F.interpolate(scale_longer(x, a.through), size=x.shape[-2:], mode="bilinear",
                                  align_corners=False)
                tp = os.path.join(a.out, "through%d_%d.png" % (a.through, k))
                to_pil(y).save(tp)
                thr_rows.append((cp, sp, tp))
            report("%s through %d" % (name, a.through), thr_rows, False)

    report("content photo", [(c, s, c) for c, s in zip(cpaths, spaths)], False)
    net = load_model_file(a.model) if a.model else load_net(a.efa_base, a.refresh_efa, a.initial)
    net = M.with_sets(net, a.set)
    net.eval()
    for spec in [x for x in a.configs.split(",") if x]:
        psize, steps, strength = spec.split(":")
        psize, steps, strength = int(psize), int(steps), float(strength)
        tag = a.efa_base or ("efa:" + os.path.basename(a.refresh_efa.rstrip("/")) if a.refresh_efa
                             else "") or a.initial or os.path.basename(a.model)
        name = "element %s%s steps %d str %.2f%s" % (
            tag + " " if tag else "", "full" if psize == 0 else psize, steps, strength,
            "".join(" " + kv for kv in a.set))
        rows = []
        for i, (cp, sp) in enumerate(zip(cpaths, spaths)):
            content = score.load_image(cp)
            style = T.to_tensor(Image.open(sp).convert("RGB"))[None]
            y = stylize(net, content, style, psize, steps, strength)
            op = os.path.join(a.out, "e_%s_%d_%s_%02d.png" % (psize, steps, strength, i))
            to_pil(y).save(op)
            rows.append((cp, sp, op))
        report(name, rows)
    if a.peer:
        tsv = os.path.join(a.out, "peer_pairs.tsv")
        with open(tsv, "w") as f:
            for i, (c, s) in enumerate(pairs):
                f.write("%s\t%s\t%02d.png\n" % (c, s, i))
        for alpha in a.peer.split(","):
            od = os.path.join(a.out, "peer_%s" % alpha)
            subprocess.run([sys.executable, os.path.join(PEER, "wct16x.py"), "--weights",
                            os.path.join(PEER, "weights"), "--pairs", tsv, "--root", T.DATA,
                            "--outdir", od, "--alpha", alpha, "--size", "576", "--cache-style"],
                           check=True, stdout=subprocess.DEVNULL)
            outs = sorted(os.path.join(od, f) for f in os.listdir(od) if f.endswith(".png"))
            if len(outs) != len(pairs):
                raise SystemExit("peer wrote %d outputs for %d pairs" % (len(outs), len(pairs)))
            report("WCT-16x alpha %s" % alpha, list(zip(cpaths, spaths, outs)))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
