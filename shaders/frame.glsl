// SPDX-License-Identifier: LGPL-2.1-or-later
// Pixel formats and colour conversion shared by frame_to_float.comp and float_to_frame.comp.
// Formats (StPixelFormat): 0 RGBA, 1 BGRA, 2 RGBx, 3 BGRx (4 bytes per pixel, plane 0),
// 4 I420 (Y, U, V planes), 5 NV12 (Y, interleaved UV plane). Chroma planes are ceil(w/2) x
// ceil(h/2); a chroma sample covers the 2x2 luma block it is centred on (centre siting, as
// MPEG-1/JPEG): reading repeats it over the block, writing averages the block's in-frame pixels.
// YUV is BT.601 limited range: Y 16..235, Cb/Cr 16..240.

#define FMT_RGBA 0u
#define FMT_BGRA 1u
#define FMT_RGBX 2u
#define FMT_BGRX 3u
#define FMT_I420 4u
#define FMT_NV12 5u

const vec3 KY = vec3(0.299, 0.587, 0.114);
const vec3 KCB = vec3(-0.168736, -0.331264, 0.5);
const vec3 KCR = vec3(0.5, -0.418688, -0.081312);

// Full-range YCbCr (Cb, Cr centred on 0) to RGB.
vec3 ycc_to_rgb(float y, float cb, float cr) {
  return vec3(y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb);
}

bool fmt_is_bgr(uint f) { return f == FMT_BGRA || f == FMT_BGRX; }
