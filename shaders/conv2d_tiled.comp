// SPDX-License-Identifier: LGPL-2.1-or-later
// Tiled convolution, K x K with K in {1, 3} (pad (K-1)/2, zero or reflect; stride 1 or 2):
// y = act(conv(pad(x), w) + b), w [O,I,K,K].
// A workgroup of 64 invocations computes a tile of 64x8 output pixels x OCB (8) output channels;
// each invocation computes PX (8) consecutive pixels of one row x all OCB channels (64
// accumulators). Input channels are processed in chunks of CHUNK: the padded input tile and the
// chunk's weights are staged in shared memory by all invocations (padding resolved once there),
// then every invocation reads its input row segment once per kernel row and reuses each value
// for K taps x OCB channels, and each weight vec4 (4 output channels, same address in every
// invocation) for PX pixels.
// Measured on lavapipe (Mesa 22.3): shared/storage loads are executed lane by lane there, so the
// kernel is bound by the number of scalar loads per FMA: (PX+K-1) input + K*OCB weight loads per
// K*OCB*PX FMAs and input row. Larger register tiles (16x16) spill and are slower. On lavapipe
// ops.c therefore prefers conv3x3_sg / conv1x1_sg (8-wide subgroups, no shared memory) for the
// shapes they take (stride 1, rows of a multiple of 4); this kernel remains the path for GPUs,
// stride 2 and odd widths.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = ST_SPEC_STRIDE) const int STRIDE = 1;
layout(constant_id = ST_SPEC_REFLECT) const int REFLECT = 0;
layout(constant_id = ST_SPEC_ACT) const int ACT = 0;
layout(constant_id = ST_SPEC_HAS_BIAS) const int HAS_BIAS = 0;
layout(constant_id = ST_SPEC_K) const int K = 3;

ST_IN(0, x)
ST_IN(1, w)
ST_IN(2, b)
ST_OUT(3, y)

layout(push_constant) uniform P {
  uint ci, h, w, co, oh, ow;
  float alpha;
} p;

#define OCB 8
const int PX = 8;                        // pixels per invocation
const int TW = 8 * PX, TH = 8;                // output tile (pixels)
const int CHUNK = 8 / (STRIDE * STRIDE);            // input channels per shared-memory stage
const int KK = K * K, PAD = (K - 1) / 2;
const int IW = (TW - 1) * STRIDE + K;    // input tile width
const int IH = (TH - 1) * STRIDE + K;    // input tile height
const int SEG = (PX - 1) * STRIDE + K;   // input columns read by PX consecutive output pixels

shared float xs[CHUNK * IH * IW];
shared vec4 ws[CHUNK * KK * (OCB / 4)]; // [c][tap][oc group of 4]

int refl(int i, int n) {
  if (i < 0)
    i = -i;
  if (i >= n)
    i = 2 * n - 2 - i;
  return clamp(i, 0, n - 1);
}

void main() {
  uint t = gl_LocalInvocationID.x;
  int H = int(p.h), W = int(p.w);
  int ox0 = int(gl_WorkGroupID.x) * TW, oy0 = int(gl_WorkGroupID.y) * TH;
  uint oc0 = gl_WorkGroupID.z * uint(OCB);
  int iy0 = oy0 * STRIDE - PAD, ix0 = ox0 * STRIDE - PAD;
  int py = int(t) >> 3, px = (int(t) & 7) * PX;
  uint wstride = p.ci * uint(KK);

  float acc[OCB][PX];
  for (int o = 0; o < OCB; o++)
    for (int i = 0; i < PX; i++)
      acc[o][i] = 0.0;

  for (uint c0 = 0u; c0 < p.ci; c0 += uint(CHUNK)) {
    for (uint e = t; e < uint(CHUNK * IH * IW); e += 64u) {
      uint c = e / uint(IH * IW), r = e % uint(IH * IW);
      int iy = iy0 + int(r / uint(IW)), ix = ix0 + int(r % uint(IW));
      float v = 0.0;
      if (c0 + c < p.ci) {
        if (REFLECT != 0) {
          v = ld_x((c0 + c) * p.h * p.w + uint(refl(iy, H) * W + refl(ix, W)));
        } else if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
          v = ld_x((c0 + c) * p.h * p.w + uint(iy * W + ix));
        }
      }
      xs[e] = v;
    }
    for (uint e = t; e < uint(CHUNK * KK * (OCB / 4)); e += 64u) {
      uint g = e % uint(OCB / 4), ct = e / uint(OCB / 4);
      uint c = ct / uint(KK), tap = ct % uint(KK);
      vec4 v = vec4(0.0);
      if (c0 + c < p.ci) {
        uint base = (c0 + c) * uint(KK) + tap;
        uint o = oc0 + 4u * g;
        if (o < p.co)
          v.x = ld_w(o * wstride + base);
        if (o + 1u < p.co)
          v.y = ld_w((o + 1u) * wstride + base);
        if (o + 2u < p.co)
          v.z = ld_w((o + 2u) * wstride + base);
        if (o + 3u < p.co)
          v.w = ld_w((o + 3u) * wstride + base);
      }
      ws[e] = v;
    }
    barrier();
    uint nc = min(uint(CHUNK), p.ci - c0);
    for (uint c = 0u; c < nc; c++) {
      for (int ky = 0; ky < K; ky++) {
        uint rb = (c * uint(IH) + uint(py * STRIDE + ky)) * uint(IW) + uint(px * STRIDE);
        float seg[SEG];
        for (int j = 0; j < SEG; j++)
          seg[j] = xs[rb + uint(j)];
        for (int kx = 0; kx < K; kx++) {
          uint wb = (c * uint(KK) + uint(ky * K + kx)) * uint(OCB / 4);
          for (int g = 0; g < OCB / 4; g++) {
            vec4 wv = ws[wb + uint(g)];
            for (int i = 0; i < PX; i++) {
              acc[4 * g][i] += seg[i * STRIDE + kx] * wv.x;
              acc[4 * g + 1][i] += seg[i * STRIDE + kx] * wv.y;
              acc[4 * g + 2][i] += seg[i * STRIDE + kx] * wv.z;
              acc[4 * g + 3][i] += seg[i * STRIDE + kx] * wv.w;
            }
          }
        }
      }
    }
    barrier();
  }

  int oy = oy0 + py;
  if (oy >= int(p.oh))
    return;
  for (int o = 0; o < OCB; o++) {
    uint oc = oc0 + uint(o);
    if (oc >= p.co)
      break;
    float bias = HAS_BIAS != 0 ? ld_b(oc) : 0.0;
    for (int i = 0; i < PX; i++) {
      int ox = ox0 + px + i;
      if (ox < int(p.ow))
        st_y((oc * p.oh + uint(oy)) * p.ow + uint(ox), st_act(acc[o][i] + bias, ACT, p.alpha));
    }
  }
}
