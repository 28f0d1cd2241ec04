// SPDX-License-Identifier: LGPL-2.1-or-later
// F.interpolate(size=(oh, ow), mode, align_corners=False), PyTorch's exact index rules:
// nearest: src = min(floor(dst * in/out), in-1); bilinear: src = max((dst+0.5)*in/out - 0.5, 0),
// i0 = int(src), i1 = i0 + (i0 < in-1), l1 = src - i0. Scales are fp32 in/out (as PyTorch).
// translate (MODE 2, same size): y[c, oy, ox] = x[c, clamp(oy + ty), clamp(ox + tx)].
// VEC4 (bilinear, oh == 2h, ow == 2w, w % 4 == 0; chosen by ops.c): the decoders' and the
// refinement steps' 2x upsampling. Invocation (k, i, c) writes the 2 x 8 outputs of input row i,
// columns 4k .. 4k+3: with the rule above, output 2j is 0.25 x[j-1] + 0.75 x[j] (x[0] at j = 0)
// and 2j+1 is 0.75 x[j] + 0.25 x[j+1] (x[w-1] at j = w-1), the same in y; the three input rows
// come from vec4 loads and two scalar loads each, the outputs go out as vec4 stores (64 scalar
// loads and 16 stores in the generic path).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = ST_SPEC_MODE) const int MODE = 0; // 0 nearest, 1 bilinear, 2 translate
layout(constant_id = ST_SPEC_VEC4) const int VEC4 = 0;

ST_IN4(0, x)
ST_OUT4(1, y)

layout(push_constant) uniform P {
  uint h, w, oh, ow;
  float sy, sx; // in/out
  int ty, tx;   // translate offsets
} p;

// Input row r (clamped) upsampled 2x horizontally: columns 8k .. 8k+7 of the output row, with
// the generic path's weights and order ((1 - l) a + l b, l = 0.75, 0.25, or 0 at the edge).
void row2x(uint base, uint r, uint k, out vec4 lo, out vec4 hi) {
  uint off = base + r * p.w + 4u * k;
  vec4 q = ld_x4(off >> 2);
  float left = k > 0u ? ld_x(off - 1u) : q.x;
  float right = 4u * k + 4u < p.w ? ld_x(off + 4u) : q.w;
  lo = vec4(k > 0u ? 0.25 * left + 0.75 * q.x : q.x, 0.75 * q.x + 0.25 * q.y,
            0.25 * q.x + 0.75 * q.y, 0.75 * q.y + 0.25 * q.z);
  hi = vec4(0.25 * q.y + 0.75 * q.z, 0.75 * q.z + 0.25 * q.w, 0.25 * q.z + 0.75 * q.w,
            4u * k + 4u < p.w ? 0.75 * q.w + 0.25 * right : q.w);
}

void up2x() {
  uint k = gl_GlobalInvocationID.x, i = gl_WorkGroupID.y, c = gl_WorkGroupID.z;
  if (4u * k >= p.w)
    return;
  uint base = c * p.h * p.w;
  vec4 al, ah, bl, bh, cl, ch;
  row2x(base, i > 0u ? i - 1u : 0u, k, al, ah);
  row2x(base, i, k, bl, bh);
  row2x(base, min(i + 1u, p.h - 1u), k, cl, ch);
  uint o0 = (c * p.oh + 2u * i) * p.ow + 8u * k; // output row 2i; row 2i+1 is p.ow further
  if (i > 0u) {
    st_y4(o0 >> 2, 0.25 * al + 0.75 * bl);
    st_y4((o0 >> 2) + 1u, 0.25 * ah + 0.75 * bh);
  } else {
    st_y4(o0 >> 2, bl);
    st_y4((o0 >> 2) + 1u, bh);
  }
  if (i + 1u < p.h) {
    st_y4((o0 + p.ow) >> 2, 0.75 * bl + 0.25 * cl);
    st_y4(((o0 + p.ow) >> 2) + 1u, 0.75 * bh + 0.25 * ch);
  } else {
    st_y4((o0 + p.ow) >> 2, bl);
    st_y4(((o0 + p.ow) >> 2) + 1u, bh);
  }
}

void main() {
  if (VEC4 != 0) {
    up2x();
    return;
  }
  uint ox = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y, c = gl_WorkGroupID.z;
  if (ox >= p.ow)
    return;
  uint base = c * p.h * p.w;
  float v;
  if (MODE == 2) {
    uint ix = uint(clamp(int(ox) + p.tx, 0, int(p.w) - 1));
    uint iy = uint(clamp(int(oy) + p.ty, 0, int(p.h) - 1));
    v = ld_x(base + iy * p.w + ix);
  } else if (MODE == 0) {
    uint ix = min(uint(floor(float(ox) * p.sx)), p.w - 1u);
    uint iy = min(uint(floor(float(oy) * p.sy)), p.h - 1u);
    v = ld_x(base + iy * p.w + ix);
  } else {
    float fx = max((float(ox) + 0.5) * p.sx - 0.5, 0.0);
    float fy = max((float(oy) + 0.5) * p.sy - 0.5, 0.0);
    uint x0 = min(uint(fx), p.w - 1u), y0 = min(uint(fy), p.h - 1u);
    uint x1 = x0 + (x0 < p.w - 1u ? 1u : 0u), y1 = y0 + (y0 < p.h - 1u ? 1u : 0u);
    float lx = fx - float(x0), ly = fy - float(y0);
    float r0 = (1.0 - lx) * ld_x(base + y0 * p.w + x0) + lx * ld_x(base + y0 * p.w + x1);
    float r1 = (1.0 - lx) * ld_x(base + y1 * p.w + x0) + lx * ld_x(base + y1 * p.w + x1);
    v = (1.0 - ly) * r0 + ly * r1;
  }
  st_y((c * p.oh + oy) * p.ow + ox, v);
}
