#!/usr/bin/python3
"""Packs what a lent GPU machine needs to train and to prove the engine into gpu-pack/ (ignored by
git, sent with the `run` tool's carry), within the machine's 64 MiB for everything that travels.

    /usr/bin/python3 tools/gpu_pack.py [--budget-mib 30] [--build build]

gpu-pack/data/    the training split in train.py's layout (MANIFEST.tsv, style_artists.tsv,
                  content/, style/), so that train.py's hash split is the same there: content
                  photos with their short side at --content-short (JPEG), the training style views
                  (train.style_view: 256x256 centre crops, JPEG), validation files left out. Photos
                  are added (in hash order) until --budget-mib is reached.
gpu-pack/teacher.safetensors   the teacher's five layers train.py uses (relu1_1..relu3_1)
gpu-pack/bin/     the engine's test programs and st-bench built here (they need only libc and the
                  Vulkan loader), the test data they read, and run-engine.sh, which runs them with
                  the arguments meson gives them
gpu-pack/gl/      Debian's Vulkan loader (libvulkan1), unpacked there (the GPU image has none)

tools/gpu_train.sh is the command that runs there (weights/README.md, "Training on a lent GPU
machine").
"""

import argparse
import io
import json
import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "weights"))

import st_io  # noqa: E402
import train as T  # noqa: E402

ENGINE_TESTS = ("test_vk", "test_model", "test_net", "test-ops")


def jpeg(img, quality):
    b = io.BytesIO()
    img.save(b, "JPEG", quality=quality)
    return b.getvalue()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def pack_data(out, budget, content_short, quality):
    c_train, _, s_train, _ = T.splits()
    used = 0
    manifest = ["path\tpacked by tools/gpu_pack.py"]
    artists = ["path\tartist"]
    for a, files in sorted(s_train.items()):
        for p in files:
            data = jpeg(T.style_view(p), quality)
            write(os.path.join(out, p), data)
            used += len(data)
            manifest.append(p)
            artists.append("%s\t%s" % (p, a.split(":")[0] if a.startswith("unknown:") else a))
    n_styles = len(manifest) - 1
    n_photos = 0
    for p in sorted(c_train, key=lambda p: T._hash01("pack:" + p)):
        img = T.load_rgb(p)
        w, h = img.size
        s = content_short / min(w, h)
        if s < 1:
            img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
        data = jpeg(img, quality)
        if used + len(data) > budget:
            break
        write(os.path.join(out, p), data)
        used += len(data)
        manifest.append(p)
        n_photos += 1
    write(os.path.join(out, "MANIFEST.tsv"), ("\n".join(manifest) + "\n").encode())
    write(os.path.join(out, "style_artists.tsv"), ("\n".join(artists) + "\n").encode())
    return n_photos, len(c_train), n_styles, used


def pack_teacher(out):
    t, meta = st_io.read(T.TEACHER)
    keep = {k: v for k, v in t.items()
            if k.split(".")[0] in ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2",
                                   "block3_conv1")}
    st_io.write(out, keep, meta)


def pack_engine(build, out):
    """The engine's tests and st-bench with meson's arguments, paths made relative to the
    repository root (the device runs them from there)."""
    tests = json.loads(subprocess.check_output(["meson", "introspect", "--tests", build]))
    os.makedirs(out, exist_ok=True)
    lines = ["#!/bin/bash", "# written by tools/gpu_pack.py: the engine's tests as meson runs them",
             "cd \"$(dirname \"$0\")/../..\"", "mkdir -p /tmp/st-build/tests/compute", "fail=0"]
    for t in tests:
        exe = os.path.basename(t["cmd"][0])
        if exe not in ENGINE_TESTS:
            continue
        subprocess.run(["strip", "-o", os.path.join(out, exe), t["cmd"][0]], check=True)
        def rel(v):  # the build folder's files go to /tmp there, the sources are relative
            return v.replace(os.path.abspath(build), "/tmp/st-build").replace(ROOT + "/", "")

        args = [rel(x) for x in t["cmd"][1:]]
        # no validation layers there (the engine's results are checked against the references)
        env = " ".join("%s=%s" % (k, shlex.quote(rel(v))) for k, v in t.get("env", {}).items()
                       if not k.startswith(("VK_", "ST_VALIDATION", "ASAN", "UBSAN", "LSAN")))
        lines.append("echo '== %s'" % t["name"])
        lines.append("env %s timeout 120 gpu-pack/bin/%s %s || { echo 'FAILED: %s'; fail=1; }" % (
            env, exe, " ".join(shlex.quote(a) for a in args), t["name"]))
    subprocess.run(["strip", "-o", os.path.join(out, "st-bench"),
                    os.path.join(build, "compute", "st-bench")], check=True)
    lines.append("exit $fail")
    write(os.path.join(out, "run-engine.sh"), ("\n".join(lines) + "\n").encode())
    os.chmod(os.path.join(out, "run-engine.sh"), 0o755)


def pack_loader(out):
    os.makedirs(out, exist_ok=True)
    # as root, apt's sandbox user cannot write here: download unsandboxed, quietly
    subprocess.run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", "libvulkan1"],
                   cwd=out, check=True, stdout=subprocess.DEVNULL)


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "gpu-pack"))
    ap.add_argument("--budget-mib", type=float, default=29.0, help="for the training data")
    ap.add_argument("--content-short", type=int, default=240)
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    n, total, ns, used = pack_data(os.path.join(a.out, "data"), a.budget_mib * 2**20,
                                   a.content_short, a.quality)
    print("data: %d of %d training photos, %d style views, %.1f MiB" % (n, total, ns, used / 2**20))
    pack_teacher(os.path.join(a.out, "teacher.safetensors"))
    pack_engine(a.build, os.path.join(a.out, "bin"))
    pack_loader(os.path.join(a.out, "gl"))
    tree = sum(os.path.getsize(os.path.join(ROOT, f)) for f in subprocess.check_output(
        ["git", "-C", ROOT, "ls-files", "-z"]).decode().split("\0") if f and
        os.path.isfile(os.path.join(ROOT, f)))
    print("gpu-pack: %.1f MiB; with the tracked tree (%.1f MiB) %.1f MiB of the 64 MiB that travel"
          % (du(a.out) / 2**20, tree / 2**20, (du(a.out) + tree) / 2**20))


if __name__ == "__main__":
    main()
