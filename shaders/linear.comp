// SPDX-License-Identifier: LGPL-2.1-or-later
// y[n] = act(sum_k w[n,k] x[k] + b[n]). One workgroup per output; strided loop over K with
// contiguous loads across invocations, then a shared-memory tree reduction.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = ST_SPEC_ACT) const int ACT = 0;
layout(constant_id = ST_SPEC_HAS_BIAS) const int HAS_BIAS = 0;

ST_IN(0, x)
ST_IN(1, w)
ST_IN(2, b)
ST_OUT(3, y)

layout(push_constant) uniform P {
  uint n;
  uint k;
  float alpha;
} p;

shared float red[256];

void main() {
  uint o = st_group_linear();
  if (o >= p.n)
    return; // uniform over the workgroup
  uint t = gl_LocalInvocationID.x;
  uint base = o * p.k;
  float s = 0.0;
  for (uint i = t; i < p.k; i += 256u)
    s += ld_w(base + i) * ld_x(i);
  red[t] = s;
  barrier();
  for (uint h = 128u; h > 0u; h >>= 1u) {
    if (t < h)
      red[t] += red[t + h];
    barrier();
  }
  if (t == 0u) {
    float v = red[0];
    if (HAS_BIAS != 0)
      v += ld_b(o);
    st_y(o, st_act(v, ACT, p.alpha));
  }
}
