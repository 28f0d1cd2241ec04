#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Renders the README gallery (examples/gallery/) with the styletransfer element itself.

    /usr/bin/python3 tools/gallery.py [--build build] [--data ../shared/data]
                                      [--model weights/styletransfer.safetensors]
                                      [--out examples/gallery] [--only pairs|mix|mask|two|clip]

- pair1.jpg .. pairN.jpg: one row per (content, style) pair: content | style | the element's output
  at steps 0, 1, 2, 3 (temporal off, strength 1, processing-size 0). The content is scaled
  beforehand to --work px (default 448) on its longer side (PIL, Lanczos), so the network works at
  that size (the scale it was trained at: the EFA start runs at 1/4 of it); the pictures are
  then shown as TILE px thumbnails.
  Content photos have licences that allow redistribution (examples/ASSETS.md); the styles are
  public-domain artworks by artists held out of training (weights/train.py splits()).
- mix.jpg: content | style | style-2 | the element's output at style-mix 0, 0.25, 0.5, 0.75, 1
  (steps 2, temporal off): the two styles' statistics interpolated.
- mask.jpg: content | style | a mask image | the element's output with mask-source=image (that
  mask), mask-source=roi (a GstVideoRegionOfInterestMeta rectangle, feather 24) and
  mask-source=alpha (the input's alpha a left-to-right ramp), steps 2, temporal off: the style
  only where the mask says, the photo elsewhere.
- two.jpg: content | style | style-2 | a mask image | the element's output with mask-source=image
  (that mask) and mask-source=alpha (a left-to-right ramp), both with style-2 (steps 2, temporal
  off): style where the mask is white, style-2 where it is black, in the network (each region
  with its own statistics). seam.jpg: the seam of a half mask (a 16-px ramp), 2x: the two styles
  in the network beside the two one-style outputs blended by the same mask.
- clip.jpg: frames 0, 10, 20, 30 of examples/sample.mkv, scaled to --work px wide by videoscale
  (shown as TILE px thumbnails): top row
  the input, bottom row the element's output with examples/default-style.jpg (steps 2, temporal
  on), both taken from one pipeline (tee) so the temporal state carries from frame to frame.

Deterministic (same model, same build, same inputs: same JPEGs). Needs the build tree
(<build>/gst, loaded through GST_PLUGIN_PATH), PyGObject (python3-gi, gir1.2-gstreamer-1.0) and
PIL; no PyTorch. Prints the time taken.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (content, style). Content paths are relative to --data, except "clip:N",
# which is frame N of examples/sample.mkv (CC-BY-4.0, Intel), cropped to the person (portrait).
PAIRS = [
    ("content/deb-lomiri_aitzgorri_by_Aitzol_Berasategi.jpg", "style/nstyle_starry_night.jpg"),
    ("content/deb-lomiri_seeding_by_Clements_Engelhardt.jpg",
     "style/peopleart_carl-spitzweg_thunderstorm.jpg"),
    ("content/deb-lomiri_picosdeeuropa_by_Aitzol_Berasategi.jpg",
     "style/peopleart_gustave-moreau_the-unicorns.jpg"),
    ("clip:20",
     "style/peopleart_francisco-bayeu-y-subias_retrato-de-sebastiana-merclein-su-mujer-1786.jpg"),
    ("content/deb-lomiri_Picture_1A_by_freespace.jpg",
     "style/peopleart_berthe-morisot_the-piano.jpg"),
    ("content/deb-lomiri_life_by_Aitzol_Berasategi.jpg",
     "style/peopleart_konstantin-makovsky_cupids-with-flowers.jpg"),
    ("content/deb-lomiri_Picture_0B_by_freespace.jpg",
     "style/peopleart_richard-friese_polar-bear-family.jpg"),
]
TILE = 224
WORK = 448
PORTRAIT_CROP = (176, 0, 464, 384)  # of the 640x480 clip frame: the signer, 3:4
CLIP = "examples/sample.mkv"
CLIP_STYLE = "examples/default-style.jpg"
CLIP_FRAMES = (0, 10, 20, 30)
# two styles: content, style, style-2 and the element's output at these style-mix values (steps 2)
MIX_PAIR = ("content/deb-lomiri_seeding_by_Clements_Engelhardt.jpg",
            "style/nstyle_starry_night.jpg",
            "style/peopleart_gustave-moreau_the-unicorns.jpg")
MIXES = (0.0, 0.25, 0.5, 0.75, 1.0)
# masks: content and style; the ROI rectangle and the ellipse of the mask image, as fractions of
# the content's size (x, y, w, h)
MASK_PAIR = ("content/deb-lomiri_aitzgorri_by_Aitzol_Berasategi.jpg",
             "style/nstyle_starry_night.jpg")
MASK_ROI = (0.30, 0.15, 0.40, 0.55)
MASK_ELLIPSE = (0.15, 0.10, 0.70, 0.80)
# the two styles' seam: the ramp of the half mask and the width of the crop around it (px)
SEAM_RAMP = 16
SEAM_CROP = 160
LABEL_H = 16
GAP = 4
JPEG_QUALITY = 85

Gst = None
GstVideo = None


def init_gst(build):
    """Imports and initialises GStreamer with the plugin of the build tree."""
    global Gst, GstVideo
    os.environ["GST_PLUGIN_PATH"] = os.path.abspath(os.path.join(build, "gst"))
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import Gst as gst
    from gi.repository import GstVideo as gstvideo
    gst.init(None)
    if gst.ElementFactory.find("styletransfer") is None:
        sys.exit("styletransfer element not found in %s/gst (build first)" % build)
    Gst, GstVideo = gst, gstvideo


def check_bus(pipeline, what):
    msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    if msg is not None:
        err, dbg = msg.parse_error()
        pipeline.set_state(Gst.State.NULL)
        sys.exit("%s: %s (%s)" % (what, err.message, dbg))


def pull_rgb(sink, pipeline, what):
    """Pulls one RGBA sample from an appsink and returns it as a PIL RGB image."""
    sample = sink.emit("try-pull-sample", 600 * Gst.SECOND)
    if sample is None:
        check_bus(pipeline, what)
        pipeline.set_state(Gst.State.NULL)
        sys.exit("%s: no frame (end of stream or timeout)" % what)
    s = sample.get_caps().get_structure(0)
    w, h = s.get_value("width"), s.get_value("height")
    buf = sample.get_buffer()
    ok, info = buf.map(Gst.MapFlags.READ)
    assert ok
    stride = len(info.data) // h  # RGBA: rows are packed (4-byte pixels)
    a = np.frombuffer(info.data, np.uint8).reshape(h, stride)[:, :w * 4].reshape(h, w, 4)
    img = Image.fromarray(a[:, :, :3].copy(), "RGB")
    buf.unmap(info)
    return img


def stylize(model, content, style, settings, fixed=None, alpha=None, roi=None):
    """Runs the element once on `content` (PIL RGB) per entry of `settings` (properties set
    before that frame; strings through Gst.util_set_object_arg, so enums take their nicks),
    temporal state off, in one pipeline (appsrc ! styletransfer ! appsink): one engine load per
    row. `fixed`: properties set before it starts. `alpha`: the frames' alpha (HxW uint8; 255
    otherwise); `roi`: (type, x, y, w, h) of a GstVideoRegionOfInterestMeta on every frame."""
    w, h = content.size
    desc = ("appsrc name=src format=time caps=video/x-raw,format=RGBA,width=%d,height=%d,"
            "framerate=30/1 ! styletransfer name=st processing-size=0 temporal=false "
            "strength=1.0 preserve-colors=false ! appsink name=sink sync=false" % (w, h))
    p = Gst.parse_launch(desc)
    st = p.get_by_name("st")
    st.set_property("model", model)
    st.set_property("style", style)
    def set_props(props):
        for k, v in props.items():
            if isinstance(v, str):
                Gst.util_set_object_arg(st, k, v)
            else:
                st.set_property(k, v)
    set_props(fixed or {})
    src, sink = p.get_by_name("src"), p.get_by_name("sink")
    p.set_state(Gst.State.PLAYING)
    a = np.full((h, w, 1), 255, np.uint8) if alpha is None else alpha[:, :, None]
    rgba = np.concatenate([np.asarray(content, np.uint8), a], axis=-1).tobytes()
    outs = []
    for i, props in enumerate(settings):
        set_props(props)  # the previous frame has been pulled: applies to this one
        buf = Gst.Buffer.new_wrapped(rgba)
        if roi is not None:
            GstVideo.buffer_add_video_region_of_interest_meta(buf, *roi)
        buf.pts = i * Gst.SECOND // 30
        buf.duration = Gst.SECOND // 30
        if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            check_bus(p, style)
            sys.exit("push-buffer failed")
        outs.append(pull_rgb(sink, p, "%s %s" % (style, props)))
    src.emit("end-of-stream")
    p.set_state(Gst.State.NULL)
    return outs


def clip_frames(model, style, frames, size, stylized=True):
    """Decodes CLIP, scales it to `size` with videoscale and returns (inputs, outputs) for the
    given frame indices; the outputs come from styletransfer in the same pipeline (steps 2,
    temporal on), which sees every frame from the first one."""
    last = max(frames)
    desc = ("filesrc name=file ! decodebin ! videoconvert ! videoscale ! "
            "video/x-raw,format=RGBA,width=%d,height=%d,pixel-aspect-ratio=1/1 ! tee name=t "
            "t. ! queue max-size-buffers=0 max-size-time=0 max-size-bytes=0 ! "
            "appsink name=in sync=false" % size)
    if stylized:
        desc += (" t. ! queue ! styletransfer name=st processing-size=0 steps=2 temporal=true "
                 "strength=1.0 preserve-colors=false ! appsink name=out sync=false")
    p = Gst.parse_launch(desc)
    p.get_by_name("file").set_property("location", os.path.join(ROOT, CLIP))
    if stylized:
        st = p.get_by_name("st")
        st.set_property("model", model)
        st.set_property("style", style)
    sin, sout = p.get_by_name("in"), p.get_by_name("out")
    p.set_state(Gst.State.PLAYING)
    ins, outs = [], []
    for i in range(last + 1):
        a = pull_rgb(sin, p, "clip input frame %d" % i)
        b = pull_rgb(sout, p, "clip output frame %d" % i) if stylized else None
        if i in frames:
            ins.append(a)
            outs.append(b)
    p.set_state(Gst.State.NULL)
    return ins, outs


def load_content(data, path):
    if path.startswith("clip:"):
        n = int(path[5:])
        ins, _ = clip_frames(None, None, (n,), (640, 480), stylized=False)
        img = ins[0].crop(PORTRAIT_CROP)
    else:
        img = Image.open(os.path.join(data, path)).convert("RGB")
    s = WORK / max(img.size)
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))),
                      Image.LANCZOS)


def thumb(img):
    img = img.convert("RGB")
    s = TILE / max(img.size)
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))),
                      Image.LANCZOS)


def compose(rows, labels):
    """rows: list of lists of images; labels: one list of labels per row (drawn above)."""
    cols = max(len(r) for r in rows)
    col_w = [max(r[c].width for r in rows if c < len(r)) for c in range(cols)]
    row_h = [max(t.height for t in r) for r in rows]
    W = sum(col_w) + GAP * (cols - 1)
    H = sum(h + LABEL_H for h in row_h) + GAP * (len(rows) - 1)
    out = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(out)
    y = 0
    for r, labs, h in zip(rows, labels, row_h):
        x = 0
        for c, (t, lab) in enumerate(zip(r, labs)):
            out.paste(t, (x, y + LABEL_H))
            d.text((x + 2, y + 2), lab, fill="black")
            x += col_w[c] + GAP
        y += h + LABEL_H + GAP
    return out


def save(img, path):
    img.save(path, quality=JPEG_QUALITY, optimize=True)
    kb = os.path.getsize(path) / 1024
    print("wrote %s (%dx%d, %.0f KiB)" % (path, img.width, img.height, kb), flush=True)
    if kb >= 150:
        print("warning: %s is %.0f KiB (aim: < 150 KiB)" % (path, kb), file=sys.stderr)


def ellipse_mask(w, h):
    """The mask image: a white ellipse with a soft edge, at half the content's size (the element
    scales it to the frame)."""
    mask = Image.new("L", (w // 2, h // 2), 0)
    ex, ey, ew, eh = MASK_ELLIPSE
    ImageDraw.Draw(mask).ellipse((ex * w / 2, ey * h / 2, (ex + ew) * w / 2, (ey + eh) * h / 2),
                                 fill=255)
    return mask.filter(ImageFilter.GaussianBlur(6))


def main():
    global WORK
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--model", default=os.path.join(ROOT, "weights", "styletransfer.safetensors"))
    ap.add_argument("--out", default=os.path.join(ROOT, "examples", "gallery"))
    ap.add_argument("--only", choices=("pairs", "clip", "mix", "mask", "two"), default=None)
    ap.add_argument("--work", type=int, default=WORK,
                    help="size the network works at (longer side, px; default %(default)s)")
    a = ap.parse_args()
    WORK = a.work
    t0 = time.monotonic()
    model = os.path.abspath(a.model)
    if not os.path.isfile(model):
        sys.exit("model %s not found" % model)
    init_gst(a.build)
    os.makedirs(a.out, exist_ok=True)

    if a.only in (None, "pairs"):
        for i, (c, s) in enumerate(PAIRS):
            t1 = time.monotonic()
            content = load_content(a.data, c)
            style = os.path.abspath(os.path.join(a.data, s))
            outs = stylize(model, content, style, [{"steps": n} for n in range(4)])
            tiles = [thumb(content), thumb(Image.open(style))] + [thumb(o) for o in outs]
            labels = ["content", "style (held out)"] + ["steps=%d" % n for n in range(4)]
            save(compose([tiles], [labels]), os.path.join(a.out, "pair%d.jpg" % (i + 1)))
            print("  pair %d: %s + %s, %dx%d, %.1f s" %
                  (i + 1, os.path.basename(c), os.path.basename(s), content.width,
                   content.height, time.monotonic() - t1), flush=True)

    if a.only in (None, "mix"):
        t1 = time.monotonic()
        c, s1, s2 = MIX_PAIR
        content = load_content(a.data, c)
        style, style2 = (os.path.abspath(os.path.join(a.data, x)) for x in (s1, s2))
        outs = stylize(model, content, style, [{"style-mix": m} for m in MIXES],
                       {"style-2": style2, "steps": 2})
        tiles = [thumb(content), thumb(Image.open(style)), thumb(Image.open(style2))]
        tiles += [thumb(o) for o in outs]
        labels = ["content", "style", "style-2"] + ["style-mix=%g" % m for m in MIXES]
        save(compose([tiles], [labels]), os.path.join(a.out, "mix.jpg"))
        print("  mix: %.1f s" % (time.monotonic() - t1), flush=True)

    if a.only in (None, "two"):
        t1 = time.monotonic()
        c, s1, s2 = MIX_PAIR
        content = load_content(a.data, c)
        style, style2 = (os.path.abspath(os.path.join(a.data, x)) for x in (s1, s2))
        w, h = content.size
        mask = ellipse_mask(w, h)
        with tempfile.TemporaryDirectory() as tmp:
            mask_path = os.path.join(tmp, "mask.png")
            mask.save(mask_path)
            ramp = np.tile(np.linspace(0, 255, w).round().astype(np.uint8), (h, 1))
            outs = stylize(model, content, style, [{}, {"mask-source": "alpha"}],
                           {"mask": mask_path, "mask-source": "image", "style-2": style2,
                            "steps": 2}, alpha=ramp)
        tiles = [thumb(content), thumb(Image.open(style)), thumb(Image.open(style2)),
                 thumb(mask)] + [thumb(o) for o in outs]
        labels = ["content", "style (white)", "style-2 (black)", "mask image",
                  "mask-source=image", "mask-source=alpha (ramp)"]
        save(compose([tiles], [labels]), os.path.join(a.out, "two.jpg"))
        # the seam: a half mask with a SEAM_RAMP-px ramp; the two styles in the network beside
        # the two one-style outputs blended by the same mask, 2x around the seam
        ramp_x = np.arange(w) + 0.5 - w / 2.0
        half = np.clip(0.5 - ramp_x / SEAM_RAMP, 0, 1)
        half_mask = Image.fromarray(np.tile((half * 255).round().astype(np.uint8), (h, 1)))
        with tempfile.TemporaryDirectory() as tmp:
            mask_path = os.path.join(tmp, "half.png")
            half_mask.save(mask_path)
            two_out = stylize(model, content, style, [{}],
                              {"mask": mask_path, "mask-source": "image", "style-2": style2,
                               "steps": 2})[0]
        ones = [stylize(model, content, st, [{}], {"steps": 2})[0] for st in (style, style2)]
        m = half[None, :, None]
        blend = Image.fromarray((np.asarray(ones[0], np.float64) * m +
                                 np.asarray(ones[1], np.float64) * (1 - m)).round()
                                .astype(np.uint8))
        box = (w // 2 - SEAM_CROP // 2, 0, w // 2 + SEAM_CROP // 2, h)
        zoom = [im.crop(box).resize((SEAM_CROP * 2, h * 2), Image.NEAREST)
                for im in (two_out, blend)]
        save(compose([zoom], [["two styles in the network (2x, %d px ramp)" % SEAM_RAMP,
                               "two one-style outputs blended by the mask"]]),
             os.path.join(a.out, "seam.jpg"))
        print("  two: %.1f s" % (time.monotonic() - t1), flush=True)

    if a.only in (None, "mask"):
        t1 = time.monotonic()
        content = load_content(a.data, MASK_PAIR[0])
        style = os.path.abspath(os.path.join(a.data, MASK_PAIR[1]))
        w, h = content.size
        mask = ellipse_mask(w, h)
        with tempfile.TemporaryDirectory() as tmp:
            mask_path = os.path.join(tmp, "mask.png")
            mask.save(mask_path)
            rx, ry, rw, rh = MASK_ROI
            roi = ("object", round(rx * w), round(ry * h), round(rw * w), round(rh * h))
            ramp = np.tile(np.linspace(0, 255, w).round().astype(np.uint8), (h, 1))
            outs = stylize(model, content, style,
                           [{}, {"mask-source": "roi"}, {"mask-source": "alpha"}],
                           {"mask": mask_path, "mask-source": "image", "feather": 24,
                            "steps": 2}, alpha=ramp, roi=roi)
        roi_tile = outs[1].copy()
        ImageDraw.Draw(roi_tile).rectangle((roi[1], roi[2], roi[1] + roi[3] - 1,
                                            roi[2] + roi[4] - 1), outline=(255, 255, 255))
        tiles = [thumb(content), thumb(Image.open(style)), thumb(mask), thumb(outs[0]),
                 thumb(roi_tile), thumb(outs[2])]
        labels = ["content", "style", "mask image", "mask-source=image",
                  "mask-source=roi (box: ROI)", "mask-source=alpha (ramp)"]
        save(compose([tiles], [labels]), os.path.join(a.out, "mask.jpg"))
        print("  mask: %.1f s" % (time.monotonic() - t1), flush=True)

    if a.only in (None, "clip"):
        t1 = time.monotonic()
        clip_size = (WORK, WORK * 3 // 4)
        ins, outs = clip_frames(model, os.path.join(ROOT, CLIP_STYLE), CLIP_FRAMES, clip_size)
        ins, outs = [thumb(f) for f in ins], [thumb(f) for f in outs]
        labels_in = ["input, frame %d" % f for f in CLIP_FRAMES]
        labels_out = ["stylized, frame %d" % f for f in CLIP_FRAMES]
        save(compose([ins, outs], [labels_in, labels_out]), os.path.join(a.out, "clip.jpg"))
        print("  clip: %d frames at %dx%d, %.1f s" %
              (max(CLIP_FRAMES) + 1, clip_size[0], clip_size[1], time.monotonic() - t1))

    print("gallery done in %.1f s (model %s)" % (time.monotonic() - t0, model))


if __name__ == "__main__":
    main()
