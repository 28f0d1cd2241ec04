// SPDX-License-Identifier: LGPL-2.1-or-later
// Frame (raw bytes) -> planar RGB [3,th,tw] in [0,1], resized bilinearly (PyTorch
// F.interpolate(align_corners=False) index rule) from the frame size to the tensor size. Each
// frame pixel is decoded (BT.601 limited range for YUV) and clamped to [0,1] before interpolation.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "frame.glsl"

layout(local_size_x = 64) in;

layout(std430, set = 0, binding = 0) readonly buffer Src { uint src[]; };
ST_OUT(1, y)

layout(push_constant) uniform P {
  uint format, fw, fh, tw, th;
  uint off0, off1, off2;
  uint s0, s1, s2;
  float sx, sy; // fw/tw, fh/th
} p;

float byte_at(uint a) { return float((src[a >> 2u] >> ((a & 3u) * 8u)) & 255u); }

vec3 decode(uint x, uint y) {
  if (p.format < FMT_I420) {
    uint a = p.off0 + y * p.s0 + x * 4u;
    vec3 c = vec3(byte_at(a), byte_at(a + 1u), byte_at(a + 2u)) / 255.0;
    return fmt_is_bgr(p.format) ? c.bgr : c;
  }
  float Y = byte_at(p.off0 + y * p.s0 + x);
  uint cx = x >> 1u, cy = y >> 1u;
  float U, V;
  if (p.format == FMT_I420) {
    U = byte_at(p.off1 + cy * p.s1 + cx);
    V = byte_at(p.off2 + cy * p.s2 + cx);
  } else {
    U = byte_at(p.off1 + cy * p.s1 + 2u * cx);
    V = byte_at(p.off1 + cy * p.s1 + 2u * cx + 1u);
  }
  vec3 c = ycc_to_rgb((Y - 16.0) / 219.0, (U - 128.0) / 224.0, (V - 128.0) / 224.0);
  return clamp(c, 0.0, 1.0);
}

void main() {
  uint ox = gl_GlobalInvocationID.x, oy = gl_WorkGroupID.y;
  if (ox >= p.tw)
    return;
  float fx = max((float(ox) + 0.5) * p.sx - 0.5, 0.0);
  float fy = max((float(oy) + 0.5) * p.sy - 0.5, 0.0);
  uint x0 = min(uint(fx), p.fw - 1u), y0 = min(uint(fy), p.fh - 1u);
  uint x1 = x0 + (x0 < p.fw - 1u ? 1u : 0u), y1 = y0 + (y0 < p.fh - 1u ? 1u : 0u);
  float lx = fx - float(x0), ly = fy - float(y0);
  vec3 r0 = (1.0 - lx) * decode(x0, y0) + lx * decode(x1, y0);
  vec3 r1 = (1.0 - lx) * decode(x0, y1) + lx * decode(x1, y1);
  vec3 c = (1.0 - ly) * r0 + ly * r1;
  uint plane = p.th * p.tw, i = oy * p.tw + ox;
  st_y(i, c.r);
  st_y(plane + i, c.g);
  st_y(2u * plane + i, c.b);
}
