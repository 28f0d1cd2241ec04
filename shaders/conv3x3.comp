// SPDX-License-Identifier: LGPL-2.1-or-later
// Tiled 3x3 convolution (pad 1, zero or reflect; stride 1 or 2): y = act(conv(pad(x), w) + b).
// Workgroup: 64 invocations = 16 pixel groups (local x) x 4 output-channel groups (local y).
// It computes a tile of 16x4 output pixels x 16 output channels; each invocation computes 4
// consecutive pixels of one row x 4 output channels (16 accumulators). Input channels are
// processed in chunks of CHUNK: the padded input tile and the chunk's weights are staged in
// shared memory by all invocations, then every invocation reads its input row segments once per
// kernel row and reuses them over 3 taps x 4 output channels. The 8 invocations of a lavapipe
// SIMD group share their output channels, so weight reads are uniform.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 16, local_size_y = 4) in;
layout(constant_id = 1) const int STRIDE = 1;
layout(constant_id = 2) const int REFLECT = 0;
layout(constant_id = 3) const int ACT = 0;
layout(constant_id = 4) const int HAS_BIAS = 0;

ST_IN(0, x)
ST_IN(1, w)
ST_IN(2, b)
ST_OUT(3, y)

layout(push_constant) uniform P {
  uint ci, h, w, co, oh, ow;
  float alpha;
} p;

const int TW = 16, TH = 4;              // output tile (pixels)
const int OCT = 16;                     // output channels per workgroup
const int CHUNK = 8;                    // input channels per shared-memory stage
const int IW = TW * STRIDE + 2;         // input tile width (stride 2: 34, 1 spare column)
const int IH = (TH - 1) * STRIDE + 3;   // input tile height
const int SEG = 3 * STRIDE + 3;         // input columns read by 4 consecutive output pixels

shared float xs[CHUNK * IH * IW];
shared vec4 ws[CHUNK * 9 * (OCT / 4)]; // [c][tap][oc group]

int refl(int i, int n) {
  if (i < 0)
    i = -i;
  if (i >= n)
    i = 2 * n - 2 - i;
  return clamp(i, 0, n - 1);
}

void main() {
  uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
  uint t = ly * 16u + lx;
  int H = int(p.h), W = int(p.w);
  int ox0 = int(gl_WorkGroupID.x) * TW, oy0 = int(gl_WorkGroupID.y) * TH;
  uint oc0 = gl_WorkGroupID.z * uint(OCT);
  int iy0 = oy0 * STRIDE - 1, ix0 = ox0 * STRIDE - 1;
  // This invocation: row py of the tile, pixels px..px+3; output channels oc0 + 4*ly .. +3.
  int py = int(lx) >> 2, px = (int(lx) & 3) * 4;
  uint ocg = ly;

  vec4 acc0 = vec4(0.0), acc1 = vec4(0.0), acc2 = vec4(0.0), acc3 = vec4(0.0);
  for (uint c0 = 0u; c0 < p.ci; c0 += uint(CHUNK)) {
    // Stage the input tile (with padding) of CHUNK channels.
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
    // Stage the weights: ws[(c*9 + tap)*4 + g] = w[oc0+4g .. +3][c0+c][tap].
    for (uint e = t; e < uint(CHUNK * 9 * (OCT / 4)); e += 64u) {
      uint g = e % uint(OCT / 4), ct = e / uint(OCT / 4);
      uint c = ct / 9u, tap = ct % 9u;
      vec4 v = vec4(0.0);
      if (c0 + c < p.ci) {
        uint base = (c0 + c) * 9u + tap, ostride = p.ci * 9u;
        uint o = oc0 + 4u * g;
        if (o < p.co)
          v.x = ld_w(o * ostride + base);
        if (o + 1u < p.co)
          v.y = ld_w((o + 1u) * ostride + base);
        if (o + 2u < p.co)
          v.z = ld_w((o + 2u) * ostride + base);
        if (o + 3u < p.co)
          v.w = ld_w((o + 3u) * ostride + base);
      }
      ws[e] = v;
    }
    barrier();
    uint nc = min(uint(CHUNK), p.ci - c0);
    for (uint c = 0u; c < nc; c++) {
      for (int ky = 0; ky < 3; ky++) {
        uint rb = (c * uint(IH) + uint(py * STRIDE + ky)) * uint(IW) + uint(px * STRIDE);
        float seg[SEG];
        for (int j = 0; j < SEG; j++)
          seg[j] = xs[rb + uint(j)];
        for (int kx = 0; kx < 3; kx++) {
          vec4 wv = ws[(c * 9u + uint(ky * 3 + kx)) * uint(OCT / 4) + ocg];
          acc0 += seg[kx] * wv;
          acc1 += seg[STRIDE + kx] * wv;
          acc2 += seg[2 * STRIDE + kx] * wv;
          acc3 += seg[3 * STRIDE + kx] * wv;
        }
      }
    }
    barrier();
  }

  int oy = oy0 + py;
  if (oy >= int(p.oh))
    return;
  vec4 accs[4] = vec4[4](acc0, acc1, acc2, acc3);
  for (uint j = 0u; j < 4u; j++) {
    uint o = oc0 + 4u * ocg + j;
    if (o >= p.co)
      break;
    float bias = HAS_BIAS != 0 ? ld_b(o) : 0.0;
    for (int i = 0; i < 4; i++) {
      int ox = ox0 + px + i;
      if (ox < int(p.ow))
        st_y((o * p.oh + uint(oy)) * p.ow + uint(ox), st_act(accs[i][j] + bias, ACT, p.alpha));
    }
  }
}
