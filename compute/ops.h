/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Operation dispatchers: one function per graph operation (weights/FORMAT.md). Each records one
 * or a few dispatches into `cmd`; the caller allocates the output tensor with the exact shape
 * from FORMAT.md (st_op_*_shape helpers compute it). Implemented in ops.c with the shaders in
 * shaders/. CPU references with the same signatures on host float arrays live in ref.h.
 * All functions return false with err set on invalid shapes (never crash).
 */
#ifndef ST_OPS_H
#define ST_OPS_H

#include "vk.h"

/* Kernel choices of a device (tests, benchmarks), set from $ST_CONV_KERNEL / $ST_CONV_GENERIC,
 * $ST_GRAM_KERNEL and $ST_LINEAR_KERNEL when it is opened (st_ops_read_env): conv "generic",
 * "tiled", "sg" or "direct" (sg without Winograd, st_op_winograd_applies false), gram "matmul" or
 * "sg" ("matmul" also keeps st_op_matmul on matmul.comp, off matmul_sg.comp), linear "rows" or
 * "reduce"; NULL or anything else: the automatic choice. The device must be idle. */
void st_op_force_conv_kernel(StDevice *dev, const char *name);
void st_op_force_gram_kernel(StDevice *dev, const char *name);
void st_op_force_linear_kernel(StDevice *dev, const char *name);
void st_ops_read_env(StDevice *dev);

typedef enum { ST_ACT_NONE = 0, ST_ACT_RELU, ST_ACT_LRELU, ST_ACT_TANH, ST_ACT_SIGMOID } StAct;
typedef enum { ST_PAD_ZERO = 0, ST_PAD_REFLECT } StPad;
typedef enum { ST_POOL_AVG = 0, ST_POOL_MAX } StPoolMode;
typedef enum { ST_RESIZE_NEAREST = 0, ST_RESIZE_BILINEAR } StResizeMode;

/* y[O,ceil(H/s),ceil(W/s)] = act(conv(pad(x[I,H,W]), w[O,I,k,k]) + b). k in {1,3}; w may be F16.
 * For k == 1 w may be a rank-2 [O,I] tensor (run-time matrix). b may be NULL. */
bool st_op_conv2d(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *w,
                  const StTensor *b, int k, int stride, StPad pad, StAct act, float alpha,
                  const StTensor *y, StError *err);

/* Winograd F(2x2,3x3) for the 3x3 stride-1 convolutions of CPU devices with 8-wide subgroups
 * (ops.c): st_op_winograd_applies tells whether it is the device's choice for a convolution of
 * kernel k, stride s and co output channels; st_winograd_weights transforms w[O,I,3,3] once into
 * u[O,I4,16] (st_winograd_weights_numel floats, the shape set by st_winograd_shape; I4 = I
 * rounded up to a multiple of 4, zeros past I); st_op_conv2d_winograd is then st_op_conv2d with
 * k = 3, stride 1 on u (F32 or F16). */
bool st_op_winograd_applies(StDevice *dev, int k, int stride, int co);
size_t st_winograd_weights_numel(int co, int ci);
void st_winograd_shape(StTensor *u, int co, int ci);
void st_winograd_weights(const float *w, int co, int ci, float *u);
bool st_op_conv2d_winograd(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *u,
                           const StTensor *b, StPad pad, StAct act, float alpha, const StTensor *y,
                           StError *err);

/* window 2 (the graph's pool op) or 4 (two avg or max pools in one: equal to them where the input's
 * H and W are even, for max always; the frame plan fuses such pairs). */
bool st_op_pool(StDevice *dev, StCmd *cmd, const StTensor *x, StPoolMode mode, int window,
                const StTensor *y, StError *err);
/* y's shape gives the output size. */
bool st_op_resize(StDevice *dev, StCmd *cmd, const StTensor *x, StResizeMode mode,
                  const StTensor *y, StError *err);
/* y[c, i, j] = x[c, clamp(i + ty), clamp(j + tx)] (same shape; the temporal state's motion). */
bool st_op_translate(StDevice *dev, StCmd *cmd, const StTensor *x, int ty, int tx,
                     const StTensor *y, StError *err);
/* Temporal smoothing of an output image (shaders/temporal_blend.comp): x, prev_out, cur_in,
 * prev_in and y are [3,h,w]; flow [2,bh,bw] holds the motion (x then y, output pixels) at the
 * centres of blocks of block_x x block_y pixels: this frame's pixel p shows the previous frame's
 * p + flow(p). y = x + m * (prev_out(p + flow) - x), m = keep * clamp(1 - d / thr, 0, 1) where
 * d is the mean |cur_in - prev_in(. + flow)| over p's 3x3 neighbourhood and the channels. */
typedef struct {
  float block_x, block_y;
  float keep; /* 0..1 */
  float thr;  /* > 0 */
} StBlendParams;
bool st_op_temporal_blend(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *prev_out,
                          const StTensor *cur_in, const StTensor *prev_in, const StTensor *flow,
                          const StBlendParams *bp, const StTensor *y, StError *err);
/* A chain of elementwise ops as one dispatch (the frame plan fuses such chains): the result of
 * stage i is stage i+1's first operand; each stage is ST_ELT_ADD (ka*v + kb*b), ST_ELT_MUL or
 * ST_ELT_DIV, its b of a's shape, [C] or [1,H,W] as for st_op_add, then its act. Up to
 * ST_ELT_CHAIN_MAX stages; the value stays fp32 between them. */
#define ST_ELT_CHAIN_MAX 4
typedef enum { ST_ELT_ACT = 0, ST_ELT_ADD, ST_ELT_MUL, ST_ELT_DIV } StEltKind; /* eltwise.comp OP */
typedef struct {
  StEltKind kind;
  const StTensor *b;
  float ka, kb;
  StAct act;
  float alpha;
} StEltStage;
bool st_op_eltwise_chain(StDevice *dev, StCmd *cmd, const StTensor *a, const StEltStage *stages,
                         int n, const StTensor *y, StError *err);
/* y = act(ka*a + kb*b); b same shape as a, [C] broadcast over a's H,W, or (a [C,H,W]) [1,H,W]
 * broadcast over a's channels. */
bool st_op_add(StDevice *dev, StCmd *cmd, const StTensor *a, const StTensor *b, float ka, float kb,
               StAct act, float alpha, const StTensor *y, StError *err);
/* y = act(a*b); b same shape, [C] or [1,H,W] broadcast (as st_op_add). */
bool st_op_mul(StDevice *dev, StCmd *cmd, const StTensor *a, const StTensor *b, StAct act,
               float alpha, const StTensor *y, StError *err);
/* y = act(a/b); b same shape, [C] or [1,H,W] broadcast (as st_op_add). Plain float division: b = 0
 * gives +-inf or NaN where the device follows IEEE (Vulkan does not promise it). */
bool st_op_div(StDevice *dev, StCmd *cmd, const StTensor *a, const StTensor *b, StAct act,
               float alpha, const StTensor *y, StError *err);
/* y = act(x) elementwise. */
bool st_op_act(StDevice *dev, StCmd *cmd, const StTensor *x, StAct act, float alpha,
               const StTensor *y, StError *err);
/* mean[C], std[C] = sqrt(biased var + eps) over H*W. With a weight mask w [1,H,W] (NULL: none):
 * S = sum w, mean = sum w x / (S + 1e-6), var = sum w (x - mean)^2 / (S + 1e-6). */
bool st_op_moments(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *w, float eps,
                   const StTensor *mean, const StTensor *std, StError *err);
/* g[C,D] = x yᵀ/(H*W) (y NULL: y = x); center: subtract channel means; sqrt: sqrt(max(g,0)+1e-8).
 */
bool st_op_gram(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *y, bool center,
                bool sqrt_, const StTensor *g, StError *err);
/* c[M,N] = op(a) op(b). */
bool st_op_matmul(StDevice *dev, StCmd *cmd, const StTensor *a, const StTensor *b, bool ta, bool tb,
                  const StTensor *c, StError *err);
/* y[N] = act(w[N,K] x + b); x is any tensor with K elements. b may be NULL. */
bool st_op_linear(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *w,
                  const StTensor *b, StAct act, float alpha, const StTensor *y, StError *err);
/* row softmax of scale*x, x [M,N]. */
bool st_op_softmax(StDevice *dev, StCmd *cmd, const StTensor *x, float scale, const StTensor *y,
                   StError *err);
/* y[sum Ci,H,W] = concat(xs). */
bool st_op_concat(StDevice *dev, StCmd *cmd, const StTensor *const *xs, int n, const StTensor *y,
                  StError *err);

/* Frame conversion. `src`/`dst` are raw byte buffers (UPLOAD/DOWNLOAD or device) holding the
 * frame planes at the given offsets/strides, in any StPixelFormat (compute/format.c) with the
 * layout's colorimetry. to_float: frame -> planar RGB [3,h,w] in [0,1], bilinear-resized to y's
 * size. from_float: x [3,h',w'] -> frame (resized bilinear to the frame size, clamped);
 * preserve_colors takes chroma (BT.601 YCbCr) from `orig` (the input frame as float RGB at x's
 * size) and luminance from x. */
typedef struct {
  StPixelFormat format;
  int width, height;
  VkDeviceSize offsets[3];
  int strides[3];
  StColorMatrix matrix;
  StColorRange range;
} StFrameLayout;
bool st_op_frame_to_float(StDevice *dev, StCmd *cmd, StBuffer *src, const StFrameLayout *layout,
                          const StTensor *y, StError *err);
/* The frame at tw x th, pooled by a box x box stride-box average (ceil mode, in-bounds pixels only,
 * as st_op_pool; box 1, 2 or 4) into y [3, ceil(th/box), ceil(tw/box)]: frame_to_float then
 * st_op_pool in one pass, without the tw x th tensor. */
bool st_op_frame_to_float_pooled(StDevice *dev, StCmd *cmd, StBuffer *src,
                                 const StFrameLayout *layout, int tw, int th, int box,
                                 const StTensor *y, StError *err);
bool st_op_float_to_frame(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *orig,
                          bool preserve_colors, StBuffer *dst, const StFrameLayout *layout,
                          StError *err);

#endif /* ST_OPS_H */
