// SPDX-License-Identifier: LGPL-2.1-or-later
// Motion-compensated temporal smoothing of the network's output (the element's
// temporal-smoothing): where the scene did not change, keep part of the previous output moved
// with the scene.
//
//   f(p)   = motion at pixel p, bilinear between block centres ((i + 0.5) * block - 0.5) of the
//            [2, bh, bw] field (x then y components, output pixels): this frame's p shows the
//            previous frame's p + f(p)
//   W(a)   = a sampled bilinearly at p + f(p) (position clamped to the image)
//   d(p)   = mean over the 3x3 neighbours q of p (clamped) and the 3 channels of
//            |cur_in(q) - prev_in sampled at q + f(p)|
//   m(p)   = keep * clamp(1 - d(p) * inv_thr, 0, 1), 0 where p + f(p) is outside the image
//   y      = x + m * (W(prev_out) - x)
// Every tensor is [3, h, w] except the field. The CPU reference is st_ref_temporal_blend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;

ST_IN(0, x)
ST_IN(1, prev_out)
ST_IN(2, cur_in)
ST_IN(3, prev_in)
ST_IN(4, flow)
ST_OUT(5, y)

layout(push_constant) uniform P {
  uint h, w, bh, bw;
  float block_x, block_y; // block size in output pixels
  float keep, inv_thr;
} p;

// bilinear weights of coordinate u (in block units) on a grid of n cells
void grid_lerp(float u, uint n, out uint i0, out uint i1, out float l) {
  float c = clamp(u, 0.0, float(n - 1u));
  i0 = uint(floor(c));
  i1 = min(i0 + 1u, n - 1u);
  l = c - float(i0);
}

float field(uint comp, float px, float py) {
  uint x0, x1, y0, y1;
  float lx, ly;
  grid_lerp((px + 0.5) / p.block_x - 0.5, p.bw, x0, x1, lx);
  grid_lerp((py + 0.5) / p.block_y - 0.5, p.bh, y0, y1, ly);
  uint base = comp * p.bh * p.bw;
  float r0 = mix(ld_flow(base + y0 * p.bw + x0), ld_flow(base + y0 * p.bw + x1), lx);
  float r1 = mix(ld_flow(base + y1 * p.bw + x0), ld_flow(base + y1 * p.bw + x1), lx);
  return mix(r0, r1, ly);
}

// bilinear sample positions/weights at (sx, sy), clamped to the image
struct Tap {
  uint i00, i01, i10, i11;
  float lx, ly;
};

Tap tap(float sx, float sy) {
  float cx = clamp(sx, 0.0, float(p.w - 1u)), cy = clamp(sy, 0.0, float(p.h - 1u));
  uint x0 = uint(floor(cx)), y0 = uint(floor(cy));
  uint x1 = min(x0 + 1u, p.w - 1u), y1 = min(y0 + 1u, p.h - 1u);
  Tap t;
  t.i00 = y0 * p.w + x0;
  t.i01 = y0 * p.w + x1;
  t.i10 = y1 * p.w + x0;
  t.i11 = y1 * p.w + x1;
  t.lx = cx - float(x0);
  t.ly = cy - float(y0);
  return t;
}

float sample_prev_in(Tap t, uint base) {
  float r0 = mix(ld_prev_in(base + t.i00), ld_prev_in(base + t.i01), t.lx);
  float r1 = mix(ld_prev_in(base + t.i10), ld_prev_in(base + t.i11), t.lx);
  return mix(r0, r1, t.ly);
}

float sample_prev_out(Tap t, uint base) {
  float r0 = mix(ld_prev_out(base + t.i00), ld_prev_out(base + t.i01), t.lx);
  float r1 = mix(ld_prev_out(base + t.i10), ld_prev_out(base + t.i11), t.lx);
  return mix(r0, r1, t.ly);
}

void main() {
  uint ox = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y;
  if (ox >= p.w)
    return;
  uint plane = p.h * p.w;
  float fx = field(0u, float(ox), float(oy)), fy = field(1u, float(ox), float(oy));
  float sx = float(ox) + fx, sy = float(oy) + fy;
  bool inside = sx >= 0.0 && sx <= float(p.w - 1u) && sy >= 0.0 && sy <= float(p.h - 1u);
  float d = 0.0;
  for (int b = -1; b <= 1; b++)
    for (int a = -1; a <= 1; a++) {
      uint qx = uint(clamp(int(ox) + a, 0, int(p.w) - 1));
      uint qy = uint(clamp(int(oy) + b, 0, int(p.h) - 1));
      Tap t = tap(float(qx) + fx, float(qy) + fy);
      for (uint c = 0u; c < 3u; c++)
        d += abs(ld_cur_in(c * plane + qy * p.w + qx) - sample_prev_in(t, c * plane));
    }
  d *= 1.0 / 27.0;
  float m = inside ? p.keep * clamp(1.0 - d * p.inv_thr, 0.0, 1.0) : 0.0;
  Tap t = tap(sx, sy);
  for (uint c = 0u; c < 3u; c++) {
    uint i = c * plane + oy * p.w + ox;
    float v = ld_x(i);
    st_y(i, v + m * (sample_prev_out(t, c * plane) - v));
  }
}
