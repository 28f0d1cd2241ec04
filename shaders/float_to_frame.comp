// SPDX-License-Identifier: LGPL-2.1-or-later
// Planar RGB x [3,xh,xw] -> one plane of a frame (raw bytes). ops.c dispatches once per plane.
// x is resized bilinearly (PyTorch align_corners=False rule) to the frame size and clamped to
// [0,1]. With preserve (flags), each bilinear tap combines the luma (BT.601 Y) of x with the
// chroma (Cb, Cr) of `orig` (the input frame as RGB at x's size) before interpolation.
// Each invocation owns one 32-bit word of the destination buffer and rewrites only the bytes
// that belong to the plane's pixels (row padding and neighbouring data are preserved), so any
// plane offset/stride works without 8-bit storage. The format comes as component words
// (frame.glsl): every byte of a row belongs to one sample of one component.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "frame.glsl"

layout(local_size_x = 64) in;
// 1: a one-plane format of 4 one-byte components per pixel (RGBA, BGRA, RGBx, BGRx, ...) whose
// plane offset and stride are multiples of 4: every word is one pixel, found with one division
// instead of the generic per-byte component search (on lavapipe 4-5x less time per frame).
layout(constant_id = ST_SPEC_PACKED32) const int PACKED32 = 0;
// VEC4 (PACKED32, width % 4 == 0, plane offset and stride multiples of 16; ops.c):
// 1: x at the frame size: each invocation writes 4 pixels, three vec4 loads (six with preserve)
//    and one 16-byte store; nwords and word0 then count groups of four words.
// 2: x upscaled at least 2x on both axes (steps 0 and 1 show a 1/4- or 1/2-size x): each
//    invocation writes a block of 4 x 4 pixels (nwords counts the blocks, row-major over
//    fw/4 x ceil(fh/4)), whose bilinear taps fall in a 4 x 4 window of x: 16 taps loaded once
//    instead of 4 per pixel, with the same arithmetic as sample_rgb.
layout(constant_id = ST_SPEC_VEC4) const int VEC4 = 0;

ST_IN4(0, x)
ST_IN4(1, orig)
layout(std430, set = 0, binding = 2) buffer Dst { uint dst[]; };
layout(std430, set = 0, binding = 2) buffer Dst4 { uvec4 dst4[]; };

layout(push_constant) uniform P {
  uint flags;
  uint fw, fh, xw, xh;
  uint plane_off, stride, rows, rowbytes; // the plane being written
  uint word0, nwords;                     // words of dst covering the plane
  uint comp[4];
  float range[4]; // code = range[0] + range[1] * value (Y, R, G, B); range[2], range[3] (Cb, Cr)
  float enc[9];   // RGB -> Y, Cb, Cr weights
  float sx, sy;   // xw/fw, xh/fh
} p;

// preserve: the luma of c with the chroma of o (the input frame's colour at the same place)
vec3 keep_chroma(vec3 c, vec3 o) { return ycc_to_rgb(dot(c, KY), dot(o, KCB), dot(o, KCR), DEC601); }

vec3 tap(uint i) {
  uint n = p.xw * p.xh;
  vec3 c = vec3(ld_x(i), ld_x(n + i), ld_x(2u * n + i));
  if (flag_preserve(p.flags))
    c = keep_chroma(c, vec3(ld_orig(i), ld_orig(n + i), ld_orig(2u * n + i)));
  return c;
}

// RGB of frame pixel (px, py), resized from x and clamped.
vec3 sample_rgb(uint px, uint py) {
  if (p.xw == p.fw && p.xh == p.fh) // no resize: the same value as the bilinear taps' (weights 1, 0)
    return clamp(tap(py * p.xw + px), 0.0, 1.0);
  float fx = max((float(px) + 0.5) * p.sx - 0.5, 0.0);
  float fy = max((float(py) + 0.5) * p.sy - 0.5, 0.0);
  uint x0 = min(uint(fx), p.xw - 1u), y0 = min(uint(fy), p.xh - 1u);
  uint x1 = x0 + (x0 < p.xw - 1u ? 1u : 0u), y1 = y0 + (y0 < p.xh - 1u ? 1u : 0u);
  float lx = fx - float(x0), ly = fy - float(y0);
  vec3 r0 = (1.0 - lx) * tap(y0 * p.xw + x0) + lx * tap(y0 * p.xw + x1);
  vec3 r1 = (1.0 - lx) * tap(y1 * p.xw + x0) + lx * tap(y1 * p.xw + x1);
  return clamp((1.0 - ly) * r0 + ly * r1, 0.0, 1.0);
}

// Mean RGB of the in-frame pixels covered by sample k of row `row` of component d; an
// unsubsampled sample beyond the frame (the second luma of an odd-width 4:2:2 row's last pair)
// repeats the last pixel.
vec3 block_rgb(uint d, uint k, uint row) {
  uint ws = comp_wsub(d), hs = comp_hsub(d);
  if (ws == 0u && hs == 0u)
    return sample_rgb(min(k, p.fw - 1u), row);
  vec3 acc = vec3(0.0);
  float cnt = 0.0;
  for (uint dy = 0u; dy < (1u << hs); dy++)
    for (uint dx = 0u; dx < (1u << ws); dx++) {
      uint px = (k << ws) + dx, py = (row << hs) + dy;
      if (px < p.fw && py < p.fh) {
        acc += sample_rgb(px, py);
        cnt += 1.0;
      }
    }
  acc /= cnt;
  return acc;
}

// Unrounded code value of component c (0..2) of a block with mean colour rgb.
float code_value(uint c, vec3 rgb) {
  if (!flag_yuv(p.flags))
    return p.range[0] + p.range[1] * rgb[c];
  if (c == 0u)
    return p.range[0] + p.range[1] * dot(rgb, vec3(p.enc[0], p.enc[1], p.enc[2]));
  vec3 k = c == 1u ? vec3(p.enc[3], p.enc[4], p.enc[5]) : vec3(p.enc[6], p.enc[7], p.enc[8]);
  return p.range[2] + p.range[3] * dot(rgb, k);
}

// PACKED32: the word of a pixel of colour rgb (its 4 bytes are the pixel's 4 components).
uint pack32(vec3 rgb) {
  uint bits = 0u, maxcode = flag_maxcode(p.flags);
  for (uint i = 0u; i < 4u; i++) {
    uint d = p.comp[i];
    uint code =
        i < 3u ? uint(clamp(floor(code_value(i, rgb) + 0.5), 0.0, float(maxcode))) : maxcode;
    bits |= code << (8u * comp_offset(d));
  }
  return bits;
}

// PACKED32: the pixel of one word.
void write_packed32(uint word) {
  uint rel = word * 4u - p.plane_off;
  uint row = rel / p.stride, col = rel - row * p.stride;
  if (row >= p.rows || col >= p.rowbytes)
    return; // row padding: left as it is
  dst[word] = pack32(sample_rgb(col >> 2u, row));
}

// VEC4: the 4 pixels of 4 words from word 4 g on (row padding is whole groups of 4 words).
void write_packed32x4(uint g) {
  uint rel = g * 16u - p.plane_off;
  uint row = rel / p.stride, col = rel - row * p.stride;
  if (row >= p.rows || col >= p.rowbytes)
    return;
  uint n = p.xw * p.xh, i = (row * p.xw + (col >> 2u)) >> 2u;
  vec4 r = ld_x4(i), gr = ld_x4(n / 4u + i), b = ld_x4(n / 2u + i);
  if (flag_preserve(p.flags)) {
    vec4 o0 = ld_orig4(i), o1 = ld_orig4(n / 4u + i), o2 = ld_orig4(n / 2u + i);
    for (uint k = 0u; k < 4u; k++) {
      vec3 c = keep_chroma(vec3(r[k], gr[k], b[k]), vec3(o0[k], o1[k], o2[k]));
      r[k] = c.r;
      gr[k] = c.g;
      b[k] = c.b;
    }
  }
  r = clamp(r, 0.0, 1.0);
  gr = clamp(gr, 0.0, 1.0);
  b = clamp(b, 0.0, 1.0);
  dst4[g] = uvec4(pack32(vec3(r.x, gr.x, b.x)), pack32(vec3(r.y, gr.y, b.y)),
                  pack32(vec3(r.z, gr.z, b.z)), pack32(vec3(r.w, gr.w, b.w)));
}

// a, b, c or d for i = 0, 1, 2, 3
vec3 pick4(vec3 a, vec3 b, vec3 c, vec3 d, uint i) {
  return i < 2u ? (i == 0u ? a : b) : (i == 2u ? c : d);
}

// VEC4 2: block b of 4 x 4 pixels. With x/frame scales of at most 0.5 the taps of 4 consecutive
// pixels span at most 4 columns (rows) of x from the first pixel's x0 (y0) on.
void write_up4(uint b) {
  uint nbx = p.fw / 4u, bx = b % nbx, by = b / nbx;
  uint px0 = 4u * bx, py0 = 4u * by;
  uint X = min(uint(max((float(px0) + 0.5) * p.sx - 0.5, 0.0)), p.xw - 1u);
  uint Y = min(uint(max((float(py0) + 0.5) * p.sy - 0.5, 0.0)), p.xh - 1u);
  vec3 t[4][4];
  [[unroll]] for (uint r = 0u; r < 4u; r++)
    [[unroll]] for (uint c = 0u; c < 4u; c++)
      t[r][c] = tap(min(Y + r, p.xh - 1u) * p.xw + min(X + c, p.xw - 1u));
  // The window's rows and columns are picked by selects (pick4), not by indexing t with
  // per-invocation values, which the CPU driver turns into a load per lane.
  [[unroll]] for (uint k = 0u; k < 4u; k++) {
    uint py = py0 + k;
    if (py >= p.fh)
      break;
    float fy = max((float(py) + 0.5) * p.sy - 0.5, 0.0);
    uint y0 = min(uint(fy), p.xh - 1u);
    uint y1 = y0 + (y0 < p.xh - 1u ? 1u : 0u);
    float ly = fy - float(y0);
    vec3 row0[4], row1[4];
    [[unroll]] for (uint c = 0u; c < 4u; c++) {
      row0[c] = pick4(t[0][c], t[1][c], t[2][c], t[3][c], y0 - Y);
      row1[c] = pick4(t[0][c], t[1][c], t[2][c], t[3][c], y1 - Y);
    }
    uvec4 o;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
      float fx = max((float(px0 + j) + 0.5) * p.sx - 0.5, 0.0);
      uint x0 = min(uint(fx), p.xw - 1u);
      uint x1 = x0 + (x0 < p.xw - 1u ? 1u : 0u);
      float lx = fx - float(x0);
      vec3 r0 = (1.0 - lx) * pick4(row0[0], row0[1], row0[2], row0[3], x0 - X) +
                lx * pick4(row0[0], row0[1], row0[2], row0[3], x1 - X);
      vec3 r1 = (1.0 - lx) * pick4(row1[0], row1[1], row1[2], row1[3], x0 - X) +
                lx * pick4(row1[0], row1[1], row1[2], row1[3], x1 - X);
      o[j] = pack32(clamp((1.0 - ly) * r0 + ly * r1, 0.0, 1.0));
    }
    dst4[(p.plane_off + py * p.stride) / 16u + bx] = o;
  }
}

void main() {
  uint wi = st_group_linear() * 64u + gl_LocalInvocationID.x;
  if (wi >= p.nwords)
    return;
  if (VEC4 == 2) {
    write_up4(wi);
    return;
  }
  if (VEC4 != 0) {
    write_packed32x4(p.word0 + wi);
    return;
  }
  uint word = p.word0 + wi;
  if (PACKED32 != 0) {
    write_packed32(word);
    return;
  }
  uint plane = flag_plane(p.flags), ncomp = flag_ncomp(p.flags), maxcode = flag_maxcode(p.flags);
  uint end = p.plane_off + (p.rows - 1u) * p.stride + p.rowbytes;
  uint mask = 0u, bits = 0u;
  // the last block's mean colour: [0] for unsubsampled, [1] for subsampled components
  uint key[2] = uint[2](0xffffffffu, 0xffffffffu);
  vec3 val[2] = vec3[2](vec3(0.0), vec3(0.0));
  for (uint j = 0u; j < 4u; j++) {
    uint a = word * 4u + j;
    if (a < p.plane_off || a >= end)
      continue;
    uint rel = a - p.plane_off;
    uint row = rel / p.stride, col = rel % p.stride;
    if (col >= p.rowbytes)
      continue;
    uint c = 4u, k = 0u, b = 0u; // the component, sample and byte in the sample
    for (uint i = 0u; i < ncomp && c == 4u; i++) {
      uint d = p.comp[i];
      if (comp_plane(d) == plane && col >= comp_offset(d) &&
          (col - comp_offset(d)) % comp_pstride(d) < comp_bytes(d)) {
        c = i;
        k = (col - comp_offset(d)) / comp_pstride(d);
        b = (col - comp_offset(d)) % comp_pstride(d);
      }
    }
    if (c == 4u)
      continue;
    uint d = p.comp[c], code = maxcode; // component 3: alpha / padding
    if (c < 3u) {
      uint slot = comp_wsub(d) | comp_hsub(d), kk = (row << 16u) | k;
      if (kk != key[slot]) {
        val[slot] = block_rgb(d, k, row);
        key[slot] = kk;
      }
      code = uint(clamp(floor(code_value(c, val[slot]) + 0.5), 0.0, float(maxcode)));
    }
    mask |= 255u << (j * 8u);
    bits |= (((code << comp_shift(d)) >> (8u * b)) & 255u) << (j * 8u);
  }
  if (mask == 0u)
    return;
  if (mask == 0xffffffffu)
    dst[word] = bits;
  else
    dst[word] = (dst[word] & ~mask) | bits;
}
