#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs one example of examples/ headless on a few small frames and checks what it wrote.

Usage: test_examples.py NAME   (NAME: webcam, transcode, side-by-side, stylize-image,
                                paint-background, paint-faces,
                                switch-style-c, switch-style-py)

Environment (set by tests/examples/meson.build): EXAMPLES_DIR (the examples' source dir),
OUT_DIR (a scratch dir), TEST_DATA (tests/data), SWITCH_STYLE (the built C program),
PYTHON_GI (a python3 with PyGObject), GST_LAUNCH (gst-launch-1.0), plus GST_PLUGIN_PATH and
ST_MODEL_PATH (the small random test model) and ST_VALIDATION=1 ST_VALIDATION_FATAL=1.

Only the Python standard library is used: PNG files are decoded here (zlib), videos are decoded to
raw RGBA with gst-launch-1.0 (filesrc ! qtdemux/matroskademux ! decodebin ! videoconvert).
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

EXAMPLES = os.environ["EXAMPLES_DIR"]
OUT = os.environ["OUT_DIR"]
DATA = os.environ["TEST_DATA"]
GST_LAUNCH = os.environ.get("GST_LAUNCH", "gst-launch-1.0")
STYLE_A = os.path.join(DATA, "style-pinwheel.jpg")
STYLE_B = os.path.join(DATA, "style-spokes.png")
SAMPLE = os.path.join(EXAMPLES, "sample.mkv")
IMAGE = os.path.join(EXAMPLES, "default-style.jpg")
MISSING = os.path.join(OUT, "no-such-style.jpg")
TIMEOUT = 120
SMALL = "processing-size=64"
ROOT = os.path.dirname(EXAMPLES)
CHECK_VIDEO = os.path.join(ROOT, "tools", "check_video.py")


class Failure(Exception):
    pass


class Skip(Exception):
    """The example needs something this machine lacks (exit status 77: meson reports a skip)."""


def check(cond, what):
    if not cond:
        raise Failure(what)
    print(f"ok: {what}")


def run(cmd, env=None, expect=0):
    """Runs a command, prints its output; expect: an exit status, or 'nonzero'."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    shown = " ".join(f"{k}='{v}'" for k, v in (env or {}).items())
    print(f"$ {shown} {' '.join(cmd)}", flush=True)
    p = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=TIMEOUT)
    sys.stdout.write(p.stdout)
    sys.stdout.write(p.stderr)
    if expect == "nonzero":
        check(p.returncode != 0, f"{os.path.basename(cmd[0])} failed (exit status {p.returncode})")
    else:
        check(p.returncode == expect, f"{os.path.basename(cmd[0])} exit status {p.returncode}")
    return p


# ---- images ------------------------------------------------------------------------------------


def read_png(path):
    """Decodes an 8-bit PNG (grey, RGB, grey+alpha or RGBA; no interlacing): (w, h, channels,
    pixels as bytes). Checks the signature, every chunk's CRC, and the image data size."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failure(f"{path}: not a PNG file")
    pos, idat, ihdr, end = 8, b"", None, False
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        if zlib.crc32(kind + body) != crc:
            raise Failure(f"{path}: bad CRC in chunk {kind!r}")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            end = True
            break
        pos += 12 + n
    if ihdr is None or not end:
        raise Failure(f"{path}: truncated PNG")
    w, h, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace != 0:
        raise Failure(f"{path}: unsupported PNG (depth {depth}, colour type {ctype})")
    raw = zlib.decompress(idat)
    stride = w * channels
    if len(raw) != h * (stride + 1):
        raise Failure(f"{path}: image data has {len(raw)} bytes, expected {h * (stride + 1)}")
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
            elif ftype != 0:
                raise Failure(f"{path}: bad filter type {ftype}")
        out[y * stride : (y + 1) * stride] = line
        prev = line
    return w, h, channels, bytes(out)


def rgb(w, h, channels, pixels):
    """The RGB bytes of an image with 3 or 4 channels."""
    if channels == 3:
        return pixels
    return bytes(b for i, b in enumerate(pixels) if i % 4 != 3)


def crop_rgb(w, h, pixels, x0, x1, y0=0, y1=None):
    """Columns x0..x1-1 (of rows y0..y1-1, all by default) of an RGB image."""
    return b"".join(pixels[(y * w + x0) * 3 : (y * w + x1) * 3]
                    for y in range(y0, h if y1 is None else y1))


def mean_abs_diff(a, b):
    assert len(a) == len(b)
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def spread(pixels):
    """Standard deviation of the values: 0 for a flat image."""
    n = len(pixels)
    mean = sum(pixels) / n
    return (sum((v - mean) ** 2 for v in pixels) / n) ** 0.5


def check_png(path, w, h):
    check(os.path.isfile(path) and os.path.getsize(path) > 0, f"{path} written")
    pw, ph, ch, px = read_png(path)
    check((pw, ph) == (w, h), f"{os.path.basename(path)} decodes, {pw}x{ph} (expected {w}x{h})")
    pixels = rgb(pw, ph, ch, px)
    name = os.path.basename(path)
    check(spread(pixels) > 2.0, f"{name} is not flat (spread {spread(pixels):.1f})")
    return pixels


def decode_rgba(args, path, w=None, h=None):
    """Decodes with gst-launch to raw RGBA (optionally scaled); returns the bytes."""
    scale = []
    if w:
        scale = ["videoscale", "!", f"video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1", "!"]
    cmd = [GST_LAUNCH, "-q", *args, "!", "videoconvert", "!", *scale]
    cmd += ["videoconvert", "!", "video/x-raw,format=RGBA", "!", "filesink", f"location={path}"]
    run(cmd)
    with open(path, "rb") as f:
        return f.read()


def check_video(path, frames, size, like=None):
    """Reads a video back with GStreamer (tools/check_video.py): `frames` frames of `size`
    (WxH), strictly increasing timestamps, the duration of `frames` frames at 30/1 (or of the
    first `frames` frames of `like`), in the stream and in the container."""
    cmd = [os.environ.get("PYTHON_GI") or "/usr/bin/python3", CHECK_VIDEO, path,
           "--frames", str(frames), "--size", size]
    cmd += ["--like", like] if like else ["--duration", str(frames / 30)]
    p = run(cmd)
    check("timestamps strictly increasing" in p.stdout,
          f"{os.path.basename(path)} plays: {frames} frames, increasing timestamps, duration")


def drop_alpha(rgba):
    return bytes(b for i, b in enumerate(rgba) if i % 4 != 3)


def out(name):
    return os.path.join(OUT, name)


# ---- the examples ------------------------------------------------------------------------------


def test_webcam():
    script = os.path.join(EXAMPLES, "webcam.sh")
    env = {
        "ST_SRC": "videotestsrc num-buffers=5 ! video/x-raw,width=96,height=64",
        "ST_SINK": f"pngenc snapshot=false ! multifilesink location={out('frame-%02d.png')}",
        "ST_PROPS": SMALL,
    }
    run([script, STYLE_A], env)
    for i in range(5):
        check_png(out(f"frame-{i:02d}.png"), 96, 64)
    check(not os.path.exists(out("frame-05.png")), "exactly 5 frames")
    # a webcam's caps (YUY2, 4:2:2) go to the element with no videoconvert in front of it
    launcher = out("launch.sh")
    with open(launcher, "w") as f:
        f.write('#!/bin/sh\necho "$@" > "%s"\nexec %s "$@"\n' % (out("launch.args"), GST_LAUNCH))
    os.chmod(launcher, 0o755)
    yuy2 = {"ST_SRC": "videotestsrc num-buffers=3 ! video/x-raw,format=YUY2,width=96,height=64",
            "ST_SINK": "fakesink", "GST_LAUNCH": launcher}
    run([script, STYLE_A], dict(env, **yuy2))
    with open(out("launch.args")) as f:
        args = f.read()
    front = args[:args.index("styletransfer")]
    check("format=YUY2" in front and "videoconvert" not in front,
          "YUY2 from the source goes to the element unconverted")
    # ST_CONVERT=1: a format the element does not take (RGB16) is converted in front of it
    rgb16 = dict(yuy2, ST_SRC="videotestsrc num-buffers=3 ! video/x-raw,format=RGB16,width=96,"
                 "height=64", ST_CONVERT="1")
    run([script, STYLE_A], dict(env, **rgb16))
    with open(out("launch.args")) as f:
        args = f.read()
    check("videoconvert" in args[:args.index("styletransfer")], "ST_CONVERT=1 converts first")
    p = run([script, STYLE_A], dict(env, **dict(rgb16, ST_CONVERT="0")), expect="nonzero")
    check("could not link" in (p.stdout + p.stderr).lower(),
          "without ST_CONVERT an unsupported format fails to link, saying so")
    # the default sink, replaced by fakesink
    run([script, STYLE_B], dict(env, ST_SINK="fakesink"))
    p = run([script, MISSING], dict(env, ST_SINK="fakesink"), expect="nonzero")
    check("does not exist" in p.stderr, "a missing style is reported")


def make_clip(path, frames, size="160x120"):
    """A short H.264 clip in MP4 (the SMPTE pattern, moving; 160x120 unless `size` says WxH),
    checked to play. (MP4 keeps exact 1/30 s timestamps; Matroska rounds them to ms, and 0.067 +
    0.033 s of a third frame reaches past 0.1 s, so a compositor at 30/1 makes a fourth frame.)"""
    w, h = size.split("x")
    run([GST_LAUNCH, "-q", "videotestsrc", f"num-buffers={frames}", "pattern=smpte",
         "horizontal-speed=4", "!", f"video/x-raw,width={w},height={h},framerate=30/1", "!",
         "x264enc", "bitrate=2000", "!", "mp4mux", "!", "filesink", f"location={path}"])
    check_video(path, frames, size)
    return path


def test_transcode():
    script = os.path.join(EXAMPLES, "transcode.sh")
    clip = make_clip(out("in.mp4"), 6)
    env = {"ST_SIZE": "96x64", "ST_PROPS": SMALL}
    mp4 = out("out.mp4")
    p = run([script, clip, mp4, STYLE_A], env)
    check("progressreport" in p.stdout, "the progress is reported")
    check(os.path.isfile(mp4) and os.path.getsize(mp4) > 0, "the MP4 is not empty")
    with open(mp4, "rb") as f:
        check(f.read(8)[4:] == b"ftyp", "the MP4 starts with an ftyp box")
    frames = decode_rgba(["filesrc", f"location={mp4}", "!", "qtdemux", "!", "decodebin"],
                         out("out.rgba"))
    check(len(frames) == 6 * 96 * 64 * 4,
          f"the MP4 demuxes and decodes to 6 96x64 frames ({len(frames)} bytes)")
    check_video(mp4, 6, "96x64", like=clip)
    orig = decode_rgba(["filesrc", f"location={clip}", "!", "decodebin"], out("in.rgba"), 96, 64)
    for i in (0, 5):
        frame = drop_alpha(frames[i * 96 * 64 * 4 : (i + 1) * 96 * 64 * 4])
        check(spread(frame) > 2.0, f"frame {i} is not flat")
        d = mean_abs_diff(frame, drop_alpha(orig[i * 96 * 64 * 4 : (i + 1) * 96 * 64 * 4]))
        check(d > 8.0, f"frame {i} is stylized (differs from the input by {d:.1f})")

    webm = out("out.webm")
    run([script, clip, webm, STYLE_B], env)
    frames = decode_rgba(["filesrc", f"location={webm}", "!", "matroskademux", "!", "decodebin"],
                         out("webm.rgba"))
    check(len(frames) == 6 * 96 * 64 * 4, "the WebM demuxes and decodes to 6 96x64 frames")
    check_video(webm, 6, "96x64", like=clip)
    mkv = out("out.mkv")
    run([script, clip, mkv, STYLE_B], env)
    check_video(mkv, 6, "96x64", like=clip)

    p = run([script, clip, out("out.avi")], env, expect=2)
    check("unknown output format" in p.stderr, "an unknown output format is reported")
    p = run([script, out("missing.mkv"), mp4], env, expect=1)
    check("does not exist" in p.stderr, "a missing input is reported")
    p = run([script, clip, out("bad.mp4"), MISSING], env, expect="nonzero")
    check("does not exist" in p.stderr, "a missing style is reported")


def test_main_job():
    """tools/main-job.sh (what ./run.sh runs after the build) on a 6-frame clip at 96x64 instead
    of the bundled one: its file is checked by the script itself and again here."""
    mp4 = out("main.mp4")
    clip = make_clip(out("in.mp4"), 6)
    env = {"ST_INPUT": clip, "ST_SIZE": "96x64", "ST_PROPS": SMALL}
    p = run([os.path.join(ROOT, "tools", "main-job.sh"), mp4], env)
    check("progressreport" in p.stdout, "the progress is reported")
    check("6 frames, 96x64" in p.stdout and "timestamps strictly increasing" in p.stdout,
          "main-job.sh verified its file and printed its frame count and size")
    check(" KiB" in p.stdout and " s:" in p.stdout, "it printed the file size and the wall time")
    check_video(mp4, 6, "96x64", like=clip)


# Writes a Motion-JPEG Matroska file whose frames carry the timestamps given (ns), as an encoder
# that stamps every buffer alike would leave them; run with PyGObject.
STAMPED_FILE = """
import sys, gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
path, stamps = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
pipe = Gst.parse_launch("appsrc name=src format=time caps=video/x-raw,format=I420,width=64,"
                        "height=48,framerate=30/1 ! jpegenc ! matroskamux ! filesink name=out")
pipe.get_by_name("out").set_property("location", path)
src = pipe.get_by_name("src")
pipe.set_state(Gst.State.PLAYING)
for i, t in enumerate(stamps):
    buf = Gst.Buffer.new_wrapped(bytes([(i * 40 + k) % 256 for k in range(64 * 48 * 3 // 2)]))
    buf.pts, buf.duration = t, Gst.SECOND // 30
    src.emit("push-buffer", buf)
src.emit("end-of-stream")
msg = pipe.get_bus().timed_pop_filtered(30 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
pipe.set_state(Gst.State.NULL)
sys.exit(0 if msg and msg.type == Gst.MessageType.EOS else 1)
"""


def test_check_video():
    """tools/check_video.py fails, naming the cause, on the ways a file can exist and still not
    play: one timestamp on every frame, too few frames, a wrong duration, a wrong size, an empty
    or a missing file; and passes the same file with right timestamps."""
    py = os.environ.get("PYTHON_GI") or "/usr/bin/python3"
    frame = 1_000_000_000 // 30

    def stamped(name, stamps):
        path = out(name)
        run([py, "-c", STAMPED_FILE, path, ",".join(str(t) for t in stamps)])
        return path

    def fails(args, message):
        p = run([py, CHECK_VIDEO, *args], expect=1)
        check(message in p.stderr, f"check_video says: {message}")

    good = stamped("good.mkv", [i * frame for i in range(5)])
    check_video(good, 5, "64x48")
    same = stamped("same.mkv", [0] * 5)
    fails([same, "--frames", "5"], "timestamps do not increase")
    fails([good, "--frames", "6"], "5 frames decoded, expected 6")
    fails([good, "--duration", "0.3"], "expected 0.300 s (within one frame")
    fails([good, "--size", "96x64"], "frames are 64x48, expected 96x64")
    fails([good, "--like", SAMPLE], "5 frames decoded, expected 89")
    with open(out("empty.mp4"), "wb"):
        pass
    fails([out("empty.mp4")], "is empty")
    fails([out("missing.mp4")], "does not exist")


def test_side_by_side():
    script = os.path.join(EXAMPLES, "side-by-side.sh")
    clip = make_clip(out("in.mp4"), 3)
    env = {
        "ST_SIZE": "96x64",
        "ST_SINK": f"pngenc snapshot=false ! multifilesink location={out('sbs-%02d.png')}",
        "ST_PROPS": SMALL,
    }
    run([script, clip, STYLE_A], env)
    orig = decode_rgba(["filesrc", f"location={clip}", "!", "decodebin"], out("in.rgba"), 96, 64)
    orig = drop_alpha(orig)
    for i in range(3):
        pixels = check_png(out(f"sbs-{i:02d}.png"), 192, 64)
        left, right = crop_rgb(192, 64, pixels, 0, 96), crop_rgb(192, 64, pixels, 96, 192)
        d = mean_abs_diff(left, orig[i * 96 * 64 * 3 : (i + 1) * 96 * 64 * 3])
        check(d < 6.0, f"frame {i}: the left half is the original (differs by {d:.1f})")
        d = mean_abs_diff(left, right)
        check(d > 8.0, f"frame {i}: the right half is stylized (differs from the left by {d:.1f})")
    check(not os.path.exists(out("sbs-03.png")), "exactly 3 frames")
    # another source (a webcam in real use) and the sink replaced
    src = "videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48"
    run([script, "unused", STYLE_B], {"ST_SRC": src, "ST_SINK": "fakesink", "ST_PROPS": SMALL})
    p = run([script, out("missing.mkv"), STYLE_A], {"ST_SINK": "fakesink"}, expect=1)
    check("does not exist" in p.stderr, "a missing input is reported")
    p = run([script, clip, MISSING], dict(env, ST_SINK="fakesink"), expect="nonzero")
    check("does not exist" in p.stderr, "a missing style is reported")


def test_stylize_image():
    script = os.path.join(EXAMPLES, "stylize-image.sh")
    env = {"ST_PROPS": SMALL}
    png = out("image.png")
    run([script, IMAGE, png, STYLE_A], env)
    pixels = check_png(png, 512, 320)
    orig = drop_alpha(decode_rgba(["filesrc", f"location={IMAGE}", "!", "decodebin"],
                                  out("orig.rgba")))
    d = mean_abs_diff(pixels, orig)
    check(d > 8.0, f"the image is stylized (differs from the input by {d:.1f})")
    # the default input: the first frame of the sample clip
    png = out("frame.png")
    run([script, SAMPLE, png, STYLE_B], env)
    check_png(png, 640, 480)
    p = run([script, IMAGE, out("bad.png"), MISSING], env, expect="nonzero")
    check("does not exist" in p.stderr, "a missing style is reported")
    p = run([script, out("missing.jpg"), out("bad.png")], env, expect=1)
    check("does not exist" in p.stderr, "a missing input is reported")


def write_grey_png(path, w, h, white):
    """Writes an 8-bit grey PNG: white (255) in the columns [0, white), black from there on."""
    rows = b"".join(b"\0" + bytes(255 if x < white else 0 for x in range(w)) for _ in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


def test_paint_background():
    """paint-background.sh: the style where the mask is white (the left half here, a mask of
    half the frame's size), the original picture where it is black, in a file that plays; with
    STYLE2, the black part stylized too (two styles by the mask)."""
    script = os.path.join(EXAMPLES, "paint-background.sh")
    clip = make_clip(out("in.mp4"), 6, "96x64")
    mask = write_grey_png(out("mask.png"), 48, 32, 24)
    env = {"ST_PROPS": SMALL}
    mkv = out("out.mkv")
    run([script, clip, mkv, mask, STYLE_A], env)
    check_video(mkv, 6, "96x64", like=clip)
    frames = decode_rgba(["filesrc", f"location={mkv}", "!", "matroskademux", "!", "decodebin"],
                         out("out.rgba"))
    orig = decode_rgba(["filesrc", f"location={clip}", "!", "decodebin"], out("in.rgba"))
    n = 96 * 64 * 4
    for i in (0, 5):
        a, b = drop_alpha(frames[i * n : (i + 1) * n]), drop_alpha(orig[i * n : (i + 1) * n])
        d = mean_abs_diff(crop_rgb(96, 64, a, 0, 40), crop_rgb(96, 64, b, 0, 40))
        check(d > 8.0, f"frame {i}: the white part of the mask is stylized (differs by {d:.1f})")
        d = mean_abs_diff(crop_rgb(96, 64, a, 56, 96), crop_rgb(96, 64, b, 56, 96))
        check(d < 6.0, f"frame {i}: the black part of the mask is the original (differs by {d:.1f})")
    # two styles: STYLE_B where the mask is black instead of the original picture
    mkv2 = out("two.mkv")
    run([script, clip, mkv2, mask, STYLE_A, STYLE_B], env)
    check_video(mkv2, 6, "96x64", like=clip)
    two = decode_rgba(["filesrc", f"location={mkv2}", "!", "matroskademux", "!", "decodebin"],
                      out("two.rgba"))
    for i in (0, 5):
        a, b = drop_alpha(two[i * n : (i + 1) * n]), drop_alpha(orig[i * n : (i + 1) * n])
        one = drop_alpha(frames[i * n : (i + 1) * n])
        d = mean_abs_diff(crop_rgb(96, 64, a, 56, 96), crop_rgb(96, 64, b, 56, 96))
        check(d > 8.0, f"frame {i}: with STYLE2 the black part is stylized (differs by {d:.1f})")
        d = mean_abs_diff(crop_rgb(96, 64, a, 0, 40), crop_rgb(96, 64, b, 0, 40))
        check(d > 8.0, f"frame {i}: with STYLE2 the white part is still stylized ({d:.1f})")
        d = mean_abs_diff(crop_rgb(96, 64, a, 0, 40), crop_rgb(96, 64, one, 0, 40))
        check(d < 20.0, f"frame {i}: the white part keeps STYLE (differs by {d:.1f} from one style)")
    p = run([script, clip, out("bad.mkv"), mask, STYLE_A, out("no-such-style.png")], env, expect=1)
    check("does not exist" in p.stderr, "a missing STYLE2 is reported")
    # the bundled mask (made for the sample clip), scaled to another frame size
    run([script, clip, out("default.mkv")], env)
    check_video(out("default.mkv"), 6, "96x64", like=clip)
    p = run([script, clip, out("bad.mkv"), out("no-such-mask.png")], env, expect=1)
    check("does not exist" in p.stderr, "a missing mask is reported")
    p = run([script, clip, out("bad.mkv"), os.path.join(DATA, "not-an-image.txt")], env,
            expect="nonzero")
    check("Could not decode mask image" in p.stderr, "an undecodable mask is reported")


def test_paint_faces():
    """paint-faces.sh: facedetect's "face" ROIs styled, the rest of the frame the original (the
    sample clip, whose signer facedetect finds); skipped without facedetect."""
    script = os.path.join(EXAMPLES, "paint-faces.sh")
    inspect = shutil.which("gst-inspect-1.0")
    if not inspect or subprocess.run([inspect, "facedetect"], capture_output=True).returncode:
        raise Skip("facedetect (gstreamer1.0-opencv) is not installed: paint-faces.sh not tested")
    clip = SAMPLE  # 89 frames, 640x480
    # the face facedetect reports on the first frame (its element message)
    p = run([GST_LAUNCH, "-m", "filesrc", f"location={clip}", "!", "decodebin", "!",
             "identity", "eos-after=1", "!", "videoconvert", "!", "facedetect", "display=false",
             "!", "fakesink"])
    m = re.search(r"face.*?x\\=\\\(uint\\\)(\d+).*?y\\=\\\(uint\\\)(\d+).*?width\\=\\\(uint\\\)(\d+)"
                  r".*?height\\=\\\(uint\\\)(\d+)", p.stdout)
    check(m is not None, "facedetect finds the face in the first frame")
    fx, fy, fw, fh = (int(v) for v in m.groups())
    mkv = out("faces.mkv")
    run([script, clip, mkv, STYLE_A], {"ST_PROPS": SMALL, "ST_FEATHER": "8"})
    check_video(mkv, 89, "640x480", like=clip)
    n = 640 * 480 * 4  # the first frame (identity may let a few more through before EOS)
    frame = drop_alpha(decode_rgba(["filesrc", f"location={mkv}", "!", "matroskademux", "!",
                                    "decodebin", "!", "identity", "eos-after=1"],
                                   out("o.rgba"))[:n])
    orig = drop_alpha(decode_rgba(["filesrc", f"location={clip}", "!", "decodebin", "!",
                                   "identity", "eos-after=1"], out("i.rgba"))[:n])
    d = mean_abs_diff(crop_rgb(640, 480, frame, fx, fx + fw, fy, fy + fh),
                      crop_rgb(640, 480, orig, fx, fx + fw, fy, fy + fh))
    check(d > 8.0, f"the face is stylized (differs by {d:.1f})")
    d = mean_abs_diff(crop_rgb(640, 480, frame, 0, 640, 0, max(0, fy - 24)),
                      crop_rgb(640, 480, orig, 0, 640, 0, max(0, fy - 24)))
    check(d < 6.0, f"above the face the picture is the original (differs by {d:.1f})")
    p = run([script, out("missing.mkv")], expect=1)
    check("does not exist" in p.stderr, "a missing input is reported")


def check_switch_style(cmd):
    frames = 15
    src = "videotestsrc is-live=true ! video/x-raw,width=96,height=64,framerate=30/1"
    sink = f"pngenc snapshot=false ! multifilesink location={out('frame-%02d.png')}"
    args = ["-s", src, "-o", sink, "-n", str(frames), "-t", "0.1", "-p", SMALL, "-p", "steps=1"]
    p = run(cmd + args + [STYLE_A, STYLE_B])
    lines = [l for l in p.stdout.splitlines() if l.startswith("style: ")]
    check(len(lines) >= 2, f"the style was switched ({len(lines) - 1} switches)")
    check(f"applied: {STYLE_A}, decoded in " in p.stdout
          and f"applied: {STYLE_B}, decoded in " in p.stdout,
          "the element's styletransfer-style-applied messages are printed")
    check(lines[0].startswith(f"style: {STYLE_A} at ")
          and lines[1].startswith(f"style: {STYLE_B} at "),
          "the styles are used in the order given")
    check("End of stream" in p.stdout, "the stream ended with EOS")
    for i in range(frames):
        check_png(out(f"frame-{i:02d}.png"), 96, 64)
    check(not os.path.exists(out(f"frame-{frames:02d}.png")), f"exactly {frames} frames")

    # errors: a missing first style, a missing style switched to while playing, no style at all,
    # a bad property, a bad source
    quick = ["-s", "videotestsrc is-live=true", "-o", "fakesink", "-n", "60", "-t", "0.2",
             "-p", SMALL]
    p = run(cmd + quick + [MISSING], expect=1)
    check(f'Style image "{MISSING}" does not exist' in p.stderr, "a missing style is reported")
    check("Debugging information: " in p.stderr, "with the debug string")
    p = run(cmd + quick + [STYLE_A, MISSING])
    check(f'WARNING from styletransfer: Style image "{MISSING}" does not exist; the previous '
          "style stays in use" in p.stderr, "a missing style to switch to is a warning")
    check("End of stream" in p.stdout, "the stream goes on after a failed switch")
    p = run(cmd, expect=2)
    check("STYLE" in p.stderr, "no style: the usage is printed")
    p = run(cmd + ["-p", "no-such-property=1", STYLE_A], expect=1)
    check("Invalid --property" in p.stderr, "a bad property is reported")
    p = run(cmd + ["-s", "no-such-element", STYLE_A], expect=1)
    check('no element "no-such-element"' in p.stderr, "a bad source is reported")


def test_switch_style_c():
    check_switch_style([os.environ["SWITCH_STYLE"]])


def test_switch_style_py():
    check_switch_style([os.environ["PYTHON_GI"], os.path.join(EXAMPLES, "switch_style.py")])


TESTS = {
    "check-video": test_check_video,
    "main-job": test_main_job,
    "webcam": test_webcam,
    "transcode": test_transcode,
    "side-by-side": test_side_by_side,
    "stylize-image": test_stylize_image,
    "paint-background": test_paint_background,
    "paint-faces": test_paint_faces,
    "switch-style-c": test_switch_style_c,
    "switch-style-py": test_switch_style_py,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        print(f"usage: {sys.argv[0]} {{{','.join(TESTS)}}}", file=sys.stderr)
        return 2
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    try:
        TESTS[sys.argv[1]]()
    except (Failure, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except Skip as e:
        print(f"SKIP: {e}")
        return 77
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
