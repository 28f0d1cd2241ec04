// SPDX-License-Identifier: LGPL-2.1-or-later
// 1x1 convolution, stride 1, for CPU Vulkan drivers with 8-wide subgroups (lavapipe/llvmpipe on
// 256-bit SIMD): y[o] = act(sum_i w[o,i] x[i] + b[o]), w [O,I] (or [O,I,1,1]). The same scheme as
// conv3x3_sg.glsl (see there for the measurements behind it), on the flattened H*W plane:
// invocation `l` owns NP consecutive pixels, read with vec4 loads; lane j loads the weights of
// output channel o0 + j + 8s for 4 input channels (one vec4) and shuffles distribute them; every
// invocation accumulates OB x NP outputs. Compiled once per tile by shaders/meson.build
// (shader_tiles: conv1x1_sg_o8, _o16, _o32), which defines OB (output channels per workgroup,
// multiple of 8) and NP (pixels per invocation, multiple of 4).
// Requirements checked by ops.c: subgroup size 8 (one workgroup = one subgroup), H*W % 4 == 0.
// WVEC (I % 4 == 0) selects vec4 weight loads, otherwise scalar loads with the last block of 4
// input channels padded by zero weights. Bindings, fp16 storage and helpers: conv_sg_common.glsl.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifndef OB
#error "conv1x1_sg.comp is compiled with -DOB=... (shaders/meson.build, shader_tiles)"
#endif
#ifndef NP
#error "conv1x1_sg.comp is compiled with -DNP=... (shaders/meson.build, shader_tiles)"
#endif
#include "conv_sg_common.glsl"

layout(constant_id = ST_SPEC_WVEC) const int WVEC = 1;

const int NS = OB / 8;

void main() {
  const uint l = gl_SubgroupInvocationID;
  const uint n = p.h * p.w; // plane size, % 4 == 0
  const uint ns = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; // strip index
  const uint p0 = (ns * 8u + l) * uint(NP); // this lane's first pixel
  const uint o0 = gl_WorkGroupID.z * uint(OB);
  uint wbase[NS];
  [[unroll]] for (int s = 0; s < NS; s++)
    wbase[s] = min(o0 + l + uint(8 * s), p.co - 1u) * p.ci;

  float acc[OB][NP];
  [[unroll]] for (int o = 0; o < OB; o++)
    [[unroll]] for (int i = 0; i < NP; i++)
      acc[o][i] = 0.0;

  for (uint c0 = 0u; c0 < p.ci; c0 += 4u) {
    // Phase 1: loads. Weights w[o0 + l + 8s][c0 .. c0 + 3], then the 4 x NP input values.
    vec4 wv[NS];
    [[unroll]] for (int s = 0; s < NS; s++) {
      if (WVEC != 0) {
        wv[s] = ld_w4((wbase[s] + c0) >> 2);
      } else {
        [[unroll]] for (int k = 0; k < 4; k++) {
          float wk = ld_w(wbase[s] + min(c0 + uint(k), p.ci - 1u));
          wv[s][k] = c0 + uint(k) < p.ci ? wk : 0.0;
        }
      }
    }
    float v[4][NP];
    [[unroll]] for (int cc = 0; cc < 4; cc++) {
      uint cbase = min(c0 + uint(cc), p.ci - 1u) * n; // zero weights beyond ci
      [[unroll]] for (int k = 0; k < NP / 4; k++) {
        vec4 q = ld_x4((cbase + min(p0 + uint(4 * k), n - 4u)) >> 2);
        v[cc][4 * k] = q.x;
        v[cc][4 * k + 1] = q.y;
        v[cc][4 * k + 2] = q.z;
        v[cc][4 * k + 3] = q.w;
      }
    }
    // Phase 2: FMAs, one output channel at a time.
    [[unroll]] for (int o = 0; o < OB; o++) {
      [[unroll]] for (int cc = 0; cc < 4; cc++) {
        float wgt = subgroupShuffle(wv[o / 8][cc], uint(o % 8));
        [[unroll]] for (int i = 0; i < NP; i++)
          acc[o][i] = fma(v[cc][i], wgt, acc[o][i]);
      }
    }
  }

  [[unroll]] for (int o = 0; o < OB; o++) {
    uint oc = o0 + uint(o);
    if (oc >= p.co)
      break;
    float bias = HAS_BIAS != 0 ? ld_b(oc) : 0.0;
    [[unroll]] for (int k = 0; k < NP / 4; k++) {
      uint pos = p0 + uint(4 * k);
      if (pos < n) {
        vec4 q = vec4(acc[o][4 * k], acc[o][4 * k + 1], acc[o][4 * k + 2], acc[o][4 * k + 3]);
        q = vec4(act(q.x + bias), act(q.y + bias), act(q.z + bias), act(q.w + bias));
        st_y4((oc * n + pos) >> 2, q);
      }
    }
  }
}
