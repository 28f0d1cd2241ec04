// SPDX-License-Identifier: LGPL-2.1-or-later
// c[M,N] = scale * op(a)[M,K] op(b)[K,N], op = optional transpose (TA, TB).
// Gram mode: a = x [M,K], b = y [N,K] with TB = 1 and scale = 1/K; CENTER subtracts each row's
// mean (computed here first, exactly, per tile) and SQRT applies sqrt(max(g,0) + 1e-8).
// Tiling: a workgroup computes a 32x32 block of c, 16x16 invocations with 2x2 outputs each,
// K in steps of 16 through shared memory.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(constant_id = ST_SPEC_TA) const int TA = 0;
layout(constant_id = ST_SPEC_TB) const int TB = 0;
layout(constant_id = ST_SPEC_CENTER) const int CENTER = 0; // requires TA == 0 && TB == 1
layout(constant_id = ST_SPEC_SQRT) const int SQRT = 0;

ST_IN(0, a)
ST_IN(1, b)
ST_OUT(2, c)
// The previous chunk's sums (fp32 c only), read by the invocation that then writes the element.
layout(std430, set = 0, binding = 2) readonly buffer CP { float c_prev[]; };

// [k0, k1): this dispatch's chunk of the reduction (k0 % 16 == 0); flags bit 0: add c's previous
// value (a later chunk), bit 1: the last chunk (SQRT applies). Chunks exist because llvmpipe
// silently ends the loops of an invocation after 65535 iterations in all (ops.c splits K there).
layout(push_constant) uniform P {
  uint m, n, k;
  float scale;
  uint k0, k1, flags;
} p;

shared float As[16][33]; // [k][m]
shared float Bs[16][33]; // [k][n]
shared float red[256];
shared float meanA[32];
shared float meanB[32];

// op(a)[row, kk]
float load_a(uint row, uint kk) {
  if (row >= p.m || kk >= p.k)
    return 0.0;
  return TA != 0 ? ld_a(kk * p.m + row) : ld_a(row * p.k + kk);
}
// op(b)[kk, col]
float load_b(uint kk, uint col) {
  if (col >= p.n || kk >= p.k)
    return 0.0;
  return TB != 0 ? ld_b(col * p.k + kk) : ld_b(kk * p.n + col);
}

void main() {
  uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
  uint t = ty * 16u + tx;
  uint m0 = gl_WorkGroupID.y * 32u, n0 = gl_WorkGroupID.x * 32u;

  if (CENTER != 0) {
    // 64 rows (32 of a, 32 of b) x 4 lanes.
    uint r = t >> 2u, lane = t & 3u;
    float s = 0.0;
    if (r < 32u) {
      uint row = m0 + r;
      if (row < p.m)
        for (uint kk = lane; kk < p.k; kk += 4u)
          s += ld_a(row * p.k + kk);
    } else {
      uint col = n0 + r - 32u;
      if (col < p.n)
        for (uint kk = lane; kk < p.k; kk += 4u)
          s += ld_b(col * p.k + kk);
    }
    red[t] = s;
    barrier();
    if (lane == 0u) {
      float v = (red[t] + red[t + 1u] + red[t + 2u] + red[t + 3u]) / float(p.k);
      if (r < 32u)
        meanA[r] = v;
      else
        meanB[r - 32u] = v;
    }
    barrier();
  }

  float acc00 = 0.0, acc01 = 0.0, acc10 = 0.0, acc11 = 0.0;
  for (uint k0 = p.k0; k0 < p.k1; k0 += 16u) {
    // Each invocation loads 2 elements of the a tile and 2 of the b tile, with the contiguous
    // index of the source running over neighbouring invocations.
    for (uint j = 0u; j < 2u; j++) {
      uint e = t + j * 256u; // 0..511
      uint mm, kk;
      if (TA != 0) {
        kk = e >> 5u;
        mm = e & 31u;
      } else {
        mm = e >> 4u;
        kk = e & 15u;
      }
      float va = load_a(m0 + mm, k0 + kk);
      if (CENTER != 0 && m0 + mm < p.m && k0 + kk < p.k)
        va -= meanA[mm];
      As[kk][mm] = va;
      uint nn;
      if (TB != 0) {
        nn = e >> 4u;
        kk = e & 15u;
      } else {
        kk = e >> 5u;
        nn = e & 31u;
      }
      float vb = load_b(k0 + kk, n0 + nn);
      if (CENTER != 0 && n0 + nn < p.n && k0 + kk < p.k)
        vb -= meanB[nn];
      Bs[kk][nn] = vb;
    }
    barrier();
    for (uint kk = 0u; kk < 16u; kk++) {
      float a0 = As[kk][ty], a1 = As[kk][ty + 16u];
      float b0 = Bs[kk][tx], b1 = Bs[kk][tx + 16u];
      acc00 += a0 * b0;
      acc01 += a0 * b1;
      acc10 += a1 * b0;
      acc11 += a1 * b1;
    }
    barrier();
  }

  float accs[4] = float[4](acc00, acc01, acc10, acc11);
  for (uint i = 0u; i < 4u; i++) {
    uint row = m0 + ty + 16u * (i >> 1u), col = n0 + tx + 16u * (i & 1u);
    if (row < p.m && col < p.n) {
      float v = accs[i] * p.scale;
      if ((p.flags & 1u) != 0u)
        v += c_prev[row * p.n + col];
      if (SQRT != 0 && (p.flags & 2u) != 0u)
        v = sqrt(max(v, 0.0) + 1e-8);
      st_c(row * p.n + col, v);
    }
  }
}
