// SPDX-License-Identifier: LGPL-2.1-or-later
// 2x2 stride-2 pooling, ceil mode; windows cut by the border use in-bounds pixels only
// (avg_pool2d(count_include_pad=False) / max_pool2d(ceil_mode=True)).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = ST_SPEC_MODE) const int MODE = 0; // 0 avg, 1 max

ST_IN(0, x)
ST_OUT(1, y)

layout(push_constant) uniform P {
  uint h, w, oh, ow;
} p;

void main() {
  uint ox = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y, c = gl_WorkGroupID.z;
  if (ox >= p.ow)
    return;
  uint x0 = ox * 2u, y0 = oy * 2u;
  uint x1 = min(x0 + 1u, p.w - 1u), y1 = min(y0 + 1u, p.h - 1u);
  uint base = c * p.h * p.w;
  float a = ld_x(base + y0 * p.w + x0);
  float b = ld_x(base + y0 * p.w + x1);
  float d = ld_x(base + y1 * p.w + x0);
  float e = ld_x(base + y1 * p.w + x1);
  float v;
  if (MODE == 1) {
    v = max(max(a, b), max(d, e));
  } else {
    // Duplicated taps (x1 == x0 or y1 == y0 at the border) are dropped from the average.
    float nx = x1 != x0 ? 2.0 : 1.0, ny = y1 != y0 ? 2.0 : 1.0;
    float s = a;
    if (x1 != x0)
      s += b;
    if (y1 != y0) {
      s += d;
      if (x1 != x0)
        s += e;
    }
    v = s / (nx * ny);
  }
  st_y((c * p.oh + oy) * p.ow + ox, v);
}
