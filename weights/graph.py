"""Tiny op layer: every function computes with torch and, while a Recorder is active, appends the
matching FORMAT.md op to the recorder's op list (SSA names).

Run-time values carry a leading batch dimension in torch ([B, C, H, W], [B, M, N], [B, N]); the
recorded graph describes one sample (batch 1, the batch dimension dropped), exactly as FORMAT.md
defines the ops.

Scalars may be numbers or the strings "strength", "neg_strength", "one_minus_strength"; in torch
they are resolved from `set_strength()` (a float or a [B] tensor, one value per sample), and
"state_valid" (1 when the temporal state holds the previous frame's value, else 0), resolved from
`set_state_valid()`.
"""

import contextlib

import torch
import torch.nn.functional as F

SCALAR_NAMES = ("strength", "neg_strength", "one_minus_strength", "state_valid")

_rec = None
_strength = 1.0
_state_valid = 0.0


class Recorder:
    """Collects ops for one subgraph. `param_names` maps id(parameter) -> file tensor name."""

    def __init__(self, param_names, prefix="t"):
        self.param_names = param_names
        self.prefix = prefix
        self.ops = []
        self.names = {}  # id(tensor) -> name
        self.keep = []  # keeps recorded tensors alive so ids stay unique
        self.used_params = {}  # file tensor name -> parameter tensor
        self.assigned = set()
        self.counter = 0

    def bind(self, t, name):
        self.assigned.add(name)
        self.names[id(t)] = name
        self.keep.append(t)

    def name_of(self, t):
        n = self.names.get(id(t))
        if n is None:
            raise RuntimeError("graph recorder: tensor without a name (computed outside G.*?)")
        return n

    def new_name(self, t, name=None):
        if name is None:
            self.counter += 1
            name = "%s%d" % (self.prefix, self.counter)
            while name in self.assigned:
                self.counter += 1
                name = "%s%d" % (self.prefix, self.counter)
        self.assigned.add(name)
        self.bind(t, name)
        return name

    def param(self, p):
        n = self.param_names[id(p)]
        self.used_params[n] = p
        return n


@contextlib.contextmanager
def recording(rec):
    global _rec
    old = _rec
    _rec = rec
    try:
        yield rec
    finally:
        _rec = old


def recorder():
    return _rec


def set_strength(s):
    global _strength
    _strength = s


def set_state_valid(v):
    global _state_valid
    _state_valid = float(v)


def _scalar(k, ref):
    """Resolves a scalar attribute to a number or a tensor broadcastable against `ref`."""
    if isinstance(k, str):
        if k == "state_valid":
            return _state_valid
        s = _strength
        if torch.is_tensor(s):
            s = s.to(ref.dtype).to(ref.device).reshape([-1] + [1] * (ref.dim() - 1))
        if k == "strength":
            return s
        if k == "neg_strength":
            return -s
        if k == "one_minus_strength":
            return 1.0 - s
        raise ValueError("unknown scalar " + k)
    return float(k)


def _act(x, act, alpha):
    if act == "none":
        return x
    if act == "relu":
        return F.relu(x)
    if act == "lrelu":
        return F.leaky_relu(x, alpha)
    if act == "tanh":
        return torch.tanh(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    raise ValueError(act)


def _emit(kind, ins, out_t, name=None, **attrs):
    if _rec is None:
        return
    op = {"op": kind, "in": [_rec.name_of(t) for t in ins]}
    if isinstance(out_t, (list, tuple)):
        names = name if name is not None else [None] * len(out_t)
        op["out"] = [_rec.new_name(t, n) for t, n in zip(out_t, names)]
    else:
        op["out"] = _rec.new_name(out_t, name)
    op.update(attrs)
    _rec.ops.append(op)


def _act_attrs(act, alpha):
    d = {"act": act}
    if act == "lrelu":
        d["alpha"] = alpha
    return d


def reflect_pad1(x):
    """Pads H and W by one pixel, mirroring without repeating the edge (PyTorch 'reflect');
    a dimension of size 1 repeats its only pixel (PyTorch refuses that case)."""
    H, W = x.shape[-2], x.shape[-1]

    def idx(n):
        if n == 1:
            return [0, 0, 0]
        return [1] + list(range(n)) + [n - 2]

    ih = torch.tensor(idx(H), device=x.device)
    iw = torch.tensor(idx(W), device=x.device)
    return x.index_select(-2, ih).index_select(-1, iw)


def conv(x, mod, act="none", alpha=0.2, pad="reflect", stride=1, name=None):
    """conv2d with a file weight (an nn.Conv2d, k in {1, 3})."""
    k = mod.weight.shape[-1]
    xp = x
    if k == 3:
        xp = reflect_pad1(x) if pad == "reflect" else F.pad(x, (1, 1, 1, 1))
    y = _act(F.conv2d(xp, mod.weight, mod.bias, stride=stride), act, alpha)
    if _rec is not None:
        attrs = {"weight": _rec.param(mod.weight)}
        if mod.bias is not None:
            attrs["bias"] = _rec.param(mod.bias)
        attrs.update({"stride": stride, "pad": pad})
        attrs.update(_act_attrs(act, alpha))
        _emit("conv2d", [x], y, name, **attrs)
    return y


def conv_rt(x, w, act="none", alpha=0.2, name=None):
    """1x1 conv2d with a run-time weight matrix w [B, O, I]: y[o] = sum_i w[o, i] x[i]."""
    y = _act(torch.einsum("boi,bihw->bohw", w, x), act, alpha)
    if _rec is not None:
        attrs = {"weight": _rec.name_of(w), "stride": 1, "pad": "zero"}
        attrs.update(_act_attrs(act, alpha))
        _emit("conv2d", [x], y, name, **attrs)
    return y


def pool(x, mode="avg", name=None):
    if mode == "avg":
        y = F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)
    else:
        y = F.max_pool2d(x, 2, 2, ceil_mode=True)
    _emit("pool", [x], y, name, mode=mode)
    return y


def resize(x, like, mode="bilinear", name=None):
    size = (like.shape[-2], like.shape[-1])
    if mode == "bilinear":
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    else:
        y = F.interpolate(x, size=size, mode="nearest")
    if _rec is not None:
        op = {"op": "resize", "in": [_rec.name_of(x), _rec.name_of(like)],
              "out": _rec.new_name(y, name), "mode": mode}
        _rec.ops.append(op)
    return y


def _bcast(a, b):
    if b.dim() == 2 and a.dim() == 4:  # [B, C] over H, W
        return b[:, :, None, None]
    return b


def add(a, b, ka=1, kb=1, act="none", alpha=0.2, name=None):
    y = _act(_scalar(ka, a) * a + _scalar(kb, a) * _bcast(a, b), act, alpha)
    attrs = {}
    if ka != 1:
        attrs["ka"] = ka
    if kb != 1:
        attrs["kb"] = kb
    attrs.update(_act_attrs(act, alpha))
    _emit("add", [a, b], y, name, **attrs)
    return y


def mul(a, b, act="none", alpha=0.2, name=None):
    y = _act(a * _bcast(a, b), act, alpha)
    _emit("mul", [a, b], y, name, **_act_attrs(act, alpha))
    return y


def div(a, b, act="none", alpha=0.2, name=None):
    y = _act(a / _bcast(a, b), act, alpha)
    _emit("div", [a, b], y, name, **_act_attrs(act, alpha))
    return y


def moments(x, eps=1e-5, mask=None, name=None):
    """Per-channel mean and std; with `mask` ([B, 1, H, W], soft weights), the weighted mean and
    std of the region: sums over pixels weighted by the mask, divided by (sum of the mask + 1e-6)
    so that an empty region gives mean 0 and std sqrt(eps)."""
    if mask is None:
        mean = x.mean(dim=(2, 3))
        var = x.var(dim=(2, 3), unbiased=False)
    else:
        s = mask.sum(dim=(2, 3)) + 1e-6
        mean = (x * mask).sum(dim=(2, 3)) / s
        var = (mask * (x - mean[:, :, None, None]) ** 2).sum(dim=(2, 3)) / s
    std = torch.sqrt(var + eps)
    _emit("moments", [x] if mask is None else [x, mask], [mean, std], name, eps=eps)
    return mean, std


def gram(x, y=None, center=False, sqrt=False, name=None):
    B, C, H, W = x.shape
    xa = x
    ya = x if y is None else y
    if center:
        xa = xa - xa.mean(dim=(2, 3), keepdim=True)
        ya = ya - ya.mean(dim=(2, 3), keepdim=True)
    g = torch.einsum("bchw,bdhw->bcd", xa, ya) / float(H * W)
    if sqrt:
        g = torch.sqrt(torch.clamp(g, min=0.0) + 1e-8)
    ins = [x] if y is None else [x, y]
    _emit("gram", ins, g, name, center=bool(center), sqrt=bool(sqrt))
    return g


def matmul(a, b, ta=False, tb=False, name=None):
    aa = a.transpose(1, 2) if ta else a
    bb = b.transpose(1, 2) if tb else b
    y = torch.bmm(aa, bb)
    _emit("matmul", [a, b], y, name, ta=bool(ta), tb=bool(tb))
    return y


def linear(x, mod, act="none", alpha=0.2, name=None):
    y = _act(F.linear(x.reshape(x.shape[0], -1), mod.weight, mod.bias), act, alpha)
    if _rec is not None:
        attrs = {"weight": _rec.param(mod.weight)}
        if mod.bias is not None:
            attrs["bias"] = _rec.param(mod.bias)
        attrs.update(_act_attrs(act, alpha))
        _emit("linear", [x], y, name, **attrs)
    return y


def softmax(x, scale=1.0, name=None):
    y = torch.softmax(x * scale, dim=-1)
    _emit("softmax", [x], y, name, scale=float(scale))
    return y


def reshape(x, shape, name=None):
    y = x.reshape([x.shape[0]] + list(shape))
    _emit("reshape", [x], y, name, shape=list(shape))
    return y


def concat(xs, name=None):
    y = torch.cat(xs, dim=1)
    _emit("concat", list(xs), y, name)
    return y


def act(x, act="none", alpha=0.2, name=None):
    y = _act(x, act, alpha)
    if act == "none":
        y = y.clone()  # distinct tensor (and name) for an identity copy
    _emit("act", [x], y, name, **_act_attrs(act, alpha))
    return y
