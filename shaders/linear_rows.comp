// SPDX-License-Identifier: LGPL-2.1-or-later
// y[n] = act(sum_k w[n,k] x[k] + b[n]), one invocation per output and no barrier: the kernel for
// CPU drivers and short rows (linear.comp's one 256-invocation workgroup per output, with its
// tree of 9 barriers, costs lavapipe about 17 us per output: 17 ms for the EFA's 1024x128
// layers). Same bindings, specialization constants and push constants as linear.comp.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
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

void main() {
  uint o = st_group_linear() * 64u + gl_LocalInvocationID.x;
  if (o >= p.n)
    return;
  uint base = o * p.k;
  // k is at most LINEAR_ROWS_MAX_K (ops.c): llvmpipe's loop limiter (65535 iterations) ends a
  // longer loop early and the sum silently misses terms (test_ops: k = 65537 was wrong, 65535
  // right; 65535 as nested loops of 4096 was wrong too).
  float s = 0.0;
  for (uint i = 0u; i < p.k; i++)
    s += ld_w(base + i) * ld_x(i);
  if (HAS_BIAS != 0)
    s += ld_b(o);
  st_y(o, st_act(s, ACT, p.alpha));
}
