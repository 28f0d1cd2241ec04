// SPDX-License-Identifier: LGPL-2.1-or-later
// Planar RGB x [3,xh,xw] -> one plane of a frame (raw bytes). ops.c dispatches once per plane.
// x is resized bilinearly (PyTorch align_corners=False rule) to the frame size and clamped to
// [0,1]. With PRESERVE, each bilinear tap combines the luma (BT.601 Y) of x with the chroma
// (Cb, Cr) of `orig` (the input frame as RGB at x's size) before interpolation.
// Each invocation owns one 32-bit word of the destination buffer and rewrites only the bytes
// that belong to the plane's pixels (row padding and neighbouring data are preserved), so any
// plane offset/stride works without 8-bit storage.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "frame.glsl"

layout(local_size_x = 64) in;

ST_IN(0, x)
ST_IN(1, orig)
layout(std430, set = 0, binding = 2) buffer Dst { uint dst[]; };

layout(push_constant) uniform P {
  uint format, fw, fh, xw, xh;
  uint plane_off, stride, rows, rowbytes; // the plane being written
  uint plane;                             // 0, 1, 2
  uint word0, nwords;                     // words of dst covering the plane
  uint preserve;
  float sx, sy; // xw/fw, xh/fh
} p;

vec3 tap(uint i) {
  uint n = p.xw * p.xh;
  vec3 c = vec3(ld_x(i), ld_x(n + i), ld_x(2u * n + i));
  if (p.preserve != 0u) {
    vec3 o = vec3(ld_orig(i), ld_orig(n + i), ld_orig(2u * n + i));
    c = ycc_to_rgb(dot(c, KY), dot(o, KCB), dot(o, KCR));
  }
  return c;
}

// RGB of frame pixel (px, py), resized from x and clamped.
vec3 sample_rgb(uint px, uint py) {
  float fx = max((float(px) + 0.5) * p.sx - 0.5, 0.0);
  float fy = max((float(py) + 0.5) * p.sy - 0.5, 0.0);
  uint x0 = min(uint(fx), p.xw - 1u), y0 = min(uint(fy), p.xh - 1u);
  uint x1 = x0 + (x0 < p.xw - 1u ? 1u : 0u), y1 = y0 + (y0 < p.xh - 1u ? 1u : 0u);
  float lx = fx - float(x0), ly = fy - float(y0);
  vec3 r0 = (1.0 - lx) * tap(y0 * p.xw + x0) + lx * tap(y0 * p.xw + x1);
  vec3 r1 = (1.0 - lx) * tap(y1 * p.xw + x0) + lx * tap(y1 * p.xw + x1);
  return clamp((1.0 - ly) * r0 + ly * r1, 0.0, 1.0);
}

// Byte values (0..255, unrounded) of sample `s` in row `row` of the plane: packed formats give
// the pixel's RGB; the Y plane gives Y in .x; chroma planes give (Cb, Cr) in .xy.
vec3 sample_value(uint row, uint s) {
  if (p.format < FMT_I420)
    return sample_rgb(s, row) * 255.0;
  if (p.plane == 0u)
    return vec3(16.0 + 219.0 * dot(sample_rgb(s, row), KY));
  vec3 acc = vec3(0.0);
  float cnt = 0.0;
  for (uint dy = 0u; dy < 2u; dy++)
    for (uint dx = 0u; dx < 2u; dx++) {
      uint px = 2u * s + dx, py = 2u * row + dy;
      if (px < p.fw && py < p.fh) {
        acc += sample_rgb(px, py);
        cnt += 1.0;
      }
    }
  acc /= cnt;
  return vec3(128.0 + 224.0 * dot(acc, KCB), 128.0 + 224.0 * dot(acc, KCR), 0.0);
}

void main() {
  uint wi = st_group_linear() * 64u + gl_LocalInvocationID.x;
  if (wi >= p.nwords)
    return;
  uint word = p.word0 + wi;
  uint bpp = p.format < FMT_I420 ? 4u : (p.format == FMT_NV12 && p.plane == 1u ? 2u : 1u);
  uint end = p.plane_off + (p.rows - 1u) * p.stride + p.rowbytes;
  uint mask = 0u, bits = 0u;
  uint cached_row = 0xffffffffu, cached_s = 0xffffffffu;
  vec3 val = vec3(0.0);
  for (uint j = 0u; j < 4u; j++) {
    uint a = word * 4u + j;
    if (a < p.plane_off || a >= end)
      continue;
    uint rel = a - p.plane_off;
    uint row = rel / p.stride, col = rel % p.stride;
    if (col >= p.rowbytes)
      continue;
    uint s = col / bpp, comp = col % bpp;
    if (row != cached_row || s != cached_s) {
      val = sample_value(row, s);
      cached_row = row;
      cached_s = s;
    }
    float v;
    if (p.format < FMT_I420) {
      if (comp == 3u)
        v = 255.0;
      else
        v = fmt_is_bgr(p.format) ? val[2u - comp] : val[comp];
    } else if (p.plane == 0u) {
      v = val.x;
    } else if (p.format == FMT_I420) {
      v = p.plane == 1u ? val.x : val.y;
    } else {
      v = comp == 0u ? val.x : val.y;
    }
    uint byte = uint(clamp(floor(v + 0.5), 0.0, 255.0));
    mask |= 255u << (j * 8u);
    bits |= byte << (j * 8u);
  }
  if (mask == 0u)
    return;
  if (mask == 0xffffffffu)
    dst[word] = bits;
  else
    dst[word] = (dst[word] & ~mask) | bits;
}
