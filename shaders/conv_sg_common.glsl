// SPDX-License-Identifier: LGPL-2.1-or-later
// Declarations shared by the subgroup convolution kernels conv3x3_sg.glsl and conv1x1_sg.glsl
// (8-wide subgroups, one subgroup per workgroup): extensions, the bindings x (0), w (1), b (2),
// y (3) through common.glsl's ST_IN4/ST_OUT4 (fp32 and packed-fp16 views, vec4 and single-element
// accessors), push constants and the activation. Specialization constants: DT_MASK, ACT and
// HAS_BIAS here, each kernel its own (spec_ids.h).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = ST_SPEC_ACT) const int ACT = 0;
layout(constant_id = ST_SPEC_HAS_BIAS) const int HAS_BIAS = 0;

layout(local_size_x = 8) in;

ST_IN4(0, x)
ST_IN4(1, w)
ST_IN4(2, b)
ST_OUT4(3, y)

layout(push_constant) uniform P {
  uint ci, h, w, co, oh, ow;
  float alpha;
} p;

float act(float v) { return st_act(v, ACT, p.alpha); }
