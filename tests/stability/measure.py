#!/usr/bin/python3
"""Temporal stability of the `styletransfer` element (temporal=true vs temporal=false).

Every clip is pushed through `appsrc ! styletransfer ! appsink` as one stream (so the element's
temporal state carries from frame to frame), once with temporal=true and once with
temporal=false, same style, same steps. Clips:

  pan    a crop window moving by (dx, dy) pixels per frame over a content photo (known motion)
  noise  a still crop of a content photo with fresh Gaussian noise (sigma) added to every frame
  video  the first N frames of a real clip, centre-cropped to the aspect ratio and scaled

Metric ("temporal MSE"): mean over consecutive frame pairs (t, t+1) of the mean squared difference
between output t and output t+1 moved back by the motion between the two input frames, on the
overlapping region, RGB in [0, 1]. The motion is the known crop offset for pan clips ("known";
the same clip is also reported uncompensated, "raw": if the output changes less that way, the
stylization sticks to the screen instead of moving with the scene), zero for noise clips
("still") and, for real videos, either zero ("raw", no compensation) or a global integer
translation estimated per frame pair by phase correlation on the INPUT frames ("pc"; a pair's
estimate is used only where it lowers the input frames' error, otherwise zero). The same metric
on the input frames is printed for reference.

Style-error proxies (no PyTorch): the output frames are compared with the style image by
  gram   relative Frobenius distance ||G(out) - G(style)|| / ||G(style)|| between Gram matrices of
         a fixed bank of 32 random zero-mean 3x3 RGB filters + 3 per-channel 3x3 box filters
         (seed 1234; ReLU), averaged over two scales (full and 2x2-average-pooled);
  meanstd  distance of the per-channel RGB mean and standard deviation,
         sqrt(sum_c (mu_o - mu_s)^2 + (sd_o - sd_s)^2).
Lower is closer to the style. "mean abs on-off" is the mean absolute difference between the
temporal=true and temporal=false outputs (does the temporal reuse change anything at all).
"follows pan" (pan clips): the fraction alpha in [0, 1.5] of the known motion by which output t
shifted (bilinear) best matches output t+1, averaged over pairs: 1 = the painting pans with the
scene, 0 = it stays fixed on the screen ("shower door").
The style errors let temporal on/off be compared at the same style error (use
--steps 1,2,3 to get a curve).

Only python3, PyGObject (Gst) and numpy are needed. Run with --help for the options; --selftest
checks the metric code without running the element.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import struct
import sys
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_DATA = os.environ.get("ST_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))
DEFAULT_STYLE = os.path.join(REPO, "examples", "default-style.jpg")
DEFAULT_MODEL = os.environ.get("ST_MODEL_PATH",
                               os.path.join(REPO, "weights", "styletransfer.safetensors"))
DEFAULT_CONTENT = ["kodak_kodim21.jpg", "deb-lomiri_picosdeeuropa_by_Aitzol_Berasategi.jpg"]
DEFAULT_VIDEOS = ["fst_fox.mp4", "asl_walk.mkv"]

Gst = None  # imported lazily so that --selftest and --help work without GStreamer


class MeasureError(Exception):
    pass


def init_gst(plugin_dir):
    global Gst
    if plugin_dir:
        old = os.environ.get("GST_PLUGIN_PATH")
        os.environ["GST_PLUGIN_PATH"] = plugin_dir + (os.pathsep + old if old else "")
    try:
        import gi
        gi.require_version("Gst", "1.0")
        from gi.repository import Gst as _Gst
    except (ImportError, ValueError) as e:
        raise MeasureError("PyGObject with GStreamer 1.0 is needed (Debian: python3-gst-1.0); "
                           "run with /usr/bin/python3: %s" % e)
    _Gst.init(None)
    Gst = _Gst
    if Gst.ElementFactory.find("styletransfer") is None:
        raise MeasureError("GStreamer element 'styletransfer' not found; build the project and "
                           "set GST_PLUGIN_PATH=<builddir>/gst or pass --plugin-dir")


# ----------------------------------------------------------------------------------------------
# GStreamer helpers


def run_pipeline_collect(pipeline, sink, max_frames=None, timeout_s=3600.0):
    """Sets `pipeline` playing and pulls RGB(x) frames from appsink `sink` until EOS or
    max_frames. Returns (list of HxWx4 uint8 arrays, list of arrival times)."""
    frames, times = [], []
    bus = pipeline.get_bus()
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        err = pop_error(bus)
        pipeline.set_state(Gst.State.NULL)
        raise MeasureError("pipeline failed to start" + (": " + err if err else ""))
    t_end = time.monotonic() + timeout_s
    try:
        while max_frames is None or len(frames) < max_frames:
            err = pop_error(bus)
            if err:
                raise MeasureError(err)
            sample = sink.emit("try-pull-sample", 200 * Gst.MSECOND)
            if sample is None:
                if sink.get_property("eos"):
                    break
                if time.monotonic() > t_end:
                    raise MeasureError("timed out waiting for frames")
                continue
            frames.append(sample_to_array(sample))
            times.append(time.monotonic())
    finally:
        pipeline.set_state(Gst.State.NULL)
    return frames, times


def pop_error(bus):
    while True:
        msg = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.WARNING)
        if msg is None:
            return None
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            return "%s: %s%s" % (msg.src.get_name(), err.message, (" (%s)" % dbg) if dbg else "")
        w, _ = msg.parse_warning()
        print("  warning from %s: %s" % (msg.src.get_name(), w.message), file=sys.stderr)


def sample_to_array(sample):
    s = sample.get_caps().get_structure(0)
    w, h = s.get_value("width"), s.get_value("height")
    fmt = s.get_value("format")
    buf = sample.get_buffer()
    data = buf.extract_dup(0, buf.get_size())
    if fmt in ("RGBx", "RGBA"):
        bpp = 4
    elif fmt == "RGB":
        bpp = 3
    else:
        raise MeasureError("unexpected format %s" % fmt)
    stride = len(data) // h
    a = np.frombuffer(data, np.uint8)[: stride * h].reshape(h, stride)[:, : w * bpp]
    return a.reshape(h, w, bpp)[:, :, :3].copy()


def decode_image(path, scale_to=None):
    """Decodes an image file with GStreamer to HxWx3 uint8 (optionally scaled to (w, h))."""
    if not os.path.isfile(path):
        raise MeasureError("no such file: %s" % path)
    size = "" if scale_to is None else ",width=%d,height=%d,pixel-aspect-ratio=1/1" % scale_to
    desc = ("filesrc name=src ! decodebin ! videoconvert ! videoscale "
            "! video/x-raw,format=RGBx%s ! appsink name=sink sync=false" % size)
    pipeline = Gst.parse_launch(desc)
    pipeline.get_by_name("src").set_property("location", path)
    try:
        frames, _ = run_pipeline_collect(pipeline, pipeline.get_by_name("sink"), max_frames=1,
                                         timeout_s=60)
    except MeasureError as e:
        raise MeasureError("could not decode %s: %s" % (path, e))
    if not frames:
        raise MeasureError("could not decode %s" % path)
    return frames[0]


def decode_video(path, width, height, n, skip=0):
    """First n frames (after `skip`) of a video, centre-cropped to width:height and scaled."""
    if not os.path.isfile(path):
        raise MeasureError("no such file: %s" % path)
    g = math.gcd(width, height)
    desc = ("filesrc name=src ! decodebin ! videoconvert ! aspectratiocrop aspect-ratio=%d/%d ! "
            "videoscale ! videoconvert ! video/x-raw,format=RGBx,width=%d,height=%d,"
            "pixel-aspect-ratio=1/1 ! appsink name=sink sync=false"
            % (width // g, height // g, width, height))
    pipeline = Gst.parse_launch(desc)
    pipeline.get_by_name("src").set_property("location", path)
    try:
        frames, _ = run_pipeline_collect(pipeline, pipeline.get_by_name("sink"),
                                         max_frames=n + skip, timeout_s=120)
    except MeasureError as e:
        raise MeasureError("could not decode %s: %s" % (path, e))
    frames = frames[skip:]
    if len(frames) < 2:
        raise MeasureError("%s: only %d frames decoded" % (path, len(frames)))
    return np.stack(frames)


def stylize(frames, style, model, steps, temporal, processing_size, fps=30):
    """Runs all frames through `appsrc ! styletransfer ! appsink` in one stream.
    Returns (outputs N x H x W x 3 uint8, seconds per frame after the first, first-frame s)."""
    n, h, w, _ = frames.shape
    pipeline = Gst.Pipeline.new("stab")
    src = Gst.ElementFactory.make("appsrc", "src")
    st = Gst.ElementFactory.make("styletransfer", "st")
    sink = Gst.ElementFactory.make("appsink", "sink")
    caps = Gst.Caps.from_string("video/x-raw,format=RGBx,width=%d,height=%d,framerate=%d/1,"
                                "pixel-aspect-ratio=1/1" % (w, h, fps))
    src.set_property("caps", caps)
    src.set_property("format", Gst.Format.TIME)
    src.set_property("max-bytes", 0)
    src.set_property("block", False)
    st.set_property("style", style)
    st.set_property("model", model)
    st.set_property("steps", steps)
    st.set_property("temporal", temporal)
    st.set_property("processing-size", processing_size)
    sink.set_property("caps", Gst.Caps.from_string("video/x-raw,format=RGBx"))
    sink.set_property("sync", False)
    for e in (src, st, sink):
        pipeline.add(e)
    if not (src.link(st) and st.link(sink)):
        raise MeasureError("could not link appsrc ! styletransfer ! appsink")
    rgbx = np.empty((h, w, 4), np.uint8)
    rgbx[:, :, 3] = 255
    dur = Gst.SECOND // fps
    for i in range(n):
        rgbx[:, :, :3] = frames[i]
        buf = Gst.Buffer.new_wrapped(rgbx.tobytes())
        buf.pts = i * dur
        buf.duration = dur
        if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            raise MeasureError("appsrc refused a buffer")
    src.emit("end-of-stream")
    t0 = time.monotonic()
    outs, times = run_pipeline_collect(pipeline, sink)
    if len(outs) != n:
        raise MeasureError("expected %d output frames, got %d" % (n, len(outs)))
    per_frame = (times[-1] - times[0]) / (n - 1) if n > 1 else float("nan")
    return np.stack(outs), per_frame, times[0] - t0


def write_png(path, rgb):
    h, w, _ = rgb.shape
    desc = ("appsrc name=src caps=video/x-raw,format=RGB,width=%d,height=%d,framerate=1/1 "
            "! videoconvert ! pngenc ! filesink name=sink" % (w, h))
    pipeline = Gst.parse_launch(desc)
    pipeline.get_by_name("sink").set_property("location", path)
    src = pipeline.get_by_name("src")
    pipeline.set_state(Gst.State.PLAYING)
    src.emit("push-buffer", Gst.Buffer.new_wrapped(np.ascontiguousarray(rgb).tobytes()))
    src.emit("end-of-stream")
    msg = pipeline.get_bus().timed_pop_filtered(30 * Gst.SECOND,
                                                Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type == Gst.MessageType.ERROR:
        raise MeasureError("could not write %s" % path)


# ----------------------------------------------------------------------------------------------
# Clips


def make_pan(img, w, h, n, dx, dy):
    """Crop window of w x h moving by (dx, dy) px per frame, centred in img. Frame t+1 at (y, x)
    equals frame t at (y + dy, x + dx)."""
    H, W, _ = img.shape
    span_x, span_y = abs(dx) * (n - 1), abs(dy) * (n - 1)
    if W < w + span_x or H < h + span_y:
        raise MeasureError("image %dx%d too small for the pan" % (W, H))
    x0 = (W - w - span_x) // 2 + (span_x if dx < 0 else 0)
    y0 = (H - h - span_y) // 2 + (span_y if dy < 0 else 0)
    return np.stack([img[y0 + dy * t: y0 + dy * t + h, x0 + dx * t: x0 + dx * t + w]
                     for t in range(n)])


def make_noise(img, w, h, n, sigma, rng):
    """Still centre crop plus fresh Gaussian noise (sigma in [0,1] units) every frame."""
    H, W, _ = img.shape
    x0, y0 = (W - w) // 2, (H - h) // 2
    crop = img[y0: y0 + h, x0: x0 + w].astype(np.float32)
    out = []
    for _ in range(n):
        f = crop + rng.normal(0.0, sigma * 255.0, crop.shape).astype(np.float32)
        out.append(np.clip(np.rint(f), 0, 255).astype(np.uint8))
    return np.stack(out)


def load_photo(path, w, h, n, dx, dy):
    img = decode_image(path)
    H, W, _ = img.shape
    need_w, need_h = w + abs(dx) * (n - 1), h + abs(dy) * (n - 1)
    if W < need_w or H < need_h:  # scale up (aspect kept) so the pan fits
        s = max(need_w / W, need_h / H)
        img = decode_image(path, (int(math.ceil(W * s)), int(math.ceil(H * s))))
    return img


# ----------------------------------------------------------------------------------------------
# Metrics


def to_float(a):
    return a.astype(np.float32) / 255.0


def shifted_pair(a, b, sx, sy):
    """Overlap of a and b where b(y, x) corresponds to a(y + sy, x + sx)."""
    h, w = a.shape[:2]
    if abs(sx) >= w or abs(sy) >= h:
        return None, None
    ay0, ay1 = max(sy, 0), h + min(sy, 0)
    ax0, ax1 = max(sx, 0), w + min(sx, 0)
    return a[ay0:ay1, ax0:ax1], b[ay0 - sy: ay1 - sy, ax0 - sx: ax1 - sx]


def pair_mse(a, b, sx, sy):
    pa, pb = shifted_pair(a, b, sx, sy)
    if pa is None:
        return float("nan")
    return float(np.mean((pa - pb) ** 2))


def temporal_mse(frames, shifts):
    """frames: N x H x W x 3 float; shifts[t] = (sx, sy) from frame t to t+1."""
    return [pair_mse(frames[t], frames[t + 1], *shifts[t]) for t in range(len(frames) - 1)]


def follow_fraction(a, b, dx, dy, alphas=np.arange(0.0, 1.501, 0.05)):
    """How much of a known motion (dx, dy) the content of b follows relative to a: the alpha
    in [0, 1.5] for which b(y, x) best matches a(y + alpha*dy, x + alpha*dx) (bilinear) on the
    interior. 1 = b moves with the scene, 0 = b stays fixed on the screen."""
    h, w = a.shape[:2]
    m = int(math.ceil(1.5 * max(abs(dx), abs(dy)))) + 1
    if 2 * m >= min(h, w):
        return float("nan")
    y0, y1, x0, x1 = m, h - m, m, w - m
    tb = b[y0:y1, x0:x1]
    best, best_err = float("nan"), float("inf")
    for al in alphas:
        fx, fy = al * dx, al * dy
        ix, iy = int(math.floor(fx)), int(math.floor(fy))
        wx, wy = fx - ix, fy - iy

        def at(oy, ox):
            return a[y0 + iy + oy: y1 + iy + oy, x0 + ix + ox: x1 + ix + ox]
        sa = ((1 - wy) * ((1 - wx) * at(0, 0) + wx * at(0, 1)) +
              wy * ((1 - wx) * at(1, 0) + wx * at(1, 1)))
        err = float(np.mean((tb - sa) ** 2))
        if err < best_err:
            best, best_err = float(al), err
    return best


def phase_correlation(a, b):
    """Integer global translation (sx, sy) such that b(y, x) ~ a(y + sy, x + sx), estimated on
    luminance with a Hann window. Returns (sx, sy, peak) where peak is the normalised
    correlation peak (near 1 for a pure translation, small for no clear translation)."""
    def lum(f):
        return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    la, lb = lum(a), lum(b)
    h, w = la.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    fa = np.fft.fft2((la - la.mean()) * win)
    fb = np.fft.fft2((lb - lb.mean()) * win)
    r = fb * np.conj(fa)
    r /= np.maximum(np.abs(r), 1e-12)
    c = np.real(np.fft.ifft2(r))
    iy, ix = np.unravel_index(int(np.argmax(c)), c.shape)
    # c peaks at (d_y, d_x) with b(y, x) = a(y - d_y, x - d_x)  =>  s = -d
    dy = iy - h if iy > h // 2 else iy
    dx = ix - w if ix > w // 2 else ix
    return int(-dx), int(-dy), float(c[iy, ix])


_BANK = None


def filter_bank(k=32, seed=1234):
    global _BANK
    if _BANK is None:
        rng = np.random.default_rng(seed)
        f = rng.normal(0.0, 1.0, (27, k)).astype(np.float32)
        f -= f.mean(axis=0, keepdims=True)  # zero-mean: responds to texture/edges ...
        f /= np.linalg.norm(f, axis=0, keepdims=True)
        # ... plus 3 colour-only filters so the Gram also sees colour
        colour = np.zeros((27, 3), np.float32)
        for c in range(3):
            colour[c::3, c] = 1.0 / 9.0
        _BANK = np.concatenate([f, colour], axis=1)
    return _BANK


def gram_features(img):
    """img: H x W x 3 float in [0,1] -> Gram (K x K) of ReLU(3x3 random filters), normalised by
    the number of positions."""
    h, w, _ = img.shape
    patches = np.concatenate([img[y: h - 2 + y, x: w - 2 + x] for y in range(3) for x in range(3)],
                             axis=2).reshape(-1, 27)
    r = np.maximum(patches @ filter_bank(), 0.0)
    return (r.T @ r) / r.shape[0]


def pool2(img):
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    a = img[:h, :w]
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


class StyleRef:
    def __init__(self, style):
        self.mean = style.reshape(-1, 3).mean(axis=0)
        self.std = style.reshape(-1, 3).std(axis=0)
        self.grams = [gram_features(style), gram_features(pool2(style))]

    def gram_err(self, img):
        gs = [gram_features(img), gram_features(pool2(img))]
        return float(np.mean([np.linalg.norm(a - b) / np.linalg.norm(b)
                              for a, b in zip(gs, self.grams)]))

    def meanstd_err(self, img):
        p = img.reshape(-1, 3)
        return float(np.sqrt(np.sum((p.mean(axis=0) - self.mean) ** 2 +
                                    (p.std(axis=0) - self.std) ** 2)))


def mean(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return float(np.mean(xs)) if xs else float("nan")


# ----------------------------------------------------------------------------------------------
# Self-test of the metric code (no element needed)


def selftest():
    rng = np.random.default_rng(0)
    base = rng.random((80, 100, 3)).astype(np.float32)
    # smooth it a bit so phase correlation has structure at all scales
    base = 0.5 * base + 0.5 * np.roll(base, 1, axis=1)
    w, h = 60, 40
    for dx, dy in [(2, 1), (-3, 2), (0, -4), (5, 0)]:
        clip = to_float(make_pan((base * 255).astype(np.uint8), w, h, 4, dx, dy))
        for t in range(3):
            assert pair_mse(clip[t], clip[t + 1], dx, dy) == 0.0, (dx, dy)
            assert pair_mse(clip[t], clip[t + 1], 0, 0) > 1e-3
            sx, sy, peak = phase_correlation(clip[t], clip[t + 1])
            assert (sx, sy) == (dx, dy), ((sx, sy), (dx, dy))
    smooth = base.copy()
    for _ in range(3):  # low-pass so that bilinear interpolation is accurate
        smooth = (smooth + np.roll(smooth, 1, 0) + np.roll(smooth, 1, 1) +
                  np.roll(smooth, (1, 1), (0, 1))) / 4
    clip = to_float(make_pan((smooth * 255).astype(np.uint8), w, h, 3, 3, 2))
    assert follow_fraction(clip[0], clip[1], 3, 2) == 1.0
    assert follow_fraction(clip[0], clip[0], 3, 2) == 0.0
    half = to_float(make_pan((smooth * 255).astype(np.uint8), w, h, 2, 2, 1))
    assert abs(follow_fraction(half[0], half[1], 4, 2) - 0.5) < 1e-6
    noise = to_float(make_noise((base * 255).astype(np.uint8), w, h, 3, 2 / 255, rng))
    m = mean(temporal_mse(noise, [(0, 0)] * 2))
    assert 0.6 * 2 * (2 / 255) ** 2 < m < 1.6 * 2 * (2 / 255) ** 2, m
    ref = StyleRef(base)
    assert ref.gram_err(base) < 1e-6 and ref.meanstd_err(base) < 1e-6
    assert ref.gram_err(base * 0.5) > 0.3 and ref.meanstd_err(base * 0.5) > 0.1
    grey = np.repeat(base.mean(axis=2, keepdims=True), 3, axis=2)
    assert ref.gram_err(grey) > ref.gram_err(np.clip(base + 0.01, 0, 1))
    print("selftest: ok")


# ----------------------------------------------------------------------------------------------


def model_info(path):
    info = {"path": os.path.abspath(path)}
    try:
        st = os.stat(path)
        info["mtime"] = datetime.datetime.fromtimestamp(st.st_mtime).isoformat(timespec="seconds")
        info["bytes"] = st.st_size
        hsh = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                hsh.update(chunk)
        info["sha256"] = hsh.hexdigest()
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        meta = header.get("__metadata__", {})
        info["metadata"] = {k: (v if len(v) < 200 else v[:200] + "...") for k, v in meta.items()}
    except (OSError, ValueError, struct.error) as e:
        info["error"] = str(e)
    return info


def fmt_e(x):
    return "nan" if math.isnan(x) else "%.2e" % x


def fmt_f(x):
    return "nan" if math.isnan(x) else "%.3f" % x


def resolve(name, folder, exts):
    """A path as given, or a name in `folder`, with or without its extension."""
    cands = [name] if os.path.isabs(name) or os.sep in name else []
    cands += [os.path.join(folder, name)] + [os.path.join(folder, name + e) for e in exts]
    for c in cands:
        if os.path.isfile(c):
            return c
    raise MeasureError("no such file: %s (looked in %s)" % (name, folder))


def build_clips(args, rng):
    clips = []
    for name in args.content:
        path = resolve(name, os.path.join(args.data, "content"), (".jpg", ".png"))
        img = load_photo(path, args.width, args.height, args.frames, args.dx, args.dy)
        short = os.path.splitext(os.path.basename(name))[0][:24]
        if "pan" in args.kinds:
            pan = make_pan(img, args.width, args.height, args.frames, args.dx, args.dy)
            clips.append({"name": "pan:" + short, "kind": "pan", "comp": "known",
                          "frames": pan, "shifts": [(args.dx, args.dy)] * (args.frames - 1)})
            # the same clip without compensation: if the output changes LESS this way than with
            # the known motion, the stylization sticks to the screen instead of the scene
            clips.append({"name": "pan:" + short, "kind": "pan", "comp": "raw",
                          "frames": pan, "shifts": [(0, 0)] * (args.frames - 1)})
        if "noise" in args.kinds:
            clips.append({"name": "noise:" + short, "kind": "noise", "comp": "still",
                          "frames": make_noise(img, args.width, args.height, args.frames,
                                               args.sigma, rng),
                          "shifts": [(0, 0)] * (args.frames - 1)})
    if "video" in args.kinds:
        for name in args.videos:
            path = resolve(name, os.path.join(args.data, "video"), (".mp4", ".mkv"))
            frames = decode_video(path, args.width, args.height, args.frames, args.video_skip)
            short = os.path.splitext(os.path.basename(name))[0][:24]
            fl = to_float(frames)
            # a phase-correlation shift is used for a pair only where it lowers the INPUT
            # frames' error (a moving object on a still background gives spurious shifts)
            shifts, accepted = [], 0
            for t in range(len(fl) - 1):
                sx, sy, _ = phase_correlation(fl[t], fl[t + 1])
                if (sx, sy) != (0, 0) and (pair_mse(fl[t], fl[t + 1], sx, sy) <
                                           pair_mse(fl[t], fl[t + 1], 0, 0)):
                    shifts.append((sx, sy))
                    accepted += 1
                else:
                    shifts.append((0, 0))
            clips.append({"name": "video:" + short, "kind": "video", "comp": "raw",
                          "frames": frames, "shifts": [(0, 0)] * (len(frames) - 1)})
            clips.append({"name": "video:" + short, "kind": "video", "comp": "pc",
                          "frames": frames, "shifts": shifts, "pc_accepted": accepted})
    return clips


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    ap.add_argument("--steps", default="2",
                    help="refinement steps, or a comma-separated list for a sweep (default 2)")
    ap.add_argument("--processing-size", type=int, default=0,
                    help="element's processing-size (default 0 = frame size)")
    ap.add_argument("--style", default=DEFAULT_STYLE)
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help="model file (default $ST_MODEL_PATH or weights/styletransfer.safetensors)")
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="data set folder with content/ and video/ (default $ST_DATA_DIR or "
                         "../shared/data next to the repository)")
    ap.add_argument("--content", nargs="+", default=None,
                    help="content photos (names in DATA/content or paths); default: %s"
                         % " ".join(DEFAULT_CONTENT))
    ap.add_argument("--videos", nargs="*", default=None,
                    help="videos (names in DATA/video or paths); default: %s"
                         % " ".join(DEFAULT_VIDEOS))
    ap.add_argument("--kinds", default="pan,noise,video",
                    help="which clip kinds to run (default pan,noise,video)")
    ap.add_argument("--dx", type=int, default=2, help="pan: px per frame, horizontal")
    ap.add_argument("--dy", type=int, default=1, help="pan: px per frame, vertical")
    ap.add_argument("--sigma", type=float, default=2 / 255, help="noise sigma in [0,1] units")
    ap.add_argument("--video-skip", type=int, default=0, help="skip this many video frames")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plugin-dir", default=None, help="prepended to GST_PLUGIN_PATH")
    ap.add_argument("--quick", action="store_true",
                    help="small run: 8 frames, one photo, one video")
    ap.add_argument("--out", action="append", default=[],
                    help="write results: FILE.json and/or FILE.md (repeatable)")
    ap.add_argument("--png-dir", default=None,
                    help="write per-clip contact sheets (input | temporal off | temporal on, "
                         "frames 0, 1, N-1) as PNG into this folder")
    ap.add_argument("--selftest", action="store_true", help="check the metric code and exit")
    args = ap.parse_args()

    if args.selftest:
        selftest()
        return 0
    if args.quick:
        if args.frames == 16:
            args.frames = 8
        if args.content is None:
            args.content = DEFAULT_CONTENT[:1]
        if args.videos is None:
            args.videos = DEFAULT_VIDEOS[:1]
    args.content = DEFAULT_CONTENT if args.content is None else args.content
    args.videos = DEFAULT_VIDEOS if args.videos is None else args.videos
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in args.kinds:
        if k not in ("pan", "noise", "video"):
            ap.error("unknown kind %r" % k)
    try:
        steps_list = [int(s) for s in args.steps.split(",")]
    except ValueError:
        ap.error("--steps: integers separated by commas")
    if args.frames < 2 or args.width < 8 or args.height < 8:
        ap.error("need at least 2 frames and 8x8 pixels")
    for p, what in ((args.style, "style image"), (args.model, "model")):
        if not os.path.isfile(p):
            ap.error("%s not found: %s" % (what, p))

    try:
        init_gst(args.plugin_dir)
        rng = np.random.default_rng(args.seed)
        style_ref = StyleRef(to_float(decode_image(args.style)))
        t_start = time.monotonic()
        clips = build_clips(args, rng)
        results = []
        cache = {}
        for clip in clips:
            fl_in = to_float(clip["frames"])
            in_mse = temporal_mse(fl_in, clip["shifts"])
            row = {"clip": clip["name"], "kind": clip["kind"], "comp": clip["comp"],
                   "frames": len(fl_in), "input_mse": mean(in_mse),
                   "input_mse_per_pair": in_mse,
                   "input_gram_err": mean([style_ref.gram_err(f) for f in fl_in]),
                   "input_meanstd_err": mean([style_ref.meanstd_err(f) for f in fl_in])}
            if clip["comp"] == "pc":
                row["pc_shifts"] = clip["shifts"]
                row["pc_accepted_pairs"] = clip["pc_accepted"]
            row["runs"] = {}
            for steps in steps_list:
                for temporal in (False, True):
                    key = (clip["name"], steps, temporal)
                    if key not in cache:
                        print("  %-34s steps=%d temporal=%-5s ..." % (clip["name"], steps,
                                                                      temporal),
                              end="", flush=True, file=sys.stderr)
                        try:
                            outs, spf, first = stylize(clip["frames"], args.style, args.model,
                                                       steps, temporal, args.processing_size)
                        except MeasureError:
                            print(file=sys.stderr)
                            raise
                        print(" %.2f s/frame" % spf, file=sys.stderr)
                        cache[key] = (outs, spf, first)
                    outs, spf, first = cache[key]
                    fo = to_float(outs)
                    mse = temporal_mse(fo, clip["shifts"])
                    run = row["runs"]["%d:%s" % (steps, "on" if temporal else "off")] = {
                        "steps": steps, "temporal": temporal, "mse": mean(mse),
                        "mse_second_half": mean(mse[len(mse) // 2:]), "mse_per_pair": mse,
                        "gram_err": mean([style_ref.gram_err(f) for f in fo]),
                        "meanstd_err": mean([style_ref.meanstd_err(f) for f in fo]),
                        "s_per_frame": spf, "first_frame_s": first}
                    if clip["comp"] == "known":
                        fol = [follow_fraction(fo[t], fo[t + 1], *clip["shifts"][t])
                               for t in range(len(fo) - 1)]
                        run["follow"] = mean(fol)
                        run["follow_per_pair"] = fol
            for steps in steps_list:
                off = cache[(clip["name"], steps, False)][0]
                on = cache[(clip["name"], steps, True)][0]
                row["runs"]["%d:on" % steps]["on_off_mad"] = float(
                    np.mean(np.abs(to_float(on) - to_float(off))))
            results.append(row)
            if args.png_dir and clip["comp"] not in ("pc", "raw"):
                os.makedirs(args.png_dir, exist_ok=True)
                s0 = steps_list[0]
                off, on = cache[(clip["name"], s0, False)][0], cache[(clip["name"], s0, True)][0]
                idx = sorted({0, 1, len(off) - 1})
                sheet = np.concatenate([np.concatenate([clip["frames"][i], off[i], on[i]], axis=1)
                                        for i in idx], axis=0)
                fn = os.path.join(args.png_dir, clip["name"].replace(":", "_") + ".png")
                write_png(fn, sheet)
        elapsed = time.monotonic() - t_start
    except MeasureError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1

    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "host": platform.node(), "model": model_info(args.model),
        "style": os.path.abspath(args.style), "width": args.width, "height": args.height,
        "frames": args.frames, "steps": steps_list, "processing_size": args.processing_size,
        "pan": [args.dx, args.dy], "noise_sigma": args.sigma, "elapsed_s": elapsed,
        "metric": "mean over consecutive pairs of MSE(out_t, out_t+1 moved back by the motion) "
                  "on the overlap, RGB in [0,1]",
        "style_error": "gram: relative Frobenius distance of Grams of ReLU(32 random zero-mean "
                       "3x3 filters + 3 colour filters, seed 1234) at full and 1/2 scale; "
                       "meanstd: distance of per-channel RGB mean and std",
        "results": results,
    }
    md = markdown_table(report)
    print(md)
    for path in args.out:
        if path.endswith(".json"):
            with open(path, "w") as f:
                json.dump(report, f, indent=1)
        elif path.endswith(".md"):
            with open(path, "w") as f:
                f.write(md + "\n")
        else:
            print("error: --out %s: use .json or .md" % path, file=sys.stderr)
            return 1
    return 0


def markdown_table(report):
    lines = []
    lines.append("%dx%d, %d frames/clip, style %s, model %s (sha256 %s...), %.0f s total"
                 % (report["width"], report["height"], report["frames"],
                    os.path.basename(report["style"]), os.path.basename(report["model"]["path"]),
                    report["model"].get("sha256", "?")[:12], report["elapsed_s"]))
    lines.append("")
    lines.append("| clip | motion comp. | steps | input tMSE | tMSE off | tMSE on | on/off "
                 "| mean abs on-off | follows pan off/on | gram err off | gram err on "
                 "| mean/std err off | mean/std err on | s/frame off | s/frame on |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in report["results"]:
        for s in report["steps"]:
            off, on = r["runs"]["%d:off" % s], r["runs"]["%d:on" % s]
            ratio = on["mse"] / off["mse"] if off["mse"] > 0 else float("nan")
            comp = r["comp"]
            if comp == "pc":
                comp = "pc (%d/%d pairs)" % (r["pc_accepted_pairs"], r["frames"] - 1)
            elif comp == "raw":
                comp = "none (raw)"
            follow = ("%.2f / %.2f" % (off["follow"], on["follow"])) if "follow" in off else ""
            lines.append("| %s | %s | %d | %s | %s | %s | %.2f | %s | %s | %s | %s | %s | %s "
                         "| %.2f | %.2f |"
                         % (r["clip"], comp, s, fmt_e(r["input_mse"]), fmt_e(off["mse"]),
                            fmt_e(on["mse"]), ratio, fmt_e(on["on_off_mad"]), follow,
                            fmt_f(off["gram_err"]),
                            fmt_f(on["gram_err"]), fmt_f(off["meanstd_err"]),
                            fmt_f(on["meanstd_err"]), off["s_per_frame"], on["s_per_frame"]))
    lines.append("")
    seen = {}
    for r in report["results"]:
        seen.setdefault(r["clip"], r)
    lines.append("Style error of the input frames themselves (no stylization): " + ", ".join(
        "%s gram %.3f mean/std %.3f" % (r["clip"], r["input_gram_err"], r["input_meanstd_err"])
        for r in seen.values()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
