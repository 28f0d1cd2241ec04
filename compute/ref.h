/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Plain C CPU reference implementations of the operations in ops.h, on host float arrays, with
 * the same semantics (weights/FORMAT.md, PyTorch rules). Used by the tests to check the shaders;
 * sums are accumulated in double. Tensors are planar C-major like on the device.
 */
#ifndef ST_REF_H
#define ST_REF_H

#include "ops.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

float st_ref_act1(float v, StAct act, float alpha);

/* y[co, ceil(h/stride), ceil(w/stride)]; wt [co, ci, k, k]; b may be NULL. Reflect padding of a
 * size-1 axis repeats its only element (PyTorch refuses that case). */
void st_ref_conv2d(const float *x, int ci, int h, int w, const float *wt, const float *b, int co,
                   int k, int stride, StPad pad, StAct act, float alpha, float *y);
/* k x k windows at stride k, ceil mode (k = 2: the graph's pool; 4: two of them fused) */
void st_ref_pool(const float *x, int c, int h, int w, StPoolMode mode, int k, float *y);
void st_ref_translate(const float *x, int c, int h, int w, int ty, int tx, float *y);
/* st_op_temporal_blend: images [3,h,w], flow [2,bh,bw]. */
void st_ref_temporal_blend(const float *x, const float *prev_out, const float *cur_in,
                           const float *prev_in, int h, int w, const float *flow, int bh, int bw,
                           float block_x, float block_y, float keep, float thr, float *y);
void st_ref_resize(const float *x, int c, int h, int w, StResizeMode mode, int oh, int ow,
                   float *y);
/* How b of an elementwise op covers a's n elements (a planar [C,H,W] for the broadcasts, hw =
 * H*W): ST_REF_SAME b has n elements (b[i]); ST_REF_BCAST_C b is [C], broadcast over H*W
 * (b[i / hw]); ST_REF_BCAST_HW b is [1,H,W], broadcast over C (b[i % hw]). */
typedef enum { ST_REF_SAME = 0, ST_REF_BCAST_C, ST_REF_BCAST_HW } StRefBcast;
void st_ref_add(const float *a, const float *b, size_t n, StRefBcast bcast, size_t hw, float ka,
                float kb, StAct act, float alpha, float *y);
void st_ref_mul(const float *a, const float *b, size_t n, StRefBcast bcast, size_t hw, StAct act,
                float alpha, float *y);
void st_ref_div(const float *a, const float *b, size_t n, StRefBcast bcast, size_t hw, StAct act,
                float alpha, float *y);
void st_ref_act(const float *x, size_t n, StAct act, float alpha, float *y);
/* x [c, hw]; w NULL or a mask of hw weights: S = sum w, mean = sum w x / (S + 1e-6),
 * var = sum w (x - mean)^2 / (S + 1e-6); std = sqrt(var + eps). */
void st_ref_moments(const float *x, const float *w, int c, size_t hw, float eps, float *mean,
                    float *std);
/* g[c, d] = x y^T / hw; y NULL: y = x (d = c). */
void st_ref_gram(const float *x, const float *y, int c, int d, size_t hw, bool center, bool sqrt_,
                 float *g);
/* c[m,n] = op(a) op(b); a is [m,k] ([k,m] if ta), b is [k,n] ([n,k] if tb). */
void st_ref_matmul(const float *a, const float *b, int m, int n, int k, bool ta, bool tb, float *c);
/* y[n] = act(w[n,k] x + b); b may be NULL. */
void st_ref_linear(const float *x, const float *w, const float *b, int n, size_t k, StAct act,
                   float alpha, float *y);
void st_ref_softmax(const float *x, int m, int n, float scale, float *y);
/* xs[i] has cs[i] channels of hw elements. */
void st_ref_concat(const float *const *xs, const int *cs, int n, size_t hw, float *y);

/* Frames: `buf` holds the planes at layout->offsets (bytes) with layout->strides. */
void st_ref_frame_to_float(const uint8_t *buf, const StFrameLayout *layout, int tw, int th,
                           float *y);
/* x [3,xh,xw]; orig [3,xh,xw] (only read with preserve_colors). Bytes outside the planes' pixels
 * (row padding) are left untouched. */
void st_ref_float_to_frame(const float *x, const float *orig, int xw, int xh, bool preserve_colors,
                           uint8_t *buf, const StFrameLayout *layout);

#endif /* ST_REF_H */
