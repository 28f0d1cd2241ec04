// SPDX-License-Identifier: LGPL-2.1-or-later
// Row softmax of scale*x, x [M,N]: one workgroup per row; max, sum of exp, then write, each with
// a shared-memory tree reduction.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

ST_IN(0, x)
ST_OUT(1, y)

layout(push_constant) uniform P {
  uint m;
  uint n;
  float scale;
} p;

shared float red[256];

void main() {
  uint r = st_group_linear();
  if (r >= p.m)
    return; // uniform over the workgroup
  uint t = gl_LocalInvocationID.x;
  uint base = r * p.n;
  float mx = -3.402823466e38;
  for (uint i = t; i < p.n; i += 256u)
    mx = max(mx, p.scale * ld_x(base + i));
  red[t] = mx;
  barrier();
  for (uint h = 128u; h > 0u; h >>= 1u) {
    if (t < h)
      red[t] = max(red[t], red[t + h]);
    barrier();
  }
  mx = red[0];
  barrier();
  float s = 0.0;
  for (uint i = t; i < p.n; i += 256u)
    s += exp(p.scale * ld_x(base + i) - mx);
  red[t] = s;
  barrier();
  for (uint h = 128u; h > 0u; h >>= 1u) {
    if (t < h)
      red[t] += red[t + h];
    barrier();
  }
  float inv = 1.0 / red[0];
  for (uint i = t; i < p.n; i += 256u)
    st_y(base + i, exp(p.scale * ld_x(base + i) - mx) * inv);
}
