// SPDX-License-Identifier: LGPL-2.1-or-later
// 3x3 convolution, stride 1, pad 1 (zero or reflect), for CPU Vulkan drivers with 8-wide
// subgroups (lavapipe/llvmpipe on 256-bit SIMD): y = act(conv(pad(x), w) + b), w [O,I,3,3].
// Compiled once per register tile by shaders/meson.build (shader_tiles: conv3x3_sg_o4, _o8, _o16,
// _o32), which defines:
//   OB  output channels per workgroup (4 or a multiple of 8),
//   PX  consecutive pixels per invocation (multiple of 4),
//   RB  output rows per workgroup.
// WINO=1 (conv3x3_wg_o8, _o16, _o32; PX = RB = 4): Winograd F(2x2,3x3) on the weights
// transformed at load time (see phase 2 below; ops.c st_op_conv2d_winograd).
// Requirement checked by ops.c: subgroup size 8 (one workgroup = one subgroup).
// XVEC (W % 4 == 0) selects vec4 loads/stores of the rows; otherwise they are read and written
// element by element (about 30 % slower).
// WVEC (I % 4 == 0) selects vec4 weight loads; otherwise the weights are loaded one by one and
// the last block of 4 input channels is padded with zero weights.
//
// Why this shape (measured on Mesa 22.3 llvmpipe): every storage-buffer load is executed lane by
// lane (about 5 cycles per lane and component, the same for uniform and divergent addresses), a
// vec4 load costs about half as much per float as four scalar loads, and subgroupShuffle with a
// constant lane index compiles to one permute. So:
// - invocation `l` owns the pixel strip [x0 + l*PX, x0 + (l+1)*PX) of RB rows, loaded with vec4
//   loads; the columns left/right of the strip come from the neighbouring lanes by shuffles, the
//   two columns at the ends of the workgroup's strip (halo, padding resolved) for all RB+2 input
//   rows by ceil((RB+2)/4) scalar loads per input channel, lane t fetching halo value t;
// - the weights of output channel o0 + j + 8s for 4 input channels (36 contiguous floats, 9
//   vec4 loads) are loaded by lane j; each weight is then distributed by a shuffle from lane j;
// - every invocation accumulates OB x RB x PX outputs; each input value feeds 3*OB FMAs per
//   kernel row, each weight RB*PX FMAs.
// Bindings, fp16 storage (packed halves) and the shared helpers: conv_sg_common.glsl and
// common.glsl (ld_x reads single elements for W % 4 != 0 and the halo columns).
#version 450
#extension GL_GOOGLE_include_directive : require
#ifndef OB
#error "conv3x3_sg.comp is compiled with -DOB=... (shaders/meson.build, shader_tiles)"
#endif
#ifndef PX
#error "conv3x3_sg.comp is compiled with -DPX=... (shaders/meson.build, shader_tiles)"
#endif
#ifndef RB
#error "conv3x3_sg.comp is compiled with -DRB=... (shaders/meson.build, shader_tiles)"
#endif
#ifndef WINO
#define WINO 0
#endif
#if WINO && (PX != 4 || RB != 4)
#error "the Winograd variant (WINO=1) takes tiles of 4x4 pixels (PX=4, RB=4)"
#endif
#include "conv_sg_common.glsl"

layout(constant_id = ST_SPEC_REFLECT) const int REFLECT = 0;
layout(constant_id = ST_SPEC_WVEC) const int WVEC = 1;
layout(constant_id = ST_SPEC_XVEC) const int XVEC = 1;

// Reflect padding index (pad 1); a size-1 axis repeats its only element.
int refl(int i, int n) {
  if (i < 0)
    i = -i;
  if (i >= n)
    i = 2 * n - 2 - i;
  return clamp(i, 0, n - 1);
}

const int NR = RB + 2;  // input rows per workgroup
const int NQ = WINO != 0 ? 16 : 9; // vec4 weight loads per output channel and 4 input channels
const int NS = (OB + 7) / 8; // output channels per lane in the weight registers
const int TW = 8 * PX;  // strip width of the workgroup
const int NH = (2 * NR + 7) / 8; // halo loads per input channel

void main() {
  const uint l = gl_SubgroupInvocationID;
  const int H = int(p.h), W = int(p.w);
  const int x0 = int(gl_WorkGroupID.x) * TW;
  const int y0 = int(gl_WorkGroupID.y) * RB;
  const uint o0 = gl_WorkGroupID.z * uint(OB);
  const int xs = x0 + int(l) * PX; // this lane's strip
  const uint plane = p.h * p.w;
  // floats per output channel in w: [O,I,3,3], or [O,I4,16] for WINO (I4 = I rounded up to a
  // multiple of 4, transformed weights U = G g G^T, zero beyond I: st_winograd_weights in ops.c)
  const uint wrow = WINO != 0 ? (p.ci + 3u) / 4u * 64u : p.ci * 9u;

  // Input rows: index into the plane, and validity (zero padding).
  uint rowoff[NR];
  bool rowok[NR];
  [[unroll]] for (int t = 0; t < NR; t++) {
    int iy = y0 - 1 + t;
    rowok[t] = REFLECT != 0 || (iy >= 0 && iy < H);
    rowoff[t] = uint(clamp(REFLECT != 0 ? refl(iy, H) : iy, 0, H - 1) * W);
  }
  // Halo value t (t < 2 * NR): input row t >> 1, left column (x0 - 1) for even t, right column
  // min(x0 + TW, W) for odd t, padding resolved; loaded by lane t % 8 in load t / 8. The right
  // value is also the one at column W, used for strip columns >= W (only column W matters: it
  // is the right neighbour of the last output column).
  bool hok[NH];
  uint hoff[NH];
  [[unroll]] for (int k = 0; k < NH; k++) {
    int ht = 4 * k + (int(l) >> 1);
    int hy = y0 - 1 + ht;
    int hx = (l & 1u) == 0u ? x0 - 1 : min(x0 + TW, W);
    bool hpad = REFLECT == 0 && (hx < 0 || hx >= W || hy < 0 || hy >= H);
    hok[k] = ht < NR && !hpad;
    hoff[k] = uint(clamp(REFLECT != 0 ? refl(hy, H) : hy, 0, H - 1) * W + refl(hx, W));
  }

  // Lane j's weight rows: output channel o0 + j + 8s (clamped; not stored when >= co).
  uint wbase[NS];
  [[unroll]] for (int s = 0; s < NS; s++)
    wbase[s] = min(o0 + l + uint(8 * s), p.co - 1u) * wrow;

  float acc[RB][OB][PX];
#if WINO
  float M[4][OB][16]; // transformed sums per tile (row-major 2x2 tiles), output channel
  [[unroll]] for (int tl = 0; tl < 4; tl++)
    [[unroll]] for (int o = 0; o < OB; o++)
      [[unroll]] for (int k = 0; k < 16; k++)
        M[tl][o][k] = 0.0;
#else
  [[unroll]] for (int r = 0; r < RB; r++)
    [[unroll]] for (int o = 0; o < OB; o++)
      [[unroll]] for (int i = 0; i < PX; i++)
        acc[r][o][i] = 0.0;
#endif

  for (uint c0 = 0u; c0 < p.ci; c0 += 4u) {
    // Phase 1: all loads of the block of 4 input channels (each load is a loop over the lanes in
    // llvmpipe; the values are kept, in registers or on the stack, for phase 2).
    // 36 weights (4 input channels x 9 taps; WINO: 64 transformed, 4 x 16) of each of this
    // lane's output channels.
    vec4 wv[NS][NQ];
    [[unroll]] for (int s = 0; s < NS; s++)
      [[unroll]] for (int q = 0; q < NQ; q++) {
        if (WINO != 0) {
          wv[s][q] = ld_w4((wbase[s] + c0 * 16u) / 4u + uint(q));
        } else if (WVEC != 0) {
          wv[s][q] = ld_w4((wbase[s] + c0 * 9u) / 4u + uint(q));
        } else {
          [[unroll]] for (int k = 0; k < 4; k++) {
            const int e = 4 * q + k; // input channel c0 + e / 9, tap e % 9
            bool ok = c0 + uint(e / 9) < p.ci;
            float wk = ld_w(wbase[s] + min(c0 * 9u + uint(e), wrow - 1u));
            wv[s][q][k] = ok ? wk : 0.0;
          }
        }
      }
    // v[cc][t][0] = column xs - 1 ... v[cc][t][PX + 1] = column xs + PX of input row t.
    float v[4][NR][PX + 2];
    [[unroll]] for (int cc = 0; cc < 4; cc++) {
      uint cbase = min(c0 + uint(cc), p.ci - 1u) * plane; // zero weights beyond ci
      float halo[NH];
      [[unroll]] for (int k = 0; k < NH; k++)
        halo[k] = hok[k] ? ld_x(cbase + hoff[k]) : 0.0;
      [[unroll]] for (int t = 0; t < NR; t++) {
        float rpad = subgroupShuffle(halo[t / 4], uint(2 * (t % 4) + 1));
        if (XVEC != 0) {
          [[unroll]] for (int k = 0; k < PX / 4; k++) {
            int pos = xs + 4 * k;
            vec4 q = ld_x4((cbase + rowoff[t] + uint(min(pos, W - 4))) >> 2);
            bool inside = pos < W; // W % 4 == 0: the whole vec4 is inside or outside
            q = rowok[t] ? q : vec4(0.0);
            v[cc][t][1 + 4 * k] = inside ? q.x : rpad;
            v[cc][t][2 + 4 * k] = inside ? q.y : rpad;
            v[cc][t][3 + 4 * k] = inside ? q.z : rpad;
            v[cc][t][4 + 4 * k] = inside ? q.w : rpad;
          }
        } else {
          [[unroll]] for (int i = 0; i < PX; i++) {
            int pos = xs + i;
            float q = ld_x(cbase + rowoff[t] + uint(min(pos, W - 1)));
            q = rowok[t] ? q : 0.0;
            v[cc][t][1 + i] = pos < W ? q : rpad;
          }
        }
        float left = subgroupShuffle(v[cc][t][PX], (l + 7u) & 7u);
        float right = subgroupShuffle(v[cc][t][1], (l + 1u) & 7u);
        v[cc][t][0] = l == 0u ? subgroupShuffle(halo[t / 4], uint(2 * (t % 4))) : left;
        v[cc][t][PX + 1] = l == 7u ? rpad : right;
      }
    }
#if WINO
    // Phase 2 (Winograd F(2x2,3x3)): the lane's 4x4 outputs are 2x2 tiles of 2x2; each tile's
    // 4x4 input window d of each input channel is transformed once, V = B^T d B (adds only), and
    // the transformed sums M += U . V (16 FMAs per tile, channel and output channel instead of
    // 36) are kept until the end, where Y = A^T M A.
    float V[4][4][16]; // [input channel][tile][element]
    [[unroll]] for (int cc = 0; cc < 4; cc++)
      [[unroll]] for (int tl = 0; tl < 4; tl++) {
        const int ry = 2 * (tl / 2), rx = 2 * (tl % 2);
        float t[4][4];
        [[unroll]] for (int j = 0; j < 4; j++) {
          t[0][j] = v[cc][ry][rx + j] - v[cc][ry + 2][rx + j];
          t[1][j] = v[cc][ry + 1][rx + j] + v[cc][ry + 2][rx + j];
          t[2][j] = v[cc][ry + 2][rx + j] - v[cc][ry + 1][rx + j];
          t[3][j] = v[cc][ry + 1][rx + j] - v[cc][ry + 3][rx + j];
        }
        [[unroll]] for (int i = 0; i < 4; i++) {
          V[cc][tl][4 * i] = t[i][0] - t[i][2];
          V[cc][tl][4 * i + 1] = t[i][1] + t[i][2];
          V[cc][tl][4 * i + 2] = t[i][2] - t[i][1];
          V[cc][tl][4 * i + 3] = t[i][1] - t[i][3];
        }
      }
    // Per output channel and element k: the 4 tiles' sums stay in registers through the 4 input
    // channels, each weight (shuffled from lane o % 8) feeds the 4 tiles.
    [[unroll]] for (int o = 0; o < OB; o++)
      [[unroll]] for (int k = 0; k < 16; k++) {
        float m[4];
        [[unroll]] for (int tl = 0; tl < 4; tl++)
          m[tl] = M[tl][o][k];
        [[unroll]] for (int cc = 0; cc < 4; cc++) {
          float u = subgroupShuffle(wv[o / 8][4 * cc + k / 4][k % 4], uint(o % 8));
          [[unroll]] for (int tl = 0; tl < 4; tl++)
            m[tl] = fma(V[cc][tl][k], u, m[tl]);
        }
        [[unroll]] for (int tl = 0; tl < 4; tl++)
          M[tl][o][k] = m[tl];
      }
#else
    // Phase 2: FMAs, one output channel at a time (its RB x PX accumulators stay in registers
    // through the 36 taps), each weight distributed from lane o % 8 by a shuffle.
    [[unroll]] for (int o = 0; o < OB; o++) {
      [[unroll]] for (int cc = 0; cc < 4; cc++) {
        float wgt[9];
        [[unroll]] for (int tap = 0; tap < 9; tap++) {
          const int e = cc * 9 + tap;
          wgt[tap] = subgroupShuffle(wv[o / 8][e / 4][e % 4], uint(o % 8));
        }
        [[unroll]] for (int ky = 0; ky < 3; ky++)
          [[unroll]] for (int kx = 0; kx < 3; kx++)
            [[unroll]] for (int r = 0; r < RB; r++)
              [[unroll]] for (int i = 0; i < PX; i++)
                acc[r][o][i] = fma(v[cc][r + ky][i + kx], wgt[ky * 3 + kx], acc[r][o][i]);
      }
    }
#endif
  }

#if WINO
  // Output transform Y = A^T M A of every tile and output channel.
  [[unroll]] for (int tl = 0; tl < 4; tl++)
    [[unroll]] for (int o = 0; o < OB; o++) {
      float s0[4], s1[4];
      [[unroll]] for (int j = 0; j < 4; j++) {
        s0[j] = M[tl][o][j] + M[tl][o][4 + j] + M[tl][o][8 + j];
        s1[j] = M[tl][o][4 + j] - M[tl][o][8 + j] - M[tl][o][12 + j];
      }
      const int ry = 2 * (tl / 2), rx = 2 * (tl % 2);
      acc[ry][o][rx] = s0[0] + s0[1] + s0[2];
      acc[ry][o][rx + 1] = s0[1] - s0[2] - s0[3];
      acc[ry + 1][o][rx] = s1[0] + s1[1] + s1[2];
      acc[ry + 1][o][rx + 1] = s1[1] - s1[2] - s1[3];
    }
#endif

  [[unroll]] for (int r = 0; r < RB; r++) {
    int oy = y0 + r;
    if (oy >= H)
      break;
    [[unroll]] for (int o = 0; o < OB; o++) {
      uint oc = o0 + uint(o);
      if (oc >= p.co)
        break;
      float bias = HAS_BIAS != 0 ? ld_b(oc) : 0.0;
      if (XVEC != 0) {
        [[unroll]] for (int k = 0; k < PX / 4; k++) {
          int pos = xs + 4 * k;
          if (pos < W) {
            vec4 q = vec4(acc[r][o][4 * k], acc[r][o][4 * k + 1], acc[r][o][4 * k + 2],
                          acc[r][o][4 * k + 3]);
            q = vec4(act(q.x + bias), act(q.y + bias), act(q.z + bias), act(q.w + bias));
            st_y4((oc * plane + uint(oy * W + pos)) >> 2, q);
          }
        }
      } else {
        [[unroll]] for (int i = 0; i < PX; i++) {
          int pos = xs + i;
          if (pos < W)
            st_y(oc * plane + uint(oy * W + pos), act(acc[r][o][i] + bias));
        }
      }
    }
  }
}
