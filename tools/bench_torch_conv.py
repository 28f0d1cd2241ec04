#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""PyTorch CPU reference timings for one 3x3 convolution with bias + ReLU (reflect padding),
batch 1, the shapes of `test-ops bench` / `st-bench --conv` (issue 5 targets).

Usage: tools/bench_torch_conv.py [--threads 2] [--iters 10] [--shape WxH:CIN:COUT ...]

For every shape it prints the median wall time of `--iters` runs after 2 warm-up runs, for the
default (contiguous NCHW) and the channels-last (NHWC) memory format, and the CPU time of the
process per run (PyTorch's intra-op threads included), comparable with the `cpu` column of
`test-ops bench`.
"""
import argparse
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

DEFAULT_SHAPES = ["1280x720:16:16", "640x360:32:32", "320x180:64:64", "320x180:128:128"]


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def parse_shape(s):
    try:
        size, cin, cout = s.split(":")
        w, h = size.lower().split("x")
        return int(w), int(h), int(cin), int(cout)
    except ValueError:
        sys.exit("bench_torch_conv.py: bad shape %r (expected WxH:CIN:COUT)" % s)


def bench(w, h, cin, cout, channels_last, iters):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, cin, h, w, generator=g) * 2 - 1
    wt = (torch.rand(cout, cin, 3, 3, generator=g) * 2 - 1) * 0.1
    b = torch.rand(cout, generator=g) * 2 - 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        wt = wt.contiguous(memory_format=torch.channels_last)

    def run():
        return F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), wt, b))

    with torch.inference_mode():
        for _ in range(2):
            run()
        walls, cpus = [], []
        for _ in range(iters):
            t0, c0 = time.perf_counter(), cpu_seconds()
            run()
            walls.append(time.perf_counter() - t0)
            cpus.append(cpu_seconds() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--shape", action="append", help="WxH:CIN:COUT (repeatable)")
    args = ap.parse_args()
    if args.threads < 1 or args.iters < 1:
        sys.exit("bench_torch_conv.py: --threads and --iters must be >= 1")
    torch.set_num_threads(args.threads)
    print("torch %s, %d threads" % (torch.__version__, torch.get_num_threads()))
    for s in args.shape or DEFAULT_SHAPES:
        w, h, cin, cout = parse_shape(s)
        gflop = 2.0 * w * h * cin * cout * 9 * 1e-9
        for cl in (False, True):
            wall, cpu = bench(w, h, cin, cout, cl, args.iters)
            print("conv3x3 %4dx%-4d %3d->%-3d %-13s: wall %8.2f ms %6.1f GFLOP/s | cpu %8.2f ms "
                  "(median of %d)" % (w, h, cin, cout, "channels-last" if cl else "NCHW",
                                      wall * 1e3, gflop / wall, cpu * 1e3, args.iters))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
