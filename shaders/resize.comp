// SPDX-License-Identifier: LGPL-2.1-or-later
// F.interpolate(size=(oh, ow), mode, align_corners=False), PyTorch's exact index rules:
// nearest: src = min(floor(dst * in/out), in-1); bilinear: src = max((dst+0.5)*in/out - 0.5, 0),
// i0 = int(src), i1 = i0 + (i0 < in-1), l1 = src - i0. Scales are fp32 in/out (as PyTorch).
// translate (MODE 2, same size): y[c, oy, ox] = x[c, clamp(oy + ty), clamp(ox + tx)].
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = ST_SPEC_MODE) const int MODE = 0; // 0 nearest, 1 bilinear, 2 translate

ST_IN(0, x)
ST_OUT(1, y)

layout(push_constant) uniform P {
  uint h, w, oh, ow;
  float sy, sx; // in/out
  int ty, tx;   // translate offsets
} p;

void main() {
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
