// SPDX-License-Identifier: LGPL-2.1-or-later
// Per-channel mean and std = sqrt(biased variance + eps) over H*W. One workgroup per channel;
// two passes over the channel (mean, then sum of squared deviations: no cancellation), each a
// strided loop (contiguous loads across invocations) followed by a shared-memory tree reduction.
// MASKED: weighted by w [1,H,W] (binding 3): S = sum w, mean = sum w x / (S + 1e-6),
// var = sum w (x - mean)^2 / (S + 1e-6) (an all-zero mask gives mean 0, std sqrt(eps)).
// Compiled twice (shaders/meson.build): 256 invocations per workgroup with shared-memory trees,
// and with SG (moments_sg, for CPU devices with 8-wide subgroups): one 8-invocation subgroup per
// channel, reduced by subgroupAdd (llvmpipe runs a 256-invocation workgroup as 32 coroutines that
// switch at each of the trees' 9 barriers).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#ifdef SG
#extension GL_KHR_shader_subgroup_arithmetic : require
#define NT 8u
#else
#define NT 256u
#endif
layout(local_size_x = NT) in;
layout(constant_id = ST_SPEC_MASKED) const int MASKED = 0;

ST_IN(0, x)
ST_OUT(1, mean)
ST_OUT(2, sd)
ST_IN(3, w) // MASKED only (ops.c binds x here otherwise)

layout(push_constant) uniform P {
  uint c;
  uint hw;
  float eps;
} p;

#ifdef SG
float reduce_sum(float v) { return subgroupAdd(v); }
#else
shared float red[256];

float reduce_sum(float v) {
  uint t = gl_LocalInvocationID.x;
  red[t] = v;
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1u) {
    if (t < s)
      red[t] += red[t + s];
    barrier();
  }
  float r = red[0];
  barrier();
  return r;
}
#endif

void main() {
  uint c = st_group_linear();
  if (c >= p.c)
    return; // uniform over the workgroup
  uint t = gl_LocalInvocationID.x;
  uint base = c * p.hw;
  float m, var;
  if (MASKED != 0) {
    float sw = 0.0, s = 0.0;
    for (uint i = t; i < p.hw; i += NT) {
      float wi = ld_w(i);
      sw += wi;
      s += wi * ld_x(base + i);
    }
    float den = reduce_sum(sw) + 1e-6;
    m = reduce_sum(s) / den;
    float q = 0.0;
    for (uint i = t; i < p.hw; i += NT) {
      float d = ld_x(base + i) - m;
      q += ld_w(i) * d * d;
    }
    var = reduce_sum(q) / den;
  } else {
    float s = 0.0;
    for (uint i = t; i < p.hw; i += NT)
      s += ld_x(base + i);
    m = reduce_sum(s) / float(p.hw);
    float q = 0.0;
    for (uint i = t; i < p.hw; i += NT) {
      float d = ld_x(base + i) - m;
      q += d * d;
    }
    var = reduce_sum(q) / float(p.hw);
  }
  if (t == 0u) {
    st_mean(c, m);
    st_sd(c, sqrt(var + p.eps));
  }
}
