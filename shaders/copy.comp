// SPDX-License-Identifier: LGPL-2.1-or-later
// y[dst_off + i] = x[i] for i < n (concat: one dispatch per input, dtype conversion included).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

ST_IN(0, x)
ST_OUT(1, y)

layout(push_constant) uniform P {
  uint n;
  uint dst_off;
} p;

void main() {
  uint i = st_group_linear() * 256u + gl_LocalInvocationID.x;
  if (i >= p.n)
    return;
  st_y(p.dst_off + i, ld_x(i));
}
