#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Prints the path of the test model in the given directory: model_random.safetensors when it is
a model file (safetensors whose __metadata__ says format=styletransfer-graph), else the smallest
model file there, or nothing. Used by tests/gst/meson.build to pick the small random test model
written by weights/export.py."""
import glob
import json
import os
import struct
import sys


def is_model(path):
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 64 << 20:
                return False
            meta = json.loads(f.read(n)).get("__metadata__", {})
        return meta.get("format") == "styletransfer-graph"
    except (OSError, ValueError, struct.error):
        return False


preferred = os.path.join(sys.argv[1], "model_random.safetensors")
if is_model(preferred):
    # the engine's test model (weights/export.py --random --test-cfg): what the tests are written
    # for (its masked subgraphs included); not chosen by size, which changes with the graph
    print(preferred)
else:
    models = [p for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.safetensors")))
              if is_model(p)]
    if models:
        # the smallest model keeps the tests fast
        print(min(models, key=os.path.getsize))
