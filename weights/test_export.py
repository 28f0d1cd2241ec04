#!/usr/bin/python3
"""Checks the exporter: the graph in an exported file, run by the independent interpreter
run_graph.py, gives the same outputs as the nn model (weights/model.py) on the same weights.

    /usr/bin/python3 -m unittest weights/test_export.py      (or run this file directly)
"""

import json
import os
import struct
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import export as E  # noqa: E402
import graph as G  # noqa: E402
import model as M  # noqa: E402
import run_graph as R  # noqa: E402

torch.set_num_threads(2)


def nn_run(net, content, style, steps, strength, prev=None):
    G.set_strength(strength)
    with torch.no_grad():
        S = net.style(style[None])
        outs, Fr = net(content[None], None, steps, S=S,
                       prev_res=None if prev is None else prev[None])
    return outs[-1][0], Fr.get("residual")


class ExportTest(unittest.TestCase):
    CFG = M.TEST_CFG

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.tmp.name, "m.safetensors")
        cls.net = M.StyleNet(cls.CFG)
        E.randomize(cls.net, 7)
        E.export(cls.net, cls.path)  # rounds the conv weights in cls.net to the stored fp16
        cls.gm = R.Model(cls.path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_container(self):
        with open(self.path, "rb") as f:
            data = f.read()
        n = struct.unpack("<Q", data[:8])[0]
        hdr = json.loads(data[8:8 + n])
        meta = hdr.pop("__metadata__")
        self.assertEqual(meta["format"], "styletransfer-graph")
        self.assertEqual(meta["format_version"], "1")
        spans = []
        size = {"F32": 4, "F16": 2}
        for name, e in hdr.items():
            a, b = e["data_offsets"]
            self.assertEqual(b - a, int(np.prod(e["shape"])) * size[e["dtype"]], name)
            spans.append((a, b))
            if e["dtype"] == "F16":
                self.assertEqual(len(e["shape"]), 4, name + ": only conv weights are F16")
        spans.sort()
        for (a0, b0), (a1, b1) in zip(spans, spans[1:]):
            self.assertLessEqual(b0, a1)
        self.assertLessEqual(spans[-1][1], len(data) - 8 - n)
        g = json.loads(meta["graph"])
        # every file tensor an op names exists; every name an op reads was assigned before
        for sname, sg in g["subgraphs"].items():
            for op in sg["ops"]:
                for attr in ("bias",):
                    if op.get(attr):
                        self.assertIn(op[attr], hdr, sname)
                if op["op"] == "linear":
                    self.assertIn(op["weight"], hdr)

    def test_names_defined(self):
        g = self.gm.graph
        style_out = set(g["subgraphs"]["style"]["outputs"])
        frame = set(g["subgraphs"]["initial"]["outputs"])
        for sname in ["style", "initial"] + g["refine"]:
            sg = g["subgraphs"][sname]
            visible = (style_out if sname != "style" else set())
            if sname.startswith("refine"):
                visible = visible | frame  # earlier state; the subgraph may replace it
            own = set(sg["inputs"])  # names assigned in this subgraph run
            known = visible | own
            for op in sg["ops"]:
                for n in op["in"]:
                    self.assertIn(n, known, "%s: %s read before assignment" % (sname, n))
                w = op.get("weight")
                if w is not None and w not in self.gm.tensors:
                    self.assertIn(w, known)
                outs = op["out"] if isinstance(op["out"], list) else [op["out"]]
                for n in outs:
                    if n in own:
                        self.assertEqual(n, "x", "%s: %s assigned twice" % (sname, n))
                        self.assertIs(op, sg["ops"][-1])
                    own.add(n)
                    known.add(n)
            for o in sg["outputs"]:
                self.assertIn(o, known)
            if sname.startswith("refine"):
                frame |= set(sg["outputs"])

    def check(self, h, w, steps, strength):
        content = E.synthetic_image(h, w, 11 + h + w)
        style = E.synthetic_image(48, 64, 3)
        ref, _ = nn_run(self.net, content, style, steps, strength)
        self.gm.set_style(style)
        y, _ = self.gm.run_frame(content, steps, strength)
        self.assertEqual(tuple(y.shape), tuple(ref.shape))
        err = (y - ref).abs().max().item()
        self.assertLess(err, 1e-4, "%dx%d steps %d strength %g: %g" % (w, h, steps, strength, err))
        self.assertGreater(ref.std().item(), 1e-3)  # not degenerate

    def test_graph_matches_model(self):
        for (h, w) in [(5, 7), (17, 33), (40, 56), (9, 130)]:
            for steps in (0, 1, 2, 4):
                self.check(h, w, steps, 1.0)
        self.check(40, 56, 3, 0.5)
        self.check(40, 56, 3, 0.0)

    def test_masked_matches_model(self):
        """Two styles by a mask: the masked subgraphs in the interpreter against the nn model; a
        mask of ones gives the one-style output, a mask of zeros the second style's."""
        if "masked" not in self.gm.graph:
            self.skipTest("no masked subgraphs for this configuration")
        style, style2 = E.synthetic_image(48, 64, 3), E.synthetic_image(64, 48, 4)
        self.gm.set_style(style, style2)
        G.set_strength(1.0)
        with torch.no_grad():
            S, S2 = self.net.style(style[None]), self.net.style(style2[None])
        for (h, w), steps, strength in [((17, 33), 0, 1.0), ((40, 56), 3, 1.0), ((40, 56), 2, 0.5),
                                        ((9, 130), 1, 1.0)]:
            content = E.synthetic_image(h, w, 5 + h)
            yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w),
                                    indexing="ij")
            mask = (0.5 + 3 * (xx - 0.5) + 0.3 * torch.sin(9 * yy)).clamp(0, 1)[None]
            G.set_strength(strength)
            with torch.no_grad():
                outs, _ = self.net(content[None], None, steps, S=S, mask=mask[None], S2=S2)
            y, _ = self.gm.run_frame(content, steps, strength, mask=mask)
            err = (y - outs[-1][0]).abs().max().item()
            self.assertLess(err, 1e-4, "masked %dx%d steps %d: %g" % (w, h, steps, err))
            for m, st in ((1.0, style), (0.0, style2)):
                one, _ = nn_run(self.net, content, st, steps, strength)
                y, _ = self.gm.run_frame(content, steps, strength, mask=torch.full_like(mask, m))
                err = (y - one).abs().max().item()
                self.assertLess(err, 2e-3, "mask of %g %dx%d steps %d: %g" % (m, w, h, steps, err))
        self.gm.set_style(style)

    def test_strength_changes_output(self):
        content = E.synthetic_image(32, 48, 5)
        style = E.synthetic_image(48, 64, 3)
        self.gm.set_style(style)
        a, _ = self.gm.run_frame(content, 3, 1.0)
        b, _ = self.gm.run_frame(content, 3, 0.3)
        self.assertGreater((a - b).abs().mean().item(), 1e-3)

    def test_temporal(self):
        style = E.synthetic_image(48, 64, 3)
        c1 = E.synthetic_image(40, 56, 1)
        c2 = E.synthetic_image(40, 56, 2)
        _, res1 = nn_run(self.net, c1, style, 3, 1.0)
        ref2, _ = nn_run(self.net, c2, style, 3, 1.0, prev=res1[0])
        self.gm.set_style(style)
        _, st = self.gm.run_frame(c1, 3, 1.0)
        y2, _ = self.gm.run_frame(c2, 3, 1.0, prev_residual=st["residual"])
        self.assertLess((y2 - ref2).abs().max().item(), 1e-4)
        y2_off, _ = self.gm.run_frame(c2, 3, 1.0)
        self.assertGreater((y2 - y2_off).abs().mean().item(), 1e-4)  # the state is used

    def test_committed_test_data(self):
        d = os.path.join(HERE, "..", "tests", "data")
        idx_path = os.path.join(d, "index.json")
        if not os.path.exists(idx_path):
            self.skipTest("no tests/data")
        idx = json.load(open(idx_path))
        gm = R.Model(os.path.join(d, idx["model"]))

        def load(name, shape):
            return torch.from_numpy(np.fromfile(os.path.join(d, name), "<f4").reshape(shape))

        gm.set_style(load(idx["style"]["file"], idx["style"]["shape"]))
        for c in idx["cases"]:
            y, _ = gm.run_frame(load(c["content"], c["content_shape"]), c["steps"], c["strength"])
            ref = load(c["output"], c["output_shape"])
            self.assertLess((y - ref).abs().max().item(), 1e-4, c["output"])


class ExportGateOnlyTest(ExportTest):
    """The shipped configuration's temporal path: the previous residual reaches the refine steps
    through the gate only (prev_input off)."""
    CFG = dict(M.TEST_CFG, prev_input=False)

    def test_committed_test_data(self):
        self.skipTest("tests/data holds the TEST_CFG model")

    def test_drop_prev_input(self):
        # a prev_input model converted by drop_prev_input loads into this configuration and
        # computes exactly what the original computes with a zero state input
        old = M.StyleNet(M.TEST_CFG)
        E.randomize(old, 9)
        cfg, state = M.drop_prev_input(old.cfg, old.state_dict())
        self.assertFalse(cfg["prev_input"])
        new = M.StyleNet(cfg)
        new.load_state_dict(state)
        content, style = E.synthetic_image(24, 40, 4), E.synthetic_image(48, 64, 3)
        a, _ = nn_run(old, content, style, 2, 1.0)
        b, _ = nn_run(new, content, style, 2, 1.0)
        self.assertLess((a - b).abs().max().item(), 1e-6)


class ExportMaskInitialBlendTest(ExportTest):
    """Two styles by a mask with the shipped model's masked initial image: each region's EFA
    output decoded on its own and the two images blended by the mask (mask_initial_blend)."""
    CFG = dict(M.TEST_CFG, prev_input=False, mask_initial_blend=True)

    def test_committed_test_data(self):
        self.skipTest("tests/data holds the TEST_CFG model")


class ExportWCTTest(ExportTest):
    """The WCT base of the EFA block (Newton-Schulz square roots in the graph)."""
    CFG = dict(M.TEST_CFG, prev_input=False, efa_base="wct")

    def test_committed_test_data(self):
        self.skipTest("tests/data holds the TEST_CFG model")

    def test_wct_matches_closed_form(self):
        # the graph's Newton-Schulz whitening and colouring against an eigendecomposition:
        # fused = std_s * (R_s + rI)^(1/2) (R_c + rI)^(-1/2) (fc - mu_c) / std_c + mu_s
        net = M.StyleNet(self.CFG)  # the correction W_u t starts at zero
        g = torch.Generator().manual_seed(1)

        def features(h, w, offset):
            mix = torch.randn(64, 64, generator=g) * 0.3 + torch.eye(64)
            return torch.einsum("dc,bchw->bdhw", mix, torch.randn(1, 64, h, w, generator=g)) + offset

        fs, fc = features(20, 24, 1.0), features(16, 20, -0.5)
        G.set_strength(1.0)
        with torch.no_grad():
            fused = net.efa(fc, net.efa.style(fs))

        def normalised(f):
            f = f.reshape(64, -1).double()
            mu, sd = f.mean(1, keepdim=True), (f.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()
            return (f - mu) / sd, mu, sd

        def power(r, p):
            e, v = torch.linalg.eigh(r + net.efa.wct_ridge * torch.eye(64, dtype=r.dtype))
            return (v * e.pow(p)) @ v.t()

        ns, mu_s, sd_s = normalised(fs)
        nc, _, _ = normalised(fc)
        t = power(ns @ ns.t() / ns.shape[1], 0.5) @ power(nc @ nc.t() / nc.shape[1], -0.5)
        ref = (t @ nc) * sd_s + mu_s
        err = (fused.reshape(64, -1).double() - ref).norm() / ref.norm()
        self.assertLess(err.item(), 1e-4)


class ExportChainTest(ExportTest):
    """The closed-form chain as the initial image (WCT at f3, f2, f1, each decoded)."""
    CFG = dict(M.TEST_CFG, prev_input=False, initial="chain")

    def test_committed_test_data(self):
        self.skipTest("tests/data holds the TEST_CFG model")

    def test_chain_level_matches_closed_form(self):
        # one level's Newton-Schulz whitening and colouring against an eigendecomposition:
        # out = std_s * (R_s + rI)^(1/2) (R_c + rI)^(-1/2) (fc - mu_c) / std_c + mu_s
        net = M.StyleNet(self.CFG)
        lv = net.chain[1]
        g = torch.Generator().manual_seed(2)
        c = lv.c

        def features(h, w, offset):
            mix = torch.randn(c, c, generator=g) * 0.3 + torch.eye(c)
            return torch.einsum("dc,bchw->bdhw", mix, torch.randn(1, c, h, w, generator=g)) + offset

        fs, fc = features(20, 24, 1.0), features(16, 20, -0.5)
        G.set_strength(1.0)
        with torch.no_grad():
            out = lv(fc, lv.style(fs, "s"), "s")

        def normalised(f):
            f = f.reshape(c, -1).double()
            mu, sd = f.mean(1, keepdim=True), (f.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()
            return (f - mu) / sd, mu, sd

        def power(r, p):
            e, v = torch.linalg.eigh(r + lv.ridge * torch.eye(c, dtype=r.dtype))
            return (v * e.pow(p)) @ v.t()

        ns, mu_s, sd_s = normalised(fs)
        nc, _, _ = normalised(fc)
        t = power(ns @ ns.t() / ns.shape[1], 0.5) @ power(nc @ nc.t() / nc.shape[1], -0.5)
        ref = (t @ nc) * sd_s + mu_s
        err = (out.reshape(c, -1).double() - ref).norm() / ref.norm()
        self.assertLess(err.item(), 1e-4)


if __name__ == "__main__":
    unittest.main()
