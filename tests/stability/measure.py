#!/usr/bin/python3
"""Temporal stability of the `styletransfer` element (temporal=true vs temporal=false).

Every clip is pushed through `appsrc ! styletransfer ! appsink` as one stream (so the element's
temporal state carries from frame to frame), once with temporal=true and once with
temporal=false, same style, same steps. temporal=true includes the element's output smoothing
(`temporal-smoothing`, default 0.8; --smoothing sets it, 0 measures the residual reuse alone).
Clips:

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

Real videos are also measured with dense motion compensation ("flow"), the warping error of
Lai et al. 2018 (E = mean over pairs and over the pixels p that count of ||O_t+1(p) -
O_t(p + f(p))||^2, here averaged over RGB), with our own flow and mask in place of FlowNet2 and
forward-backward consistency:
  flow   per pair, a dense flow f from INPUT frame t+1 to INPUT frame t (frame t+1 at p shows
         frame t at p + f(p)): coarse-to-fine block matching on blurred luma (up to 3 pyramid
         levels, binomial blur, 8x8 blocks matched with overlapping 12x12 windows by mean
         squared difference, +-3 px search per level around the coarser level's flow,
         parabolic sub-pixel fit, 3x3 median filter of the block vectors, bilinear
         interpolation of the vectors to every pixel; numpy only). Output t is warped onto t+1
         with bilinear sampling.
  mask   a pixel p of frame t+1 counts only if p + f(p) lies inside frame t and the flow-warped
         INPUT explains it: |I_t+1(p) - I_t(p + f(p))| averaged over RGB and box-filtered 3x3 is
         below --occlusion-threshold (default 0.05). This photometric test removes occlusions,
         disocclusions and flow failures alike; "cov" is the fraction of pixels that count.
The flows and masks come from the input only and are the same for temporal on and off, so the
on/off ratio compares the outputs on the same pixels. Because of the mask, the input tMSE under
"flow" is small by construction (what is left is compression noise and sub-pixel error).

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


def stylize(frames, style, model, steps, temporal, processing_size, fps=30, smoothing=None):
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
    if smoothing is not None:
        st.set_property("temporal-smoothing", smoothing)
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


# ----------------------------------------------------------------------------------------------
# Dense optical flow (block matching) and flow-compensated warping error


def luma(f):
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def blur5(a):
    """Separable binomial [1 4 6 4 1]/16 blur of a 2-D array, edges replicated."""
    k = (0.0625, 0.25, 0.375, 0.25, 0.0625)
    h, w = a.shape
    p = np.pad(a, ((2, 2), (0, 0)), mode="edge")
    a = sum(k[i] * p[i: i + h] for i in range(5))
    p = np.pad(a, ((0, 0), (2, 2)), mode="edge")
    return sum(k[i] * p[:, i: i + w] for i in range(5))


def bilinear_sample(img, yy, xx):
    """img (H x W or H x W x C) sampled bilinearly at float coordinates (yy, xx); coordinates
    outside the image are clamped to its border."""
    h, w = img.shape[:2]
    yy = np.clip(yy, 0.0, h - 1.0)
    xx = np.clip(xx, 0.0, w - 1.0)
    y0 = np.minimum(np.floor(yy).astype(np.intp), max(h - 2, 0))
    x0 = np.minimum(np.floor(xx).astype(np.intp), max(w - 2, 0))
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (yy - y0).astype(np.float32), (xx - x0).astype(np.float32)
    if img.ndim == 3:
        wy, wx = wy[..., None], wx[..., None]
    return ((1 - wy) * ((1 - wx) * img[y0, x0] + wx * img[y0, x1]) +
            wy * ((1 - wx) * img[y1, x0] + wx * img[y1, x1]))


def flow_warp(img, flow):
    """warped(p) = img(p + flow(p)) (bilinear; flow H x W x 2 as (dx, dy)). With flow from frame
    t+1 to frame t, this moves frame t onto frame t+1."""
    h, w = img.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    return bilinear_sample(img, gy + flow[..., 1], gx + flow[..., 0])


def _median3(v):
    """3x3 median of each component of a (ny, nx, 2) vector grid, edges replicated."""
    ny, nx = v.shape[:2]
    p = np.pad(v, ((1, 1), (1, 1), (0, 0)), mode="edge")
    stack = np.stack([p[i: i + ny, j: j + nx] for i in range(3) for j in range(3)])
    return np.median(stack, axis=0)


def _grid_to_pixels(vec, shape, block):
    """Bilinear interpolation of block vectors (centres at block*i + (block-1)/2) to every pixel
    of an image of `shape` (edge blocks' vectors extend to the border)."""
    h, w = shape
    ny, nx = vec.shape[:2]
    gy = (np.arange(h, dtype=np.float32) - (block - 1) / 2.0) / block
    gx = (np.arange(w, dtype=np.float32) - (block - 1) / 2.0) / block
    yy, xx = np.meshgrid(np.clip(gy, 0, ny - 1), np.clip(gx, 0, nx - 1), indexing="ij")
    return bilinear_sample(vec.astype(np.float32), yy, xx)


def _block_match(l1, l0, init, block, win, radius):
    """One pyramid level: for every block of l1 (frame t+1), the displacement d around the
    rounded initial flow at the block centre that minimises the mean squared difference between
    the win x win window of l1 around the centre and the same window of l0 (frame t) displaced
    by d, over the window pixels that lie inside both frames; sub-pixel by a parabola fit on
    each axis. Returns (ny, nx, 2) vectors (dx, dy)."""
    h, w = l1.shape
    ny, nx = -(-h // block), -(-w // block)
    off = np.arange(win) - (win - 1) / 2.0
    cy = np.arange(ny) * block + (block - 1) / 2.0
    cx = np.arange(nx) * block + (block - 1) / 2.0
    wy = np.floor(cy[:, None] + off[None, :] + 0.5).astype(np.intp)  # ny x win
    wx = np.floor(cx[:, None] + off[None, :] + 0.5).astype(np.intp)  # nx x win
    Y = np.clip(wy, 0, h - 1)[:, None, :, None]
    X = np.clip(wx, 0, w - 1)[None, :, None, :]
    ref = l1[Y, X]  # ny x nx x win x win
    in1y = ((wy >= 0) & (wy < h))[:, None, :, None]
    in1x = ((wx >= 0) & (wx < w))[None, :, None, :]
    ci = np.clip(np.rint(cy).astype(np.intp), 0, h - 1)
    cj = np.clip(np.rint(cx).astype(np.intp), 0, w - 1)
    v0 = np.rint(init[ci[:, None], cj[None, :]]).astype(np.intp)  # ny x nx x 2
    vx, vy = v0[..., 0][:, :, None, None], v0[..., 1][:, :, None, None]
    n = 2 * radius + 1
    cost = np.empty((ny, nx, n, n), np.float32)
    for iy, dy in enumerate(range(-radius, radius + 1)):
        yy = wy[:, None, :, None] + vy + dy
        vy_ok = in1y & (yy >= 0) & (yy < h)
        yy = np.clip(yy, 0, h - 1)
        for ix, dx in enumerate(range(-radius, radius + 1)):
            xx = wx[None, :, None, :] + vx + dx
            ok = (vy_ok & in1x & (xx >= 0) & (xx < w)).astype(np.float32)
            xx = np.clip(xx, 0, w - 1)
            cnt = ok.sum(axis=(2, 3))
            # too few pixels inside both frames: not a candidate
            cost[:, :, iy, ix] = np.where(
                cnt >= win * win / 4,
                ((ref - l0[yy, xx]) ** 2 * ok).sum(axis=(2, 3)) / np.maximum(cnt, 1), 1e3)
    # argmin; ties and near-ties (flat blocks) go to the smallest displacement
    d2 = (np.arange(n) - radius)[:, None] ** 2 + (np.arange(n) - radius)[None, :] ** 2
    pen = cost + 1e-7 * d2[None, None]
    k = np.argmin(pen.reshape(ny, nx, n * n), axis=2)
    by, bx = k // n, k % n
    cflat = cost.reshape(ny, nx, n * n)

    def c_at(iy, ix):
        return np.take_along_axis(cflat, (iy * n + ix)[..., None], axis=2)[..., 0]

    def parabola(cm, c0, cp, inner):
        den = cm - 2 * c0 + cp
        ok = inner & (den > 1e-12)
        s = np.where(ok, 0.5 * (cm - cp) / np.where(ok, den, 1.0), 0.0)
        return np.clip(s, -0.5, 0.5)

    c0 = c_at(by, bx)
    inx = (bx > 0) & (bx < n - 1)
    iny = (by > 0) & (by < n - 1)
    sx = parabola(c_at(by, np.clip(bx - 1, 0, n - 1)), c0, c_at(by, np.clip(bx + 1, 0, n - 1)),
                  inx)
    sy = parabola(c_at(np.clip(by - 1, 0, n - 1), bx), c0, c_at(np.clip(by + 1, 0, n - 1), bx),
                  iny)
    return np.stack([v0[..., 0] + bx - radius + sx, v0[..., 1] + by - radius + sy],
                    axis=-1).astype(np.float32)


def estimate_flow(a, b, levels=3, block=8, win=12, radius=3):
    """Dense flow from frame b (t+1) to frame a (t), both H x W x 3 float in [0, 1]: returns
    H x W x 2 (dx, dy) such that b(y, x) ~ a(y + dy, x + dx). Coarse-to-fine block matching on
    blurred luma: `levels` pyramid levels (each half the size of the one above, binomial
    blur), block x block blocks matched with overlapping win x win windows, +-radius px search
    per level around the flow from the coarser level, parabolic sub-pixel fit, 3x3 median
    filter of the block vectors, bilinear interpolation of the vectors to every pixel."""
    p0, p1 = [blur5(luma(a))], [blur5(luma(b))]
    while len(p0) < levels and min(p0[-1].shape) >= 4 * block:
        p0.append(blur5(p0[-1])[::2, ::2])
        p1.append(blur5(p1[-1])[::2, ::2])
    flow = np.zeros(p0[-1].shape + (2,), np.float32)
    for lev in range(len(p0) - 1, -1, -1):
        h, w = p0[lev].shape
        if flow.shape[:2] != (h, w):  # from the coarser level: resample and double
            ph, pw = flow.shape[:2]
            yy, xx = np.meshgrid((np.arange(h, dtype=np.float32) + 0.5) * ph / h - 0.5,
                                 (np.arange(w, dtype=np.float32) + 0.5) * pw / w - 0.5,
                                 indexing="ij")
            flow = 2.0 * bilinear_sample(flow, yy, xx)
        vec = _median3(_block_match(p1[lev], p0[lev], flow, block, win, radius))
        flow = _grid_to_pixels(vec, (h, w), block)
    return flow.astype(np.float32)


def flow_mask(a, b, flow, threshold):
    """Pixels of frame b (t+1) that count: p + flow(p) inside frame a (t), and the flow-warped
    frame a explains b there: the mean over RGB of |b - warp(a)|, box-filtered 3x3, is below
    `threshold`."""
    h, w = a.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    ty, tx = gy + flow[..., 1], gx + flow[..., 0]
    inside = (ty >= 0) & (ty <= h - 1) & (tx >= 0) & (tx <= w - 1)
    err = np.mean(np.abs(b - flow_warp(a, flow)), axis=2)
    p = np.pad(err, 1, mode="edge")
    err = sum(p[i: i + h, j: j + w] for i in range(3) for j in range(3)) / 9.0
    return inside & (err < threshold)


def flow_pair_mse(a, b, flow, mask):
    """Mean over the masked pixels of the RGB-mean squared difference between b (frame t+1) and
    a (frame t) warped by flow onto b; nan if no pixel counts."""
    if not mask.any():
        return float("nan")
    d = np.mean((b - flow_warp(a, flow)) ** 2, axis=2)
    return float(np.mean(d[mask]))


def video_flows(frames, threshold):
    """Per consecutive pair of INPUT frames (float, N x H x W x 3): (flow from t+1 to t, mask of
    the pixels of t+1 that count). The same flows and masks are applied to every output."""
    flows = []
    for t in range(len(frames) - 1):
        f = estimate_flow(frames[t], frames[t + 1])
        flows.append((f, flow_mask(frames[t], frames[t + 1], f, threshold)))
    return flows


def flow_temporal_mse(frames, flows):
    """frames: N x H x W x 3 float; flows[t] = (flow, mask) from video_flows."""
    return [flow_pair_mse(frames[t], frames[t + 1], *flows[t]) for t in range(len(frames) - 1)]


def clip_tmse(clip, frames):
    """Per-pair temporal MSE of `frames` (input or output of `clip`) under the clip's motion
    compensation: dense flow + mask for comp "flow", the per-pair global shifts otherwise."""
    if clip["comp"] == "flow":
        return flow_temporal_mse(frames, clip["flows"])
    return temporal_mse(frames, clip["shifts"])


# ----------------------------------------------------------------------------------------------
# Style-error proxies


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
    selftest_flow()
    print("selftest: ok")


def selftest_flow():
    """Dense flow, warp, mask and flow tMSE on synthetic pairs with a known flow."""
    # warp convention: a constant integer flow (sx, sy) is the same as shifted_pair
    rng = np.random.default_rng(1)
    img = rng.random((40, 60, 3)).astype(np.float32)
    for sx, sy in [(2, 1), (-3, 2)]:
        fl = np.zeros((40, 60, 2), np.float32)
        fl[..., 0], fl[..., 1] = sx, sy
        wa = flow_warp(img, fl)
        pb, pa = shifted_pair(wa, img, -sx, -sy)  # wa(y, x) = img(y + sy, x + sx) on overlap
        assert np.abs(pa - pb).max() < 1e-6, (sx, sy)
        m = flow_mask(img, img, fl, 1.0)
        assert m.sum() == (40 - abs(sy)) * (60 - abs(sx)), m.sum()

    def texture(h, w, seed):  # smooth random RGB texture, std 0.15 around 0.5
        r = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
        for _ in range(4):
            r = np.stack([blur5(r[..., c]) for c in range(3)], axis=-1)
        return np.clip((r - r.mean()) / r.std() * 0.15 + 0.5, 0, 1).astype(np.float32)

    # a background moving by bgf and a rectangle of another texture moving by obf (sub-pixel)
    H, W, pad = 192, 256, 20
    bg, ob = texture(H + 2 * pad, W + 2 * pad, 2), texture(H + 2 * pad, W + 2 * pad, 3)
    bgf, obf = (1.3, -0.6), (-2.7, 1.8)
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float32)

    def rect(y, x):  # the object's pixels in frame t+1 (shifted by obf: in frame t)
        return (y >= 60) & (y < 130) & (x >= 90) & (x < 180)
    r0, r1 = rect(gy - obf[1], gx - obf[0]), rect(gy, gx)
    a = np.where(r0[..., None], bilinear_sample(ob, gy + pad, gx + pad),
                 bilinear_sample(bg, gy + pad, gx + pad))
    b = np.where(r1[..., None], bilinear_sample(ob, gy + obf[1] + pad, gx + obf[0] + pad),
                 bilinear_sample(bg, gy + bgf[1] + pad, gx + bgf[0] + pad))
    true = np.where(r1[..., None], np.float32(obf), np.float32(bgf))
    t0 = time.monotonic()
    f = estimate_flow(a, b)
    dt = time.monotonic() - t0
    epe = np.hypot(*(f - true).transpose(2, 0, 1))
    inner = rect(gy - 8, gx - 8) & rect(gy + 8, gx + 8)  # object, 8 px from its edges
    far = ~(rect(gy - 12, gx - 12) | rect(gy + 12, gx + 12) | rect(gy - 12, gx + 12) |
            rect(gy + 12, gx - 12)) & (gy >= 8) & (gy < H - 8) & (gx >= 8) & (gx < W - 8)
    assert epe[inner].mean() < 0.5 and epe[far].mean() < 0.5, (epe[inner].mean(), epe[far].mean())
    m = flow_mask(a, b, f, 0.05)
    e_raw, e_flow = float(np.mean((a - b) ** 2)), flow_pair_mse(a, b, f, m)
    assert m.mean() > 0.85 and e_flow < 0.02 * e_raw, (m.mean(), e_flow, e_raw)
    # background pixels of t+1 whose source in t is hidden by the object must not count
    occ = ~r1 & rect(gy + bgf[1] - obf[1], gx + bgf[0] - obf[0])
    assert occ.sum() > 100 and m[occ].mean() < 0.2, (occ.sum(), m[occ].mean())
    # an output that moves with the scene (a pointwise function of the input) scores low; one
    # with a pattern fixed on the screen ("shower door") scores high, under the same flow/mask
    screen = texture(H, W, 4) - 0.5
    moving = flow_pair_mse(a ** 2, b ** 2, f, m)
    door = flow_pair_mse(np.clip(a + screen, 0, 1), np.clip(b + screen, 0, 1), f, m)
    assert moving < 0.02 * e_raw and door > 10 * moving, (moving, door)
    # integer pan of a photo-like clip: the flow is the pan and the warping error ~0
    clip = to_float(make_pan((texture(120, 160, 5) * 255).astype(np.uint8), 96, 64, 3, 3, -2))
    flows = video_flows(clip, 0.05)
    for fl, mk in flows:
        err = np.abs(fl - np.float32((3, -2)))
        assert err.mean() < 0.03 and err.max() < 0.2, (err.mean(), err.max())
        assert mk.mean() > 0.9
    e_pan = max(flow_temporal_mse(clip, flows))
    assert e_pan < 0.01 * min(temporal_mse(clip, [(0, 0)] * 2)), e_pan
    assert dt < 5.0, dt


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
            # dense block-matching flow + occlusion / unexplained-change mask, both from the
            # INPUT frames (the Lai et al. 2018 warping error with our own flow and mask)
            t0 = time.monotonic()
            flows = video_flows(fl, args.occlusion_threshold)
            cov = [float(m.mean()) for _, m in flows]
            print("  %-34s flow: %.1f s, coverage %.3f, mean |flow| %.2f px"
                  % ("video:" + short, time.monotonic() - t0, mean(cov),
                     float(np.mean([np.mean(np.hypot(f[..., 0], f[..., 1])) for f, _ in flows]))),
                  file=sys.stderr)
            clips.append({"name": "video:" + short, "kind": "video", "comp": "flow",
                          "frames": frames, "shifts": None, "flows": flows})
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
    ap.add_argument("--smoothing", type=float, default=None,
                    help="the element's temporal-smoothing for the temporal=true runs (default: "
                         "the element's default, 0.8; 0 = residual reuse only)")
    ap.add_argument("--video-skip", type=int, default=0, help="skip this many video frames")
    ap.add_argument("--occlusion-threshold", type=float, default=0.05,
                    help="video flow compensation: a pixel counts only where the flow-warped "
                         "input frame t matches input frame t+1 to within this mean absolute "
                         "RGB difference (3x3 box-filtered, [0,1] units; default 0.05)")
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
    if not args.occlusion_threshold > 0:
        ap.error("--occlusion-threshold must be positive")
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
            in_mse = clip_tmse(clip, fl_in)
            row = {"clip": clip["name"], "kind": clip["kind"], "comp": clip["comp"],
                   "frames": len(fl_in), "input_mse": mean(in_mse),
                   "input_mse_per_pair": in_mse,
                   "input_gram_err": mean([style_ref.gram_err(f) for f in fl_in]),
                   "input_meanstd_err": mean([style_ref.meanstd_err(f) for f in fl_in])}
            if clip["comp"] == "pc":
                row["pc_shifts"] = clip["shifts"]
                row["pc_accepted_pairs"] = clip["pc_accepted"]
            if clip["comp"] == "flow":
                cov = [float(m.mean()) for _, m in clip["flows"]]
                row["flow_coverage"] = mean(cov)
                row["flow_coverage_per_pair"] = cov
                row["flow_mean_px"] = float(np.mean([np.mean(np.hypot(f[..., 0], f[..., 1]))
                                                     for f, _ in clip["flows"]]))
                row["occlusion_threshold"] = args.occlusion_threshold
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
                                                       steps, temporal, args.processing_size,
                                                       smoothing=args.smoothing)
                        except MeasureError:
                            print(file=sys.stderr)
                            raise
                        print(" %.2f s/frame" % spf, file=sys.stderr)
                        cache[key] = (outs, spf, first)
                    outs, spf, first = cache[key]
                    fo = to_float(outs)
                    mse = clip_tmse(clip, fo)
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
            if args.png_dir and clip["comp"] not in ("pc", "raw", "flow"):
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
        "occlusion_threshold": args.occlusion_threshold,
        "temporal_smoothing": args.smoothing,
        "metric": "mean over consecutive pairs of MSE(out_t, out_t+1 moved back by the motion) "
                  "on the overlap, RGB in [0,1]; comp 'flow': mean over pairs of the MSE between "
                  "out_t+1 and out_t warped (bilinear) by the dense block-matching flow of the "
                  "input frames, over the pixels that the flow keeps inside frame t and where "
                  "the warped input differs from input t+1 by less than occlusion_threshold "
                  "(mean abs RGB, 3x3 box)",
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
    sm = report.get("temporal_smoothing")
    lines.append("%dx%d, %d frames/clip, style %s, model %s (sha256 %s...), temporal-smoothing "
                 "%s, %.0f s total"
                 % (report["width"], report["height"], report["frames"],
                    os.path.basename(report["style"]), os.path.basename(report["model"]["path"]),
                    report["model"].get("sha256", "?")[:12],
                    "element default" if sm is None else "%g" % sm, report["elapsed_s"]))
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
            elif comp == "flow":
                comp = "flow (cov %.3f)" % r["flow_coverage"]
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
