// SPDX-License-Identifier: LGPL-2.1-or-later
// Declarations shared by the subgroup convolution kernels conv3x3_sg.glsl and conv1x1_sg.glsl
// (8-wide subgroups, one subgroup per workgroup): extensions, the bindings x (0), w (1), b (2),
// y (3) with their fp32 and packed-fp16 views, push constants, the vec4 load/store helpers and
// the activation. Specialization constants 0..2 are DT_MASK, ACT and HAS_BIAS; each kernel
// declares its own from constant_id 3 on.
// fp16 storage (ST_F16, DT_MASK bit B for binding B): values are read and written as packed
// pairs of halves (uvec2 = 4 halves), i.e. with the same number of loads as fp32 (on llvmpipe
// every storage-buffer load is executed lane by lane and component by component).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#ifdef ST_F16
#extension GL_EXT_shader_16bit_storage : require
#endif

layout(constant_id = 0) const int DT_MASK = 0;
layout(constant_id = 1) const int ACT = 0;
layout(constant_id = 2) const int HAS_BIAS = 0;

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_LRELU 2

layout(local_size_x = 8) in;

layout(std430, set = 0, binding = 0) readonly buffer XF4 { vec4 x_f4[]; };
layout(std430, set = 0, binding = 1) readonly buffer WF { float w_f[]; };
layout(std430, set = 0, binding = 1) readonly buffer WF4 { vec4 w_f4[]; };
layout(std430, set = 0, binding = 2) readonly buffer BF { float b_f[]; };
layout(std430, set = 0, binding = 3) writeonly buffer YF4 { vec4 y_f4[]; };
#ifdef ST_F16
// Packed halves: element i of a tensor is half (i & 1) of word i >> 1.
layout(std430, set = 0, binding = 0) readonly buffer XH4 { uvec2 x_h4[]; };
layout(std430, set = 0, binding = 1) readonly buffer WH { uint w_h[]; };
layout(std430, set = 0, binding = 1) readonly buffer WH4 { uvec2 w_h4[]; };
layout(std430, set = 0, binding = 2) readonly buffer BH { uint b_h[]; };
layout(std430, set = 0, binding = 3) writeonly buffer YH4 { uvec2 y_h4[]; };
#endif

layout(push_constant) uniform P {
  uint ci, h, w, co, oh, ow;
  float alpha;
} p;

const bool XH16 = (DT_MASK & 1) != 0;
const bool WH16 = (DT_MASK & 2) != 0;
const bool BH16 = (DT_MASK & 4) != 0;
const bool YH16 = (DT_MASK & 8) != 0;

vec4 ld_x4(uint i) { // elements 4i .. 4i+3
#ifdef ST_F16
  if (XH16) {
    uvec2 u = x_h4[i];
    return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
  }
#endif
  return x_f4[i];
}
vec4 ld_w4(uint i) {
#ifdef ST_F16
  if (WH16) {
    uvec2 u = w_h4[i];
    return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
  }
#endif
  return w_f4[i];
}
float ld_w(uint i) {
#ifdef ST_F16
  if (WH16)
    return unpackHalf2x16(w_h[i >> 1])[i & 1u];
#endif
  return w_f[i];
}
float ld_b(uint i) {
#ifdef ST_F16
  if (BH16)
    return unpackHalf2x16(b_h[i >> 1])[i & 1u];
#endif
  return b_f[i];
}
void st_y4(uint i, vec4 v) {
#ifdef ST_F16
  if (YH16) {
    y_h4[i] = uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw));
    return;
  }
#endif
  y_f4[i] = v;
}

float act(float v) {
  if (ACT == ACT_RELU)
    return max(v, 0.0);
  if (ACT == ACT_LRELU)
    return v >= 0.0 ? v : v * p.alpha;
  return v;
}
