#!/usr/bin/python3
"""Trains the masked paths (two styles split by a mask, issue 14): fine-tunes the refinement steps
of a shipped model file on samples with two styles and a random soft mask, so that each region
reaches its own style up to the seam; every other sample is a one-style sample with the loss of
the refinement stages, so that one style stays as it was. The temporal gates and everything
before the refinement steps stay fixed.

    nohup nice -n 10 /usr/bin/python3 weights/train_masked.py [--from weights/styletransfer.safetensors]
        [--budget-minutes 120] [--anchor] >> weights/logs/masked/run.out 2>&1 &
    /usr/bin/python3 weights/train_masked.py [--anchor] --export OUT.safetensors   (the model file)

Resumable: weights/checkpoints/masked/masked.pt (network, optimizer, step, seconds) every few
minutes and at SIGTERM; log weights/logs/masked/masked.log (with --anchor: masked_anchor.pt and
masked_anchor.log). --anchor: the one-style samples are judged against the model file's own
output instead of the refinement loss (relative squared error, weight W_ANCHOR), so that one style
cannot drift while the masked paths learn (the first run, without it, raised the one-style content
error 0.946 -> 1.028 in 454 steps). Losses (teacher VGG, as train.py):
content at relu3_1 over the whole picture; per region (weights 1 inside the region away from the
mask's ramp, 0 elsewhere, area-pooled to each teacher level) the relative Gram error against that
region's style at relu1_1..relu3_1.
"""

import argparse
import os
import random
import signal
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import export as E  # noqa: E402
import graph as G  # noqa: E402
import train as T  # noqa: E402
import val_score as V  # noqa: E402

CKPT = os.path.join(HERE, "checkpoints", "masked", "masked.pt")
LOG = os.path.join(HERE, "logs", "masked", "masked.log")
BATCH, CROP, LR = 2, 192, 5e-5
P_MASKED = 0.6  # share of two-style samples
CKPT_EVERY = 300.0
W_ANCHOR = 20.0  # --anchor: weight of the one-style samples' relative error against the model file


def random_mask(rng, B, n, device):
    """[B, 1, n, n] soft masks: a half-plane at a random angle and offset with a linear ramp of
    2..32 px, or a soft ellipse; and the hard weights of the two regions (1 where the mask is
    above 0.99 / below 0.01)."""
    yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float32) + 0.5,
                            torch.arange(n, dtype=torch.float32) + 0.5, indexing="ij")
    ms = []
    for _ in range(B):
        ramp = rng.uniform(2.0, 32.0)
        if rng.random() < 0.6:
            a = rng.uniform(0, 6.2832)
            off = rng.uniform(0.3, 0.7) * n
            d = (xx - n / 2) * torch.cos(torch.tensor(a)) + (yy - n / 2) * torch.sin(
                torch.tensor(a)) + n / 2 - off
        else:
            cx, cy = rng.uniform(0.3, 0.7) * n, rng.uniform(0.3, 0.7) * n
            rx, ry = rng.uniform(0.15, 0.35) * n, rng.uniform(0.15, 0.35) * n
            r = torch.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
            d = (r - 1.0) * min(rx, ry)
        m = (0.5 - d / ramp).clamp(0, 1)
        if rng.random() < 0.5:
            m = 1.0 - m
        ms.append(m)
    m = torch.stack(ms)[:, None].to(device)
    return m, [(m > 0.99).float(), (m < 0.01).float()]


def region_style_loss(fo, style_grams, region):
    """Mean over levels of the relative Gram error of the output's features in `region` ([B, 1,
    H, W] weights) against style_grams (one [B, C, C] per level); regions without pixels count 0."""
    loss = 0.0
    for k, f in enumerate(fo):
        B, C, H, W = f.shape
        r = F.interpolate(region, size=(H, W), mode="area").reshape(B, 1, H * W)
        x = f.reshape(B, C, H * W)
        area = r.sum(dim=2, keepdim=True)
        g = torch.bmm(x * r, x.transpose(1, 2)) / area.clamp(min=1e-6)
        gs = style_grams[k]
        per = ((g - gs) ** 2).mean(dim=(1, 2)) / (gs ** 2).mean(dim=(1, 2)).clamp(min=1e-6)
        loss = loss + (per * (area[:, 0, 0] > 16).float()).mean()
    return loss / len(fo)


def step_loss(net, teacher, styles, c_train, rng, device, frozen=None, w_anchor=W_ANCHOR):
    c = T.load_batch(c_train, rng, CROP, BATCH, device)
    steps = rng.choice((1, 2, 2, 3))
    s1, g1 = styles.sample(rng, BATCH)
    G.set_strength(1.0)
    with torch.no_grad():
        S1 = net.style(s1)
    if rng.random() >= P_MASKED:  # one style
        outs, _ = net(c, None, steps, S=S1)
        if frozen is not None:  # --anchor: against the model file's own output
            with torch.no_grad():
                ref = frozen(c, None, steps, S=S1)[0][-1]
            la = ((outs[-1] - ref) ** 2).mean() / (ref ** 2).mean().clamp(min=1e-8)
            return w_anchor * la, {"anchor": la.item()}
        # the refinement stages' loss
        y = F.interpolate(outs[-1], size=c.shape[-2:], mode="bilinear", align_corners=False)
        lc, ls = T.perceptual(teacher, y, c, g1, torch.ones(BATCH, device=device))
        return T.W_CONTENT * lc + T.W_STYLE_REFINE * ls, {"content1": lc.item(), "style1": ls.item()}
    s2, g2 = styles.sample(rng, BATCH)
    with torch.no_grad():
        S2 = net.style(s2)
    m, regions = random_mask(rng, BATCH, CROP, device)
    outs, _ = net(c, None, steps, S=S1, mask=m, S2=S2)
    y = F.interpolate(outs[-1], size=c.shape[-2:], mode="bilinear", align_corners=False)
    fo = teacher(y)
    with torch.no_grad():
        fc = teacher(c)[2]
    lc = T.rel_mse(fo[2], fc)
    ls = [region_style_loss(fo, g, r) for g, r in zip((g1, g2), regions)]
    loss = T.W_CONTENT * lc + T.W_STYLE_REFINE * 3.0 * 0.5 * (ls[0] + ls[1])
    return loss, {"content2": lc.item(), "region1": ls[0].item(), "region2": ls[1].item()}


def log(text):
    os.makedirs(os.path.dirname(LOG), exist_ok=True)
    with open(LOG, "a") as f:
        f.write(text + "\n")
    print(text, flush=True)


def load(path, device):
    net = V.load_model_file(path).to(device)
    step, elapsed, opt_state = 0, 0.0, None
    if os.path.exists(CKPT):
        ck = torch.load(CKPT, map_location="cpu")
        net.load_state_dict(ck["model"])
        step, elapsed, opt_state = ck["step"], ck["elapsed"], ck["opt"]
    return net, step, elapsed, opt_state


def params_of(net):
    for p in net.parameters():
        p.requires_grad_(False)
    ps = []
    for name, p in net.refines.named_parameters():
        if ".gate." in "." + name or name.startswith("gate."):
            continue
        p.requires_grad_(True)
        ps.append(p)
    return ps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--from", dest="src", default=os.path.join(HERE, "styletransfer.safetensors"))
    ap.add_argument("--budget-minutes", type=float, default=120.0,
                    help="stop when all runs together trained this long")
    ap.add_argument("--export", metavar="OUT", help="write the checkpoint's model file and stop")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--anchor", action="store_true",
                    help="one-style samples judged against the model file's own output")
    ap.add_argument("--anchor-weight", type=float, default=W_ANCHOR,
                    help="weight of the anchor term (other than %g: its own checkpoint and log, "
                    "masked_anchor_wW.pt / .log)" % W_ANCHOR)
    a = ap.parse_args()
    global CKPT, LOG
    if a.anchor:
        tag = "" if a.anchor_weight == W_ANCHOR else "_w%g" % a.anchor_weight
        CKPT = CKPT.replace("masked.pt", "masked_anchor%s.pt" % tag)
        LOG = LOG.replace("masked.log", "masked_anchor%s.log" % tag)
    torch.set_num_threads(2)
    device = "cpu"
    net, step, elapsed, opt_state = load(a.src, device)
    if a.export:
        arch = E.json.loads(E.st_io.read(a.src)[1]["arch"])
        info = {k: v for k, v in arch.items() if k not in net.cfg}
        info["stages"] = dict(info.get("stages", {}), masked=step)
        E.export(net, a.export, info=info)
        print("wrote %s (masked fine-tuning step %d)" % (a.export, step))
        return
    frozen = None
    if a.anchor:
        frozen = V.load_model_file(a.src).to(device).eval().requires_grad_(False)
    params = params_of(net)
    opt = torch.optim.Adam(params, lr=LR)
    if opt_state:
        opt.load_state_dict(opt_state)
    teacher = T.Teacher().to(device)
    c_train, _, s_train, _ = T.splits()
    styles = T.StylePool(s_train, teacher, device)
    rng = random.Random(a.seed * 1000003 + step)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def save():
        os.makedirs(os.path.dirname(CKPT), exist_ok=True)
        tmp = CKPT + ".tmp"
        torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": elapsed, "from": os.path.basename(a.src)}, tmp)
        os.replace(tmp, CKPT)

    log("# masked fine-tuning from %s at step %d (%.0f s so far), batch %d crop %d lr %g%s" %
        (a.src, step, elapsed, BATCH, CROP, LR, ", anchored" if a.anchor else ""))
    t_run, t_ck, sums, counts, n = time.time(), time.time(), {}, {}, 0
    net.train()
    while not stop["now"] and elapsed < a.budget_minutes * 60:
        t0 = time.time()
        loss, logs = step_loss(net, teacher, styles, c_train, rng, device, frozen, a.anchor_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        elapsed += time.time() - t0
        logs["loss"] = loss.item()
        for k, v in logs.items():  # means over the last 10 steps (of the samples that had them)
            sums[k] = sums.get(k, 0.0) + v
            counts[k] = counts.get(k, 0) + 1
        n += 1
        if step % 10 == 0:
            rate = n / max(time.time() - t_run, 1e-6) * 3600
            log("step %d  t %.0fs  %.0f steps/h  " % (step, elapsed, rate) +
                "  ".join("%s %.5g" % (k, v / counts[k]) for k, v in sorted(sums.items())))
            sums, counts = {}, {}
        if time.time() - t_ck > CKPT_EVERY:
            save()
            t_ck = time.time()
    save()
    log("# stop at step %d after %.0fs" % (step, elapsed))


if __name__ == "__main__":
    main()
