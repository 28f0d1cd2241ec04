// SPDX-License-Identifier: LGPL-2.1-or-later
// Matrix product for CPU Vulkan drivers with 8-wide subgroups (lavapipe/llvmpipe on 256-bit
// SIMD): c[M,N] = scale * a[M,K] b[K,N] (no transposes), N % 4 == 0. No shared memory and no
// barriers (matmul.comp's 256-invocation workgroups with barriers run as coroutines on one CPU
// thread there): one workgroup = one subgroup of 8 invocations computes TM rows x 32 columns of
// c; lane l owns columns 4 (8 x + l) .. +3 and, for every k, reads b[k, those 4] with one vec4
// load (contiguous across the lanes) and a[row, k] of its TM rows (the same address in every
// lane), so TM + 1 loads feed 4 TM multiply-adds per lane.
// fp16 storage (ST_F16, DT_MASK bit 0: a, bit 1: b, bit 2: c) is read as halves / packed halves.
// Chunks: llvmpipe ends every loop of an invocation after 65535 iterations in all, silently, so a
// long reduction is split into dispatches over [k0, k1), each adding to the previous one's sums
// (fp32 c only; ops.c decides).
#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define TM 8

layout(local_size_x = 8) in;

ST_IN(0, a)
ST_IN4(1, b)
ST_OUT(2, c)
// The previous chunk's sums (fp32 c only), read by the lane that then writes the same element.
layout(std430, set = 0, binding = 2) readonly buffer CP { float c_prev[]; };

// [k0, k1): this dispatch's chunk of the reduction; flags bit 0: add c's previous value (a later
// chunk). (Bit 1, the last chunk, is set as for matmul.comp and not needed here.)
layout(push_constant) uniform P {
  uint m, n, k;
  float scale;
  uint k0, k1, flags;
} p;

void main() {
  const uint l = gl_LocalInvocationID.x;
  const uint n4 = p.n / 4u;
  const uint col4 = gl_WorkGroupID.x * 8u + l;
  const uint cc = min(col4, n4 - 1u); // lanes past N repeat the last columns (not written)
  const uint m0 = gl_WorkGroupID.y * uint(TM);
  uint arow[TM];
  vec4 acc[TM];
  [[unroll]] for (int i = 0; i < TM; i++) {
    arow[i] = min(m0 + uint(i), p.m - 1u) * p.k;
    acc[i] = vec4(0.0);
  }
  for (uint kk = p.k0; kk < p.k1; kk++) {
    vec4 bv = ld_b4(kk * n4 + cc);
    [[unroll]] for (int i = 0; i < TM; i++)
      acc[i] += ld_a(arow[i] + kk) * bv;
  }
  if (col4 >= n4)
    return;
  [[unroll]] for (int i = 0; i < TM; i++) {
    uint row = m0 + uint(i);
    if (row < p.m) {
      [[unroll]] for (int e = 0; e < 4; e++) {
        uint idx = row * p.n + 4u * col4 + uint(e);
        float v = acc[i][e] * p.scale;
        if ((p.flags & 1u) != 0u)
          v += c_prev[idx];
        st_c(idx, v);
      }
    }
  }
}
