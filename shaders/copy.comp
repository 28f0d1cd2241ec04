// SPDX-License-Identifier: LGPL-2.1-or-later
// y[dst_off + i] = x[i] for i < n (concat: one dispatch per input, dtype conversion included).
// VEC4 (n % 4 == 0 and dst_off % 4 == 0, chosen by ops.c): each invocation copies four elements
// with one vec4 load and store (on llvmpipe a vec4 load costs about half as much per float as
// four scalar loads); n and dst_off then count vec4s.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = ST_SPEC_VEC4) const int VEC4 = 0;

ST_IN4(0, x)
ST_OUT4(1, y)

layout(push_constant) uniform P {
  uint n;
  uint dst_off;
} p;

void main() {
  uint i = st_group_linear() * 256u + gl_LocalInvocationID.x;
  if (i >= p.n)
    return;
  if (VEC4 != 0)
    st_y4(p.dst_off + i, ld_x4(i));
  else
    st_y(p.dst_off + i, ld_x(i));
}
