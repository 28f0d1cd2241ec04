// SPDX-License-Identifier: LGPL-2.1-or-later
// Generic direct convolution (reference-like fallback, ST_CONV_KERNEL=generic; the fast paths are
// conv3x3_sg/conv1x1_sg on CPU drivers and conv2d_tiled.comp elsewhere, see compute/ops.c):
// y[O,OH,OW] = act(conv(pad(x[I,H,W]), w[O,I,K,K]) + b), K in {1,3}, pad (K-1)/2, zero or reflect,
// stride 1 or 2, OH = ceil(H/stride). One invocation computes 4 output channels of one pixel;
// the 4 channels are uniform over the workgroup, so weight loads are broadcasts, and
// neighbouring invocations load neighbouring input pixels.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = ST_SPEC_K) const int K = 3;
layout(constant_id = ST_SPEC_STRIDE) const int STRIDE = 1;
layout(constant_id = ST_SPEC_REFLECT) const int REFLECT = 0;
layout(constant_id = ST_SPEC_ACT) const int ACT = 0;
layout(constant_id = ST_SPEC_HAS_BIAS) const int HAS_BIAS = 0;

ST_IN(0, x)
ST_IN(1, w)
ST_IN(2, b)
ST_OUT(3, y)

layout(push_constant) uniform P {
  uint ci, h, w, co, oh, ow;
  float alpha;
} p;

// Reflect padding index (pad 1: -1 -> 1, n -> n-2); a size-1 axis repeats its only element.
int refl(int i, int n) {
  if (i < 0)
    i = -i;
  if (i >= n)
    i = 2 * n - 2 - i;
  return clamp(i, 0, n - 1);
}

void main() {
  uint ox = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y, o0 = gl_WorkGroupID.z * 4u;
  if (ox >= p.ow)
    return;
  const int PAD = (K - 1) / 2;
  int H = int(p.h), W = int(p.w);
  int iy0 = int(oy) * STRIDE - PAD, ix0 = int(ox) * STRIDE - PAD;
  // Input offsets and validity of the K*K taps.
  int offs[K * K];
  bool valid[K * K];
  for (int ky = 0; ky < K; ky++)
    for (int kx = 0; kx < K; kx++) {
      int iy = iy0 + ky, ix = ix0 + kx;
      bool ok = iy >= 0 && iy < H && ix >= 0 && ix < W;
      if (REFLECT != 0) {
        iy = refl(iy, H);
        ix = refl(ix, W);
        ok = true;
      }
      valid[ky * K + kx] = ok;
      offs[ky * K + kx] = ok ? iy * W + ix : 0;
    }
  uint nco = min(4u, p.co - o0);
  uint wstride = p.ci * uint(K * K); // between output channels
  vec4 acc = vec4(0.0);
  uint plane = p.h * p.w;
  for (uint i = 0u; i < p.ci; i++) {
    uint xb = i * plane;
    uint wb = o0 * wstride + i * uint(K * K);
    for (int t = 0; t < K * K; t++) {
      float v = valid[t] ? ld_x(xb + uint(offs[t])) : 0.0;
      vec4 wv;
      wv.x = ld_w(wb + uint(t));
      wv.y = nco > 1u ? ld_w(wb + wstride + uint(t)) : 0.0;
      wv.z = nco > 2u ? ld_w(wb + 2u * wstride + uint(t)) : 0.0;
      wv.w = nco > 3u ? ld_w(wb + 3u * wstride + uint(t)) : 0.0;
      acc += v * wv;
    }
  }
  for (uint j = 0u; j < nco; j++) {
    float v = acc[j];
    if (HAS_BIAS != 0)
      v += ld_b(o0 + j);
    st_y(((o0 + j) * p.oh + oy) * p.ow + ox, st_act(v, ACT, p.alpha));
  }
}
