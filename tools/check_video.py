#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks that a video file plays as a user would expect, reading it back with GStreamer.

Usage: check_video.py FILE [--like INPUT] [--frames N] [--duration S] [--size WxH] [--quiet]

Decodes FILE (filesrc ! decodebin ! appsink) and checks every decoded frame:
  - there is at least one frame, every frame has a valid timestamp and the timestamps strictly
    increase (an encoder that stamps every buffer alike, or not at all, fails here);
  - the duration (last timestamp + last frame's duration - first timestamp) and the container's
    duration (the discoverer API) are within one frame of the expected duration;
  - the frame count and the frame size are the expected ones.
The expected values come from --frames / --duration / --size, or from --like INPUT (another
video decoded the same way: same frame count, same duration; --frames N then takes the first N
frames of INPUT). Prints one summary line; on a failure prints what is wrong and exits 1.
Needs PyGObject with GStreamer (Debian: python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0).
"""
import argparse
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstPbutils", "1.0")
from gi.repository import Gst, GstPbutils  # noqa: E402

TIMEOUT_S = 300


class VideoError(Exception):
    pass


def decode(path):
    """Decodes every video frame of `path`: a dict with the timestamps (ns), the frame durations
    (ns, or None), the frame size and the caps' frame rate."""
    if not os.path.isfile(path):
        raise VideoError(f"{path} does not exist")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path} is empty")
    pipe = Gst.parse_launch(
        "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=I420 ! "
        "appsink name=sink sync=false emit-signals=false max-buffers=8")
    pipe.get_by_name("src").set_property("location", path)
    sink = pipe.get_by_name("sink")
    info = {"pts": [], "durations": [], "width": None, "height": None, "fps": None}
    pipe.set_state(Gst.State.PLAYING)
    bus = pipe.get_bus()
    try:
        while True:
            sample = sink.emit("try-pull-sample", TIMEOUT_S * Gst.SECOND)
            if sample is None:
                msg = bus.pop_filtered(Gst.MessageType.ERROR)
                if msg is not None:
                    err, dbg = msg.parse_error()
                    raise VideoError(f"{path} does not decode: {err.message} ({dbg})")
                if sink.get_property("eos"):
                    break
                raise VideoError(f"{path}: no frame within {TIMEOUT_S} s")
            buf = sample.get_buffer()
            info["pts"].append(buf.pts)
            info["durations"].append(None if buf.duration == Gst.CLOCK_TIME_NONE else buf.duration)
            if info["width"] is None:
                s = sample.get_caps().get_structure(0)
                info["width"] = s.get_value("width")
                info["height"] = s.get_value("height")
                ok, num, den = s.get_fraction("framerate")
                if ok and num > 0 and den > 0:
                    info["fps"] = (num, den)
    finally:
        pipe.set_state(Gst.State.NULL)
    if not info["pts"]:
        raise VideoError(f"{path} decodes to no frame at all")
    return info


def container_duration(path):
    """The duration the container reports (discoverer), in ns, or None."""
    disc = GstPbutils.Discoverer.new(60 * Gst.SECOND)
    result = disc.discover_uri(Gst.filename_to_uri(os.path.abspath(path)))
    d = result.get_duration()
    return None if d in (0, Gst.CLOCK_TIME_NONE) else d


def frame_ns(info):
    """One frame's duration: from the caps' frame rate, else the median timestamp step."""
    if info["fps"] is not None:
        num, den = info["fps"]
        return Gst.SECOND * den // num
    pts = info["pts"]
    steps = sorted(b - a for a, b in zip(pts, pts[1:]))
    return steps[len(steps) // 2] if steps else None


def check_timestamps(path, info):
    """Valid, strictly increasing timestamps; returns the stream's duration in ns."""
    pts = info["pts"]
    for i, t in enumerate(pts):
        if t == Gst.CLOCK_TIME_NONE:
            raise VideoError(f"{path}: frame {i} of {len(pts)} has no timestamp")
    for i in range(1, len(pts)):
        if pts[i] <= pts[i - 1]:
            raise VideoError(
                f"{path}: timestamps do not increase: frame {i} at {pts[i] / 1e9:.6f} s, "
                f"frame {i - 1} at {pts[i - 1] / 1e9:.6f} s ({len(pts)} frames)")
    last = info["durations"][-1]
    if last is None:
        last = frame_ns(info) or 0
    return pts[-1] + last - pts[0]


def parse_size(text):
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--like", help="expect the frame count and duration of this video")
    ap.add_argument("--frames", type=int, help="expected frame count")
    ap.add_argument("--duration", type=float, help="expected duration in seconds")
    ap.add_argument("--size", type=parse_size, help="expected frame size WIDTHxHEIGHT")
    ap.add_argument("--quiet", action="store_true", help="print nothing when the file is good")
    args = ap.parse_args()
    Gst.init(None)
    try:
        info = decode(args.file)
        duration = check_timestamps(args.file, info)
        frames = len(info["pts"])
        one = frame_ns(info)
        expect_frames, expect_ns = args.frames, None
        if args.duration is not None:
            expect_ns = int(args.duration * Gst.SECOND)
        if args.like:
            ref = decode(args.like)
            check_timestamps(args.like, ref)
            n = len(ref["pts"]) if args.frames is None else min(args.frames, len(ref["pts"]))
            expect_frames = n
            if expect_ns is None:
                end = ref["pts"][n] if n < len(ref["pts"]) else None
                if end is None:
                    last = ref["durations"][n - 1] or frame_ns(ref) or 0
                    end = ref["pts"][n - 1] + last
                expect_ns = end - ref["pts"][0]
        if expect_frames is not None and frames != expect_frames:
            raise VideoError(f"{args.file}: {frames} frames decoded, expected {expect_frames}")
        if args.size and (info["width"], info["height"]) != args.size:
            raise VideoError(f"{args.file}: frames are {info['width']}x{info['height']}, "
                             f"expected {args.size[0]}x{args.size[1]}")
        cont = container_duration(args.file)
        if expect_ns is not None:
            tol = one if one else Gst.SECOND // 30
            if abs(duration - expect_ns) > tol:
                raise VideoError(f"{args.file}: the frames span {duration / 1e9:.3f} s, expected "
                                 f"{expect_ns / 1e9:.3f} s (within one frame, {tol / 1e9:.3f} s)")
            if cont is not None and abs(cont - expect_ns) > tol:
                raise VideoError(f"{args.file}: the container says {cont / 1e9:.3f} s, expected "
                                 f"{expect_ns / 1e9:.3f} s (within one frame, {tol / 1e9:.3f} s)")
    except VideoError as e:
        print(f"check_video: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        fps = f", {info['fps'][0] / info['fps'][1]:.3g} fps" if info["fps"] else ""
        cont_s = f"{cont / 1e9:.3f} s" if cont is not None else "unknown"
        print(f"{args.file}: {frames} frames, {info['width']}x{info['height']}{fps}, "
              f"duration {duration / 1e9:.3f} s (container {cont_s}), "
              f"timestamps strictly increasing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
