"""The style-transfer network (student encoder, EFA block + decoder, ETNet-like refine steps),
written with the op layer in graph.py so that the exported graph is exactly this forward pass.

Images are RGB in [0, 1], [B, 3, H, W]. See weights/README.md for the architecture overview.
"""

import json

import torch
import torch.nn as nn

import graph as G

DEFAULT_CFG = {
    "enc": [16, 32, 64],  # widths of f1 (full), f2 (1/2), f3 (1/4)
    "z": 32,  # EFA compressed width (Gram matrices are z x z)
    "hidden": 128,  # EFA MLP width
    "dec": [32, 16],  # decoder widths at 1/2 and full resolution of a level
    "attn": 32,  # refine channel-attention width
    "alpha": 0.2,  # lrelu slope
    "style_size": 256,
    "refine_levels": [1, 0, 0],  # pools of the content per refine subgraph (1 = half res)
    # pools of the content before the closed-form chain (initial "chain"): 1 = the chain at half
    # the processing size (the first refinement step runs there too)
    "chain_pools": 0,
    # two styles by a mask: the initial image decoded once per region and blended by the mask
    # at its own size, instead of blending the EFA's fused features at f3 (StyleNet.initial)
    "mask_initial_blend": False,
    "gate": True,  # temporal gate: keep the previous residual where the new one barely differs
    # The gate sees (gate_scale * (residual - previous residual))^2, so that its 3x3 convolution
    # starts with weights of order 1 (a residual change of about 0.02 is the initial threshold).
    "gate_scale": 16.0,
    # EFA fusion: "adain" = AdaIN of the content features to the style's channel statistics plus
    # the common-feature correction (zero at initialisation, so training starts from AdaIN);
    # "none" = the correction alone on the style mean (models of sessions 1-2); "wct" = the
    # closed-form whitening and colouring of WCT (second-order matching of all channels, with
    # Newton-Schulz iterations: matrix products only) plus the correction.
    "efa_base": "adain",
    # Newton-Schulz iterations of the "wct" base, and the ridge added to the channel correlation
    # matrices (relative to their unit diagonal) before their square roots.
    "wct_iters": 16,
    "wct_ridge": 0.02,
    # Whether the previous frame's residual is also an input of each refine step's last decoder
    # convolution (sessions 1-4) besides the temporal gate. Off since session 5: with it, a
    # frame with a state is drawn differently from a frame without one (a stream's first), and a
    # still picture settled over several frames; the gate alone keeps the previous residual
    # where the new one differs by noise, so a still scene stays still from the first frame on.
    "prev_input": False,
    # The initial image: "efa" = the EFA block at f3 of the content pooled to 1/4, decoded (x0 at
    # 1/4 of the processing size); "chain" = closed-form WCT coarse to fine at the processing
    # size: f3, decoded, then f2 of that image, decoded, then f1 (the decoders of stage `chain`;
    # x0 at the processing size).
    "initial": "efa",
}

# A smaller variant for the engine's test model (same graph structure). Its random weights give
# residuals of order 1, so its gate gets a gentler scale (no near-step that fp16 would flip).
# It keeps the state as a decoder input (`prev_input`), so the engine is also tested on a graph
# where the temporal state feeds a convolution.
TEST_CFG = dict(DEFAULT_CFG, z=16, hidden=32, style_size=64, gate_scale=0.5, prev_input=True)


def cfg_of(saved):
    """The full config of a saved model: checkpoints and files written before a key existed get
    that key's old behaviour."""
    cfg = dict(DEFAULT_CFG, **saved)
    if "efa_base" not in saved:
        cfg["efa_base"] = "none"
    if "prev_input" not in saved:
        cfg["prev_input"] = True
    return cfg


def with_sets(net, sets):
    """The network with config entries overridden from KEY=JSON strings (the --set of
    export.py, val_score.py and eval_masked.py, e.g. refine_levels=[1,1]; a key the config lacks
    is an error), rebuilt around the same tensors so that entries read at construction apply."""
    if not sets:
        return net
    cfg = dict(net.cfg)
    for kv in sets:
        key, _, val = kv.partition("=")
        if key not in cfg:
            raise SystemExit("--set: the network's config has no %r" % key)
        cfg[key] = json.loads(val)
    out = StyleNet(cfg)
    own = out.state_dict()
    out.load_state_dict({k: v for k, v in net.state_dict().items() if k in own}, strict=False)
    return out


def drop_prev_input(cfg, state):
    """A model with `prev_input` turned into one without: the refine steps' last decoder
    convolution loses its three input channels of the previous residual (their weights are
    dropped; every other tensor is kept)."""
    if not cfg.get("prev_input"):
        return cfg, state
    state = dict(state)
    for k in list(state):
        if k.startswith("refines.") and k.endswith(".t1.weight"):
            state[k] = state[k][:, :-3].contiguous()
    return dict(cfg, prev_input=False), state


def conv3(i, o, bias=True):
    return nn.Conv2d(i, o, 3, bias=bias)


def conv1(i, o, bias=True):
    return nn.Conv2d(i, o, 1, bias=bias)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        w1, w2, w3 = cfg["enc"]
        self.c1 = conv3(3, w1)
        self.c2 = conv3(w1, w1)
        self.c3 = conv3(w1, w2)
        self.c4 = conv3(w2, w2)
        self.c5 = conv3(w2, w3)

    def forward(self, x, name3=None, upto=3):
        f1 = G.conv(x, self.c1, act="relu")
        if upto == 1:
            return (f1,)
        h = G.conv(f1, self.c2, act="relu")
        h = G.pool(h, "max")
        f2 = G.conv(h, self.c3, act="relu")
        if upto == 2:
            return f1, f2
        h = G.conv(f2, self.c4, act="relu")
        h = G.pool(h, "max")
        f3 = G.conv(h, self.c5, act="relu", name=name3)
        return f1, f2, f3


class Decoder(nn.Module):
    """f3 (1/4) -> image at the resolution of `like1`."""

    def __init__(self, cfg):
        super().__init__()
        w3 = cfg["enc"][2]
        d2, d1 = cfg["dec"]
        self.alpha = cfg["alpha"]
        self.d1 = conv3(w3, d2)
        self.d2 = conv3(d2, d2)
        self.d3 = conv3(d2, d1)
        self.d4 = conv3(d1, d1)
        self.d5 = conv3(d1, 3)

    def forward(self, f, like2, like1, name=None):
        a = self.alpha
        h = G.conv(f, self.d1, act="lrelu", alpha=a)
        h = G.resize(h, like2)
        h = G.conv(h, self.d2, act="lrelu", alpha=a)
        h = G.conv(h, self.d3, act="lrelu", alpha=a)
        h = G.resize(h, like1)
        h = G.conv(h, self.d4, act="lrelu", alpha=a)
        return G.conv(h, self.d5, name=name)


class Decoder2(nn.Module):
    """f2 (1/2) -> image at the resolution of `like1`: the mirror of the encoder up to f2."""

    def __init__(self, cfg):
        super().__init__()
        w2 = cfg["enc"][1]
        d1 = cfg["dec"][1]
        self.alpha = cfg["alpha"]
        self.d1 = conv3(w2, d1)
        self.d2 = conv3(d1, d1)
        self.d3 = conv3(d1, 3)

    def forward(self, f, like1, name=None):
        a = self.alpha
        h = G.conv(f, self.d1, act="lrelu", alpha=a)
        h = G.resize(h, like1)
        h = G.conv(h, self.d2, act="lrelu", alpha=a)
        return G.conv(h, self.d3, name=name)


class Decoder1(nn.Module):
    """f1 (full resolution) -> image."""

    def __init__(self, cfg):
        super().__init__()
        w1 = cfg["enc"][0]
        d1 = cfg["dec"][1]
        self.alpha = cfg["alpha"]
        self.d1 = conv3(w1, d1)
        self.d2 = conv3(d1, 3)

    def forward(self, f, name=None):
        h = G.conv(f, self.d1, act="lrelu", alpha=self.alpha)
        return G.conv(h, self.d2, name=name)


def newton_schulz(a, iters, eye):
    """Coupled Newton-Schulz iteration on a symmetric positive definite [C, C] matrix `a` whose
    eigenvalues lie in (0, 1]: returns (a^(1/2), a^(-1/2)) approximately. Only matrix products
    and scaled sums (no identity after the first step: Y T = 1.5 Y - 0.5 Y Z Y, T Z likewise)."""
    y = a
    z = G.add(eye, a, ka=1.5, kb=-0.5)  # T0 Z0 with Z0 = I
    y = G.add(y, G.matmul(y, a), ka=1.5, kb=-0.5)  # Y0 T0
    for _ in range(iters - 1):
        zy = G.matmul(z, y)
        y_new = G.add(y, G.matmul(y, zy), ka=1.5, kb=-0.5)
        z = G.add(z, G.matmul(zy, z), ka=1.5, kb=-0.5)
        y = y_new
    return y, z


def wct_sqrt_pair(fn, pick, eye_mod, c, ridge, iters):
    """(R^(1/2), R^(-1/2)) of the channel correlation matrix R of the normalised features fn
    (zero mean, unit std per channel), with the ridge, both scaled by one constant so that the
    product R_s^(1/2) R_c^(-1/2) is exact: R is divided by C (1 + ridge), the bound of its
    trace, which puts its eigenvalues in (0, 1]. `pick` (a Const 1x1 conv to one zero channel)
    and `eye_mod` (an Eye of C) give the identity."""
    r = G.gram(fn)
    one = G.moments(G.conv(fn, pick))[1]  # [1]: the std of a zero channel, sqrt(eps)
    eye = eye_mod(one)
    k = 1.0 / (c * (1.0 + ridge))
    a = G.add(r, eye, ka=k, kb=ridge * k)
    return newton_schulz(a, iters, eye)


class Const(nn.Module):
    """Fixed `weight` (and `bias`) for a conv or linear op of the graph: buffers, so that no
    optimizer and no random initialisation touches them; exported like any weight."""

    def __init__(self, weight, bias=None):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)


class Eye(nn.Module):
    """A constant C x C identity in the graph: `linear` with a zero weight and the identity as its
    bias, applied to any run-time value of one element (the graph has no constant op)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.lin = Const(torch.zeros(c * c, 1), torch.eye(c).reshape(-1))

    def forward(self, one):
        return G.reshape(G.linear(one, self.lin), [self.c, self.c])


class WCTLevel(nn.Module):
    """Closed-form whitening and colouring (WCT) of the C-channel features of one encoder level:
    the content's normalised features whitened with R_c^(-1/2), coloured with the style's
    R_s^(1/2) and channel std, the style mean added, blended with the content's features by
    `strength`. The style side is computed once per style (style())."""

    def __init__(self, c, iters, ridge):
        super().__init__()
        self.c, self.iters, self.ridge = c, iters, ridge
        self.eye = Eye(c)
        self.pick = Const(torch.zeros(1, c, 1, 1))

    def style(self, fs, prefix):
        mu, sd = G.moments(fs, name=[prefix + "_mean", prefix + "_std"])
        ys, _ = wct_sqrt_pair(G.div(G.add(fs, mu, kb=-1), sd), self.pick, self.eye, self.c,
                              self.ridge, self.iters)
        return {prefix + "_mean": mu, prefix + "_std": sd,
                prefix + "_sqrt": G.act(ys, "none", name=prefix + "_sqrt")}

    def forward(self, fc, S, prefix):
        mu_c, sd_c = G.moments(fc)
        fn = G.div(G.add(fc, mu_c, kb=-1), sd_c)
        _, zc_inv = wct_sqrt_pair(fn, self.pick, self.eye, self.c, self.ridge, self.iters)
        w = G.conv_rt(fn, G.matmul(S[prefix + "_sqrt"], zc_inv))
        out = G.add(G.mul(w, S[prefix + "_std"]), S[prefix + "_mean"])
        return G.add(out, fc, ka="strength", kb="one_minus_strength")


class EFA(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["enc"][2]
        z = cfg["z"]
        h = cfg["hidden"]
        self.z = z
        self.base = cfg.get("efa_base", "none")
        self.zconv = conv1(c, z, bias=False)  # shared compression (zero-mean in, zero-mean out)
        self.unz = conv1(z, c)
        if self.base == "wct":
            self.c = c
            self.wct_iters = int(cfg.get("wct_iters", 16))
            self.wct_ridge = float(cfg.get("wct_ridge", 0.02))
            self.eye = Eye(c)
            self.pick = Const(torch.zeros(1, c, 1, 1))  # one zero channel: Eye's input
        if self.base in ("adain", "wct"):  # the correction starts at zero: EFA = AdaIN at step 0
            with torch.no_grad():
                self.unz.weight.zero_()
                self.unz.bias.zero_()
        self.lin_a = nn.Linear(z * z, h)
        self.lin_b = nn.Linear(z * z, h, bias=False)
        self.tc1a = nn.Linear(z * z, h)
        self.tc1b = nn.Linear(h, h, bias=False)
        self.tc2 = nn.Linear(h, z * z)
        self.ts1a = nn.Linear(z * z, h)
        self.ts1b = nn.Linear(h, h, bias=False)
        self.ts2 = nn.Linear(h, z * z)
        with torch.no_grad():
            eye = torch.eye(z).reshape(-1)
            for m in (self.tc2, self.ts2):
                m.weight.mul_(0.1)
                m.bias.copy_(eye)

    def style(self, fs):
        """Style-only part -> dict of style-state values."""
        mu_s, sd_s = G.moments(fs, name=["s_mean", "s_std"])
        zs = G.conv(G.add(fs, mu_s, kb=-1), self.zconv)
        ks = G.gram(zs)
        S = {
            "s_mean": mu_s,
            "s_lb": G.linear(ks, self.lin_b, name="s_lb"),
            "s_tsa": G.linear(ks, self.ts1a, name="s_tsa"),
        }
        if self.base in ("adain", "wct"):
            S["s_std"] = sd_s
        if self.base == "wct":
            ys, _ = self.sqrt_pair(G.div(G.add(fs, mu_s, kb=-1), sd_s))
            S["s_wct_sqrt"] = G.act(ys, "none", name="s_wct_sqrt")
        return S

    def sqrt_pair(self, fn):
        return wct_sqrt_pair(fn, self.pick, self.eye, self.c, self.wct_ridge, self.wct_iters)

    def region(self, fc, S, w=None, n=None):
        """The fused features (before the strength blend) and the whitened features of fc aligned
        to the style state S: over the whole map, or (w, n: a region's weights and its weights
        normalised to mean 1, [1, 1, H, W]) with the region's own statistics."""
        mu_c, sd_c = G.moments(fc, mask=w)
        fc0 = G.add(fc, mu_c, kb=-1)
        zc = G.conv(fc0, self.zconv)
        kc = G.gram(zc) if n is None else G.gram(G.mul(zc, n), zc)
        g = G.add(G.linear(kc, self.lin_a), S["s_lb"], act="relu")
        tc = G.add(G.linear(kc, self.tc1a), G.linear(g, self.tc1b), act="relu")
        tc = G.reshape(G.linear(tc, self.tc2), [self.z, self.z])
        ts = G.add(S["s_tsa"], G.linear(g, self.ts1b), act="relu")
        ts = G.reshape(G.linear(ts, self.ts2), [self.z, self.z])
        chat = G.conv_rt(zc, tc)
        t = G.conv_rt(chat, ts)
        if self.base == "adain":
            # AdaIN (content features with the style's channel mean and std) + the correction
            base = G.add(G.mul(fc0, G.div(S["s_std"], sd_c)), S["s_mean"])
            out = G.add(base, G.conv(t, self.unz))
        elif self.base == "wct":
            if w is not None:
                raise NotImplementedError("masked statistics with the WCT base")
            # WCT: whiten the content's normalised features (R_c^(-1/2)), colour them with the
            # style's correlation (R_s^(1/2)) and channel std, add the style mean; + correction
            fn = G.div(fc0, sd_c)
            _, zc_inv = self.sqrt_pair(fn)
            w = G.conv_rt(fn, G.matmul(S["s_wct_sqrt"], zc_inv))
            base = G.add(G.mul(w, S["s_std"]), S["s_mean"])
            out = G.add(base, G.conv(t, self.unz))
        else:
            out = G.add(G.conv(t, self.unz), S["s_mean"])
        return out, chat

    @staticmethod
    def with_strength(out, fc):
        return G.add(out, fc, ka="strength", kb="one_minus_strength")

    def forward(self, fc, S, want_whiten=False, two=None, separate=False):
        """two: (S2, regions) for two styles split by a mask: regions is [(w, n) of the first
        style's region, (w, n) of the second's] at fc's size (Masks.at); each region's features
        are aligned to its own style with its own statistics, then blended by the weights (with
        separate, not blended: the list of the two regions' fused features)."""
        if two is None:
            out, chat = self.region(fc, S)
        else:
            S2, regions = two
            (w1, n1), (w2, n2) = regions
            out, chat = self.region(fc, S, w1, n1)
            out2, _ = self.region(fc, S2, w2, n2)
            if separate:
                return [self.with_strength(o, fc) for o in (out, out2)]
            out = blend(out, out2, w1)
        fused = self.with_strength(out, fc)
        if want_whiten:
            return fused, chat
        return fused


def blend(a, b, w, name=None):
    """w a + (1 - w) b, w [1, 1, H, W] broadcast over the channels."""
    return G.add(b, G.mul(G.add(a, b, kb=-1), w), name=name)


class Masks(nn.Module):
    """The two regions of a soft mask m ([1, 1, H, W] at the processing size, 1 = the first
    style): at each feature size, each region's weights w (m, 1 - m; average-pooled like the
    content) and the weights normalised to mean 1 (n = w / (mean(w) + 1e-6)), so that
    gram(n x, x) is the region's Gram matrix. Only constants (a 1x1 conv for 1 - m and a
    linear for the + 1e-6); at() caches per size for one frame (begin() starts a frame)."""

    def __init__(self):
        super().__init__()
        self.inv = Const(-torch.ones(1, 1, 1, 1), torch.ones(1))
        self.eps = Const(torch.ones(1, 1), torch.full((1,), 1e-6))

    def begin(self, mask):
        self.cache = {}
        self.pooled = [mask]  # the mask pooled 0, 1, 2, ... times
        return self

    def at(self, like):
        hw = tuple(like.shape[-2:])
        if hw in self.cache:
            return self.cache[hw]
        while all(tuple(m.shape[-2:]) != hw for m in self.pooled):
            if self.pooled[-1].shape[-1] < hw[1] or self.pooled[-1].shape[-2] < hw[0]:
                raise ValueError("no mask size %s from %s" % (hw, tuple(self.pooled[0].shape)))
            self.pooled.append(G.pool(self.pooled[-1], "avg"))
        m = next(m for m in self.pooled if tuple(m.shape[-2:]) == hw)
        regions = []
        for w in (m, G.conv(m, self.inv)):
            n = G.div(w, G.linear(G.moments(w)[0], self.eps))
            regions.append((w, n))
        self.cache[hw] = regions
        return regions


class Refine(nn.Module):
    """One ETNet-like refinement step (linear cost: channel attention, C x C error fusion)."""

    def __init__(self, cfg):
        super().__init__()
        w1, w2, w3 = cfg["enc"]
        d2, d1 = cfg["dec"]
        na = cfg["attn"]
        self.alpha = cfg["alpha"]
        self.e_in = conv3(w3, w3)
        self.v3 = conv1(w3, w3, bias=False)
        self.e_post = conv3(w3, w3)
        self.q = conv1(w3, na)
        self.k = conv1(w3, na)
        self.v = conv1(w3, na)
        self.o = conv1(na, w3)
        self.u3 = conv3(w3, d2)
        self.m2 = conv3(d2 + w2, d2)
        self.v2 = conv1(w2, w2, bias=False) if w2 == d2 else None
        self.u2 = conv3(d2, d1)
        self.m1 = conv3(d1 + w1, d1)
        self.v1 = conv1(w1, w1, bias=False) if w1 == d1 else None
        self.prev_input = bool(cfg.get("prev_input"))
        self.t1 = conv3(d1 + (3 if self.prev_input else 0), d1)
        self.out = conv3(d1, 3)
        self.gate = conv3(3, 3) if cfg.get("gate") else None
        self.gate_scale = float(cfg.get("gate_scale", 16.0))
        with torch.no_grad():
            if self.gate is not None:
                self.gate.weight.fill_(-1.0 / 3.0)
                self.gate.bias.fill_(3.0)
            for m in (self.v3, self.v2, self.v1):
                m.weight.uniform_(0.0, 0.01)
            self.o.weight.mul_(0.1)
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def fuse(self, h, ds, vconv, w=None):
        """h + (V dS) h per pixel, then lrelu (ETNet Fusion_simple, linear in pixels). ds: the
        style errors of the regions ([one] or [first, second]); with two, each pixel gets
        w (V dS1) h + (1 - w) (V dS2) h (w: the first region's weights at h's size)."""
        c = ds[0].shape[-1]
        y = [G.conv_rt(h, G.reshape(G.conv(G.reshape(d, [c, c, 1]), vconv), [c, c])) for d in ds]
        return G.add(h, y[0] if len(y) == 1 else blend(y[0], y[1], w), act="lrelu",
                     alpha=self.alpha)

    def forward(self, enc, x_in, content, prev_res, S, Fr, pools, resize_x=True, f3c=None,
                two=None):
        """Returns (x_new, residual, f3c). `Fr` holds frame state (x0). two: (S2, masks) for two
        styles split by a mask (Masks): the style error of each level is measured per region
        (the region's Gram against its own style's) and fused per pixel by the weights."""
        a = self.alpha
        c = content
        for _ in range(pools):
            c = G.pool(c, "avg")
        x = G.resize(x_in, c) if resize_x else x_in
        f1, f2, f3 = enc(x)
        if f3c is None:
            f3c = enc(c, name3="f3c_full" if pools == 0 else None)[2]
        ec = G.add(f3, f3c, kb=-1)
        feats = (f1, f2, f3)
        if two is None:
            ds = [[G.add(G.gram(f, sqrt=True), S["s_gram%d" % (i + 1)], ka="strength",
                         kb="neg_strength")] for i, f in enumerate(feats)]
            ws = [None] * 3
        else:
            S2, masks = two
            ds, ws = [], []
            for i, f in enumerate(feats):
                regions = masks.at(f)
                ds.append([G.add(G.gram(G.mul(f, n), f, sqrt=True), St["s_gram%d" % (i + 1)],
                                 ka="strength", kb="neg_strength")
                           for St, (_, n) in zip((S, S2), regions)])
                ws.append(regions[0][0])
        e = G.conv(ec, self.e_in, act="lrelu", alpha=a)
        e = self.fuse(e, ds[2], self.v3, ws[2])
        e = G.conv(e, self.e_post, act="lrelu", alpha=a)
        q = G.conv(e, self.q)
        k = G.conv(f3, self.k)
        att = G.softmax(G.gram(q, k))
        o = G.conv_rt(G.conv(e, self.v), att)
        e = G.add(e, G.conv(o, self.o))
        h = G.conv(e, self.u3, act="lrelu", alpha=a)
        h = G.resize(h, f2)
        h = G.conv(G.concat([h, f2]), self.m2, act="lrelu", alpha=a)
        h = self.fuse(h, ds[1], self.v2, ws[1])
        h = G.conv(h, self.u2, act="lrelu", alpha=a)
        h = G.resize(h, f1)
        h = G.conv(G.concat([h, f1]), self.m1, act="lrelu", alpha=a)
        h = self.fuse(h, ds[0], self.v1, ws[0])
        pr = G.resize(prev_res, c) if pools > 0 else prev_res
        h = G.conv(G.concat([h, pr]) if self.prev_input else h, self.t1, act="lrelu", alpha=a)
        r = G.conv(h, self.out)
        x0 = G.resize(Fr["x0"], c)
        d = G.add(x, x0, kb=-1)
        if self.gate is None:
            residual = G.add(d, r, name="residual")
            return G.add(x, r, name="x"), residual, f3c
        # Temporal gate: where this frame's residual differs from the previous frame's by less
        # than what the gate learned to call noise, keep the previous one (a still scene gives a
        # still picture); where the scene changed, the new one. `state_valid` is 0 when there is
        # no previous frame (first frame, temporal off), which turns the gate off.
        residual = G.add(d, r)
        dd = G.add(residual, pr, ka=self.gate_scale, kb=-self.gate_scale)
        g = G.act(G.conv(G.mul(dd, dd), self.gate), "sigmoid")
        keep = G.mul(g, G.add(pr, residual, kb=-1))
        residual = G.add(residual, keep, kb="state_valid", name="residual")
        x_new = G.add(x0, residual, name="x")
        return x_new, residual, f3c


class StyleNet(nn.Module):
    def __init__(self, cfg=None):
        super().__init__()
        self.cfg = dict(DEFAULT_CFG if cfg is None else cfg)
        self.enc = Encoder(self.cfg)
        self.efa = EFA(self.cfg)
        self.dec_efa = Decoder(self.cfg)
        self.refines = nn.ModuleList([Refine(self.cfg), Refine(self.cfg)])
        # training-only parts (never exported)
        w1, w2, w3 = self.cfg["enc"]
        self.heads = nn.ModuleList([conv1(w1, 64), conv1(w2, 128), conv1(w3, 256)])
        self.dec_rec = Decoder(self.cfg)
        self.dec_adain = Decoder(self.cfg)
        # reconstruction decoders of the three encoder levels, for the coarse-to-fine closed-form
        # (WCT) chain: f3 -> image, f2 -> image, f1 -> image (stage `chain`)
        self.dec_c3 = Decoder(self.cfg)
        self.dec_c2 = Decoder2(self.cfg)
        self.dec_c1 = Decoder1(self.cfg)
        self.masks = Masks()  # constants only: two styles split by a mask
        if self.cfg.get("initial", "efa") == "chain":
            it, ridge = int(self.cfg.get("wct_iters", 16)), float(self.cfg.get("wct_ridge", 0.02))
            self.chain = nn.ModuleList([WCTLevel(c, it, ridge) for c in self.cfg["enc"]])

    # refine subgraph i -> (module index, pools of the content, resize x, reuse cached f3c)
    def refine_plan(self):
        lv = self.cfg["refine_levels"]
        plan = []
        for i, p in enumerate(lv):
            mod = min(i, len(self.refines) - 1)
            prev_p = lv[i - 1] if i > 0 else None
            plan.append({"module": mod, "pools": p, "resize_x": prev_p != p,
                         "reuse_f3c": i > 0 and prev_p == p})
        return plan

    def style(self, s):
        f1, f2, f3 = self.enc(s)
        S = {"s_gram1": G.gram(f1, sqrt=True, name="s_gram1"),
             "s_gram2": G.gram(f2, sqrt=True, name="s_gram2"),
             "s_gram3": G.gram(f3, sqrt=True, name="s_gram3")}
        if self.cfg.get("initial", "efa") == "chain":
            for k, f in enumerate((f1, f2, f3)):
                S.update(self.chain[k].style(f, "s_c%d" % (k + 1)))
        else:
            S.update(self.efa.style(f3))
        return S

    def initial_chain(self, content, S):
        """Coarse to fine at the processing size: WCT at f3, decoded to an image; that image's f2
        WCT'd and decoded; then its f1. The result is x0 (full size)."""
        c = content
        for _ in range(int(self.cfg.get("chain_pools", 0))):
            c = G.pool(c, "avg")
        f1, f2, f3 = self.enc(c)
        x = self.dec_c3(self.chain[2](f3, S, "s_c3"), f2, f1)
        f1, f2 = self.enc(x, upto=2)
        x = self.dec_c2(self.chain[1](f2, S, "s_c2"), f1)
        (f1,) = self.enc(x, upto=1)
        x0 = self.dec_c1(self.chain[0](f1, S, "s_c1"), name="x0")
        return G.act(x0, "none", name="x"), x0

    def initial(self, content, S, want_whiten=False, two=None):
        """two: (S2, masks) for two styles split by a mask (Masks.begin(mask) of this frame)."""
        if self.cfg.get("initial", "efa") == "chain":
            if two is not None:
                raise NotImplementedError("two styles by a mask with the closed-form chain")
            return self.initial_chain(content, S)
        c = G.pool(G.pool(content, "avg"), "avg")
        f1, f2, f3 = self.enc(c)
        efa_two = None if two is None else (two[0], two[1].at(f3))
        if two is not None and self.cfg.get("mask_initial_blend"):
            # Each region's fused features decoded on their own and the two images blended by
            # the mask at the initial image's size: a blend at f3 (1/16 of the processing size)
            # spreads the seam over about 6 f3 pixels through the decoder (95 px at the
            # scorer's 384-px size for a 16-px feather at processing size 256).
            xs = [self.dec_efa(f, f2, f1) for f in self.efa(f3, S, two=efa_two, separate=True)]
            w = two[1].at(xs[0])[0][0]
            x0 = blend(xs[0], xs[1], w, name="x0")
            return G.act(x0, "none", name="x"), x0
        r = self.efa(f3, S, want_whiten=want_whiten, two=efa_two)
        fused, chat = r if want_whiten else (r, None)
        x0 = self.dec_efa(fused, f2, f1, name="x0")
        x = G.act(x0, "none", name="x")
        if want_whiten:
            return x, x0, chat
        return x, x0

    def refine(self, i, x, content, prev_res, S, Fr, two=None):
        """Runs refine subgraph i; updates Fr (frame state) and returns (x_new, residual)."""
        plan = self.refine_plan()[min(i, len(self.cfg["refine_levels"]) - 1)]
        f3c = Fr.get("f3c_full") if plan["reuse_f3c"] else None
        x_new, res, f3c_new = self.refines[plan["module"]](
            self.enc, x, content, prev_res, S, Fr, plan["pools"], plan["resize_x"], f3c, two)
        Fr["residual"] = res
        if plan["pools"] == 0 and f3c is None:
            Fr["f3c_full"] = f3c_new
        return x_new, res

    def forward(self, content, style_img, steps, prev_res=None, S=None, mask=None, S2=None):
        """mask ([B, 1, H, W] like content, soft) and S2 (a second style state): S where the
        mask is 1, S2 where it is 0, with per-region statistics throughout."""
        if S is None:
            S = self.style(style_img)
        two = None if mask is None else (S2, self.masks.begin(mask))
        x, x0 = self.initial(content, S, two=two)
        Fr = {"x0": x0}
        G.set_state_valid(0.0 if prev_res is None else 1.0)
        if prev_res is None:
            prev_res = torch.zeros_like(content)
        outs = [x]
        for i in range(steps):
            x, _ = self.refine(i, x, content, prev_res, S, Fr, two)
            outs.append(x)
        return outs, Fr


def translate_state(x, sy, sx):
    """out[..., y, x] = x[..., clamp(y + sy), clamp(x + sx)]: how the engine moves the temporal
    state by the estimated global motion (this frame's (y, x) shows the previous (y+sy, x+sx))."""
    H, W = x.shape[-2:]
    iy = (torch.arange(H, device=x.device) + int(sy)).clamp(0, H - 1)
    ix = (torch.arange(W, device=x.device) + int(sx)).clamp(0, W - 1)
    return x[..., iy[:, None], ix[None, :]]


def load_student(net, state):
    """Loads a checkpoint's tensors. Checkpoints written before the temporal gate existed lack
    its tensors: those keep their initial values. Returns the list of such missing names."""
    missing, unexpected = net.load_state_dict(state, strict=False)
    # the WCT base's constants (efa.eye, efa.pick) are fixed at construction
    bad = [k for k in missing if ".gate." not in k
           and not k.startswith(("efa.eye.", "efa.pick.", "dec_c3.", "dec_c2.", "dec_c1.",
                                 "chain.", "masks."))]
    if bad or unexpected:
        raise RuntimeError("checkpoint does not match the model: missing %s, unexpected %s" %
                           (bad, unexpected))
    return missing
