// SPDX-License-Identifier: LGPL-2.1-or-later
// Gram matrix for CPU Vulkan drivers with 8-wide subgroups (lavapipe/llvmpipe on 256-bit SIMD):
// g[c,d] = scale * sum_k x[c,k] y[d,k] over k < K (= H*W), optionally centred (each row's mean
// subtracted first) and SQRT: sqrt(max(g,0) + 1e-8). x [C,K], y [D,K] (y = x for a plain Gram).
// One workgroup = one subgroup of 8 invocations computes a TC x TD tile of g over the whole
// reduction: lane l reads elements 4l .. 4l+3 of every 32-element block of its TC rows of x and
// TD rows of y with vec4 loads (contiguous across the lanes; on llvmpipe every storage-buffer
// load is a loop over the lanes, so TC + TD loads feed TC * TD * 4 multiply-adds), accumulates
// TC x TD partial sums and reduces them over the lanes with subgroupAdd at the end.
// KVEC (K % 4 == 0) selects the vec4 loads; otherwise elements are read one by one.
// CENTER: a first pass computes the row means s_c, t_d (fp32 lane sums, subgroupAdd), the main
// pass accumulates x' = x - s_c, y' = y - t_d and their sums, and g = scale * sum (x' y') -
// mean(x') mean(y') (the last term only removes the rounding left in the means). The model's Gram
// ops are not centred; this path is for completeness and costs one more pass over x and y.
// fp16 storage (ST_F16, DT_MASK bit 0: x, bit 1: y) is read as packed halves (uvec2 = 4 halves);
// g is fp32 or fp16 (bit 2).
// Chunks: llvmpipe ends every loop of an invocation after 65535 iterations in all, silently, so a
// long reduction is split into dispatches over [k0, k1), each adding to the previous one's sums
// (fp32 g, no CENTER; ops.c decides).
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define TC 16
#define TD 16

layout(constant_id = ST_SPEC_CENTER) const int CENTER = 0;
layout(constant_id = ST_SPEC_SQRT) const int SQRT = 0;
layout(constant_id = ST_SPEC_KVEC) const int KVEC = 1;

layout(local_size_x = 8) in;

ST_IN4(0, x)
ST_IN4(1, y)
ST_OUT(2, g)
// The previous chunk's sums (fp32 g only), read by the lane that then writes the same element.
layout(std430, set = 0, binding = 2) readonly buffer GP { float g_prev[]; };

// k: the row length K; [k0, k1): this dispatch's chunk of the reduction (k0 % 32 == 0). flags
// bit 0: add g's previous value (a later chunk); bit 1: the last chunk (SQRT applies).
layout(push_constant) uniform P {
  uint c, d, k;
  float scale;
  uint k0, k1, flags;
} p;

void main() {
  const uint l = gl_SubgroupInvocationID;
  const uint c0 = gl_WorkGroupID.y * uint(TC), d0 = gl_WorkGroupID.x * uint(TD);
  uint xrow[TC], yrow[TD]; // first element of each row (rows beyond C/D repeat the last one)
  vec4 xs[TC], ys[TD];     // CENTER: row means
  vec4 sx[TC], sy[TD];
  [[unroll]] for (int i = 0; i < TC; i++) {
    xrow[i] = min(c0 + uint(i), p.c - 1u) * p.k;
    xs[i] = vec4(0.0);
    sx[i] = vec4(0.0);
  }
  [[unroll]] for (int j = 0; j < TD; j++) {
    yrow[j] = min(d0 + uint(j), p.d - 1u) * p.k;
    ys[j] = vec4(0.0);
    sy[j] = vec4(0.0);
  }
  const uint nfull = KVEC != 0 ? p.k1 / 4u : 0u; // vec4 blocks up to the chunk's end

  if (CENTER != 0) {
    for (uint q = l; q < nfull; q += 8u) {
      [[unroll]] for (int i = 0; i < TC; i++)
        sx[i] += ld_x4(xrow[i] / 4u + q);
      [[unroll]] for (int j = 0; j < TD; j++)
        sy[j] += ld_y4(yrow[j] / 4u + q);
    }
    if (KVEC == 0) {
      for (uint k = l; k < p.k; k += 8u) {
        [[unroll]] for (int i = 0; i < TC; i++)
          sx[i].x += ld_x(xrow[i] + k);
        [[unroll]] for (int j = 0; j < TD; j++)
          sy[j].x += ld_y(yrow[j] + k);
      }
    }
    [[unroll]] for (int i = 0; i < TC; i++) {
      xs[i] = vec4(subgroupAdd(sx[i].x + sx[i].y + sx[i].z + sx[i].w) * p.scale);
      sx[i] = vec4(0.0);
    }
    [[unroll]] for (int j = 0; j < TD; j++) {
      ys[j] = vec4(subgroupAdd(sy[j].x + sy[j].y + sy[j].z + sy[j].w) * p.scale);
      sy[j] = vec4(0.0);
    }
  }

  float acc[TC][TD];
  [[unroll]] for (int i = 0; i < TC; i++)
    [[unroll]] for (int j = 0; j < TD; j++)
      acc[i][j] = 0.0;
  for (uint q = p.k0 / 4u + l; q < nfull; q += 8u) {
    vec4 xv[TC], yv[TD];
    [[unroll]] for (int i = 0; i < TC; i++) {
      xv[i] = ld_x4(xrow[i] / 4u + q) - xs[i];
      if (CENTER != 0)
        sx[i] += xv[i];
    }
    [[unroll]] for (int j = 0; j < TD; j++) {
      yv[j] = ld_y4(yrow[j] / 4u + q) - ys[j];
      if (CENTER != 0)
        sy[j] += yv[j];
    }
    [[unroll]] for (int i = 0; i < TC; i++)
      [[unroll]] for (int j = 0; j < TD; j++)
        acc[i][j] += dot(xv[i], yv[j]);
  }
  if (KVEC == 0) {
    // Element by element: lane l takes k = k0 + l, k0 + l + 8, ...
    for (uint k = p.k0 + l; k < p.k1; k += 8u) {
      float xv[TC], yv[TD];
      [[unroll]] for (int i = 0; i < TC; i++) {
        xv[i] = ld_x(xrow[i] + k) - xs[i].x;
        if (CENTER != 0)
          sx[i].x += xv[i];
      }
      [[unroll]] for (int j = 0; j < TD; j++) {
        yv[j] = ld_y(yrow[j] + k) - ys[j].x;
        if (CENTER != 0)
          sy[j].x += yv[j];
      }
      [[unroll]] for (int i = 0; i < TC; i++)
        [[unroll]] for (int j = 0; j < TD; j++)
          acc[i][j] += xv[i] * yv[j];
    }
  }

  float mx[TC], my[TD];
  [[unroll]] for (int i = 0; i < TC; i++)
    mx[i] = CENTER != 0 ? subgroupAdd(sx[i].x + sx[i].y + sx[i].z + sx[i].w) * p.scale : 0.0;
  [[unroll]] for (int j = 0; j < TD; j++)
    my[j] = CENTER != 0 ? subgroupAdd(sy[j].x + sy[j].y + sy[j].z + sy[j].w) * p.scale : 0.0;
  [[unroll]] for (int i = 0; i < TC; i++)
    [[unroll]] for (int j = 0; j < TD; j++) {
      float v = subgroupAdd(acc[i][j]) * p.scale - mx[i] * my[j];
      uint row = c0 + uint(i), col = d0 + uint(j);
      // One lane per output: lane (i * TD + j) % 8.
      if (row < p.c && col < p.d && uint((i * TD + j) % 8) == l) {
        if ((p.flags & 1u) != 0u)
          v += g_prev[row * p.d + col];
        if (SQRT != 0 && (p.flags & 2u) != 0u)
          v = sqrt(max(v, 0.0) + 1e-8);
        st_g(row * p.d + col, v);
      }
    }
}
