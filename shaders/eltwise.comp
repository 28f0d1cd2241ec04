// SPDX-License-Identifier: LGPL-2.1-or-later
// Elementwise ops: y = act(a) | act(ka*a + kb*b) | act(a*b) | act(a/b); b same shape as a, [C]
// broadcast over H*W (BCAST 1: index i / hw) or [1,H,W] broadcast over C (BCAST 2: i % hw).
// Division is plain float division (b = 0: +-inf or NaN where the device follows IEEE). One
// invocation per element, 2D dispatch over groups of 256; with VEC4 (n % 4 == 0, and hw % 4 == 0
// when b is broadcast; chosen by ops.c) one invocation per four elements, vec4 loads and store
// (n then counts vec4s).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = ST_SPEC_ELT_OP) const int OP = 0; // 0 act(a), 1 add, 2 mul, 3 div
layout(constant_id = ST_SPEC_ACT) const int ACT = 0;
layout(constant_id = ST_SPEC_BCAST) const int BCAST = 0; // 1: b [C], i / hw; 2: b [1,H,W], i % hw
layout(constant_id = ST_SPEC_VEC4) const int VEC4 = 0;

ST_IN4(0, a)
ST_IN4(1, b)
ST_OUT4(2, y)

layout(push_constant) uniform P {
  uint n;
  uint hw;
  float ka;
  float kb;
  float alpha;
} p;

// y of one element: a's value v, b's value bv (unused for act)
float op1(float v, float bv) {
  if (OP == 1)
    v = p.ka * v + p.kb * bv;
  else if (OP == 2)
    v = v * bv;
  else if (OP == 3)
    v = v / bv;
  return st_act(v, ACT, p.alpha);
}

void main() {
  uint i = st_group_linear() * 256u + gl_LocalInvocationID.x;
  if (i >= p.n)
    return;
  if (VEC4 != 0) { // elements 4i .. 4i+3 (hw % 4 == 0: one channel, contiguous in b)
    vec4 bv = vec4(0.0);
    if (OP != 0)
      bv = BCAST == 1 ? vec4(ld_b(4u * i / p.hw)) : ld_b4(BCAST == 2 ? i % (p.hw / 4u) : i);
    vec4 v = ld_a4(i);
    st_y4(i, vec4(op1(v.x, bv.x), op1(v.y, bv.y), op1(v.z, bv.z), op1(v.w, bv.w)));
    return;
  }
  float bv = OP != 0 ? ld_b(BCAST == 1 ? i / p.hw : BCAST == 2 ? i % p.hw : i) : 0.0;
  st_y(i, op1(ld_a(i), bv));
}
