// SPDX-License-Identifier: LGPL-2.1-or-later
// Shared definitions of the compute shaders (included by every .comp file).
//
// Storage: every tensor binding is a storage buffer holding a planar C-major tensor (see
// weights/FORMAT.md). Each shader is compiled twice: `name` (all bindings fp32) and `name_f16`
// (compiled with -DST_F16, needs VK_KHR_16bit_storage). In the f16 variant every binding is
// declared twice (fp32 and fp16 views of the same binding) and bit B of the specialization
// constant DT_MASK (constant_id 0, in every shader) selects the fp16 view for binding B. The
// selection is a specialization constant, so the driver removes the unused view's code.
// Arithmetic is always fp32.

#extension GL_GOOGLE_include_directive : require
#ifdef ST_F16
#extension GL_EXT_shader_16bit_storage : require
#endif

#include "spec_ids.h"

layout(constant_id = ST_SPEC_DT_MASK) const int DT_MASK = 0;

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_LRELU 2
#define ACT_TANH 3
#define ACT_SIGMOID 4

float st_act(float v, int act, float alpha) {
  if (act == ACT_RELU)
    return max(v, 0.0);
  if (act == ACT_LRELU)
    return v >= 0.0 ? v : v * alpha;
  if (act == ACT_TANH) {
    // tanh(v) = 1 - 2 / (exp(2v) + 1); stable for large |v| (exp overflows to inf -> 1).
    float e = exp(2.0 * clamp(v, -40.0, 40.0));
    return 1.0 - 2.0 / (e + 1.0);
  }
  if (act == ACT_SIGMOID)
    return 1.0 / (1.0 + exp(-clamp(v, -80.0, 80.0)));
  return v;
}

// ST_IN(B, n): read-only tensor `n` at binding B, read with ld_n(index) -> float.
// ST_OUT(B, n): write-only tensor `n` at binding B, written with st_n(index, value).
#ifdef ST_F16
#define ST_IN(B, n)                                                                              \
  layout(std430, set = 0, binding = B) readonly buffer n##_F { float n##_f[]; };                 \
  layout(std430, set = 0, binding = B) readonly buffer n##_H { float16_t n##_h[]; };             \
  float ld_##n(uint i) {                                                                         \
    if (((DT_MASK >> B) & 1) != 0)                                                               \
      return float(n##_h[i]);                                                                    \
    return n##_f[i];                                                                             \
  }
#define ST_OUT(B, n)                                                                             \
  layout(std430, set = 0, binding = B) writeonly buffer n##_F { float n##_f[]; };                \
  layout(std430, set = 0, binding = B) writeonly buffer n##_H { float16_t n##_h[]; };            \
  void st_##n(uint i, float v) {                                                                 \
    if (((DT_MASK >> B) & 1) != 0)                                                               \
      n##_h[i] = float16_t(v);                                                                   \
    else                                                                                         \
      n##_f[i] = v;                                                                              \
  }
#else
#define ST_IN(B, n)                                                                              \
  layout(std430, set = 0, binding = B) readonly buffer n##_F { float n##_f[]; };                 \
  float ld_##n(uint i) { return n##_f[i]; }
#define ST_OUT(B, n)                                                                             \
  layout(std430, set = 0, binding = B) writeonly buffer n##_F { float n##_f[]; };                \
  void st_##n(uint i, float v) { n##_f[i] = v; }
#endif

// ST_IN4(B, n): read-only tensor `n` at binding B, read four elements at a time with
// ld_n4(i) (elements 4i .. 4i+3) or one at a time with ld_n(i). ST_OUT4(B, n): written with
// st_n4(i, v) and st_n(i, v). fp16 storage is read as packed halves (uvec2 = 4 halves: as many
// loads as fp32; on llvmpipe every storage-buffer load runs lane by lane and component by
// component); single fp16 elements are written as float16_t (a packed write would race with the
// neighbouring element's).
#ifdef ST_F16
#define ST_IN4(B, n)                                                                             \
  layout(std430, set = 0, binding = B) readonly buffer n##_F { float n##_f[]; };                 \
  layout(std430, set = 0, binding = B) readonly buffer n##_F4 { vec4 n##_f4[]; };                \
  layout(std430, set = 0, binding = B) readonly buffer n##_H { uint n##_h[]; };                  \
  layout(std430, set = 0, binding = B) readonly buffer n##_H4 { uvec2 n##_h4[]; };               \
  float ld_##n(uint i) {                                                                         \
    if (((DT_MASK >> B) & 1) != 0)                                                               \
      return unpackHalf2x16(n##_h[i >> 1])[i & 1u];                                              \
    return n##_f[i];                                                                             \
  }                                                                                              \
  vec4 ld_##n##4(uint i) {                                                                       \
    if (((DT_MASK >> B) & 1) != 0) {                                                             \
      uvec2 u = n##_h4[i];                                                                       \
      return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));                                     \
    }                                                                                            \
    return n##_f4[i];                                                                            \
  }
#define ST_OUT4(B, n)                                                                            \
  layout(std430, set = 0, binding = B) writeonly buffer n##_F { float n##_f[]; };                \
  layout(std430, set = 0, binding = B) writeonly buffer n##_F4 { vec4 n##_f4[]; };               \
  layout(std430, set = 0, binding = B) writeonly buffer n##_H { float16_t n##_h[]; };            \
  layout(std430, set = 0, binding = B) writeonly buffer n##_H4 { uvec2 n##_h4[]; };              \
  void st_##n(uint i, float v) {                                                                 \
    if (((DT_MASK >> B) & 1) != 0)                                                               \
      n##_h[i] = float16_t(v);                                                                   \
    else                                                                                         \
      n##_f[i] = v;                                                                              \
  }                                                                                              \
  void st_##n##4(uint i, vec4 v) {                                                               \
    if (((DT_MASK >> B) & 1) != 0)                                                               \
      n##_h4[i] = uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw));                                 \
    else                                                                                         \
      n##_f4[i] = v;                                                                             \
  }
#else
#define ST_IN4(B, n)                                                                             \
  layout(std430, set = 0, binding = B) readonly buffer n##_F { float n##_f[]; };                 \
  layout(std430, set = 0, binding = B) readonly buffer n##_F4 { vec4 n##_f4[]; };                \
  float ld_##n(uint i) { return n##_f[i]; }                                                      \
  vec4 ld_##n##4(uint i) { return n##_f4[i]; }
#define ST_OUT4(B, n)                                                                            \
  layout(std430, set = 0, binding = B) writeonly buffer n##_F { float n##_f[]; };                \
  layout(std430, set = 0, binding = B) writeonly buffer n##_F4 { vec4 n##_f4[]; };               \
  void st_##n(uint i, float v) { n##_f[i] = v; }                                                 \
  void st_##n##4(uint i, vec4 v) { n##_f4[i] = v; }
#endif

// Linear workgroup index of a 2D dispatch (ops.c splits large 1D dispatches over x and y).
uint st_group_linear() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }
