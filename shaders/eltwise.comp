// SPDX-License-Identifier: LGPL-2.1-or-later
// Elementwise ops: y = act(a) | act(ka*a + kb*b) | act(a*b) | act(a/b); b same shape as a, [C]
// broadcast over H*W (BCAST 1: index i / hw) or [1,H,W] broadcast over C (BCAST 2: i % hw).
// Division is plain float division (b = 0: +-inf or NaN where the device follows IEEE). One
// invocation per element, 2D dispatch over groups of 256; with VEC4 (n % 4 == 0, and hw % 4 == 0
// when b is broadcast; chosen by ops.c) one invocation per four elements, vec4 loads and store
// (n then counts vec4s).
// CHAIN (the frame plan's fusion of a chain of binary ops, compute/net_plan.c fuse_eltwise): up to
// three more stages applied to the result in turn, stage s (0..2) in bits 8s..8s+7 (op 1 add,
// 2 mul, 3 div in bits 0-1, its broadcast in 2-3, its act in 4-6; op 0: no stage), its second
// operand at binding 3 + s, its ka, kb, alpha in the push constants; the result stays in fp32
// between the stages.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = ST_SPEC_ELT_OP) const int OP = 0; // 0 act(a), 1 add, 2 mul, 3 div
layout(constant_id = ST_SPEC_ACT) const int ACT = 0;
layout(constant_id = ST_SPEC_BCAST) const int BCAST = 0; // 1: b [C], i / hw; 2: b [1,H,W], i % hw
layout(constant_id = ST_SPEC_VEC4) const int VEC4 = 0;
layout(constant_id = ST_SPEC_CHAIN) const int CHAIN = 0;

ST_IN4(0, a)
ST_IN4(1, b)
ST_OUT4(2, y)
ST_IN4(3, c0)
ST_IN4(4, c1)
ST_IN4(5, c2)

layout(push_constant) uniform P {
  uint n;
  uint hw;
  float ka;
  float kb;
  float alpha;
  float cka[3], ckb[3], calpha[3];
} p;

float opk(int op, int act, float ka, float kb, float alpha, float v, float bv) {
  if (op == 1)
    v = ka * v + kb * bv;
  else if (op == 2)
    v = v * bv;
  else if (op == 3)
    v = v / bv;
  return st_act(v, act, alpha);
}

// y of one element: a's value v, b's value bv (unused for act)
float op1(float v, float bv) { return opk(OP, ACT, p.ka, p.kb, p.alpha, v, bv); }

int stage_op(int s) { return (CHAIN >> (8 * s)) & 3; }
int stage_bcast(int s) { return (CHAIN >> (8 * s + 2)) & 3; }
int stage_act(int s) { return (CHAIN >> (8 * s + 4)) & 7; }

// the element index of a second operand broadcast as bc (scalar path: i counts elements)
uint bidx(int bc, uint i) { return bc == 1 ? i / p.hw : bc == 2 ? i % p.hw : i; }

float ld_c(int s, uint i) {
  uint j = bidx(stage_bcast(s), i);
  return s == 0 ? ld_c0(j) : s == 1 ? ld_c1(j) : ld_c2(j);
}

// vec4 path: i counts vec4s (hw % 4 == 0 where a stage broadcasts)
vec4 ld_c4(int s, uint i) {
  int bc = stage_bcast(s);
  if (bc == 1) {
    uint j = 4u * i / p.hw;
    return vec4(s == 0 ? ld_c0(j) : s == 1 ? ld_c1(j) : ld_c2(j));
  }
  uint j = bc == 2 ? i % (p.hw / 4u) : i;
  return s == 0 ? ld_c04(j) : s == 1 ? ld_c14(j) : ld_c24(j);
}

float chain1(float v, uint i) {
  for (int s = 0; s < 3; s++)
    if (stage_op(s) != 0)
      v = opk(stage_op(s), stage_act(s), p.cka[s], p.ckb[s], p.calpha[s], v, ld_c(s, i));
  return v;
}

vec4 chain4(vec4 v, uint i) {
  for (int s = 0; s < 3; s++)
    if (stage_op(s) != 0) {
      vec4 c = ld_c4(s, i);
      int op = stage_op(s), act = stage_act(s);
      float ka = p.cka[s], kb = p.ckb[s], al = p.calpha[s];
      v = vec4(opk(op, act, ka, kb, al, v.x, c.x), opk(op, act, ka, kb, al, v.y, c.y),
               opk(op, act, ka, kb, al, v.z, c.z), opk(op, act, ka, kb, al, v.w, c.w));
    }
  return v;
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
    v = vec4(op1(v.x, bv.x), op1(v.y, bv.y), op1(v.z, bv.z), op1(v.w, bv.w));
    st_y4(i, CHAIN != 0 ? chain4(v, i) : v);
    return;
  }
  float bv = OP != 0 ? ld_b(bidx(BCAST, i)) : 0.0;
  float v = op1(ld_a(i), bv);
  st_y(i, CHAIN != 0 ? chain1(v, i) : v);
}
