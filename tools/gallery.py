#!/usr/bin/python3
"""Renders the README gallery with the element itself: for each (content, style) pair, one row
content | style | steps 0 | 1 | 2 | 3. Needs the build tree (GST_PLUGIN_PATH) and PIL.

    /usr/bin/python3 tools/gallery.py --build build --data ../shared/data --out examples/gallery
"""
import argparse
import os
import subprocess
import tempfile

from PIL import Image, ImageDraw

PAIRS = [  # content (shippable licence), style (public-domain artist held out of training)
    ("content/deb-lomiri_aitzgorri_by_Aitzol_Berasategi.jpg", "style/nstyle_starry_night.jpg"),
    ("content/deb-lomiri_seeding_by_Clements_Engelhardt.jpg",
     "style/peopleart_carl-spitzweg_thunderstorm.jpg"),
    ("content/deb-lomiri_picosdeeuropa_by_Aitzol_Berasategi.jpg",
     "style/peopleart_gustave-moreau_the-unicorns.jpg"),
]
TILE = 224


def stylize(build, model, content, style, steps, out_png):
    env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(build, "gst"))
    if model:
        env["ST_MODEL_PATH"] = model
    cmd = ["gst-launch-1.0", "-q", "filesrc", "location=" + content, "!", "decodebin", "!",
           "videoconvert", "!", "video/x-raw,format=RGBA", "!", "imagefreeze", "num-buffers=1",
           "!", "styletransfer", "style=" + style, "steps=%d" % steps, "processing-size=0", "!",
           "videoconvert", "!", "pngenc", "!", "filesink", "location=" + out_png]
    subprocess.run(cmd, env=env, check=True)


def tile(img):
    img = img.convert("RGB")
    img.thumbnail((TILE, TILE))
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default="examples/gallery")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (c, s) in enumerate(PAIRS):
            content = os.path.join(a.data, c)
            style = os.path.join(a.data, s)
            tiles = [tile(Image.open(content)), tile(Image.open(style))]
            for steps in range(4):
                png = os.path.join(tmp, "s%d.png" % steps)
                stylize(a.build, a.model, content, style, steps, png)
                tiles.append(tile(Image.open(png)))
            h = max(t.height for t in tiles)
            row = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), h + 16),
                            "white")
            x = 0
            labels = ["content", "style", "steps=0", "steps=1", "steps=2", "steps=3"]
            d = ImageDraw.Draw(row)
            for t, lab in zip(tiles, labels):
                row.paste(t, (x, 16))
                d.text((x + 2, 2), lab, fill="black")
                x += t.width + 4
            out = os.path.join(a.out, "pair%d.jpg" % (i + 1))
            row.save(out, quality=85)
            print("wrote", out)


if __name__ == "__main__":
    main()
