// SPDX-License-Identifier: LGPL-2.1-or-later
// KxK stride-K pooling (K = p.k: 2, the graph's op; 4, two of them fused by the frame plan),
// ceil mode; windows cut by the border use in-bounds pixels only
// (avg_pool2d(count_include_pad=False) / max_pool2d(ceil_mode=True)).
// VEC4 (W % 8 == 0; chosen by ops.c): invocation k writes outputs 4k .. 4k+3 of its row with one
// vec4 store from four vec4 loads (the same sums in the same order as the scalar path); with
// K = 4 (W % 4 == 0), each invocation writes one output from one vec4 load per window row.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = ST_SPEC_MODE) const int MODE = 0; // 0 avg, 1 max
layout(constant_id = ST_SPEC_VEC4) const int VEC4 = 0;

ST_IN4(0, x)
ST_OUT4(1, y)

layout(push_constant) uniform P {
  uint h, w, oh, ow, k;
} p;

// K = 4, VEC4 1 (W % 4 == 0): one output from one vec4 load per window row (rows y0 .. y0+3 in
// bounds; the columns always are). VEC4 2 (W % 16 == 0): outputs 4k .. 4k+3, one vec4 store
// from four vec4 loads per row.
float win4(vec4 s, float m, uint ny) { return MODE == 1 ? m : (s.x + s.y + s.z + s.w) / float(4u * ny); }

void pool4x4() {
  uint k = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y, c = gl_WorkGroupID.z;
  uint per = VEC4 == 2 ? 4u : 1u;
  if (per * k >= p.ow)
    return;
  uint y0 = oy * 4u, ny = min(4u, p.h - y0), rs = p.w >> 2;
  uint r = (c * p.h * p.w + y0 * p.w + 4u * per * k) >> 2;
  vec4 s[4];
  float m[4];
  for (uint j = 0u; j < per; j++) {
    vec4 v = ld_x4(r + j);
    s[j] = v;
    m[j] = max(max(v.x, v.y), max(v.z, v.w));
  }
  for (uint i = 1u; i < ny; i++)
    for (uint j = 0u; j < per; j++) {
      vec4 v = ld_x4(r + i * rs + j);
      s[j] += v;
      m[j] = max(m[j], max(max(v.x, v.y), max(v.z, v.w)));
    }
  uint o = (c * p.oh + oy) * p.ow;
  if (VEC4 == 2)
    st_y4((o >> 2) + k, vec4(win4(s[0], m[0], ny), win4(s[1], m[1], ny), win4(s[2], m[2], ny),
                             win4(s[3], m[3], ny)));
  else
    st_y(o + k, win4(s[0], m[0], ny));
}

// Any K, any W: the in-bounds taps of the window, row by row (for K = 2 the scalar path below).
void pool_any() {
  uint ox = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y, c = gl_WorkGroupID.z;
  if (ox >= p.ow)
    return;
  uint x0 = ox * p.k, y0 = oy * p.k, nx = min(p.k, p.w - x0), ny = min(p.k, p.h - y0);
  uint base = c * p.h * p.w + y0 * p.w + x0;
  float s = 0.0, m = ld_x(base);
  for (uint i = 0u; i < ny; i++)
    for (uint j = 0u; j < nx; j++) {
      float v = ld_x(base + i * p.w + j);
      s += v;
      m = max(m, v);
    }
  st_y((c * p.oh + oy) * p.ow + ox, MODE == 1 ? m : s / float(nx * ny));
}

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
  if (p.k != 2u) {
    if (VEC4 != 0)
      pool4x4();
    else
      pool_any();
    return;
  }
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
