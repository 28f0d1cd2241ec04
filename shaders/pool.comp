// SPDX-License-Identifier: LGPL-2.1-or-later
// 2x2 stride-2 pooling, ceil mode; windows cut by the border use in-bounds pixels only
// (avg_pool2d(count_include_pad=False) / max_pool2d(ceil_mode=True)).
// VEC4 (W % 8 == 0; chosen by ops.c): invocation k writes outputs 4k .. 4k+3 of its row with one
// vec4 store from four vec4 loads (the same sums in the same order as the scalar path).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = ST_SPEC_MODE) const int MODE = 0; // 0 avg, 1 max
layout(constant_id = ST_SPEC_VEC4) const int VEC4 = 0;

ST_IN4(0, x)
ST_OUT4(1, y)

layout(push_constant) uniform P {
  uint h, w, oh, ow;
} p;

void pool4() {
  uint k = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y, c = gl_WorkGroupID.z;
  if (4u * k >= p.ow)
    return;
  uint y0 = oy * 2u, y1 = min(y0 + 1u, p.h - 1u);
  uint r0 = (c * p.h * p.w + y0 * p.w + 8u * k) >> 2, r1 = (c * p.h * p.w + y1 * p.w + 8u * k) >> 2;
  vec4 p0 = ld_x4(r0), p1 = ld_x4(r0 + 1u), q0 = ld_x4(r1), q1 = ld_x4(r1 + 1u);
  vec4 a = vec4(p0.xz, p1.xz), b = vec4(p0.yw, p1.yw);
  vec4 d = vec4(q0.xz, q1.xz), e = vec4(q0.yw, q1.yw);
  vec4 v;
  if (MODE == 1) {
    v = max(max(a, b), max(d, e));
  } else {
    vec4 s = a + b;
    if (y1 != y0)
      s = s + d + e;
    v = s / (y1 != y0 ? 4.0 : 2.0);
  }
  st_y4(((c * p.oh + oy) * p.ow >> 2) + k, v);
}

void main() {
  if (VEC4 != 0) {
    pool4();
    return;
  }
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
