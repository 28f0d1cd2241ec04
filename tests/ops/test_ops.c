/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Runs every operation of compute/ops.h on the Vulkan device and compares it with the CPU
 * reference (compute/ref.c) on random data, over odd sizes and all variants.
 *
 * Tolerances (|got - ref| <= atol + rtol * scale, scale = max(|ref|, rms(ref))):
 * - fp32 results: rtol 1e-4. Sums of K products of random sign carry a rounding error of about
 *   sqrt(K) * 6e-8 of their magnitude (1e-5 for K = 10^4, the largest sums here use pairwise-ish
 *   tree or tiled order); any indexing or padding mistake gives O(1) relative errors.
 * - fp16 storage of the output: rtol 2e-3 (one fp16 rounding is 4.9e-4 relative).
 * - Inputs stored as fp16 are rounded on the host first, so the reference sees the same values.
 * - Frames: float results rtol 1e-4; 8-bit results may differ by 1 where the exact value lies
 *   within float rounding of a .5 boundary (at most 2 % of the bytes); bytes outside the
 *   pixels (row padding, gaps between planes) must be unchanged.
 */
#define _POSIX_C_SOURCE 200809L
#include "../st_test_log.h"
#include "ops.h"
#include "ref.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static StDevice *dev;
static int failures, checks;
static bool have_f16;

/* ---- random numbers, fp16 ------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd_u32(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 11);
}
static float rnd_uniform(float lo, float hi) {
  return lo + (hi - lo) * (float)(rnd_u32() & 0xffffff) / (float)0x1000000;
}
static void fill_random(float *p, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++)
    p[i] = rnd_uniform(lo, hi);
}

static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  uint32_t m = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff)
    return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
  if (e >= 31)
    return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10)
      return (uint16_t)sign;
    m |= 0x800000u;
    uint32_t shift = (uint32_t)(14 - e);
    uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1)))
      h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
    h++; /* may carry into the exponent: still correct (up to inf) */
  return (uint16_t)(sign | h);
}
static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, x;
  if (e == 0) {
    float f = ldexpf((float)m, -24);
    return sign ? -f : f;
  }
  if (e == 31)
    x = sign | 0x7f800000u | (m << 13);
  else
    x = sign | ((e - 15 + 127) << 23) | (m << 13);
  float f;
  memcpy(&f, &x, 4);
  return f;
}

/* ---- device tensors ------------------------------------------------------------------- */

typedef struct {
  StBuffer buf;
  StTensor t;
} DT;

static DT *dt_new(StDType dtype, int rank, int s0, int s1, int s2) {
  DT *d = calloc(1, sizeof *d);
  if (!d)
    abort();
  d->t.rank = rank;
  d->t.shape[0] = s0;
  d->t.shape[1] = rank > 1 ? s1 : 1;
  d->t.shape[2] = rank > 2 ? s2 : 1;
  d->t.dtype = dtype;
  StError err = {0};
  size_t bytes = st_tensor_numel(&d->t) * (dtype == ST_F16 ? 2 : 4);
  if (!st_buffer_create(dev, bytes, ST_MEM_UPLOAD, &d->buf, &err)) {
    fprintf(stderr, "buffer: %s\n", err.message);
    exit(1);
  }
  d->t.buf = &d->buf;
  /* Garbage (NaN) so that unwritten outputs are detected. */
  memset(d->buf.mapped, 0xff, bytes);
  return d;
}

/* Writes host data; for fp16 tensors the host array is rounded to fp16 in place. */
static void dt_write(DT *d, float *host) {
  size_t n = st_tensor_numel(&d->t);
  if (d->t.dtype == ST_F16) {
    uint16_t *p = d->buf.mapped;
    for (size_t i = 0; i < n; i++) {
      p[i] = f32_to_f16(host[i]);
      host[i] = f16_to_f32(p[i]);
    }
  } else {
    memcpy(d->buf.mapped, host, n * 4);
  }
}

static void dt_read(DT *d, float *host) {
  size_t n = st_tensor_numel(&d->t);
  if (d->t.dtype == ST_F16) {
    const uint16_t *p = d->buf.mapped;
    for (size_t i = 0; i < n; i++)
      host[i] = f16_to_f32(p[i]);
  } else {
    memcpy(host, d->buf.mapped, n * 4);
  }
}

static DT *dt_random(StDType dtype, int rank, int s0, int s1, int s2, float lo, float hi,
                     float **host) {
  DT *d = dt_new(dtype, rank, s0, s1, s2);
  size_t n = st_tensor_numel(&d->t);
  *host = malloc(n * sizeof(float));
  if (!*host)
    abort();
  fill_random(*host, n, lo, hi);
  dt_write(d, *host);
  return d;
}

static void dt_free(DT *d) {
  if (!d)
    return;
  st_buffer_destroy(dev, &d->buf);
  free(d);
}

static float *fmalloc(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof(float));
  if (!p)
    abort();
  return p;
}

/* ---- running and checking ------------------------------------------------------------- */

static StCmd *begin(void) {
  StError err = {0};
  StCmd *cmd = st_cmd_begin(dev, &err);
  if (!cmd) {
    fprintf(stderr, "st_cmd_begin: %s\n", err.message);
    exit(1);
  }
  return cmd;
}

static bool finish(StCmd *cmd, bool ok, StError *err, const char *what) {
  if (ok)
    ok = st_cmd_submit_wait(cmd, err);
  st_cmd_free(cmd);
  if (!ok) {
    fprintf(stderr, "FAIL %s: %s\n", what, err->message);
    failures++;
    checks++;
  }
  return ok;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  failures++;
}

static bool compare(const char *what, const float *got, const float *ref, size_t n, float rtol,
                    float atol) {
  double ss = 0.0;
  for (size_t i = 0; i < n; i++)
    ss += (double)ref[i] * ref[i];
  float rms = n ? (float)sqrt(ss / (double)n) : 0.0f;
  size_t bad = 0, worst = 0;
  double worst_excess = -1.0, max_rel = 0.0;
  for (size_t i = 0; i < n; i++) {
    float scale = fabsf(ref[i]) > rms ? fabsf(ref[i]) : rms;
    double d = fabs((double)got[i] - ref[i]);
    double tol = atol + rtol * scale;
    if (!(d <= tol)) { /* NaN fails too */
      bad++;
      double ex = isnan(d) ? 1e30 : d / tol;
      if (ex > worst_excess) {
        worst_excess = ex;
        worst = i;
      }
    }
    if (scale > 0 && d / scale > max_rel)
      max_rel = d / scale;
  }
  checks++;
  if (bad) {
    fail("%s: %zu of %zu elements differ; worst [%zu] got %.8g ref %.8g", what, bad, n, worst,
         got[worst], ref[worst]);
    return false;
  }
  if (getenv("ST_TEST_VERBOSE"))
    printf("ok   %s (n=%zu, max rel err %.3g)\n", what, n, max_rel);
  return true;
}

static float rtol_for(StDType out) { return out == ST_F16 ? 2e-3f : 1e-4f; }

static const char *act_name(StAct a) {
  static const char *n[] = {"none", "relu", "lrelu", "tanh", "sigmoid"};
  return n[a];
}

/* ---- conv2d ---------------------------------------------------------------------------- */

/* `kernel`: NULL for the default choice, else the kernel forced with st_op_force_conv_kernel
 * ("generic", "tiled", "sg", "direct"; see compute/ops.c), or "winograd": st_op_conv2d_winograd
 * on the weights transformed by st_winograd_weights (fp32; after the fp16 rounding of w for
 * wdt F16), where st_op_winograd_applies (else the case is skipped). */
static void test_conv_case(int ci, int h, int w, int co, int k, int stride, StPad pad, bool bias,
                           StAct act, StDType wdt, StDType xdt, const char *kernel) {
  int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
  float *hx, *hw, *hb = NULL;
  DT *x = dt_random(xdt, 3, ci, h, w, -1.0f, 1.0f, &hx);
  DT *wt = dt_random(wdt, 3, co, ci, k * k, -0.5f, 0.5f, &hw);
  DT *b = bias ? dt_random(ST_F32, 1, co, 1, 1, -0.5f, 0.5f, &hb) : NULL;
  DT *y = dt_new(xdt, 3, co, oh, ow);
  char what[200];
  snprintf(what, sizeof what, "conv2d(%s) k%d s%d %s %s bias=%d x[%d,%d,%d] o%d w%s x%s",
           kernel ? kernel : "default", k, stride, pad == ST_PAD_REFLECT ? "reflect" : "zero",
           act_name(act), bias, ci, h, w, co, wdt == ST_F16 ? "f16" : "f32",
           xdt == ST_F16 ? "f16" : "f32");
  bool wino = kernel && strcmp(kernel, "winograd") == 0;
  DT *u = NULL;
  if (wino) {
    if (!st_op_winograd_applies(dev, k, stride, 8))
      goto out; /* a device without the kernel (co <= 4 is run all the same) */
    size_t nu = st_winograd_weights_numel(co, ci);
    float *hu = fmalloc(nu);
    st_winograd_weights(hw, co, ci, hu);
    StTensor us = {0};
    st_winograd_shape(&us, co, ci);
    u = dt_new(ST_F32, 3, us.shape[0], us.shape[1], us.shape[2]);
    dt_write(u, hu);
    free(hu);
  } else if (kernel) {
    st_op_force_conv_kernel(dev, kernel);
  }
  StError err = {0};
  StCmd *cmd = begin();
  bool ok = wino ? st_op_conv2d_winograd(dev, cmd, &x->t, &u->t, b ? &b->t : NULL, pad, act, 0.2f,
                                         &y->t, &err)
                 : st_op_conv2d(dev, cmd, &x->t, &wt->t, b ? &b->t : NULL, k, stride, pad, act,
                                0.2f, &y->t, &err);
  if (kernel && !wino)
    st_op_force_conv_kernel(dev, NULL);
  if (finish(cmd, ok, &err, what)) {
    size_t n = (size_t)co * oh * ow;
    float *got = fmalloc(n), *ref = fmalloc(n);
    dt_read(y, got);
    st_ref_conv2d(hx, ci, h, w, hw, hb, co, k, stride, pad, act, 0.2f, ref);
    compare(what, got, ref, n, rtol_for(xdt), 1e-6f);
    free(got);
    free(ref);
  }
out:
  free(hx);
  free(hw);
  free(hb);
  dt_free(u);
  dt_free(x);
  dt_free(wt);
  dt_free(b);
  dt_free(y);
}

static void test_conv(void) {
  static const int sizes[][4] = {{1, 1, 3, 2}, {7, 5, 5, 19}, {257, 129, 11, 6}, {33, 18, 20, 33}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int w = sizes[s][0], h = sizes[s][1], ci = sizes[s][2], co = sizes[s][3];
    for (int k = 1; k <= 3; k += 2)
      for (int stride = 1; stride <= 2; stride++)
        for (int pad = 0; pad < 2; pad++)
          for (int bias = 0; bias < 2; bias++)
            for (int act = 0; act < 3; act++)
              for (int wf = 0; wf < (have_f16 ? 2 : 1); wf++) {
                if (k == 1 && pad == 1)
                  continue; /* 1x1 has no padding */
                /* The largest size: a subset of the combinations keeps the test fast. */
                if (s == 2 && (bias + act + wf) % 2 != 0)
                  continue;
                test_conv_case(ci, h, w, co, k, stride, (StPad)pad, bias, (StAct)act,
                               wf ? ST_F16 : ST_F32, ST_F32, NULL);
              }
  }
  /* Generic kernel for 3x3 (fallback path), fp16 feature maps, more channels. */
  test_conv_case(5, 7, 9, 6, 3, 1, ST_PAD_REFLECT, true, ST_ACT_LRELU, ST_F32, ST_F32, "generic");
  test_conv_case(5, 8, 9, 6, 3, 2, ST_PAD_ZERO, false, ST_ACT_RELU, ST_F32, ST_F32, "generic");
  test_conv_case(5, 8, 9, 6, 1, 2, ST_PAD_ZERO, true, ST_ACT_LRELU, ST_F32, ST_F32, "generic");
  test_conv_case(70, 9, 130, 17, 1, 1, ST_PAD_ZERO, true, ST_ACT_NONE, ST_F32, ST_F32, NULL);
  test_conv_case(40, 21, 37, 35, 3, 1, ST_PAD_REFLECT, true, ST_ACT_RELU, ST_F32, ST_F32, NULL);
  test_conv_case(40, 21, 37, 35, 3, 2, ST_PAD_REFLECT, true, ST_ACT_NONE, ST_F32, ST_F32, NULL);
  test_conv_case(64, 16, 16, 64, 1, 1, ST_PAD_ZERO, true, ST_ACT_NONE, ST_F32, ST_F32, NULL);
  if (have_f16) {
    test_conv_case(9, 13, 17, 10, 3, 1, ST_PAD_REFLECT, true, ST_ACT_RELU, ST_F16, ST_F16, NULL);
    test_conv_case(9, 13, 17, 10, 3, 2, ST_PAD_ZERO, true, ST_ACT_LRELU, ST_F16, ST_F16, NULL);
    test_conv_case(9, 13, 17, 10, 1, 1, ST_PAD_ZERO, false, ST_ACT_NONE, ST_F32, ST_F16, NULL);
  }
  /* 3x3 stride 1 with the subgroup kernel, forced to "sg" (falls back to the tiled kernel on
   * devices without 8-wide subgroups), with its edge cases: strips (32 px) and row tiles (4) cut
   * by the image border, W = 4 (reflect of column W is W - 2 inside the strip), W not a multiple
   * of 4 (element-wise rows: W = 1, 2, 7, 37), H = 1 and 2, output channels around the tiles (4,
   * 8, 16, 32) and one, input channels not a multiple of 4 (element-wise weights, last block
   * padded); the tiled kernel on the same shapes for comparison. Padding, activation, bias and
   * fp16 storage rotate over the shapes (every pipeline variant is compiled by the driver, some
   * in seconds, so not every combination is run on every shape). */
  static const int sg[][4] = {{4, 1, 4, 1},    {8, 2, 4, 3},    {36, 5, 8, 8},   {68, 9, 12, 20},
                              {32, 4, 4, 16},  {44, 7, 16, 33}, {12, 6, 20, 64}, {100, 3, 8, 40},
                              {40, 10, 3, 16}, {16, 5, 19, 16}, {8, 3, 1, 5},    {20, 6, 6, 12},
                              {1, 1, 4, 3},    {7, 5, 8, 16},   {37, 9, 5, 32},  {2, 3, 4, 9}};
  for (size_t s = 0; s < sizeof sg / sizeof sg[0]; s++) {
    int w = sg[s][0], h = sg[s][1], ci = sg[s][2], co = sg[s][3];
    int r = (int)s;
    test_conv_case(ci, h, w, co, 3, 1, (StPad)(r % 2), r % 2 == 0, (StAct)(r % 3), ST_F32, ST_F32,
                   "sg");
    test_conv_case(ci, h, w, co, 3, 1, (StPad)(1 - r % 2), r % 2 != 0, (StAct)((r + 1) % 3), ST_F32,
                   ST_F32, "sg");
    test_conv_case(ci, h, w, co, 3, 1, ST_PAD_REFLECT, true, ST_ACT_RELU, ST_F32, ST_F32, "tiled");
    test_conv_case(ci, h, w, co, 3, 1, (StPad)((r + 1) % 2), r % 3 == 0, (StAct)((r + 2) % 3),
                   ST_F32, ST_F32, "winograd");
    if (have_f16) {
      static const StDType fw[3] = {ST_F16, ST_F16, ST_F32}, fx[3] = {ST_F32, ST_F16, ST_F16};
      test_conv_case(ci, h, w, co, 3, 1, (StPad)((r / 2) % 2), r % 3 != 0, (StAct)((r + 2) % 3),
                     fw[r % 3], fx[r % 3], "sg");
      test_conv_case(ci, h, w, co, 3, 1, (StPad)((r / 2 + 1) % 2), r % 2 == 0, (StAct)(r % 3),
                     fw[(r + 1) % 3], fx[(r + 1) % 3], "winograd");
    }
  }
  /* 1x1 subgroup kernel (stride 1, H*W % 4 == 0): planes cut inside a 128-pixel strip, W not a
   * multiple of 4, input channels not a multiple of 4, output channels around the tiles. */
  static const int sg1[][4] = {{4, 1, 4, 1},   {6, 2, 3, 5},     {17, 4, 19, 16},
                               {36, 5, 8, 33}, {100, 3, 64, 40}, {24, 8, 32, 64}};
  for (size_t s = 0; s < sizeof sg1 / sizeof sg1[0]; s++) {
    int w = sg1[s][0], h = sg1[s][1], ci = sg1[s][2], co = sg1[s][3];
    int r = (int)s;
    test_conv_case(ci, h, w, co, 1, 1, ST_PAD_ZERO, r % 2 == 0, (StAct)(r % 3), ST_F32, ST_F32,
                   "sg");
    if (have_f16) {
      static const StDType fw[3] = {ST_F16, ST_F16, ST_F32}, fx[3] = {ST_F32, ST_F16, ST_F16};
      test_conv_case(ci, h, w, co, 1, 1, ST_PAD_ZERO, r % 2 != 0, (StAct)((r + 1) % 3), fw[r % 3],
                     fx[r % 3], "sg");
    }
  }
  /* Larger channel counts (many 4-channel weight blocks, long sums) and the default choice. */
  test_conv_case(128, 9, 40, 64, 3, 1, ST_PAD_REFLECT, true, ST_ACT_RELU, ST_F32, ST_F32, NULL);
  test_conv_case(64, 6, 24, 128, 3, 1, ST_PAD_ZERO, true, ST_ACT_LRELU, ST_F32, ST_F32, "sg");
  test_conv_case(128, 9, 40, 64, 3, 1, ST_PAD_REFLECT, true, ST_ACT_RELU, ST_F32, ST_F32,
                 "winograd");
  test_conv_case(64, 6, 24, 128, 3, 1, ST_PAD_ZERO, true, ST_ACT_LRELU, ST_F32, ST_F32, "winograd");
}

/* ---- pool / resize --------------------------------------------------------------------- */

static const int spatial[][2] = {{1, 1}, {7, 5}, {257, 129}, {2, 2}, {8, 3}};
#define NSPATIAL (sizeof spatial / sizeof spatial[0])

static void test_pool(void) {
  /* more inputs for the vec4 paths (window 2: W % 8 == 0, {8, 3} above has an odd height;
   * window 4: W % 4 == 0, heights with a cut last window) and odd sizes for window 4 */
  static const int vec[][2] = {{16, 4}, {24, 1}, {64, 7}, {12, 6}, {160, 90}, {36, 10}, {13, 9}};
  const size_t nsp = NSPATIAL + sizeof vec / sizeof vec[0];
  for (int k = 2; k <= 4; k += 2)
    for (size_t s = 0; s < nsp; s++)
      for (int mode = 0; mode < 2; mode++)
        for (int f = 0; f < (have_f16 ? 2 : 1); f++) {
          const int *in = s < NSPATIAL ? spatial[s] : vec[s - NSPATIAL];
          int w = in[0], h = in[1], c = 3, oh = (h + k - 1) / k, ow = (w + k - 1) / k;
          StDType dt = f ? ST_F16 : ST_F32;
          float *hx;
          DT *x = dt_random(dt, 3, c, h, w, -2.0f, 2.0f, &hx);
          DT *y = dt_new(dt, 3, c, oh, ow);
          char what[128];
          snprintf(what, sizeof what, "pool %dx%d %s [%d,%d,%d] %s", k, k, mode ? "max" : "avg", c,
                   h, w, f ? "f16" : "f32");
          StError err = {0};
          StCmd *cmd = begin();
          bool ok = st_op_pool(dev, cmd, &x->t, (StPoolMode)mode, k, &y->t, &err);
          if (finish(cmd, ok, &err, what)) {
            size_t n = (size_t)c * oh * ow;
            float *got = fmalloc(n), *ref = fmalloc(n);
            dt_read(y, got);
            st_ref_pool(hx, c, h, w, (StPoolMode)mode, k, ref);
            compare(what, got, ref, n, rtol_for(dt), 1e-6f);
            free(got);
            free(ref);
          }
          free(hx);
          dt_free(x);
          dt_free(y);
        }
  /* the plan's fusion (net_plan.c fuse_pools): one 4x4 pool equals two 2x2 pools for max, and
   * for avg where H and W are even; for odd sizes the averages differ (the fusion is refused) */
  static const int two[][3] = {{6, 10, 1}, {12, 6, 1}, {8, 8, 1}, {2, 2, 1}, {7, 6, 0}, {6, 7, 0}};
  for (size_t s = 0; s < sizeof two / sizeof two[0]; s++)
    for (int mode = 0; mode < 2; mode++) {
      int w = two[s][0], h = two[s][1], c = 2;
      bool equal = mode == ST_POOL_MAX || two[s][2];
      size_t n = (size_t)c * h * w;
      float *x = fmalloc(n), *half = fmalloc(n), *q2 = fmalloc(n), *q4 = fmalloc(n);
      for (size_t i = 0; i < n; i++)
        x[i] = (float)((i * 7919u) % 101u) / 50.0f - 1.0f;
      st_ref_pool(x, c, h, w, (StPoolMode)mode, 2, half);
      st_ref_pool(half, c, (h + 1) / 2, (w + 1) / 2, (StPoolMode)mode, 2, q2);
      st_ref_pool(x, c, h, w, (StPoolMode)mode, 4, q4);
      size_t nq = (size_t)c * ((h + 3) / 4) * ((w + 3) / 4);
      float dmax = 0.0f;
      for (size_t i = 0; i < nq; i++)
        dmax = fmaxf(dmax, fabsf(q2[i] - q4[i]));
      checks++;
      if (equal ? dmax > 1e-6f : dmax < 1e-3f) {
        failures++;
        fprintf(stderr, "FAIL pool 4x4 against two 2x2 (%s [%d,%d]): max difference %g, %s\n",
                mode ? "max" : "avg", h, w, (double)dmax,
                equal ? "expected equal" : "expected to differ");
      }
      free(x);
      free(half);
      free(q2);
      free(q4);
    }
}

static void test_resize(void) {
  /* the last entry: exactly 2x (the vec4 2x bilinear path where w % 4 == 0) */
  static const int outs[][2] = {{1, 1}, {3, 2}, {14, 10}, {100, 37}, {513, 260}, {6, 11}, {0, 0}};
  /* more inputs for the 2x path: w % 4 == 0 with one row, odd heights, several vec4 per row */
  static const int up2[][2] = {{4, 1}, {12, 7}, {160, 9}, {4, 4}};
  const size_t nsp = NSPATIAL + sizeof up2 / sizeof up2[0];
  for (size_t s = 0; s < nsp; s++)
    for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++)
      for (int mode = 0; mode < 2; mode++) {
        const int *in = s < NSPATIAL ? spatial[s] : up2[s - NSPATIAL];
        int w = in[0], h = in[1], c = 3, ow = outs[o][0], oh = outs[o][1];
        if (ow == 0) {
          ow = 2 * w;
          oh = 2 * h;
        } else if (s >= NSPATIAL) {
          continue;
        }
        StDType dt =
            (have_f16 && (o == 2 || (ow == 2 * w && oh == 2 * h && s % 2 == 1))) ? ST_F16 : ST_F32;
        float *hx;
        DT *x = dt_random(dt, 3, c, h, w, -1.0f, 1.0f, &hx);
        DT *y = dt_new(dt, 3, c, oh, ow);
        char what[128];
        snprintf(what, sizeof what, "resize %s [%d,%d,%d] -> %dx%d %s",
                 mode ? "bilinear" : "nearest", c, h, w, oh, ow, dt == ST_F16 ? "f16" : "f32");
        StError err = {0};
        StCmd *cmd = begin();
        bool ok = st_op_resize(dev, cmd, &x->t, (StResizeMode)mode, &y->t, &err);
        if (finish(cmd, ok, &err, what)) {
          size_t n = (size_t)c * oh * ow;
          float *got = fmalloc(n), *ref = fmalloc(n);
          dt_read(y, got);
          st_ref_resize(hx, c, h, w, (StResizeMode)mode, oh, ow, ref);
          compare(what, got, ref, n, rtol_for(dt), 1e-6f);
          free(got);
          free(ref);
        }
        free(hx);
        dt_free(x);
        dt_free(y);
      }
}

static void test_translate(void) {
  static const int offs[][2] = {{0, 0}, {1, 2}, {-3, 1}, {0, -7}, {40, -40}};
  for (size_t s = 0; s < NSPATIAL; s++)
    for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
      int w = spatial[s][0], h = spatial[s][1], c = 3, ty = offs[o][0], tx = offs[o][1];
      StDType dt = (have_f16 && o == 2) ? ST_F16 : ST_F32;
      float *hx;
      DT *x = dt_random(dt, 3, c, h, w, -1.0f, 1.0f, &hx);
      DT *y = dt_new(dt, 3, c, h, w);
      char what[128];
      snprintf(what, sizeof what, "translate [%d,%d,%d] by (%d, %d) %s", c, h, w, ty, tx,
               dt == ST_F16 ? "f16" : "f32");
      StError err = {0};
      StCmd *cmd = begin();
      bool ok = st_op_translate(dev, cmd, &x->t, ty, tx, &y->t, &err);
      if (finish(cmd, ok, &err, what)) {
        size_t n = (size_t)c * h * w;
        float *got = fmalloc(n), *ref = fmalloc(n);
        dt_read(y, got);
        st_ref_translate(hx, c, h, w, ty, tx, ref);
        compare(what, got, ref, n, 0.0f, 0.0f);
        free(got);
        free(ref);
      }
      free(hx);
      dt_free(x);
      dt_free(y);
    }
}

/* Temporal smoothing: the previous content is the current one plus noise of about the
 * threshold, so that the keep factor m covers 0..keep; fields of one block (a global motion,
 * integer and fractional) and of several blocks (local motion, some of it leaving the image). */
static void test_temporal_blend(void) {
  static const int sizes[][2] = {{1, 1}, {7, 5}, {64, 48}, {257, 129}};
  static const int grids[][2] = {{1, 1}, {1, 1}, {5, 4}};
  static const float global[][2] = {{0.0f, 0.0f}, {2.0f, -1.25f}, {0.0f, 0.0f}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (size_t g = 0; g < sizeof grids / sizeof grids[0]; g++) {
      int w = sizes[s][0], h = sizes[s][1], bw = grids[g][0], bh = grids[g][1];
      StDType dt = (have_f16 && s == 2 && g == 2) ? ST_F16 : ST_F32;
      size_t n = (size_t)3 * h * w;
      float *hx, *hpo, *hci, *hf;
      DT *x = dt_random(dt, 3, 3, h, w, 0.0f, 1.0f, &hx);
      DT *po = dt_random(dt, 3, 3, h, w, 0.0f, 1.0f, &hpo);
      DT *ci = dt_random(dt, 3, 3, h, w, 0.0f, 1.0f, &hci);
      float *hpi = fmalloc(n);
      for (size_t i = 0; i < n; i++)
        hpi[i] = hci[i] + rnd_uniform(-0.15f, 0.15f);
      DT *pi = dt_new(dt, 3, 3, h, w);
      dt_write(pi, hpi);
      DT *flow = dt_random(ST_F32, 3, 2, bh, bw, -3.0f, 3.0f, &hf);
      if (bw * bh == 1) {
        hf[0] = global[g][0];
        hf[1] = global[g][1];
        dt_write(flow, hf);
      }
      DT *y = dt_new(dt, 3, 3, h, w);
      StBlendParams bp = {(float)w / (float)bw, (float)h / (float)bh, 0.8f, 0.12f};
      char what[128];
      snprintf(what, sizeof what, "temporal_blend [3,%d,%d] field %dx%d %s", h, w, bw, bh,
               dt == ST_F16 ? "f16" : "f32");
      StError err = {0};
      StCmd *cmd = begin();
      bool ok =
          st_op_temporal_blend(dev, cmd, &x->t, &po->t, &ci->t, &pi->t, &flow->t, &bp, &y->t, &err);
      if (finish(cmd, ok, &err, what)) {
        float *got = fmalloc(n), *ref = fmalloc(n);
        dt_read(y, got);
        st_ref_temporal_blend(hx, hpo, hci, hpi, h, w, hf, bh, bw, bp.block_x, bp.block_y, bp.keep,
                              bp.thr, ref);
        compare(what, got, ref, n, dt == ST_F16 ? 2e-3f : 1e-5f, dt == ST_F16 ? 2e-3f : 1e-5f);
        free(got);
        free(ref);
      }
      free(hx);
      free(hpo);
      free(hci);
      free(hpi);
      free(hf);
      dt_free(x);
      dt_free(po);
      dt_free(ci);
      dt_free(pi);
      dt_free(flow);
      dt_free(y);
    }
  /* bad parameters are refused */
  float *h1, *h2, *h3;
  DT *a = dt_random(ST_F32, 3, 3, 4, 4, 0.0f, 1.0f, &h1);
  DT *f = dt_random(ST_F32, 3, 2, 1, 1, 0.0f, 0.0f, &h2);
  DT *b = dt_random(ST_F32, 3, 3, 4, 5, 0.0f, 1.0f, &h3);
  free(h1);
  free(h2);
  free(h3);
  StBlendParams good = {4.0f, 4.0f, 0.5f, 0.1f}, bad_keep = {4.0f, 4.0f, 1.5f, 0.1f};
  StError err = {0};
  StCmd *cmd = begin();
  checks++;
  if (st_op_temporal_blend(dev, cmd, &a->t, &a->t, &a->t, &a->t, &f->t, &bad_keep, &a->t, &err))
    fail("temporal_blend accepted keep 1.5");
  checks++;
  if (st_op_temporal_blend(dev, cmd, &a->t, &b->t, &a->t, &a->t, &f->t, &good, &a->t, &err) ||
      !strstr(err.message, "previous output"))
    fail("temporal_blend accepted a previous output of another size (%s)", err.message);
  checks++;
  if (st_op_temporal_blend(dev, cmd, &a->t, &a->t, &a->t, &a->t, &a->t, &good, &a->t, &err) ||
      !strstr(err.message, "motion field"))
    fail("temporal_blend accepted a [3,4,4] motion field (%s)", err.message);
  st_cmd_free(cmd);
  dt_free(a);
  dt_free(b);
  dt_free(f);
}

/* ---- elementwise ----------------------------------------------------------------------- */

/* Maps values in [-1, 1] to +-[0.25, 4] (sign kept, magnitude log-uniform): divisors bounded away
 * from zero. */
static void away_from_zero(float *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = copysignf(exp2f(4.0f * fabsf(p[i]) - 2.0f), p[i]);
}

/* b: the same shape as a (bc 0), [C] broadcast over H,W (bc 1) or [1,H,W] broadcast over C
 * (bc 2; with C = 1 it is a's own shape). In fp16 runs a [1,H,W] b is fp32 on even shapes (the
 * engine's form: it stores maps of up to 3 channels as fp32) and fp16 on odd ones. */
static void test_eltwise(void) {
  /* the last two: H*W % 4 == 0, the vec4 path with every broadcast ({4,129,257}: without) */
  static const int shapes[][3] = {{1, 1, 1}, {3, 7, 5},    {4, 129, 257}, {1, 7, 9},
                                  {5, 7, 9}, {16, 33, 65}, {3, 4, 8},     {8, 6, 10}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int c = shapes[s][0], h = shapes[s][1], w = shapes[s][2];
    size_t n = (size_t)c * h * w;
    for (int kind = 0; kind < 4; kind++)
      for (int bc = 0; bc < (kind ? 3 : 1); bc++)
        for (int act = 0; act < 5; act++)
          for (int f = 0; f < (have_f16 ? 2 : 1); f++) {
            if (kind != 0 && act > 2 && f)
              continue;
            StDType dt = f ? ST_F16 : ST_F32;
            StDType bdt = bc == 1 || (bc == 2 && s % 2 == 0) ? ST_F32 : dt;
            float *ha, *hb = NULL;
            DT *a = dt_random(dt, 3, c, h, w, -6.0f, 6.0f, &ha);
            DT *b = kind == 0 ? NULL
                    : bc == 1 ? dt_random(bdt, 1, c, 1, 1, -2.0f, 2.0f, &hb)
                    : bc == 2 ? dt_random(bdt, 3, 1, h, w, -2.0f, 2.0f, &hb)
                              : dt_random(bdt, 3, c, h, w, -2.0f, 2.0f, &hb);
            if (kind == 3) { /* div: |b| in [0.25, 4], random sign */
              away_from_zero(hb, st_tensor_numel(&b->t));
              dt_write(b, hb);
            }
            DT *y = dt_new(dt, 3, c, h, w);
            float ka = 0.75f, kb = -1.5f;
            char what[128];
            snprintf(what, sizeof what, "%s%s act=%s [%d,%d,%d] %s%s",
                     kind == 0   ? "act"
                     : kind == 1 ? "add"
                     : kind == 2 ? "mul"
                                 : "div",
                     bc == 1   ? " broadcast [C]"
                     : bc == 2 ? " broadcast [1,H,W]"
                               : "",
                     act_name((StAct)act), c, h, w, f ? "f16" : "f32",
                     kind && bdt != dt ? " (b f32)" : "");
            StError err = {0};
            StCmd *cmd = begin();
            bool ok;
            if (kind == 0)
              ok = st_op_act(dev, cmd, &a->t, (StAct)act, 0.1f, &y->t, &err);
            else if (kind == 1)
              ok = st_op_add(dev, cmd, &a->t, &b->t, ka, kb, (StAct)act, 0.1f, &y->t, &err);
            else if (kind == 2)
              ok = st_op_mul(dev, cmd, &a->t, &b->t, (StAct)act, 0.1f, &y->t, &err);
            else
              ok = st_op_div(dev, cmd, &a->t, &b->t, (StAct)act, 0.1f, &y->t, &err);
            if (finish(cmd, ok, &err, what)) {
              float *got = fmalloc(n), *ref = fmalloc(n);
              dt_read(y, got);
              size_t hw = (size_t)h * w;
              StRefBcast rb = bc == 1 ? ST_REF_BCAST_C : bc == 2 ? ST_REF_BCAST_HW : ST_REF_SAME;
              if (kind == 0)
                st_ref_act(ha, n, (StAct)act, 0.1f, ref);
              else if (kind == 1)
                st_ref_add(ha, hb, n, rb, hw, ka, kb, (StAct)act, 0.1f, ref);
              else if (kind == 2)
                st_ref_mul(ha, hb, n, rb, hw, (StAct)act, 0.1f, ref);
              else
                st_ref_div(ha, hb, n, rb, hw, (StAct)act, 0.1f, ref);
              compare(what, got, ref, n, rtol_for(dt), 1e-6f);
              free(got);
              free(ref);
            }
            free(ha);
            free(hb);
            dt_free(a);
            dt_free(b);
            dt_free(y);
          }
  }
}

/* Chains of elementwise ops as one dispatch (st_op_eltwise_chain, the plan's fuse_eltwise)
 * against the references applied one after the other in fp32: the EFA's colouring chain (mul by
 * [C], add [C], add, add with the strength's two weights) and others with every broadcast, div and
 * activations, on the scalar and vec4 paths. */
static void test_eltwise_chain(void) {
  static const int shapes[][3] = {{3, 7, 5}, {8, 6, 10}, {16, 33, 65}, {64, 23, 40}};
  /* kind, broadcast (0 same, 1 [C], 2 [1,H,W]), act, ka, kb */
  static const struct {
    int n;
    int st[4][3];
    float k[4][2];
  } chains[] = {
      {4, {{2, 1, 0}, {1, 1, 0}, {1, 0, 0}, {1, 0, 0}}, {{1, 1}, {1, 1}, {1, 1}, {0.7f, 0.3f}}},
      {3, {{1, 0, 1}, {3, 1, 2}, {2, 2, 3}}, {{0.5f, -1}, {1, 1}, {1, 1}}},
      {2, {{3, 2, 0}, {1, 1, 4}}, {{1, 1}, {-2, 0.25f}}},
  };
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (size_t ci = 0; ci < sizeof chains / sizeof chains[0]; ci++)
      for (int f = 0; f < (have_f16 ? 2 : 1); f++) {
        int c = shapes[s][0], h = shapes[s][1], w = shapes[s][2], nst = chains[ci].n;
        size_t n = (size_t)c * h * w, hw = (size_t)h * w;
        StDType dt = f ? ST_F16 : ST_F32;
        float *ha, *hb[4];
        DT *a = dt_random(dt, 3, c, h, w, -3.0f, 3.0f, &ha), *b[4];
        StEltStage st[4];
        for (int i = 0; i < nst; i++) {
          int bc = chains[ci].st[i][1];
          b[i] = bc == 1   ? dt_random(ST_F32, 1, c, 1, 1, -2.0f, 2.0f, &hb[i])
                 : bc == 2 ? dt_random(dt, 3, 1, h, w, -2.0f, 2.0f, &hb[i])
                           : dt_random(dt, 3, c, h, w, -2.0f, 2.0f, &hb[i]);
          if (chains[ci].st[i][0] == 3) {
            away_from_zero(hb[i], st_tensor_numel(&b[i]->t));
            dt_write(b[i], hb[i]);
          }
          st[i] = (StEltStage){.kind = chains[ci].st[i][0],
                               .b = &b[i]->t,
                               .ka = chains[ci].k[i][0],
                               .kb = chains[ci].k[i][1],
                               .act = (StAct)chains[ci].st[i][2],
                               .alpha = 0.1f};
        }
        DT *y = dt_new(dt, 3, c, h, w);
        char what[128];
        snprintf(what, sizeof what, "eltwise chain %zu (%d stages) [%d,%d,%d] %s", ci, nst, c, h, w,
                 f ? "f16" : "f32");
        StError err = {0};
        StCmd *cmd = begin();
        bool ok = st_op_eltwise_chain(dev, cmd, &a->t, st, nst, &y->t, &err);
        if (finish(cmd, ok, &err, what)) {
          float *got = fmalloc(n), *ref = fmalloc(n), *tmp = fmalloc(n);
          dt_read(y, got);
          memcpy(ref, ha, n * sizeof(float));
          for (int i = 0; i < nst; i++) {
            int bc = chains[ci].st[i][1];
            StRefBcast rb = bc == 1 ? ST_REF_BCAST_C : bc == 2 ? ST_REF_BCAST_HW : ST_REF_SAME;
            memcpy(tmp, ref, n * sizeof(float));
            if (st[i].kind == 1)
              st_ref_add(tmp, hb[i], n, rb, hw, st[i].ka, st[i].kb, st[i].act, 0.1f, ref);
            else if (st[i].kind == 2)
              st_ref_mul(tmp, hb[i], n, rb, hw, st[i].act, 0.1f, ref);
            else
              st_ref_div(tmp, hb[i], n, rb, hw, st[i].act, 0.1f, ref);
          }
          compare(what, got, ref, n, rtol_for(dt), 1e-5f);
          free(got);
          free(ref);
          free(tmp);
        }
        free(ha);
        dt_free(a);
        dt_free(y);
        for (int i = 0; i < nst; i++) {
          free(hb[i]);
          dt_free(b[i]);
        }
      }
}

/* ---- reductions ------------------------------------------------------------------------ */

/* Masked moments (x [c,h,w], weight mask [1,h,w]). mask: 0 all zero (an empty region: mean 0,
 * std sqrt(eps), finite), 1 soft random weights in [0, 1], 2 binary (about a third of the pixels
 * 1), 3 all ones (the unmasked statistics up to the 1e-6). In fp16 runs x and std are fp16 and
 * the mask is fp16 for soft masks and odd shapes (fp32 otherwise, the engine's form). */
static void test_moments_masked_case(int c, int h, int w, int mask, StDType dt, StDType wdt) {
  static const char *names[] = {"zero", "soft", "binary", "ones"};
  const float eps = 1e-5f;
  size_t hw = (size_t)h * w;
  float *hx, *hm = fmalloc(hw);
  DT *x = dt_random(dt, 3, c, h, w, 3.0f, 5.0f, &hx);
  DT *wm = dt_new(wdt, 3, 1, h, w);
  for (size_t i = 0; i < hw; i++)
    hm[i] = mask == 0   ? 0.0f
            : mask == 1 ? rnd_uniform(0.0f, 1.0f)
            : mask == 2 ? (rnd_u32() % 3 == 0 ? 1.0f : 0.0f)
                        : 1.0f;
  dt_write(wm, hm);
  DT *m = dt_new(ST_F32, 1, c, 1, 1), *sd = dt_new(dt, 1, c, 1, 1);
  char what[160];
  snprintf(what, sizeof what, "moments [%d,%d,%d] mask %s (%s) %s", c, h, w, names[mask],
           wdt == ST_F16 ? "f16" : "f32", dt == ST_F16 ? "f16" : "f32");
  StError err = {0};
  StCmd *cmd = begin();
  bool ok = st_op_moments(dev, cmd, &x->t, &wm->t, eps, &m->t, &sd->t, &err);
  if (finish(cmd, ok, &err, what)) {
    float gm[64], gs[64], rm[64], rs[64];
    dt_read(m, gm);
    dt_read(sd, gs);
    st_ref_moments(hx, hm, c, hw, eps, rm, rs);
    char w2[200];
    snprintf(w2, sizeof w2, "%s mean", what);
    compare(w2, gm, rm, (size_t)c, 1e-4f, 1e-6f);
    snprintf(w2, sizeof w2, "%s std", what);
    compare(w2, gs, rs, (size_t)c, rtol_for(dt), 1e-6f);
    if (mask == 0) { /* exactly what the formula gives: 0 / 1e-6 */
      checks++;
      for (int i = 0; i < c; i++)
        if (!isfinite(gm[i]) || !isfinite(gs[i]) || gm[i] != 0.0f ||
            fabsf(gs[i] - sqrtf(eps)) > rtol_for(dt) * sqrtf(eps)) {
          fail("%s: channel %d mean %g std %g (0 and sqrt(eps) = %g expected)", what, i, gm[i],
               gs[i], sqrtf(eps));
          break;
        }
    }
  }
  free(hx);
  free(hm);
  dt_free(x);
  dt_free(wm);
  dt_free(m);
  dt_free(sd);
}

static void test_moments(void) {
  /* moments_sg on CPU devices up to 2 x 32,500 steps of 8 elements, the 256-invocation kernel
   * past that (the 1000 x 1000 planes); 40 channels: many subgroup workgroups */
  static const int shapes[][3] = {
      {1, 1, 1}, {3, 7, 5}, {5, 129, 257}, {2, 1000, 1000}, {40, 9, 11}};
  const size_t nshapes = sizeof shapes / sizeof shapes[0];
  for (size_t s = 0; s < nshapes; s++)
    for (int f = 0; f < (have_f16 ? 2 : 1); f++) {
      int c = shapes[s][0], h = shapes[s][1], w = shapes[s][2];
      StDType dt = f ? ST_F16 : ST_F32;
      float *hx;
      /* An offset mean tests that the variance does not cancel catastrophically. */
      DT *x = dt_random(dt, 3, c, h, w, 3.0f, 5.0f, &hx);
      DT *m = dt_new(ST_F32, 1, c, 1, 1), *sd = dt_new(dt, 1, c, 1, 1);
      char what[128];
      snprintf(what, sizeof what, "moments [%d,%d,%d] %s", c, h, w, f ? "f16" : "f32");
      StError err = {0};
      StCmd *cmd = begin();
      bool ok = st_op_moments(dev, cmd, &x->t, NULL, 1e-5f, &m->t, &sd->t, &err);
      if (finish(cmd, ok, &err, what)) {
        float gm[64], gs[64], rm[64], rs[64];
        dt_read(m, gm);
        dt_read(sd, gs);
        st_ref_moments(hx, NULL, c, (size_t)h * w, 1e-5f, rm, rs);
        char w2[160];
        snprintf(w2, sizeof w2, "%s mean", what);
        compare(w2, gm, rm, (size_t)c, 1e-4f, 1e-6f);
        snprintf(w2, sizeof w2, "%s std", what);
        compare(w2, gs, rs, (size_t)c, rtol_for(dt), 1e-6f);
      }
      free(hx);
      dt_free(x);
      dt_free(m);
      dt_free(sd);
    }
  for (size_t s = 0; s < nshapes; s++)
    for (int mask = 0; mask < 4; mask++)
      for (int f = 0; f < (have_f16 ? 2 : 1); f++)
        test_moments_masked_case(shapes[s][0], shapes[s][1], shapes[s][2], mask,
                                 f ? ST_F16 : ST_F32, f && (mask == 1 || s % 2) ? ST_F16 : ST_F32);
  /* A channel longer than one invocation may loop over on llvmpipe (2 x 32,813 steps: more than
   * 65,000 in all) is refused on CPU devices with a message, never a silently wrong result. */
  if (st_device_is_cpu(dev)) {
    DT *x = dt_new(ST_F32, 3, 1, 1, 8400000), *m = dt_new(ST_F32, 1, 1, 1, 1),
       *sd = dt_new(ST_F32, 1, 1, 1, 1);
    StError err = {0};
    StCmd *cmd = st_cmd_begin(dev, &err);
    bool ok = st_op_moments(dev, cmd, &x->t, NULL, 1e-5f, &m->t, &sd->t, &err);
    checks++;
    if (ok || err.code != ST_ERROR_ARGUMENT || !strstr(err.message, "smaller processing size"))
      fail("moments over 8.4M elements on a CPU device: %s", ok ? "accepted" : err.message);
    printf("moments [1,1,8400000] on %s: %s\n", st_device_name(dev), err.message);
    st_cmd_free(cmd);
    dt_free(x);
    dt_free(m);
    dt_free(sd);
  }
}

/* `kernel`: NULL for the default choice, else the kernel forced with st_op_force_gram_kernel
 * ("sg": gram_sg.comp where supported, "matmul": matmul.comp). */
static void test_gram_case(int c, int d, int h, int w, bool withy, bool center, bool sq, StDType dt,
                           const char *kernel) {
  float *hx, *hy = NULL;
  DT *x = dt_random(dt, 3, c, h, w, 0.0f, 2.0f, &hx);
  DT *y = withy ? dt_random(dt, 3, d, h, w, -1.0f, 3.0f, &hy) : NULL;
  if (!withy)
    d = c;
  DT *g = dt_new(ST_F32, 2, c, d, 1);
  char what[160];
  snprintf(what, sizeof what, "gram(%s) x[%d,%d,%d]%s center=%d sqrt=%d %s",
           kernel ? kernel : "default", c, h, w, withy ? " y" : "", center, sq,
           dt == ST_F16 ? "f16" : "f32");
  if (kernel)
    st_op_force_gram_kernel(dev, kernel);
  StError err = {0};
  StCmd *cmd = begin();
  bool ok = st_op_gram(dev, cmd, &x->t, y ? &y->t : NULL, center, sq, &g->t, &err);
  if (kernel)
    st_op_force_gram_kernel(dev, NULL);
  if (finish(cmd, ok, &err, what)) {
    size_t n = (size_t)c * d;
    float *got = fmalloc(n), *ref = fmalloc(n);
    dt_read(g, got);
    st_ref_gram(hx, hy, c, d, (size_t)h * w, center, sq, ref);
    /* Centred Gram entries are differences of products: compare relative to the rms
     * (compare() does). sqrt is not Lipschitz at 0 (|sqrt(a) - sqrt(b)| <= sqrt(|a - b|)): a
     * rounding error of 1e-8 in a centred entry near 0 (1e-5 of the typical |g| here) becomes
     * 1e-4 after the sqrt, hence that absolute floor for SQRT (an indexing error is O(1)). */
    compare(what, got, ref, n, 1e-4f, sq ? 1e-4f : 1e-6f);
    free(got);
    free(ref);
  }
  free(hx);
  free(hy);
  dt_free(x);
  dt_free(y);
  dt_free(g);
}

static void test_gram(void) {
  static const int shapes[][4] = {
      {1, 1, 1, 1}, {7, 5, 7, 3}, {37, 33, 129, 257}, {64, 64, 200, 300}};
  for (int kern = 0; kern < 2; kern++)
    for (size_t s = 0; s < 4; s++)
      for (int withy = 0; withy < 2; withy++)
        for (int center = 0; center < 2; center++)
          for (int sq = 0; sq < 2; sq++) {
            if (s == 3 && (center + sq + withy) % 2)
              continue;
            StDType dt = (have_f16 && s == 1 && sq) ? ST_F16 : ST_F32;
            test_gram_case(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], withy, center,
                           sq, dt, kern ? "matmul" : "sg");
          }
  /* gram_sg tiles (16x16) cut by C and D, K = H*W not a multiple of 4 (element-wise loads) and a
   * multiple of 4 (vec4 loads), fp16 inputs with vec4 loads, a channel mean far from zero
   * (centring by shifted sums), and the default choice. */
  test_gram_case(16, 16, 90, 160, false, false, true, ST_F32, "sg");
  test_gram_case(17, 33, 5, 7, true, true, false, ST_F32, "sg");
  test_gram_case(32, 3, 12, 12, true, true, true, ST_F32, "sg");
  /* K long enough that one pass over it would take a lane past llvmpipe's 65535 loop iterations
   * (K / 8 element-wise, K / 32 with vec4 loads): gram_sg splits K into chunks there. */
  test_gram_case(2, 2, 1, 600001, true, false, true, ST_F32, "sg");
  test_gram_case(3, 3, 2, 1100000, false, false, false, ST_F32, "sg");
  test_gram_case(2, 3, 1, 1100001, true, false, true, ST_F32, "matmul"); /* 2 chunks on CPUs */
  if (have_f16) {
    test_gram_case(20, 9, 8, 20, true, true, true, ST_F16, "sg");
    test_gram_case(16, 16, 45, 80, false, false, true, ST_F16, NULL);
  }
  {
    float *hx;
    DT *x = dt_random(ST_F32, 3, 24, 30, 40, -0.5f, 0.5f, &hx);
    for (size_t i = 0; i < (size_t)24 * 30 * 40; i++)
      hx[i] += 40.0f + (float)(i / (30 * 40)); /* means 40..63, std 0.29 */
    dt_write(x, hx);
    DT *g = dt_new(ST_F32, 2, 24, 24, 1);
    StError err = {0};
    StCmd *cmd = begin();
    const char *what = "gram(default) x[24,30,40] mean 40..63 center=1";
    bool ok = st_op_gram(dev, cmd, &x->t, NULL, true, false, &g->t, &err);
    if (finish(cmd, ok, &err, what)) {
      float got[24 * 24], ref[24 * 24];
      dt_read(g, got);
      st_ref_gram(hx, NULL, 24, 24, 30 * 40, true, false, ref);
      compare(what, got, ref, 24 * 24, 1e-4f, 1e-6f);
    }
    free(hx);
    dt_free(x);
    dt_free(g);
  }
}

static void test_matmul(void) {
  /* {3, 2, 1100000} and {9, 8, 70001}: K past what one pass may loop over on llvmpipe (split
   * into chunks there); N % 4 == 0 without transposes: matmul_sg.comp on CPU devices (its 8-row
   * x 32-column tiles cut by M and N), unless matmul.comp is forced (kern 1) */
  static const int shapes[][3] = {{1, 1, 1},       {7, 5, 3},       {33, 65, 129},
                                  {100, 37, 300},  {3, 2, 1100000}, {33, 64, 129},
                                  {128, 128, 128}, {9, 8, 70001},   {1, 4, 1}};
  for (int kern = 0; kern < 2; kern++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
          int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
          /* K = 1.1M (14 s per case on lavapipe, matmul.comp's K loop in chunks for both kernel
           * choices since N = 2): no transposes and both, with the default choice only */
          if (k > 1000000 && (kern != 0 || ta != tb))
            continue;
          float *ha, *hb;
          DT *a = ta ? dt_random(ST_F32, 2, k, m, 1, -1, 1, &ha)
                     : dt_random(ST_F32, 2, m, k, 1, -1, 1, &ha);
          DT *b = tb ? dt_random(ST_F32, 2, n, k, 1, -1, 1, &hb)
                     : dt_random(ST_F32, 2, k, n, 1, -1, 1, &hb);
          DT *c = dt_new(ST_F32, 2, m, n, 1);
          char what[128];
          snprintf(what, sizeof what, "matmul(%s) %dx%dx%d ta=%d tb=%d",
                   kern ? "matmul" : "default", m, n, k, ta, tb);
          StError err = {0};
          StCmd *cmd = begin();
          if (kern)
            st_op_force_gram_kernel(dev, "matmul");
          bool ok = st_op_matmul(dev, cmd, &a->t, &b->t, ta, tb, &c->t, &err);
          if (kern)
            st_op_force_gram_kernel(dev, NULL);
          if (finish(cmd, ok, &err, what)) {
            size_t cnt = (size_t)m * n;
            float *got = fmalloc(cnt), *ref = fmalloc(cnt);
            dt_read(c, got);
            st_ref_matmul(ha, hb, m, n, k, ta, tb, ref);
            compare(what, got, ref, cnt, 1e-4f, 1e-6f);
            free(got);
            free(ref);
          }
          free(ha);
          free(hb);
          dt_free(a);
          dt_free(b);
          dt_free(c);
        }
}

/* Both kernels (linear_rows.comp, linear.comp) on every shape; {1024, 128} and {128, 1024} are
 * the EFA's layers; k = 32768 is the longest row of linear_rows, past it (65537: llvmpipe's loop
 * limit) "rows" falls back to linear.comp. */
static void test_linear(void) {
  static const int shapes[][2] = {{1, 1},      {5, 7},      {300, 1000}, {3, 66049},
                                  {1024, 128}, {128, 1024}, {3, 32768},  {3, 65537}};
  static const char *const kernels[] = {"rows", "reduce"};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (size_t kk = 0; kk < 2; kk++)
      for (int bias = 0; bias < 2; bias++)
        for (int act = 0; act < 3; act++) {
          int n = shapes[s][0], k = shapes[s][1];
          float *hx, *hw, *hb = NULL;
          DT *x = dt_random(ST_F32, 3, 1, 1, k, -1, 1, &hx);
          DT *w = dt_random(ST_F32, 2, n, k, 1, -1, 1, &hw);
          DT *b = bias ? dt_random(ST_F32, 1, n, 1, 1, -1, 1, &hb) : NULL;
          DT *y = dt_new(ST_F32, 1, n, 1, 1);
          char what[128];
          snprintf(what, sizeof what, "linear(%s) n=%d k=%d bias=%d act=%s", kernels[kk], n, k,
                   bias, act_name((StAct)act));
          StError err = {0};
          StCmd *cmd = begin();
          st_op_force_linear_kernel(dev, kernels[kk]);
          bool ok =
              st_op_linear(dev, cmd, &x->t, &w->t, b ? &b->t : NULL, (StAct)act, 0.2f, &y->t, &err);
          st_op_force_linear_kernel(dev, NULL);
          if (finish(cmd, ok, &err, what)) {
            float *got = fmalloc((size_t)n), *ref = fmalloc((size_t)n);
            dt_read(y, got);
            st_ref_linear(hx, hw, hb, n, (size_t)k, (StAct)act, 0.2f, ref);
            compare(what, got, ref, (size_t)n, 1e-4f, 1e-6f);
            free(got);
            free(ref);
          }
          free(hx);
          free(hw);
          free(hb);
          dt_free(x);
          dt_free(w);
          dt_free(b);
          dt_free(y);
        }
}

static void test_softmax(void) {
  static const int shapes[][2] = {{1, 1}, {7, 5}, {3, 1000}, {300, 37}, {2, 70000}};
  for (size_t s = 0; s < 5; s++)
    for (int sc = 0; sc < 2; sc++) {
      int m = shapes[s][0], n = shapes[s][1];
      float scale = sc ? 0.125f : 1.0f;
      float *hx;
      DT *x = dt_random(ST_F32, 2, m, n, 1, -20, 20, &hx);
      DT *y = dt_new(ST_F32, 2, m, n, 1);
      char what[128];
      snprintf(what, sizeof what, "softmax %dx%d scale=%g", m, n, scale);
      StError err = {0};
      StCmd *cmd = begin();
      bool ok = st_op_softmax(dev, cmd, &x->t, scale, &y->t, &err);
      if (finish(cmd, ok, &err, what)) {
        size_t cnt = (size_t)m * n;
        float *got = fmalloc(cnt), *ref = fmalloc(cnt);
        dt_read(y, got);
        st_ref_softmax(hx, m, n, scale, ref);
        /* exp() of the shader is accurate to a few ulp of its argument's magnitude (<= 40). */
        compare(what, got, ref, cnt, 1e-4f, 1e-9f);
        free(got);
        free(ref);
      }
      free(hx);
      dt_free(x);
      dt_free(y);
    }
}

static void test_concat(void) {
  /* {4, 2}: every input on the vec4 path; {2, 1}: the 4 elements of the second input start at
   * element 2 of y (scalar path) */
  static const int hw[][2] = {{1, 1}, {7, 5}, {257, 129}, {4, 2}, {2, 1}, {16, 9}};
  for (size_t s = 0; s < sizeof hw / sizeof hw[0]; s++) {
    int h = hw[s][1], w = hw[s][0];
    int cs[3] = {1, 2, 5};
    float *hx[3];
    DT *x[3];
    for (int i = 0; i < 3; i++)
      x[i] = dt_random((have_f16 && i == 1) ? ST_F16 : ST_F32, 3, cs[i], h, w, -1, 1, &hx[i]);
    DT *y = dt_new(ST_F32, 3, 8, h, w);
    const StTensor *xs[3] = {&x[0]->t, &x[1]->t, &x[2]->t};
    char what[128];
    snprintf(what, sizeof what, "concat 1+2+5 x %dx%d", h, w);
    StError err = {0};
    StCmd *cmd = begin();
    bool ok = st_op_concat(dev, cmd, xs, 3, &y->t, &err);
    if (finish(cmd, ok, &err, what)) {
      size_t n = (size_t)8 * h * w;
      float *got = fmalloc(n), *ref = fmalloc(n);
      dt_read(y, got);
      st_ref_concat((const float *const *)hx, cs, 3, (size_t)h * w, ref);
      compare(what, got, ref, n, 0.0f, 0.0f);
      free(got);
      free(ref);
    }
    for (int i = 0; i < 3; i++) {
      free(hx[i]);
      dt_free(x[i]);
    }
    dt_free(y);
  }
}

/* ---- frames ---------------------------------------------------------------------------- */

/* Builds a layout with padded strides and planes at unaligned offsets, with gaps between; with
 * `aligned`, planes and strides are multiples of 16 bytes (what video frames usually have: the
 * vec4 paths of the frame shaders), rows still padded. */
static size_t make_layout(StPixelFormat f, int w, int h, bool aligned, StFrameLayout *l,
                          uint8_t *pixmask, size_t cap) {
  memset(l, 0, sizeof *l);
  l->format = f;
  l->width = w;
  l->height = h;
  int rowbytes[3], rows[3];
  int np = st_format_planes(f, w, h, rowbytes, rows);
  size_t off = aligned ? 16 : 3; /* unaligned start */
  for (int i = 0; i < np; i++) {
    l->offsets[i] = off;
    l->strides[i] = aligned ? (rowbytes[i] + 15) / 16 * 16 + 16 * (i + 1)
                            : rowbytes[i] + 1 + i * 2; /* odd padding */
    size_t size = (size_t)l->strides[i] * rows[i];
    if (pixmask) {
      for (int r = 0; r < rows[i]; r++)
        for (int cc = 0; cc < rowbytes[i]; cc++) {
          size_t a = off + (size_t)r * l->strides[i] + cc;
          if (a < cap)
            pixmask[a] = 1;
        }
    }
    off += aligned ? size + 32 : size + 5; /* a gap */
  }
  return off + 2;
}

/* frame_to_float_pooled against the reference conversion at tw x th, then the reference pool */
static void test_frame_pooled(StBuffer *fb, const StFrameLayout *l, int tw, int th, int box,
                              StDType dt, const char *base) {
  int oh = (th + box - 1) / box, ow = (tw + box - 1) / box;
  DT *y = dt_new(dt, 3, 3, oh, ow);
  char what[200];
  snprintf(what, sizeof what, "%s pooled %dx%d", base, box, box);
  StError err = {0};
  StCmd *cmd = begin();
  bool ok = st_op_frame_to_float_pooled(dev, cmd, fb, l, tw, th, box, &y->t, &err);
  if (finish(cmd, ok, &err, what)) {
    size_t n = (size_t)3 * th * tw, no = (size_t)3 * oh * ow;
    float *full = fmalloc(n), *rf = fmalloc(no), *got = fmalloc(no);
    st_ref_frame_to_float(fb->mapped, l, tw, th, full);
    st_ref_pool(full, 3, th, tw, ST_POOL_AVG, box, rf);
    dt_read(y, got);
    compare(what, got, rf, no, rtol_for(dt), 1e-5f);
    free(full);
    free(rf);
    free(got);
  }
  dt_free(y);
}

static void test_frame_case(StPixelFormat f, int w, int h, int tw, int th, bool preserve,
                            StDType dt, bool aligned) {
  StFrameLayout l;
  size_t size = make_layout(f, w, h, aligned, &l, NULL, 0);
  uint8_t *mask = calloc(size, 1), *ref = malloc(size);
  if (!mask || !ref)
    abort();
  make_layout(f, w, h, aligned, &l, mask, size);
  StError err = {0};
  StBuffer fb;
  if (!st_buffer_create(dev, size, ST_MEM_UPLOAD, &fb, &err)) {
    fprintf(stderr, "buffer: %s\n", err.message);
    exit(1);
  }
  uint8_t *bytes = fb.mapped;
  for (size_t i = 0; i < size; i++)
    bytes[i] = (uint8_t)rnd_u32();

  /* frame -> float */
  DT *y = dt_new(dt, 3, 3, th, tw);
  char what[160];
  snprintf(what, sizeof what, "frame_to_float %s %dx%d -> %dx%d %s%s", st_format_name(f), w, h, tw,
           th, dt == ST_F16 ? "f16" : "f32", aligned ? " aligned" : "");
  StCmd *cmd = begin();
  bool ok = st_op_frame_to_float(dev, cmd, &fb, &l, &y->t, &err);
  if (finish(cmd, ok, &err, what)) {
    size_t n = (size_t)3 * th * tw;
    float *got = fmalloc(n), *rf = fmalloc(n);
    dt_read(y, got);
    st_ref_frame_to_float(bytes, &l, tw, th, rf);
    compare(what, got, rf, n, rtol_for(dt), 1e-5f);
    free(got);
    free(rf);
  }
  dt_free(y);
  if (!preserve) /* the same with the upload's 4x4 (and 2x2) average pool */
    for (int box = 2; box <= 4; box += 2)
      test_frame_pooled(&fb, &l, tw, th, box, dt, what);

  /* float -> frame: x [3,th,tw] (values slightly outside [0,1] to test clamping) */
  float *hx, *ho = NULL;
  DT *x = dt_random(dt, 3, 3, th, tw, -0.1f, 1.1f, &hx);
  DT *o = preserve ? dt_random(dt, 3, 3, th, tw, 0.0f, 1.0f, &ho) : NULL;
  memcpy(ref, bytes, size);
  snprintf(what, sizeof what, "float_to_frame %s %dx%d -> %dx%d preserve=%d %s%s",
           st_format_name(f), tw, th, w, h, preserve, dt == ST_F16 ? "f16" : "f32",
           aligned ? " aligned" : "");
  cmd = begin();
  ok = st_op_float_to_frame(dev, cmd, &x->t, o ? &o->t : NULL, preserve, &fb, &l, &err);
  if (finish(cmd, ok, &err, what)) {
    st_ref_float_to_frame(hx, ho, tw, th, preserve, ref, &l);
    size_t off1 = 0, npix = 0, bad = 0, first = 0;
    for (size_t i = 0; i < size; i++) {
      int d = abs((int)bytes[i] - (int)ref[i]);
      if (mask[i])
        npix++;
      if (d == 0)
        continue;
      if (mask[i] && d == 1) {
        off1++;
        continue;
      }
      if (!bad)
        first = i;
      bad++;
    }
    checks++;
    if (bad || off1 * 50 > npix)
      fail("%s: %zu bytes differ (first at %zu: got %d ref %d, %s), %zu of %zu off by one", what,
           bad, first, bytes[first], ref[first], mask[first] ? "pixel" : "padding", off1, npix);
    else if (getenv("ST_TEST_VERBOSE"))
      printf("ok   %s (%zu of %zu bytes off by one)\n", what, off1, npix);
  }
  free(hx);
  free(ho);
  dt_free(x);
  dt_free(o);
  st_buffer_destroy(dev, &fb);
  free(mask);
  free(ref);
}

static void test_frames(void) {
  static const int sizes[][4] = {{1, 1, 1, 1},        {7, 5, 7, 5},     {7, 5, 3, 4},
                                 {257, 129, 128, 64}, {64, 48, 97, 61}, {2, 2, 5, 3}};
  /* aligned planes: no resize at widths % 4 == 0 and upscaling by 2x or more (the vec4 paths: 4x
   * and 3x, exactly 2x, from one pixel, a height that is not a multiple of 4), and fallbacks */
  static const int asizes[][4] = {{16, 6, 16, 6}, {20, 3, 20, 3}, {16, 9, 4, 3},
                                  {20, 6, 10, 3}, {8, 4, 1, 1},   {64, 18, 16, 9},
                                  {16, 10, 5, 4}, {12, 5, 6, 3},  {7, 5, 7, 5}};
  for (int f = 0; f <= ST_FORMAT_NV12; f++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (int pc = 0; pc < 2; pc++)
        test_frame_case((StPixelFormat)f, sizes[s][0], sizes[s][1], sizes[s][2], sizes[s][3], pc,
                        (have_f16 && s == 4 && pc) ? ST_F16 : ST_F32, false);
    for (size_t s = 0; s < sizeof asizes / sizeof asizes[0]; s++)
      for (int pc = 0; pc < 2; pc++)
        test_frame_case((StPixelFormat)f, asizes[s][0], asizes[s][1], asizes[s][2], asizes[s][3],
                        pc, (have_f16 && (s == 1 || s == 5)) ? ST_F16 : ST_F32, true);
  }
}

/* ---- argument errors ------------------------------------------------------------------- */

static void expect_error(const char *what, bool ok, const StError *err) {
  checks++;
  if (ok)
    fail("%s: accepted an invalid argument", what);
  else if (!err->message[0])
    fail("%s: rejected without a message", what);
  else if (getenv("ST_TEST_VERBOSE"))
    printf("ok   %s rejected: %s\n", what, err->message);
}

static void test_errors(void) {
  DT *x = dt_new(ST_F32, 3, 4, 6, 6), *w = dt_new(ST_F32, 3, 8, 4, 9);
  DT *bad = dt_new(ST_F32, 3, 8, 5, 6), *y2 = dt_new(ST_F32, 2, 3, 3, 1);
  DT *y3 = dt_new(ST_F32, 2, 2, 3, 1);
  StError err = {0};
  StCmd *cmd = begin();
  expect_error(
      "conv2d wrong output",
      st_op_conv2d(dev, cmd, &x->t, &w->t, NULL, 3, 1, ST_PAD_ZERO, ST_ACT_NONE, 0, &bad->t, &err),
      &err);
  err.message[0] = 0;
  expect_error(
      "conv2d k=5",
      st_op_conv2d(dev, cmd, &x->t, &w->t, NULL, 5, 1, ST_PAD_ZERO, ST_ACT_NONE, 0, &bad->t, &err),
      &err);
  err.message[0] = 0;
  /* the untransformed weight [8,4,9] where the transform [8,4,16] belongs, and a wrong output */
  DT *yw = dt_new(ST_F32, 3, 8, 6, 6);
  expect_error("conv2d (Winograd) untransformed weight",
               st_op_conv2d_winograd(dev, cmd, &x->t, &w->t, NULL, ST_PAD_ZERO, ST_ACT_NONE, 0,
                                     &yw->t, &err),
               &err);
  err.message[0] = 0;
  expect_error("conv2d (Winograd) wrong output",
               st_op_conv2d_winograd(dev, cmd, &x->t, &w->t, NULL, ST_PAD_ZERO, ST_ACT_NONE, 0,
                                     &bad->t, &err),
               &err);
  err.message[0] = 0;
  dt_free(yw);
  expect_error("pool wrong output", st_op_pool(dev, cmd, &x->t, ST_POOL_MAX, 2, &bad->t, &err),
               &err);
  err.message[0] = 0;
  expect_error("pool window 3", st_op_pool(dev, cmd, &x->t, ST_POOL_MAX, 3, &bad->t, &err), &err);
  err.message[0] = 0;
  {
    StEltStage st[5];
    for (int i = 0; i < 5; i++)
      st[i] = (StEltStage){.kind = 1, .b = &x->t, .ka = 1, .kb = 1};
    expect_error("eltwise chain of 5", st_op_eltwise_chain(dev, cmd, &x->t, st, 5, &x->t, &err),
                 &err);
    err.message[0] = 0;
    st[0].kind = 0;
    expect_error("eltwise chain starting with act",
                 st_op_eltwise_chain(dev, cmd, &x->t, st, 2, &x->t, &err), &err);
    err.message[0] = 0;
    st[0].kind = 1;
    st[1].b = &bad->t;
    expect_error("eltwise chain operand shape",
                 st_op_eltwise_chain(dev, cmd, &x->t, st, 2, &x->t, &err), &err);
  }
  err.message[0] = 0;
  expect_error("resize channel mismatch",
               st_op_resize(dev, cmd, &x->t, ST_RESIZE_BILINEAR, &bad->t, &err), &err);
  err.message[0] = 0;
  expect_error("add shape mismatch",
               st_op_add(dev, cmd, &x->t, &bad->t, 1, 1, ST_ACT_NONE, 0, &x->t, &err), &err);
  err.message[0] = 0;
  DT *m1 = dt_new(ST_F32, 3, 1, 5, 6), *m2 = dt_new(ST_F32, 3, 2, 6, 6);
  DT *mean = dt_new(ST_F32, 1, 4, 1, 1), *sd = dt_new(ST_F32, 1, 4, 1, 1);
  expect_error("add [1,H,W] of another size",
               st_op_add(dev, cmd, &x->t, &m1->t, 1, 1, ST_ACT_NONE, 0, &x->t, &err), &err);
  err.message[0] = 0;
  expect_error("mul [2,H,W] against [4,H,W]",
               st_op_mul(dev, cmd, &x->t, &m2->t, ST_ACT_NONE, 0, &x->t, &err), &err);
  err.message[0] = 0;
  expect_error("moments mask of another size",
               st_op_moments(dev, cmd, &x->t, &m1->t, 1e-5f, &mean->t, &sd->t, &err), &err);
  err.message[0] = 0;
  expect_error("moments mask of two channels",
               st_op_moments(dev, cmd, &x->t, &m2->t, 1e-5f, &mean->t, &sd->t, &err), &err);
  err.message[0] = 0;
  expect_error("moments mask of rank 1",
               st_op_moments(dev, cmd, &x->t, &mean->t, 1e-5f, &mean->t, &sd->t, &err), &err);
  err.message[0] = 0;
  expect_error("matmul inner mismatch",
               st_op_matmul(dev, cmd, &y2->t, &y3->t, false, false, &y2->t, &err), &err);
  err.message[0] = 0;
  StFrameLayout l = {.format = ST_FORMAT_RGBA, .width = 100, .height = 100, .strides = {400}};
  expect_error("frame outside buffer", st_op_frame_to_float(dev, cmd, &x->buf, &l, &x->t, &err),
               &err);
  err.message[0] = 0;
  StFrameLayout l6 = {.format = ST_FORMAT_RGBA, .width = 6, .height = 6, .strides = {24}};
  DT *f3 = dt_new(ST_F32, 3, 3, 3, 3);
  expect_error("frame_to_float pooled 3x3",
               st_op_frame_to_float_pooled(dev, cmd, &x->buf, &l6, 6, 6, 3, &f3->t, &err), &err);
  err.message[0] = 0;
  expect_error("frame_to_float pooled 4x4 into [3,3,3]",
               st_op_frame_to_float_pooled(dev, cmd, &x->buf, &l6, 6, 6, 4, &f3->t, &err), &err);
  err.message[0] = 0;
  expect_error("frame_to_float pooled from a 0x6 image",
               st_op_frame_to_float_pooled(dev, cmd, &x->buf, &l6, 0, 6, 2, &f3->t, &err), &err);
  err.message[0] = 0;
  StTensor big = x->t;
  big.shape[0] = 1000;
  expect_error("tensor outside buffer", st_op_act(dev, cmd, &big, ST_ACT_RELU, 0, &big, &err),
               &err);
  /* Nothing valid was recorded: the command buffer still submits cleanly. */
  if (!st_cmd_submit_wait(cmd, &err))
    fail("empty command buffer: %s", err.message);
  st_cmd_free(cmd);
  dt_free(x);
  dt_free(w);
  dt_free(bad);
  dt_free(y2);
  dt_free(y3);
  dt_free(m1);
  dt_free(f3);
  dt_free(m2);
  dt_free(mean);
  dt_free(sd);
}

/* ---- benchmark (not part of the default run: `test-ops bench`) ------------------------- */

#include <sys/resource.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the process, all threads (lavapipe's workers included). */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* One convolution (bias, ReLU, reflect padding) per submission: `reps` timed runs after one
 * warm-up (pipeline creation). Prints the medians of the wall time and of the CPU time (on a
 * CPU driver the latter is the work done, less sensitive to other processes on the machine). */
static void bench_conv(int ci, int co, int h, int w, int k, int stride, StDType dt,
                       const char *kernel, int reps) {
  float *hx, *hw, *hb;
  DT *x = dt_random(dt, 3, ci, h, w, -1, 1, &hx);
  DT *wt = dt_random(dt, 3, co, ci, k * k, -1, 1, &hw);
  DT *b = dt_random(ST_F32, 1, co, 1, 1, -1, 1, &hb);
  int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
  DT *y = dt_new(dt, 3, co, oh, ow);
  if (kernel)
    st_op_force_conv_kernel(dev, kernel);
  double wall[32], cpu[32];
  int n = 0;
  if (reps > 32)
    reps = 32;
  for (int it = 0; it <= reps; it++) {
    StError err = {0};
    StCmd *cmd = begin();
    bool ok = st_op_conv2d(dev, cmd, &x->t, &wt->t, &b->t, k, stride, ST_PAD_REFLECT, ST_ACT_RELU,
                           0, &y->t, &err);
    double t0 = now_s(), c0 = cpu_s();
    if (!finish(cmd, ok, &err, "bench"))
      break;
    if (it > 0) {
      wall[n] = now_s() - t0;
      cpu[n++] = cpu_s() - c0;
    }
  }
  st_op_force_conv_kernel(dev, NULL);
  if (n > 0) {
    qsort(wall, (size_t)n, sizeof wall[0], cmp_double);
    qsort(cpu, (size_t)n, sizeof cpu[0], cmp_double);
    double gflop = 2.0 * ci * co * k * k * oh * ow * 1e-9;
    printf("conv%dx%d s%d %3d->%-3d %4dx%-4d %s %-7s: wall %8.2f ms %6.1f GFLOP/s | cpu %8.2f ms "
           "(median of %d)\n",
           k, k, stride, ci, co, w, h, dt == ST_F16 ? "f16" : "f32", kernel ? kernel : "default",
           wall[n / 2] * 1e3, gflop / wall[n / 2], cpu[n / 2] * 1e3, n);
    fflush(stdout);
  }
  free(hx);
  free(hw);
  free(hb);
  dt_free(x);
  dt_free(wt);
  dt_free(b);
  dt_free(y);
}

/* `test-ops bench [quick]`: the four target shapes of a 3x3 convolution (issue 5) with the
 * default kernel (10 runs) and the tiled kernel (3 runs; omitted with `quick`), fp32 and fp16
 * storage, then other shapes. */
static void bench(bool quick) {
  static const int target[][4] = {
      {1280, 720, 16, 16}, {640, 360, 32, 32}, {320, 180, 64, 64}, {320, 180, 128, 128}};
  for (size_t i = 0; i < 4; i++) {
    int w = target[i][0], h = target[i][1], ci = target[i][2], co = target[i][3];
    bench_conv(ci, co, h, w, 3, 1, ST_F32, NULL, 10);
    if (have_f16)
      bench_conv(ci, co, h, w, 3, 1, ST_F16, NULL, 10);
    if (!quick)
      bench_conv(ci, co, h, w, 3, 1, ST_F32, "tiled", 3);
  }
  static const int other[][6] = {{3, 16, 720, 1280, 3, 1}, {19, 16, 720, 1280, 3, 1},
                                 {16, 3, 720, 1280, 3, 1}, {16, 32, 720, 1280, 3, 2},
                                 {64, 64, 180, 320, 1, 1}, {32, 64, 360, 640, 1, 1},
                                 {256, 256, 90, 160, 3, 1}};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
    bench_conv(other[i][0], other[i][1], other[i][2], other[i][3], other[i][4], other[i][5], ST_F32,
               NULL, quick ? 3 : 5);
}

int main(int argc, char **argv) {
  st_test_log_init();
  StDeviceOptions opts;
  st_device_options_init(&opts);
  StError err = {0};
  dev = st_device_new(&opts, &err);
  if (!dev) {
    fprintf(stderr, "no Vulkan device: %s\n", err.message);
    return 77; /* skipped */
  }
  have_f16 = st_device_has_fp16_storage(dev);
  printf("device: %s (fp16 storage: %s)\n", st_device_name(dev), have_f16 ? "yes" : "no");
  const char *only = argc > 1 ? argv[1] : NULL;
  struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {{"conv", test_conv},
               {"pool", test_pool},
               {"resize", test_resize},
               {"translate", test_translate},
               {"blend", test_temporal_blend},
               {"eltwise", test_eltwise},
               {"eltwise_chain", test_eltwise_chain},
               {"moments", test_moments},
               {"gram", test_gram},
               {"matmul", test_matmul},
               {"linear", test_linear},
               {"softmax", test_softmax},
               {"concat", test_concat},
               {"frames", test_frames},
               {"errors", test_errors}};
  if (only && strcmp(only, "bench") == 0) {
    bench(argc > 2 && strcmp(argv[2], "quick") == 0);
    st_device_free(dev);
    return 0;
  }
  /* GROUP runs that group, -GROUP every group but that one (tests/ops/meson.build) */
  bool except = only && only[0] == '-', known = !only;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    known = known || strcmp(only + except, tests[i].name) == 0;
  if (!known) {
    fprintf(stderr, "FAIL no group named '%s'\n", only + except);
    st_device_free(dev);
    return 1;
  }
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    if (only && (strcmp(only + except, tests[i].name) == 0) == except)
      continue;
    int f0 = failures, c0 = checks;
    tests[i].fn();
    printf("%-8s %d checks, %d failures\n", tests[i].name, checks - c0, failures - f0);
    fflush(stdout);
  }
  unsigned vmsg = st_device_validation_messages(dev);
  if (vmsg) {
    fprintf(stderr, "FAIL %u validation messages\n", vmsg);
    failures++;
  }
  st_device_free(dev);
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
