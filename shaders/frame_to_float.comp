// SPDX-License-Identifier: LGPL-2.1-or-later
// Frame (raw bytes) -> planar RGB [3,th,tw] in [0,1], resized bilinearly (PyTorch
// F.interpolate(align_corners=False) index rule) from the frame size to the tensor size. Each
// frame pixel is decoded (the frame's range and, for YUV, matrix) and clamped to [0,1] before
// interpolation. The format comes as component words (frame.glsl). With p.box = B > 1 the
// tensor is that image pooled by a B x B stride-B average (ceil mode, in-bounds pixels only, as
// pool.comp): y is [3, ceil(th/B), ceil(tw/B)] (the frame plan's upload into a fused 4x4 pool).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "frame.glsl"

layout(local_size_x = 64) in;
// 1: a one-plane format of 4 one-byte components per pixel at a word-aligned plane (ops.c
// packed32): each pixel is one word, read once instead of once per component.
layout(constant_id = ST_SPEC_PACKED32) const int PACKED32 = 0;

// VEC4 (PACKED32, no resize, width % 4 == 0, plane offset and stride multiples of 16; ops.c): 1,
// each invocation converts 4 pixels, one 16-byte load and three vec4 stores; 2 (box 4), each
// invocation writes one pooled pixel from one 16-byte load per in-bounds row of its box.
layout(constant_id = ST_SPEC_VEC4) const int VEC4 = 0;
layout(std430, set = 0, binding = 0) readonly buffer Src { uint src[]; };
layout(std430, set = 0, binding = 0) readonly buffer Src4 { uvec4 src4[]; };
ST_OUT4(1, y)

layout(push_constant) uniform P {
  uint flags, fw, fh, tw, th;
  uint off[3], stride[3]; // planes
  uint comp[3];
  float yoff, yinv, coff; // value = (code - yoff) * yinv for Y, R, G, B; chroma is code - coff
  float dec[4];           // YCbCr -> RGB (frame.glsl ycc_to_rgb), over the chroma scale
  float sx, sy;   // fw/tw, fh/th
  uint box;       // 1, or the average pool's window
} p;

uint byte_at(uint a) { return (src[a >> 2u] >> ((a & 3u) * 8u)) & 255u; }

// Code value of component c at frame pixel (x, y).
float code(uint c, uint x, uint y) {
  uint d = p.comp[c], pl = comp_plane(d);
  uint a = p.off[pl] + (y >> comp_hsub(d)) * p.stride[pl] + comp_offset(d) +
           (x >> comp_wsub(d)) * comp_pstride(d);
  uint v = byte_at(a);
  if (comp_bytes(d) == 2u)
    v |= byte_at(a + 1u) << 8u;
  return float((v >> comp_shift(d)) & flag_maxcode(p.flags));
}

// RGB of a decoded pixel: its code values v, mapped to [0,1].
vec3 to_rgb(vec3 v) {
  if (!flag_yuv(p.flags))
    return clamp((v - p.yoff) * p.yinv, 0.0, 1.0);
  vec3 c = ycc_to_rgb((v.x - p.yoff) * p.yinv, v.y - p.coff, v.z - p.coff,
                      vec4(p.dec[0], p.dec[1], p.dec[2], p.dec[3]));
  return clamp(c, 0.0, 1.0);
}

// The code values of the R, G, B components in a PACKED32 pixel word.
vec3 unpack32(uint w) {
  return vec3(float((w >> (8u * comp_offset(p.comp[0]))) & 255u),
              float((w >> (8u * comp_offset(p.comp[1]))) & 255u),
              float((w >> (8u * comp_offset(p.comp[2]))) & 255u));
}

vec3 decode(uint x, uint y) {
  if (PACKED32 != 0)
    return to_rgb(unpack32(src[(p.off[0] + y * p.stride[0]) / 4u + x]));
  return to_rgb(vec3(code(0u, x, y), code(1u, x, y), code(2u, x, y)));
}

void convert4() {
  uint k = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y;
  if (4u * k >= p.tw)
    return;
  uvec4 w = src4[(p.off[0] + oy * p.stride[0]) / 16u + k];
  vec3 a = to_rgb(unpack32(w.x)), b = to_rgb(unpack32(w.y)), c = to_rgb(unpack32(w.z)),
       d = to_rgb(unpack32(w.w));
  uint plane4 = p.th * p.tw / 4u, i = (oy * p.tw) / 4u + k;
  st_y4(i, vec4(a.r, b.r, c.r, d.r));
  st_y4(plane4 + i, vec4(a.g, b.g, c.g, d.g));
  st_y4(2u * plane4 + i, vec4(a.b, b.b, c.b, d.b));
}

// The image at tensor pixel (ox, oy) of the tw x th grid, before any pooling.
vec3 pixel(uint ox, uint oy) {
  if (p.tw == p.fw && p.th == p.fh) // no resize: the bilinear taps' value (weights 1 and 0)
    return decode(ox, oy);
  float fx = max((float(ox) + 0.5) * p.sx - 0.5, 0.0);
  float fy = max((float(oy) + 0.5) * p.sy - 0.5, 0.0);
  uint x0 = min(uint(fx), p.fw - 1u), y0 = min(uint(fy), p.fh - 1u);
  uint x1 = x0 + (x0 < p.fw - 1u ? 1u : 0u), y1 = y0 + (y0 < p.fh - 1u ? 1u : 0u);
  float lx = fx - float(x0), ly = fy - float(y0);
  vec3 r0 = (1.0 - lx) * decode(x0, y0) + lx * decode(x1, y0);
  vec3 r1 = (1.0 - lx) * decode(x0, y1) + lx * decode(x1, y1);
  return (1.0 - ly) * r0 + ly * r1;
}

// The average of the box at output (ox, oy): each column's in-bounds rows summed, then the
// columns left to right (pool.comp's order for K = 4 at W % 4 == 0).
vec3 box_mean(uint ox, uint oy) {
  uint x0 = ox * p.box, y0 = oy * p.box;
  uint nx = min(p.box, p.tw - x0), ny = min(p.box, p.th - y0);
  vec3 s = vec3(0.0);
  for (uint i = 0u; i < nx; i++) {
    vec3 col = pixel(x0 + i, y0);
    for (uint j = 1u; j < ny; j++)
      col += pixel(x0 + i, y0 + j);
    s = i == 0u ? col : s + col;
  }
  return s / float(nx * ny);
}

// VEC4 2: box_mean's sums (each column over the rows, then the columns left to right).
void pool4_packed() {
  uint k = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y, ow = p.tw / 4u;
  if (k >= ow)
    return;
  uint y0 = 4u * oy, ny = min(4u, p.th - y0), oh = (p.th + 3u) / 4u;
  uint r = (p.off[0] + y0 * p.stride[0]) / 16u + k, rs = p.stride[0] / 16u;
  uvec4 w = src4[r];
  vec3 c0 = to_rgb(unpack32(w.x)), c1 = to_rgb(unpack32(w.y)), c2 = to_rgb(unpack32(w.z)),
       c3 = to_rgb(unpack32(w.w));
  for (uint j = 1u; j < ny; j++) {
    w = src4[r + j * rs];
    c0 += to_rgb(unpack32(w.x));
    c1 += to_rgb(unpack32(w.y));
    c2 += to_rgb(unpack32(w.z));
    c3 += to_rgb(unpack32(w.w));
  }
  vec3 c = (((c0 + c1) + c2) + c3) / float(4u * ny);
  uint plane = oh * ow, i = oy * ow + k;
  st_y(i, c.r);
  st_y(plane + i, c.g);
  st_y(2u * plane + i, c.b);
}

void main() {
  if (VEC4 == 1) {
    convert4();
    return;
  }
  if (VEC4 == 2) {
    pool4_packed();
    return;
  }
  uint ox = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y;
  uint ow = (p.tw + p.box - 1u) / p.box, oh = (p.th + p.box - 1u) / p.box;
  if (ox >= ow)
    return;
  vec3 c = p.box == 1u ? pixel(ox, oy) : box_mean(ox, oy);
  uint plane = oh * ow, i = oy * ow + ox;
  st_y(i, c.r);
  st_y(plane + i, c.g);
  st_y(2u * plane + i, c.b);
}
