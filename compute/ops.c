/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Operation dispatchers (ops.h): shape checks, kernel selection and dispatch geometry for the
 * shaders in shaders/. Every shader exists as `name` (fp32 bindings) and `name_f16` (bit i of
 * specialization constant 0 marks binding i as fp16); the f16 variant is used as soon as one
 * binding is F16 and needs st_device_has_fp16_storage().
 */
#include "ops.h"
#include "format.h"
#include "internal.h"
#include "spec_ids.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 65535u

static size_t dtype_size(StDType t) { return t == ST_F16 ? 2 : 4; }

static bool check_tensor(const StTensor *t, const char *op, const char *what, StError *err) {
  if (!t)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: %s is missing", op, what);
  if (!t->buf || !t->buf->buffer)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: %s has no buffer", op, what);
  if (t->rank < 1 || t->rank > 3)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: %s has rank %d (1..3 expected)", op, what,
                        t->rank);
  for (int i = 0; i < t->rank; i++)
    if (t->shape[i] < 1)
      return st_set_error(err, ST_ERROR_ARGUMENT, "%s: %s has an empty dimension %d", op, what, i);
  if (t->dtype != ST_F32 && t->dtype != ST_F16)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: %s has an unknown dtype", op, what);
  VkDeviceSize bytes = (VkDeviceSize)st_tensor_numel(t) * dtype_size(t->dtype);
  if (t->offset + bytes > t->buf->size)
    return st_set_error(err, ST_ERROR_ARGUMENT,
                        "%s: %s (%zu elements at offset %llu) lies outside its buffer (%llu bytes)",
                        op, what, st_tensor_numel(t), (unsigned long long)t->offset,
                        (unsigned long long)t->buf->size);
  if (st_tensor_numel(t) > 0xffffffffu / 2)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: %s is too large", op, what);
  return true;
}

static void shape_str(const StTensor *t, char *s, size_t n) {
  int k = snprintf(s, n, "[");
  for (int i = 0; i < t->rank && k > 0 && (size_t)k < n; i++)
    k += snprintf(s + k, n - (size_t)k, i ? ",%d" : "%d", t->shape[i]);
  if (k > 0 && (size_t)k < n)
    snprintf(s + k, n - (size_t)k, "]");
}

static bool shape_error(StError *err, const char *op, const char *what, const StTensor *t,
                        const char *expected) {
  char s[64];
  shape_str(t, s, sizeof s);
  return st_set_error(err, ST_ERROR_ARGUMENT, "%s: %s has shape %s, expected %s", op, what, s,
                      expected);
}

static bool is_shape3(const StTensor *t, int c, int h, int w) {
  return t->rank == 3 && t->shape[0] == c && t->shape[1] == h && t->shape[2] == w;
}

/* Looks up shader `id` (its _f16 variant for fp16 bindings) with spec[ST_SPEC_DT_MASK] = the fp16
 * mask of the bindings; the other entries of spec are named by shaders/spec_ids.h. */
_Static_assert(ST_SPEC_COUNT <= ST_KERNEL_MAX_SPEC, "spec_ids.h: too many ids for StKernel");

static StKernel *get_kernel(StDevice *dev, StShaderId id, const StTensor *const *bind, int nb,
                            int32_t spec[ST_SPEC_COUNT], int push_size, StError *err) {
  int32_t mask = 0;
  for (int i = 0; i < nb; i++)
    if (bind[i] && bind[i]->dtype == ST_F16)
      mask |= 1 << i;
  if (mask && !st_device_has_fp16_storage(dev)) {
    st_set_error(err, ST_ERROR_ARGUMENT,
                 "%s: fp16 tensors need 16-bit storage buffer support, which %s lacks",
                 st_shader_name(id), st_device_name(dev));
    return NULL;
  }
  spec[ST_SPEC_DT_MASK] = mask;
  return st_kernel_get_id(dev, id, mask != 0, spec, ST_SPEC_COUNT, nb, push_size, err);
}

/* Splits `groups` workgroups of a 1D problem over x and y (shaders use st_group_linear()). */
static bool split_groups(size_t groups, uint32_t *gx, uint32_t *gy, const char *op, StError *err) {
  if (groups == 0)
    groups = 1;
  size_t x = groups < MAX_GROUPS ? groups : MAX_GROUPS;
  size_t y = (groups + x - 1) / x;
  if (y > MAX_GROUPS)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: tensor too large to dispatch", op);
  *gx = (uint32_t)x;
  *gy = (uint32_t)y;
  return true;
}

static bool check_grid(uint32_t gx, uint32_t gy, uint32_t gz, const char *op, StError *err) {
  if (gx > MAX_GROUPS || gy > MAX_GROUPS || gz > MAX_GROUPS)
    return st_set_error(err, ST_ERROR_ARGUMENT,
                        "%s: tensor too large to dispatch (%u x %u x %u "
                        "workgroups)",
                        op, gx, gy, gz);
  return true;
}

static bool check_act(StAct act, bool extended, const char *op, StError *err) {
  if (act == ST_ACT_NONE || act == ST_ACT_RELU || act == ST_ACT_LRELU)
    return true;
  if (extended && (act == ST_ACT_TANH || act == ST_ACT_SIGMOID))
    return true;
  return st_set_error(err, ST_ERROR_ARGUMENT, "%s: unsupported activation %d", op, (int)act);
}

static bool check_cmd(StDevice *dev, StCmd *cmd, const char *op, StError *err) {
  if (!dev || !cmd)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: no device or command buffer", op);
  return true;
}

/* ---- convolution ----------------------------------------------------------------------- */

/* Convolution kernels:
 * - CONV_SG (conv3x3_sg_o*.comp, conv1x1_sg_o*.comp): 3x3 and 1x1, stride 1, for CPU drivers
 *   with 8-wide subgroups (llvmpipe/lavapipe on 256-bit SIMD), register tiles of OB output
 *   channels x 32 pixels x 4 rows (1x1: 128 pixels of the flattened plane) per 8-invocation
 *   workgroup, vec4 loads and subgroup shuffles. 1x1 needs H*W % 4 == 0; 3x3 with W % 4 != 0
 *   and any kernel with I % 4 != 0 load the rows / weights element by element (specialization
 *   constants). 3.5-8x the tiled kernel on lavapipe.
 * - CONV_TILED (conv2d_tiled.comp): shared-memory tiles, any k/stride/size; the choice for GPUs
 *   and for the shapes CONV_SG does not take.
 * - CONV_GENERIC (conv2d.comp): simple reference-like kernel.
 * - CONV_WINOGRAD (conv3x3_wg_o*.comp: conv3x3_sg.comp with WINO=1): the 3x3 stride-1 case of
 *   CONV_SG as Winograd F(2x2,3x3) on weights transformed once (st_winograd_weights): 16
 *   multiplies per 2x2 outputs, input channel and output channel instead of 36. The choice for
 *   3x3 stride 1 on sg devices wherever the caller has the transformed weights
 *   (st_op_winograd_applies, st_op_conv2d_winograd).
 * ST_CONV_KERNEL=sg|direct|tiled|generic, read when the device is opened, forces one where it
 * applies (tests, benchmarks; sg falls back to tiled for shapes or devices it does not support;
 * direct is sg without Winograd);
 * ST_CONV_GENERIC=1 is the same as ST_CONV_KERNEL=generic. st_op_force_conv_kernel changes it on
 * an open device. */
typedef enum { CONV_GENERIC = 0, CONV_TILED, CONV_SG } ConvKernel;
enum {
  FORCE_AUTO = 0,
  FORCE_CONV_GENERIC,
  FORCE_CONV_TILED,
  FORCE_CONV_DIRECT,
  FORCE_GRAM_MATMUL,
  FORCE_LINEAR_ROWS,
  FORCE_LINEAR_REDUCE
};

void st_op_force_conv_kernel(StDevice *dev, const char *name) {
  dev->conv_force = name && strcmp(name, "generic") == 0  ? FORCE_CONV_GENERIC
                    : name && strcmp(name, "tiled") == 0  ? FORCE_CONV_TILED
                    : name && strcmp(name, "direct") == 0 ? FORCE_CONV_DIRECT
                                                          : FORCE_AUTO; /* "sg" is the default */
}

void st_op_force_gram_kernel(StDevice *dev, const char *name) {
  dev->gram_force = name && strcmp(name, "matmul") == 0 ? FORCE_GRAM_MATMUL : FORCE_AUTO;
}

void st_op_force_linear_kernel(StDevice *dev, const char *name) {
  dev->linear_force = name && strcmp(name, "rows") == 0     ? FORCE_LINEAR_ROWS
                      : name && strcmp(name, "reduce") == 0 ? FORCE_LINEAR_REDUCE
                                                            : FORCE_AUTO;
}

void st_ops_read_env(StDevice *dev) {
  const char *generic = getenv("ST_CONV_GENERIC");
  st_op_force_conv_kernel(
      dev, generic && *generic && strcmp(generic, "0") != 0 ? "generic" : getenv("ST_CONV_KERNEL"));
  st_op_force_gram_kernel(dev, getenv("ST_GRAM_KERNEL"));
  st_op_force_linear_kernel(dev, getenv("ST_LINEAR_KERNEL"));
}

/* The sg kernels are written for subgroups of exactly 8 invocations (one per workgroup) with
 * subgroupShuffle in compute shaders; device.c queries both once. They are the default on every
 * such device (lavapipe on 256-bit SIMD, where they were tuned; GPUs have wider subgroups and use
 * the shared-memory tiles). */
static bool sg8_device(StDevice *dev, uint32_t ops) {
  ops |= VK_SUBGROUP_FEATURE_BASIC_BIT;
  return st_device_subgroup_size(dev) == 8 && (st_device_subgroup_ops(dev) & ops) == ops;
}

static bool conv_sg_device(StDevice *dev) {
  return sg8_device(dev, VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
}

static bool conv_sg_supported(StDevice *dev, int ci, int h, int w, int k, int stride) {
  (void)ci;
  if (stride != 1 || !conv_sg_device(dev))
    return false;
  return k == 3 || (size_t)h * (size_t)w % 4 == 0;
}

static ConvKernel conv_kernel_choice(StDevice *dev, int ci, int h, int w, int co, int k,
                                     int stride) {
  (void)co;
  if (dev->conv_force == FORCE_CONV_GENERIC)
    return CONV_GENERIC;
  if (dev->conv_force == FORCE_CONV_TILED)
    return CONV_TILED;
  return conv_sg_supported(dev, ci, h, w, k, stride) ? CONV_SG : CONV_TILED;
}

/* Output channels per workgroup of the sg kernels: the largest tile without much waste (input
 * loads are shared by OB channels; 32 is the best measured, 8 the least wasteful for few, 4 for
 * an RGB output (3x3 only), about 25 % faster than 8 there). */
/* Loop iterations per lane of one gram_sg dispatch at most (llvmpipe's limit is 65535 for all
 * the loops of an invocation together). */
#define GRAM_SG_ITERATIONS 60000
/* On CPU devices, whether an invocation's loops stay within llvmpipe's limit (65535 iterations
 * for all the loops of an invocation together, past which they end silently: test_ops found
 * lost terms in linear_rows, gram_sg and matmul). Ops whose reductions cannot be split are
 * refused with a message past it; gram and matmul split theirs into dispatches. */
#define CPU_LOOP_ITERATIONS 65000
static bool cpu_loops_fit(StDevice *dev, size_t iterations, const char *op, const char *what,
                          size_t n, StError *err) {
  if (!dev->is_cpu || iterations <= CPU_LOOP_ITERATIONS)
    return true;
  return st_set_error(err, ST_ERROR_ARGUMENT,
                      "%s: a %s of %zu elements is longer than %s can reduce in one shader "
                      "invocation (its loops stop after 65535 iterations); use a smaller "
                      "processing size",
                      op, what, n, st_device_name(dev));
}

/* Elements of K per matmul.comp dispatch on CPU devices: 60,000 of its 16-element steps (its
 * inner loops have constant bounds and are unrolled; the steps are what llvmpipe counts). */
#define MATMUL_CPU_CHUNK (16 * 60000)

static int conv_sg_ob(int co, int k) {
  if (co % 32 == 0)
    return 32;
  if (co > 8)
    return 16;
  if (co <= 4 && k == 3)
    return 4;
  return 8;
}

/* Push constants of every convolution kernel. */
typedef struct {
  uint32_t ci, h, w, co, oh, ow;
  float alpha;
} ConvPC;

/* The checks shared by st_op_conv2d and st_op_conv2d_winograd: the operands (the weight's shape
 * apart), and the push constants. */
static bool conv_args(StDevice *dev, StCmd *cmd, const char *op, const StTensor *x,
                      const StTensor *w, const StTensor *b, int k, int stride, StPad pad, StAct act,
                      float alpha, const StTensor *y, ConvPC *pc, StError *err) {
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(x, op, "input", err) ||
      !check_tensor(w, op, "weight", err) || !check_tensor(y, op, "output", err) ||
      (b && !check_tensor(b, op, "bias", err)) || !check_act(act, false, op, err))
    return false;
  if (k != 1 && k != 3)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: kernel size %d (1 or 3 expected)", op, k);
  if (stride != 1 && stride != 2)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: stride %d (1 or 2 expected)", op, stride);
  if (pad != ST_PAD_ZERO && pad != ST_PAD_REFLECT)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: unknown padding %d", op, (int)pad);
  if (x->rank != 3)
    return shape_error(err, op, "input", x, "[I,H,W]");
  int ci = x->shape[0], h = x->shape[1], wd = x->shape[2];
  int co = y->shape[0];
  int oh = (h + stride - 1) / stride, ow = (wd + stride - 1) / stride;
  char exp[96];
  if (!is_shape3(y, co, oh, ow)) {
    snprintf(exp, sizeof exp, "[O,%d,%d]", oh, ow);
    return shape_error(err, op, "output", y, exp);
  }
  if (b && st_tensor_numel(b) != (size_t)co) {
    snprintf(exp, sizeof exp, "[%d]", co);
    return shape_error(err, op, "bias", b, exp);
  }
  *pc = (ConvPC){(uint32_t)ci, (uint32_t)h,  (uint32_t)wd, (uint32_t)co,
                 (uint32_t)oh, (uint32_t)ow, alpha};
  return true;
}

bool st_op_conv2d(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *w,
                  const StTensor *b, int k, int stride, StPad pad, StAct act, float alpha,
                  const StTensor *y, StError *err) {
  const char *op = "conv2d";
  ConvPC pc;
  if (!conv_args(dev, cmd, op, x, w, b, k, stride, pad, act, alpha, y, &pc, err))
    return false;
  int ci = x->shape[0], h = x->shape[1], wd = x->shape[2];
  int co = y->shape[0], oh = (int)pc.oh, ow = (int)pc.ow;
  /* The weight is [O,I,k,k]; StTensor holds up to rank 3, so any shape [O, ...] with
   * O*I*k*k elements is accepted ([O,I] for k == 1, [O,I,k*k], [O,I*k*k]). */
  if (w->shape[0] != co || st_tensor_numel(w) != (size_t)co * ci * k * k) {
    char exp[96];
    snprintf(exp, sizeof exp, "[%d,%d,%d,%d] (O,I,k,k)", co, ci, k, k);
    return shape_error(err, op, "weight", w, exp);
  }
  const StTensor *bind[4] = {x, w, b ? b : w, y};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_ACT] = (int32_t)act;
  spec[ST_SPEC_HAS_BIAS] = b != NULL;
  spec[ST_SPEC_REFLECT] = pad == ST_PAD_REFLECT;
  StKernel *kern;
  uint32_t gx = 1, gy = 1, gz = 1;
  ConvKernel ck = conv_kernel_choice(dev, ci, h, wd, co, k, stride);
  if (ck == CONV_SG && k == 1) {
    /* conv1x1_sg_o{8,16,32}: workgroup = one 8-wide subgroup, 128 pixels of the flattened
     * plane x OB; the strips are spread over x and y. */
    int ob = conv_sg_ob(co, k);
    StShaderId id = ob == 32   ? ST_SHADER_CONV1X1_SG_O32
                    : ob == 16 ? ST_SHADER_CONV1X1_SG_O16
                               : ST_SHADER_CONV1X1_SG_O8;
    spec[ST_SPEC_WVEC] = ci % 4 == 0; /* vec4 weight loads */
    kern = get_kernel(dev, id, bind, 4, spec, sizeof pc, err);
    if (!kern || !split_groups(((size_t)oh * ow + 127) / 128, &gx, &gy, op, err))
      return false;
    gz = (uint32_t)((co + ob - 1) / ob);
  } else if (ck == CONV_SG) {
    /* conv3x3_sg_o{8,16,32}: workgroup = one 8-wide subgroup, tile 32 px x 4 rows x OB. */
    int ob = conv_sg_ob(co, k);
    StShaderId id = ob == 32   ? ST_SHADER_CONV3X3_SG_O32
                    : ob == 16 ? ST_SHADER_CONV3X3_SG_O16
                    : ob == 8  ? ST_SHADER_CONV3X3_SG_O8
                               : ST_SHADER_CONV3X3_SG_O4;
    spec[ST_SPEC_WVEC] = ci % 4 == 0; /* vec4 weight loads */
    spec[ST_SPEC_XVEC] = wd % 4 == 0; /* vec4 row loads and stores */
    kern = get_kernel(dev, id, bind, 4, spec, sizeof pc, err);
    gx = (uint32_t)((ow + 31) / 32);
    gy = (uint32_t)((oh + 3) / 4);
    gz = (uint32_t)((co + ob - 1) / ob);
  } else if (ck == CONV_TILED) {
    spec[ST_SPEC_K] = k;
    spec[ST_SPEC_STRIDE] = stride;
    kern = get_kernel(dev, ST_SHADER_CONV2D_TILED, bind, 4, spec, sizeof pc, err);
    gx = (uint32_t)((ow + 63) / 64); /* tile: 64x8 pixels x 8 output channels */
    gy = (uint32_t)((oh + 7) / 8);
    gz = (uint32_t)((co + 7) / 8);
  } else {
    spec[ST_SPEC_K] = k;
    spec[ST_SPEC_STRIDE] = stride;
    kern = get_kernel(dev, ST_SHADER_CONV2D, bind, 4, spec, sizeof pc, err);
    gx = (uint32_t)((ow + 63) / 64);
    gy = (uint32_t)oh;
    gz = (uint32_t)((co + 3) / 4);
  }
  if (!kern || !check_grid(gx, gy, gz, op, err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 4, &pc, sizeof pc, gx, gy, gz);
  return true;
}

/* input channels of the transformed weights: whole blocks of 4 (conv3x3_sg.comp) */
static int winograd_ci4(int ci) { return (ci + 3) / 4 * 4; }

size_t st_winograd_weights_numel(int co, int ci) {
  return (size_t)co * (size_t)winograd_ci4(ci) * 16;
}

void st_winograd_shape(StTensor *u, int co, int ci) {
  u->rank = 3;
  u->shape[0] = co;
  u->shape[1] = winograd_ci4(ci);
  u->shape[2] = 16;
}

void st_winograd_weights(const float *w, int co, int ci, float *u) {
  int ci4 = winograd_ci4(ci);
  memset(u, 0, st_winograd_weights_numel(co, ci) * sizeof *u);
  for (int o = 0; o < co; o++)
    for (int c = 0; c < ci; c++) {
      const float *g = w + ((size_t)o * ci + c) * 9;
      float t[4][3]; /* G g, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] */
      for (int j = 0; j < 3; j++) {
        t[0][j] = g[j];
        t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        t[3][j] = g[6 + j];
      }
      float *uo = u + ((size_t)o * ci4 + c) * 16; /* (G g) G^T */
      for (int i = 0; i < 4; i++) {
        uo[4 * i] = t[i][0];
        uo[4 * i + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        uo[4 * i + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        uo[4 * i + 3] = t[i][2];
      }
    }
}

/* Not for 4 output channels or fewer: the direct kernel's 4-channel tile is faster there (the
 * network's RGB output: 0.61 against 0.72 ms at 640x360 steps 0, st-bench --per-op). */
bool st_op_winograd_applies(StDevice *dev, int k, int stride, int co) {
  return k == 3 && stride == 1 && co > 4 && dev->conv_force == FORCE_AUTO && conv_sg_device(dev);
}

bool st_op_conv2d_winograd(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *u,
                           const StTensor *b, StPad pad, StAct act, float alpha, const StTensor *y,
                           StError *err) {
  const char *op = "conv2d (Winograd)";
  ConvPC pc;
  if (!conv_args(dev, cmd, op, x, u, b, 3, 1, pad, act, alpha, y, &pc, err))
    return false;
  int ci = x->shape[0], co = y->shape[0];
  if (!conv_sg_device(dev))
    return st_set_error(err, ST_ERROR_ARGUMENT,
                        "%s: needs 8-wide subgroups with shuffles (st_op_winograd_applies)", op);
  if (u->shape[0] != co || st_tensor_numel(u) != st_winograd_weights_numel(co, ci)) {
    char exp[96];
    snprintf(exp, sizeof exp, "[%d,%d,16] (st_winograd_weights)", co, winograd_ci4(ci));
    return shape_error(err, op, "weight", u, exp);
  }
  const StTensor *bind[4] = {x, u, b ? b : u, y};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_ACT] = (int32_t)act;
  spec[ST_SPEC_HAS_BIAS] = b != NULL;
  spec[ST_SPEC_REFLECT] = pad == ST_PAD_REFLECT;
  spec[ST_SPEC_XVEC] = x->shape[2] % 4 == 0;
  int ob = conv_sg_ob(co, 3);
  if (ob < 8)
    ob = 8; /* no 4-channel tile */
  StShaderId id = ob == 32   ? ST_SHADER_CONV3X3_WG_O32
                  : ob == 16 ? ST_SHADER_CONV3X3_WG_O16
                             : ST_SHADER_CONV3X3_WG_O8;
  StKernel *kern = get_kernel(dev, id, bind, 4, spec, sizeof pc, err);
  uint32_t gx = (pc.ow + 31) / 32, gy = (pc.oh + 3) / 4, gz = (uint32_t)((co + ob - 1) / ob);
  if (!kern || !check_grid(gx, gy, gz, op, err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 4, &pc, sizeof pc, gx, gy, gz);
  return true;
}

/* ---- pooling / resize -------------------------------------------------------------------- */

bool st_op_pool(StDevice *dev, StCmd *cmd, const StTensor *x, StPoolMode mode, int window,
                const StTensor *y, StError *err) {
  const char *op = "pool";
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(x, op, "input", err) ||
      !check_tensor(y, op, "output", err))
    return false;
  if (mode != ST_POOL_AVG && mode != ST_POOL_MAX)
    return st_set_error(err, ST_ERROR_ARGUMENT, "pool: unknown mode %d", (int)mode);
  if (window != 2 && window != 4)
    return st_set_error(err, ST_ERROR_ARGUMENT, "pool: window %d (2 or 4)", window);
  if (x->rank != 3)
    return shape_error(err, op, "input", x, "[C,H,W]");
  int c = x->shape[0], h = x->shape[1], w = x->shape[2];
  int oh = (h + window - 1) / window, ow = (w + window - 1) / window;
  if (!is_shape3(y, c, oh, ow)) {
    char exp[64];
    snprintf(exp, sizeof exp, "[%d,%d,%d]", c, oh, ow);
    return shape_error(err, op, "output", y, exp);
  }
  struct {
    uint32_t h, w, oh, ow, k;
  } pc = {(uint32_t)h, (uint32_t)w, (uint32_t)oh, (uint32_t)ow, (uint32_t)window};
  const StTensor *bind[2] = {x, y};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_MODE] = mode == ST_POOL_MAX;
  /* window 2: four outputs per invocation (W % 8 == 0); window 4: vec4 loads along the window's
   * rows (W % 4 == 0), four outputs per invocation (W % 16 == 0) (pool.comp) */
  int vec4 = window == 2 ? w % 8 == 0 : (w % 16 == 0 ? 2 : w % 4 == 0);
  spec[ST_SPEC_VEC4] = vec4;
  StKernel *kern = get_kernel(dev, ST_SHADER_POOL, bind, 2, spec, sizeof pc, err);
  int per = (window == 2 && vec4) || vec4 == 2 ? 4 : 1;
  uint32_t gx = (uint32_t)((ow / per + 63) / 64), gy = (uint32_t)oh, gz = (uint32_t)c;
  if (!kern || !check_grid(gx, gy, gz, op, err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 2, &pc, sizeof pc, gx, gy, gz);
  return true;
}

/* resize.comp: mode 0 nearest, 1 bilinear, 2 translate by (ty, tx) (shapes checked by callers) */
static bool resample(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *y, int mode,
                     int ty, int tx, StError *err) {
  int c = x->shape[0], h = x->shape[1], w = x->shape[2], oh = y->shape[1], ow = y->shape[2];
  struct {
    uint32_t h, w, oh, ow;
    float sy, sx;
    int32_t ty, tx;
  } pc = {(uint32_t)h,          (uint32_t)w,          (uint32_t)oh, (uint32_t)ow,
          (float)h / (float)oh, (float)w / (float)ow, ty,           tx};
  const StTensor *bind[2] = {x, y};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_MODE] = mode;
  /* the 2x bilinear upsampling of the decoders, 2 x 8 outputs per invocation (resize.comp) */
  bool up2x = mode == 1 && oh == 2 * h && ow == 2 * w && w % 4 == 0;
  spec[ST_SPEC_VEC4] = up2x;
  StKernel *kern = get_kernel(dev, ST_SHADER_RESIZE, bind, 2, spec, sizeof pc, err);
  uint32_t gx = up2x ? (uint32_t)((w / 4 + 63) / 64) : (uint32_t)((ow + 63) / 64);
  uint32_t gy = up2x ? (uint32_t)h : (uint32_t)oh, gz = (uint32_t)c;
  if (!kern || !check_grid(gx, gy, gz, mode == 2 ? "translate" : "resize", err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 2, &pc, sizeof pc, gx, gy, gz);
  return true;
}

bool st_op_resize(StDevice *dev, StCmd *cmd, const StTensor *x, StResizeMode mode,
                  const StTensor *y, StError *err) {
  const char *op = "resize";
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(x, op, "input", err) ||
      !check_tensor(y, op, "output", err))
    return false;
  if (mode != ST_RESIZE_NEAREST && mode != ST_RESIZE_BILINEAR)
    return st_set_error(err, ST_ERROR_ARGUMENT, "resize: unknown mode %d", (int)mode);
  if (x->rank != 3)
    return shape_error(err, op, "input", x, "[C,h,w]");
  if (y->rank != 3 || y->shape[0] != x->shape[0]) {
    char exp[64];
    snprintf(exp, sizeof exp, "[%d,H,W]", x->shape[0]);
    return shape_error(err, op, "output", y, exp);
  }
  return resample(dev, cmd, x, y, mode == ST_RESIZE_BILINEAR ? 1 : 0, 0, 0, err);
}

bool st_op_translate(StDevice *dev, StCmd *cmd, const StTensor *x, int ty, int tx,
                     const StTensor *y, StError *err) {
  const char *op = "translate";
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(x, op, "input", err) ||
      !check_tensor(y, op, "output", err))
    return false;
  if (x->rank != 3)
    return shape_error(err, op, "input", x, "[C,h,w]");
  if (y->rank != 3 || y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] ||
      y->shape[2] != x->shape[2]) {
    char exp[64];
    snprintf(exp, sizeof exp, "[%d,%d,%d]", x->shape[0], x->shape[1], x->shape[2]);
    return shape_error(err, op, "output", y, exp);
  }
  return resample(dev, cmd, x, y, 2, ty, tx, err);
}

bool st_op_temporal_blend(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *prev_out,
                          const StTensor *cur_in, const StTensor *prev_in, const StTensor *flow,
                          const StBlendParams *bp, const StTensor *y, StError *err) {
  const char *op = "temporal_blend";
  const StTensor *imgs[5] = {x, prev_out, cur_in, prev_in, y};
  const char *names[5] = {"input", "previous output", "current content", "previous content",
                          "output"};
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(flow, op, "motion field", err))
    return false;
  for (int i = 0; i < 5; i++) {
    if (!check_tensor(imgs[i], op, names[i], err))
      return false;
    if (imgs[i]->rank != 3 || imgs[i]->shape[0] != 3 || imgs[i]->shape[1] != x->shape[1] ||
        imgs[i]->shape[2] != x->shape[2]) {
      char exp[64];
      snprintf(exp, sizeof exp, "[3,%d,%d]", x->shape[1], x->shape[2]);
      return shape_error(err, op, names[i], imgs[i], exp);
    }
  }
  if (flow->rank != 3 || flow->shape[0] != 2)
    return shape_error(err, op, "motion field", flow, "[2,BH,BW]");
  if (!bp || !(bp->block_x > 0.0f) || !(bp->block_y > 0.0f) || !(bp->keep >= 0.0f) ||
      !(bp->keep <= 1.0f) || !(bp->thr > 0.0f))
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: bad parameters", op);
  struct {
    uint32_t h, w, bh, bw;
    float block_x, block_y, keep, inv_thr;
  } pc = {(uint32_t)x->shape[1],
          (uint32_t)x->shape[2],
          (uint32_t)flow->shape[1],
          (uint32_t)flow->shape[2],
          bp->block_x,
          bp->block_y,
          bp->keep,
          1.0f / bp->thr};
  const StTensor *bind[6] = {x, prev_out, cur_in, prev_in, flow, y};
  int32_t spec[ST_SPEC_COUNT] = {0};
  StKernel *kern = get_kernel(dev, ST_SHADER_TEMPORAL_BLEND, bind, 6, spec, sizeof pc, err);
  uint32_t gx = (pc.w + 63) / 64, gy = pc.h;
  if (!kern || !check_grid(gx, gy, 1, op, err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 6, &pc, sizeof pc, gx, gy, 1);
  return true;
}

/* ---- elementwise ------------------------------------------------------------------------- */

/* eltwise.comp's BCAST of a second operand b over a: 0 same size, 1 b [C] over H*W, 2 b [1,H,W]
 * over C; false with a shape error otherwise. */
static bool elt_bcast(const StTensor *a, const StTensor *b, const char *op, int *bcast,
                      StError *err) {
  *bcast = 0;
  if (st_tensor_numel(b) == st_tensor_numel(a))
    return true;
  if (a->rank == 3 && b->rank == 1 && b->shape[0] == a->shape[0]) {
    *bcast = 1;
    return true;
  }
  if (a->rank == 3 && is_shape3(b, 1, a->shape[1], a->shape[2])) {
    *bcast = 2;
    return true;
  }
  char exp[160], s[64];
  shape_str(a, s, sizeof s);
  if (a->rank == 3)
    snprintf(exp, sizeof exp, "%s, [%d] or [1,%d,%d]", s, a->shape[0], a->shape[1], a->shape[2]);
  else
    snprintf(exp, sizeof exp, "%s", s);
  return shape_error(err, op, "second input", b, exp);
}

/* Stage 0 is the op itself (any StEltKind), stages 1..n-1 a fused chain (add, mul or div)
 * applied to its result (eltwise.comp CHAIN). */
static bool eltwise_stages(StDevice *dev, StCmd *cmd, const char *op, const StTensor *a,
                           const StEltStage *st, int nst, const StTensor *y, StError *err) {
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(a, op, "input", err) ||
      !check_tensor(y, op, "output", err))
    return false;
  if (nst < 1 || nst > ST_ELT_CHAIN_MAX)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: %d stages (1 to %d)", op, nst,
                        ST_ELT_CHAIN_MAX);
  size_t n = st_tensor_numel(a);
  uint32_t hw = a->rank == 3 ? (uint32_t)a->shape[1] * (uint32_t)a->shape[2] : 1;
  int bcast[ST_ELT_CHAIN_MAX] = {0};
  bool vec4 = n % 4 == 0; /* four elements per invocation where every operand allows it */
  for (int i = 0; i < nst; i++) {
    if (st[i].kind < (i == 0 ? ST_ELT_ACT : ST_ELT_ADD) || st[i].kind > ST_ELT_DIV)
      return st_set_error(err, ST_ERROR_ARGUMENT, "%s: stage %d has kind %d", op, i, st[i].kind);
    if (!check_act(st[i].act, true, op, err))
      return false;
    if (st[i].kind == ST_ELT_ACT)
      continue;
    if (!check_tensor(st[i].b, op, "second input", err) ||
        !elt_bcast(a, st[i].b, op, &bcast[i], err))
      return false;
    vec4 = vec4 && (bcast[i] == 0 || hw % 4 == 0);
  }
  if (st_tensor_numel(y) != n) {
    char s[64];
    shape_str(a, s, sizeof s);
    return shape_error(err, op, "output", y, s);
  }
  struct {
    uint32_t n, hw;
    float ka, kb, alpha;
    float cka[ST_ELT_CHAIN_MAX - 1], ckb[ST_ELT_CHAIN_MAX - 1], calpha[ST_ELT_CHAIN_MAX - 1];
  } pc = {(uint32_t)(vec4 ? n / 4 : n), hw, st[0].ka, st[0].kb, st[0].alpha, {0}, {0}, {0}};
  /* bindings: a, b, y, then the chain's operands (a where a stage is absent) */
  const StTensor *bind[3 + ST_ELT_CHAIN_MAX - 1] = {
      a, st[0].kind != ST_ELT_ACT ? st[0].b : a, y, a, a, a};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_ELT_OP] = st[0].kind;
  spec[ST_SPEC_ACT] = (int32_t)st[0].act;
  spec[ST_SPEC_BCAST] = bcast[0];
  spec[ST_SPEC_VEC4] = vec4;
  for (int i = 1; i < nst; i++) {
    spec[ST_SPEC_CHAIN] |= (st[i].kind | bcast[i] << 2 | (int32_t)st[i].act << 4) << (8 * (i - 1));
    pc.cka[i - 1] = st[i].ka;
    pc.ckb[i - 1] = st[i].kb;
    pc.calpha[i - 1] = st[i].alpha;
    bind[2 + i] = st[i].b;
  }
  StKernel *kern = get_kernel(dev, ST_SHADER_ELTWISE, bind, 6, spec, sizeof pc, err);
  uint32_t gx = 0, gy = 0;
  if (!kern || !split_groups((pc.n + 255) / 256, &gx, &gy, op, err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 6, &pc, sizeof pc, gx, gy, 1);
  return true;
}

static bool eltwise(StDevice *dev, StCmd *cmd, const char *op, StEltKind kind, const StTensor *a,
                    const StTensor *b, float ka, float kb, StAct act, float alpha,
                    const StTensor *y, StError *err) {
  StEltStage st = {.kind = kind, .b = b, .ka = ka, .kb = kb, .act = act, .alpha = alpha};
  return eltwise_stages(dev, cmd, op, a, &st, 1, y, err);
}

bool st_op_eltwise_chain(StDevice *dev, StCmd *cmd, const StTensor *a, const StEltStage *stages,
                         int n, const StTensor *y, StError *err) {
  if (n >= 1 && stages[0].kind == ST_ELT_ACT)
    return st_set_error(err, ST_ERROR_ARGUMENT, "eltwise chain: stage 0 has kind 0");
  return eltwise_stages(dev, cmd, "eltwise chain", a, stages, n, y, err);
}

bool st_op_add(StDevice *dev, StCmd *cmd, const StTensor *a, const StTensor *b, float ka, float kb,
               StAct act, float alpha, const StTensor *y, StError *err) {
  return eltwise(dev, cmd, "add", ST_ELT_ADD, a, b, ka, kb, act, alpha, y, err);
}

bool st_op_mul(StDevice *dev, StCmd *cmd, const StTensor *a, const StTensor *b, StAct act,
               float alpha, const StTensor *y, StError *err) {
  return eltwise(dev, cmd, "mul", ST_ELT_MUL, a, b, 1.0f, 1.0f, act, alpha, y, err);
}

bool st_op_div(StDevice *dev, StCmd *cmd, const StTensor *a, const StTensor *b, StAct act,
               float alpha, const StTensor *y, StError *err) {
  return eltwise(dev, cmd, "div", ST_ELT_DIV, a, b, 1.0f, 1.0f, act, alpha, y, err);
}

bool st_op_act(StDevice *dev, StCmd *cmd, const StTensor *x, StAct act, float alpha,
               const StTensor *y, StError *err) {
  return eltwise(dev, cmd, "act", ST_ELT_ACT, x, NULL, 1.0f, 1.0f, act, alpha, y, err);
}

/* ---- reductions -------------------------------------------------------------------------- */

bool st_op_moments(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *w, float eps,
                   const StTensor *mean, const StTensor *std, StError *err) {
  const char *op = "moments";
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(x, op, "input", err) ||
      (w && !check_tensor(w, op, "mask", err)) || !check_tensor(mean, op, "mean", err) ||
      !check_tensor(std, op, "std", err))
    return false;
  if (x->rank != 3)
    return shape_error(err, op, "input", x, "[C,H,W]");
  int c = x->shape[0];
  char exp[64];
  if (w && !is_shape3(w, 1, x->shape[1], x->shape[2])) {
    snprintf(exp, sizeof exp, "[1,%d,%d]", x->shape[1], x->shape[2]);
    return shape_error(err, op, "mask", w, exp);
  }
  snprintf(exp, sizeof exp, "[%d]", c);
  if (st_tensor_numel(mean) != (size_t)c)
    return shape_error(err, op, "mean", mean, exp);
  if (st_tensor_numel(std) != (size_t)c)
    return shape_error(err, op, "std", std, exp);
  struct {
    uint32_t c, hw;
    float eps;
  } pc = {(uint32_t)c, (uint32_t)x->shape[1] * (uint32_t)x->shape[2], eps};
  /* moments_sg (one 8-wide subgroup per channel, subgroupAdd) on devices with such subgroups
   * while its two passes of hw / 8 steps stay within the CPU loop limit; else moments.comp: two
   * passes of hw / 256 steps per invocation and two (masked: three) 8-step tree reductions */
  size_t steps_sg = 2 * (((size_t)pc.hw + 7) / 8);
  bool sg = sg8_device(dev, VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) && steps_sg <= CPU_LOOP_ITERATIONS;
  if (!sg && !cpu_loops_fit(dev, 2 * (((size_t)pc.hw + 255) / 256) + (w ? 24 : 16), op, "channel",
                            pc.hw, err))
    return false;
  /* binding 3 is the mask; x stands in for it without one (MASKED = 0 does not read it) */
  const StTensor *bind[4] = {x, mean, std, w ? w : x};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_MASKED] = w != NULL;
  StKernel *kern =
      get_kernel(dev, sg ? ST_SHADER_MOMENTS_SG : ST_SHADER_MOMENTS, bind, 4, spec, sizeof pc, err);
  uint32_t gx = 0, gy = 0;
  if (!kern || !split_groups((size_t)c, &gx, &gy, op, err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 4, &pc, sizeof pc, gx, gy, 1);
  return true;
}

/* The push constants of the reduction kernels that split K into chunks (matmul.comp,
 * matmul_sg.comp, gram_sg.comp): sizes, scale, this dispatch's [k0, k1), flags bit 0: add the
 * previous chunk's sums, bit 1: the last chunk. */
typedef struct {
  uint32_t m, n, k;
  float scale;
  uint32_t k0, k1, flags;
} KChunkPush;

/* Records one dispatch of `kern` per chunk of `chunk` elements of pc->k. */
static void dispatch_k_chunks(StCmd *cmd, StKernel *kern, const StTensor *bind[3], KChunkPush *pc,
                              uint32_t chunk, uint32_t nchunks, uint32_t gx, uint32_t gy) {
  for (uint32_t i = 0; i < nchunks; i++) {
    pc->k0 = i * chunk;
    pc->k1 = i + 1 == nchunks ? pc->k : (i + 1) * chunk;
    pc->flags = (i > 0 ? 1u : 0u) | (i + 1 == nchunks ? 2u : 0u);
    st_cmd_dispatch(cmd, kern, bind, 3, pc, sizeof *pc, gx, gy, 1);
  }
}

/* c = scale * op(a) op(b) with matmul.comp, or with matmul_sg.comp when `sg` (CPU devices, no
 * transposes, N % 4 == 0, no CENTER/SQRT; st_op_matmul decides): TM = 8 rows x 32 columns of c
 * per 8-invocation workgroup, without shared memory. On lavapipe the wide chain model's 141
 * matmuls per frame (32..128 channels, Newton-Schulz) took 54 ms with matmul_sg instead of 410 ms
 * with matmul.comp (st-bench --per-op at 256x192, ST_GRAM_KERNEL=matmul for the latter). */
static bool matmul_dispatch(StDevice *dev, StCmd *cmd, const char *op, const StTensor *a,
                            const StTensor *b, const StTensor *c, int m, int n, int k, bool ta,
                            bool tb, bool center, bool sqrt_, float scale, bool sg, StError *err) {
  /* On CPU devices K is split into chunks (llvmpipe ends longer loops silently: K = 1.1M lost
   * terms in test_ops): MATMUL_CPU_CHUNK for matmul.comp, GRAM_SG_ITERATIONS for matmul_sg (one
   * loop iteration per element per lane); one pass elsewhere. */
  uint32_t chunk = sg ? GRAM_SG_ITERATIONS : dev->is_cpu ? MATMUL_CPU_CHUNK : (uint32_t)k;
  uint32_t nchunks = ((uint32_t)k + chunk - 1) / chunk;
  if (nchunks < 1)
    nchunks = 1;
  if (nchunks > 1 && (center || c->dtype != ST_F32))
    return st_set_error(err, ST_ERROR_ARGUMENT,
                        "%s: a reduction over %d elements needs %u passes on %s, which the %s form "
                        "does not support (use a smaller processing size)",
                        op, k, nchunks, st_device_name(dev), center ? "centred" : "fp16-output");
  KChunkPush pc = {(uint32_t)m, (uint32_t)n, (uint32_t)k, scale, 0, 0, 0};
  const StTensor *bind[3] = {a, b, c};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_TA] = ta;
  spec[ST_SPEC_TB] = tb;
  spec[ST_SPEC_CENTER] = center;
  spec[ST_SPEC_SQRT] = sqrt_;
  StKernel *kern =
      get_kernel(dev, sg ? ST_SHADER_MATMUL_SG : ST_SHADER_MATMUL, bind, 3, spec, sizeof pc, err);
  uint32_t gx = sg ? (uint32_t)((n / 4 + 7) / 8) : (uint32_t)((n + 31) / 32);
  uint32_t gy = sg ? (uint32_t)((m + 7) / 8) : (uint32_t)((m + 31) / 32);
  if (!kern || !check_grid(gx, gy, 1, op, err))
    return false;
  dispatch_k_chunks(cmd, kern, bind, &pc, chunk, nchunks, gx, gy);
  return true;
}

/* Gram kernel: gram_sg.comp on devices with 8-wide subgroups and subgroupAdd (lavapipe: 20-50x
 * the shared-memory matmul there, whose 256-invocation workgroups with barriers run as coroutines
 * on one CPU thread); matmul.comp elsewhere. ST_GRAM_KERNEL=sg|matmul (read when the device is
 * opened; st_op_force_gram_kernel) forces one (tests; sg falls back to matmul where it is not
 * supported); "matmul" also turns matmul_sg.comp off for st_op_matmul. */
static bool gram_sg_choice(StDevice *dev) {
  return dev->gram_force != FORCE_GRAM_MATMUL &&
         sg8_device(dev, VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
}

bool st_op_gram(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *y, bool center,
                bool sqrt_, const StTensor *g, StError *err) {
  const char *op = "gram";
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(x, op, "input", err) ||
      (y && !check_tensor(y, op, "second input", err)) || !check_tensor(g, op, "output", err))
    return false;
  if (x->rank != 3)
    return shape_error(err, op, "input", x, "[C,H,W]");
  if (!y)
    y = x;
  char exp[64];
  if (y->rank != 3 || y->shape[1] != x->shape[1] || y->shape[2] != x->shape[2]) {
    snprintf(exp, sizeof exp, "[D,%d,%d]", x->shape[1], x->shape[2]);
    return shape_error(err, op, "second input", y, exp);
  }
  int c = x->shape[0], d = y->shape[0], hw = x->shape[1] * x->shape[2];
  if (g->rank != 2 || g->shape[0] != c || g->shape[1] != d) {
    snprintf(exp, sizeof exp, "[%d,%d]", c, d);
    return shape_error(err, op, "output", g, exp);
  }
  if (gram_sg_choice(dev)) {
    /* gram_sg: one 8-wide subgroup per 16x16 tile of g over the whole reduction, in chunks of at
     * most GRAM_SG_ITERATIONS loop iterations per lane (K / 32 with vec4 loads, K / 8 without):
     * llvmpipe silently ends longer loops (LP_MAX_TGSI_LOOP_ITERATIONS = 65535). */
    bool kvec = hw % 4 == 0;
    size_t chunk = (size_t)GRAM_SG_ITERATIONS * (kvec ? 32 : 8);
    uint32_t nchunks = (uint32_t)(((size_t)hw + chunk - 1) / chunk);
    if (nchunks > 1 && (center || g->dtype != ST_F32))
      return st_set_error(err, ST_ERROR_ARGUMENT,
                          "gram: %d elements per channel need %u passes on %s, which the %s "
                          "form does not support (use a smaller processing size)",
                          hw, nchunks, st_device_name(dev), center ? "centred" : "fp16-output");
    KChunkPush pc = {(uint32_t)c, (uint32_t)d, (uint32_t)hw, 1.0f / (float)hw, 0, 0, 0};
    const StTensor *bind[3] = {x, y, g};
    int32_t spec[ST_SPEC_COUNT] = {0};
    spec[ST_SPEC_CENTER] = center;
    spec[ST_SPEC_SQRT] = sqrt_;
    spec[ST_SPEC_KVEC] = kvec;
    StKernel *kern = get_kernel(dev, ST_SHADER_GRAM_SG, bind, 3, spec, sizeof pc, err);
    uint32_t gx = (uint32_t)((d + 15) / 16), gy = (uint32_t)((c + 15) / 16);
    if (!kern || !check_grid(gx, gy, 1, op, err))
      return false;
    dispatch_k_chunks(cmd, kern, bind, &pc, (uint32_t)chunk, nchunks, gx, gy);
    return true;
  }
  return matmul_dispatch(dev, cmd, op, x, y, g, c, d, hw, false, true, center, sqrt_,
                         1.0f / (float)hw, false, err);
}

bool st_op_matmul(StDevice *dev, StCmd *cmd, const StTensor *a, const StTensor *b, bool ta, bool tb,
                  const StTensor *c, StError *err) {
  const char *op = "matmul";
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(a, op, "a", err) ||
      !check_tensor(b, op, "b", err) || !check_tensor(c, op, "output", err))
    return false;
  if (a->rank != 2)
    return shape_error(err, op, "a", a, ta ? "[K,M]" : "[M,K]");
  int m = ta ? a->shape[1] : a->shape[0], k = ta ? a->shape[0] : a->shape[1];
  char exp[64];
  if (b->rank != 2 || (tb ? b->shape[1] : b->shape[0]) != k) {
    snprintf(exp, sizeof exp, tb ? "[N,%d]" : "[%d,N]", k);
    return shape_error(err, op, "b", b, exp);
  }
  int n = tb ? b->shape[0] : b->shape[1];
  if (c->rank != 2 || c->shape[0] != m || c->shape[1] != n) {
    snprintf(exp, sizeof exp, "[%d,%d]", m, n);
    return shape_error(err, op, "output", c, exp);
  }
  bool sg = !ta && !tb && n % 4 == 0 && dev->is_cpu && dev->gram_force != FORCE_GRAM_MATMUL;
  return matmul_dispatch(dev, cmd, op, a, b, c, m, n, k, ta, tb, false, false, 1.0f, sg, err);
}

/* The longest row linear_rows.comp sums: llvmpipe's loop limiter ends a shader loop after 65535
 * iterations (see the shader). */
#define LINEAR_ROWS_MAX_K 32768

bool st_op_linear(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *w,
                  const StTensor *b, StAct act, float alpha, const StTensor *y, StError *err) {
  const char *op = "linear";
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(x, op, "input", err) ||
      !check_tensor(w, op, "weight", err) || (b && !check_tensor(b, op, "bias", err)) ||
      !check_tensor(y, op, "output", err) || !check_act(act, false, op, err))
    return false;
  size_t k = st_tensor_numel(x);
  char exp[64];
  if (w->rank != 2 || (size_t)w->shape[1] != k) {
    snprintf(exp, sizeof exp, "[N,%zu]", k);
    return shape_error(err, op, "weight", w, exp);
  }
  int n = w->shape[0];
  snprintf(exp, sizeof exp, "[%d]", n);
  if (b && st_tensor_numel(b) != (size_t)n)
    return shape_error(err, op, "bias", b, exp);
  if (st_tensor_numel(y) != (size_t)n)
    return shape_error(err, op, "output", y, exp);
  struct {
    uint32_t n, k;
    float alpha;
  } pc = {(uint32_t)n, (uint32_t)k, alpha};
  const StTensor *bind[4] = {x, w, b ? b : w, y};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_ACT] = (int32_t)act;
  spec[ST_SPEC_HAS_BIAS] = b != NULL;
  /* linear_rows.comp (one invocation per output) on CPU drivers and for short rows, up to
   * LINEAR_ROWS_MAX_K; linear.comp (one workgroup per output, a parallel reduction over k)
   * otherwise. ST_LINEAR_KERNEL=rows|reduce forces one (read when the device is opened; rows
   * falls back to reduce past LINEAR_ROWS_MAX_K). */
  bool rows =
      k <= LINEAR_ROWS_MAX_K && (dev->linear_force == FORCE_LINEAR_ROWS ||
                                 (dev->linear_force == FORCE_AUTO && (dev->is_cpu || k <= 256)));
  /* reduce: k / 256 steps per invocation and the 8-step tree reduction */
  if (!rows && !cpu_loops_fit(dev, ((size_t)k + 255) / 256 + 8, op, "row", k, err))
    return false;
  StKernel *kern = get_kernel(dev, rows ? ST_SHADER_LINEAR_ROWS : ST_SHADER_LINEAR, bind, 4, spec,
                              sizeof pc, err);
  uint32_t gx = 0, gy = 0;
  if (!kern || !split_groups(rows ? ((size_t)n + 63) / 64 : (size_t)n, &gx, &gy, op, err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 4, &pc, sizeof pc, gx, gy, 1);
  return true;
}

bool st_op_softmax(StDevice *dev, StCmd *cmd, const StTensor *x, float scale, const StTensor *y,
                   StError *err) {
  const char *op = "softmax";
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(x, op, "input", err) ||
      !check_tensor(y, op, "output", err))
    return false;
  if (x->rank != 2)
    return shape_error(err, op, "input", x, "[M,N]");
  if (!(y->rank == 2 && y->shape[0] == x->shape[0] && y->shape[1] == x->shape[1])) {
    char exp[64];
    snprintf(exp, sizeof exp, "[%d,%d]", x->shape[0], x->shape[1]);
    return shape_error(err, op, "output", y, exp);
  }
  struct {
    uint32_t m, n;
    float scale;
  } pc = {(uint32_t)x->shape[0], (uint32_t)x->shape[1], scale};
  /* three passes of n / 256 steps per invocation, and the two 8-step tree reductions */
  if (!cpu_loops_fit(dev, 3 * (((size_t)pc.n + 255) / 256) + 16, op, "row", pc.n, err))
    return false;
  const StTensor *bind[2] = {x, y};
  int32_t spec[ST_SPEC_COUNT] = {0};
  StKernel *kern = get_kernel(dev, ST_SHADER_SOFTMAX, bind, 2, spec, sizeof pc, err);
  uint32_t gx = 0, gy = 0;
  if (!kern || !split_groups((size_t)x->shape[0], &gx, &gy, op, err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 2, &pc, sizeof pc, gx, gy, 1);
  return true;
}

bool st_op_concat(StDevice *dev, StCmd *cmd, const StTensor *const *xs, int n, const StTensor *y,
                  StError *err) {
  const char *op = "concat";
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(y, op, "output", err))
    return false;
  if (n < 1 || !xs)
    return st_set_error(err, ST_ERROR_ARGUMENT, "concat: no inputs");
  if (y->rank != 3)
    return shape_error(err, op, "output", y, "[C,H,W]");
  int h = y->shape[1], w = y->shape[2], csum = 0;
  char exp[64];
  for (int i = 0; i < n; i++) {
    char what[32];
    snprintf(what, sizeof what, "input %d", i);
    if (!check_tensor(xs[i], op, what, err))
      return false;
    if (xs[i]->rank != 3 || xs[i]->shape[1] != h || xs[i]->shape[2] != w) {
      snprintf(exp, sizeof exp, "[C,%d,%d]", h, w);
      return shape_error(err, op, what, xs[i], exp);
    }
    csum += xs[i]->shape[0];
  }
  if (y->shape[0] != csum) {
    snprintf(exp, sizeof exp, "[%d,%d,%d]", csum, h, w);
    return shape_error(err, op, "output", y, exp);
  }
  uint32_t off = 0;
  for (int i = 0; i < n; i++) {
    size_t cnt = st_tensor_numel(xs[i]);
    /* four elements per invocation where the input and its place in y allow vec4 access */
    bool vec4 = cnt % 4 == 0 && off % 4 == 0;
    struct {
      uint32_t n, dst_off;
    } pc = {(uint32_t)(vec4 ? cnt / 4 : cnt), vec4 ? off / 4 : off};
    const StTensor *bind[2] = {xs[i], y};
    int32_t spec[ST_SPEC_COUNT] = {0};
    spec[ST_SPEC_VEC4] = vec4;
    StKernel *kern = get_kernel(dev, ST_SHADER_COPY, bind, 2, spec, sizeof pc, err);
    uint32_t gx = 0, gy = 0;
    if (!kern || !split_groups((pc.n + 255) / 256, &gx, &gy, op, err))
      return false;
    st_cmd_dispatch(cmd, kern, bind, 2, &pc, sizeof pc, gx, gy, 1);
    off += (uint32_t)cnt;
  }
  return true;
}

/* ---- frames ------------------------------------------------------------------------------ */

typedef struct {
  uint64_t off;
  int stride, rows, rowbytes;
} PlaneGeom;

/* Plane geometry of a layout (its format's description in *fi); returns the number of planes or
 * 0 (err set). */
static int frame_planes(const StFrameLayout *l, const StBuffer *buf, const StFormatInfo **fi,
                        PlaneGeom *pg, const char *op, StError *err) {
  if (!l || !buf || !buf->buffer) {
    st_set_error(err, ST_ERROR_ARGUMENT, "%s: no frame layout or buffer", op);
    return 0;
  }
  if (l->width < 1 || l->height < 1 || l->width > 65535 || l->height > 65535) {
    st_set_error(err, ST_ERROR_ARGUMENT, "%s: bad frame size %dx%d", op, l->width, l->height);
    return 0;
  }
  *fi = st_format_info(l->format);
  if (!*fi) {
    st_set_error(err, ST_ERROR_ARGUMENT, "%s: unknown pixel format %d", op, (int)l->format);
    return 0;
  }
  int np = (*fi)->nplanes;
  for (int i = 0; i < np; i++) {
    pg[i].off = l->offsets[i];
    pg[i].stride = l->strides[i];
    st_format_plane_size(*fi, i, l->width, l->height, &pg[i].rowbytes, &pg[i].rows);
    if (pg[i].stride < pg[i].rowbytes) {
      st_set_error(err, ST_ERROR_ARGUMENT, "%s: plane %d stride %d is smaller than its row (%d)",
                   op, i, pg[i].stride, pg[i].rowbytes);
      return 0;
    }
    uint64_t end =
        pg[i].off + (uint64_t)(pg[i].rows - 1) * (uint64_t)pg[i].stride + (uint64_t)pg[i].rowbytes;
    /* The shaders address the buffer in whole 32-bit words. */
    if (end > (buf->size & ~(VkDeviceSize)3) || end > 0xfffffff0u) {
      st_set_error(err, ST_ERROR_ARGUMENT,
                   "%s: plane %d (bytes %llu..%llu) lies outside the frame buffer (%llu bytes)", op,
                   i, (unsigned long long)pg[i].off, (unsigned long long)end,
                   (unsigned long long)buf->size);
      return 0;
    }
  }
  return np;
}

/* The shaders' description of a format and colorimetry (shaders/frame.glsl). */
static bool frame_coeffs(const StFrameLayout *l, const StFormatInfo *fi, uint32_t comp[4],
                         uint32_t *flags, StColorCoeffs *cc, const char *op, StError *err) {
  if (!st_color_coeffs(fi, l->matrix, l->range, cc))
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: unknown colour matrix %d or range %d", op,
                        (int)l->matrix, (int)l->range);
  for (int c = 0; c < 4; c++) {
    const StComponent *k = &fi->comp[c];
    comp[c] = c < fi->ncomp
                  ? (uint32_t)k->offset | (uint32_t)k->pstride << 8 | (uint32_t)k->plane << 16 |
                        (uint32_t)k->wsub << 18 | (uint32_t)k->hsub << 19 |
                        (uint32_t)(k->bytes - 1) << 20 | (uint32_t)k->shift << 21
                  : 0;
  }
  *flags = (fi->yuv ? 1u : 0u) | (uint32_t)fi->ncomp << 4 | (uint32_t)fi->depth << 8;
  return true;
}

/* A one-plane format of four one-byte components per pixel, each at its own byte of the pixel's
 * word, with a word-aligned plane: the PACKED32 paths of frame_to_float.comp and
 * float_to_frame.comp. */
static int packed32(const StFormatInfo *fi, int np, const PlaneGeom *pg) {
  if (np != 1 || fi->ncomp != 4 || fi->depth != 8 || pg[0].off % 4 || pg[0].stride % 4)
    return 0;
  unsigned seen = 0;
  for (int c = 0; c < 4; c++) {
    const StComponent *k = &fi->comp[c];
    if (k->plane != 0 || k->pstride != 4 || k->bytes != 1 || k->shift || k->wsub || k->hsub ||
        k->offset > 3 || (seen & (1u << k->offset)))
      return 0;
    seen |= 1u << k->offset;
  }
  return 1;
}

bool st_op_frame_to_float(StDevice *dev, StCmd *cmd, StBuffer *src, const StFrameLayout *layout,
                          const StTensor *y, StError *err) {
  bool r3 = y && y->rank == 3; /* any other shape is rejected by the shape check */
  return st_op_frame_to_float_pooled(dev, cmd, src, layout, r3 ? y->shape[2] : 1,
                                     r3 ? y->shape[1] : 1, 1, y, err);
}

bool st_op_frame_to_float_pooled(StDevice *dev, StCmd *cmd, StBuffer *src,
                                 const StFrameLayout *layout, int tw, int th, int box,
                                 const StTensor *y, StError *err) {
  const char *op = "frame_to_float";
  PlaneGeom pg[3];
  const StFormatInfo *fi;
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(y, op, "output", err))
    return false;
  int np = frame_planes(layout, src, &fi, pg, op, err);
  if (!np)
    return false;
  if (box != 1 && box != 2 && box != 4)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: pooling window %d (1, 2 or 4)", op, box);
  if (tw < 1 || th < 1)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: image size %dx%d", op, tw, th);
  int oh = (th + box - 1) / box, ow = (tw + box - 1) / box;
  if (!is_shape3(y, 3, oh, ow)) {
    char exp[64];
    snprintf(exp, sizeof exp, "[3,%d,%d]", oh, ow);
    return shape_error(err, op, "output", y, exp);
  }
  struct {
    uint32_t flags, fw, fh, tw, th;
    uint32_t off[3], stride[3];
    uint32_t comp[3];
    float yoff, yinv, coff, dec[4];
    float sx, sy;
    uint32_t box;
  } pc = {0};
  _Static_assert(sizeof pc == 24 * 4, "push constant layout");
  uint32_t comp[4];
  StColorCoeffs cc;
  if (!frame_coeffs(layout, fi, comp, &pc.flags, &cc, op, err))
    return false;
  pc.fw = (uint32_t)layout->width;
  pc.fh = (uint32_t)layout->height;
  pc.tw = (uint32_t)tw;
  pc.th = (uint32_t)th;
  for (int i = 0; i < 3; i++) {
    pc.off[i] = i < np ? (uint32_t)pg[i].off : 0;
    pc.stride[i] = i < np ? (uint32_t)pg[i].stride : 0;
    pc.comp[i] = comp[i];
  }
  /* Reciprocals of the scales, and the matrix over the chroma scale: what the shader compiler
   * made of the constants of the former BT.601-only shader, so that the six formats it had give
   * the same floats as before. */
  pc.yoff = cc.off[0];
  pc.yinv = 1.0f / cc.scale[0];
  pc.coff = cc.off[1];
  for (int i = 0; i < 4; i++)
    pc.dec[i] = cc.dec[i] * (1.0f / cc.scale[1]);
  pc.sx = (float)layout->width / (float)tw;
  pc.sy = (float)layout->height / (float)th;
  pc.box = (uint32_t)box;
  StTensor raw = {src, 0, ST_F32, 1, {(int)(src->size / 4), 1, 1}};
  const StTensor *bind[2] = {&raw, y};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_PACKED32] = packed32(fi, np, pg);
  /* four pixels per invocation: no resize, 16-byte aligned rows of whole vec4s */
  bool rows4 = spec[ST_SPEC_PACKED32] && tw == layout->width && th == layout->height &&
               tw % 4 == 0 && pg[0].off % 16 == 0 && pg[0].stride % 16 == 0;
  /* with box 4 there, one pooled pixel from one 16-byte load per row of its box */
  spec[ST_SPEC_VEC4] = rows4 && box == 1 ? 1 : rows4 && box == 4 ? 2 : 0;
  uint32_t per = spec[ST_SPEC_VEC4] == 1 ? 4 : 1;
  StKernel *kern = get_kernel(dev, ST_SHADER_FRAME_TO_FLOAT, bind, 2, spec, sizeof pc, err);
  uint32_t gx = ((uint32_t)ow / per + 63) / 64, gy = (uint32_t)oh;
  if (!kern || !check_grid(gx, gy, 1, op, err))
    return false;
  st_cmd_dispatch(cmd, kern, bind, 2, &pc, sizeof pc, gx, gy, 1);
  return true;
}

bool st_op_float_to_frame(StDevice *dev, StCmd *cmd, const StTensor *x, const StTensor *orig,
                          bool preserve_colors, StBuffer *dst, const StFrameLayout *layout,
                          StError *err) {
  const char *op = "float_to_frame";
  PlaneGeom pg[3];
  const StFormatInfo *fi;
  if (!check_cmd(dev, cmd, op, err) || !check_tensor(x, op, "input", err) ||
      (preserve_colors && !check_tensor(orig, op, "original", err)))
    return false;
  int np = frame_planes(layout, dst, &fi, pg, op, err);
  if (!np)
    return false;
  if (x->rank != 3 || x->shape[0] != 3)
    return shape_error(err, op, "input", x, "[3,H,W]");
  int xh = x->shape[1], xw = x->shape[2];
  if (preserve_colors && !is_shape3(orig, 3, xh, xw)) {
    char exp[64];
    snprintf(exp, sizeof exp, "[3,%d,%d]", xh, xw);
    return shape_error(err, op, "original", orig, exp);
  }
  struct {
    uint32_t flags;
    uint32_t fw, fh, xw, xh;
    uint32_t plane_off, stride, rows, rowbytes;
    uint32_t word0, nwords;
    uint32_t comp[4];
    float range[4], enc[9];
    float sx, sy;
  } pc = {0};
  _Static_assert(sizeof pc == 30 * 4, "push constant layout");
  uint32_t flags;
  StColorCoeffs cc;
  if (!frame_coeffs(layout, fi, pc.comp, &flags, &cc, op, err))
    return false;
  StTensor raw = {dst, 0, ST_F32, 1, {(int)(dst->size / 4), 1, 1}};
  const StTensor *bind[3] = {x, preserve_colors ? orig : x, &raw};
  int32_t spec[ST_SPEC_COUNT] = {0};
  spec[ST_SPEC_PACKED32] = packed32(fi, np, pg);
  /* 16-byte aligned rows of whole vec4s: four pixels per invocation with x at the frame size (1),
   * a 4x4 block with x upscaled at least 2x on both axes (2) */
  int fw = layout->width, fh = layout->height;
  int vec4 = 0;
  if (spec[ST_SPEC_PACKED32] && fw % 4 == 0 && pg[0].off % 16 == 0 && pg[0].stride % 16 == 0)
    vec4 = xw == fw && xh == fh ? 1 : 2 * xw <= fw && 2 * xh <= fh ? 2 : 0;
  spec[ST_SPEC_VEC4] = vec4;
  StKernel *kern = get_kernel(dev, ST_SHADER_FLOAT_TO_FRAME, bind, 3, spec, sizeof pc, err);
  if (!kern)
    return false;
  pc.fw = (uint32_t)layout->width;
  pc.fh = (uint32_t)layout->height;
  pc.xw = (uint32_t)xw;
  pc.xh = (uint32_t)xh;
  const float range[4] = {cc.off[0], cc.scale[0], cc.off[1], cc.scale[1]};
  memcpy(pc.range, range, sizeof range);
  memcpy(pc.enc, cc.ky, sizeof cc.ky);
  memcpy(pc.enc + 3, cc.kcb, sizeof cc.kcb);
  memcpy(pc.enc + 6, cc.kcr, sizeof cc.kcr);
  pc.sx = (float)xw / (float)layout->width;
  pc.sy = (float)xh / (float)layout->height;
  for (int i = 0; i < np; i++) {
    uint64_t end =
        pg[i].off + (uint64_t)(pg[i].rows - 1) * (uint64_t)pg[i].stride + (uint64_t)pg[i].rowbytes;
    uint64_t w0 = pg[i].off / 4, w1 = (end + 3) / 4;
    pc.flags = flags | (preserve_colors ? 2u : 0u) | (uint32_t)i << 2;
    pc.plane_off = (uint32_t)pg[i].off;
    pc.stride = (uint32_t)pg[i].stride;
    pc.rows = (uint32_t)pg[i].rows;
    pc.rowbytes = (uint32_t)pg[i].rowbytes;
    if (vec4 == 1) { /* groups of four words (w0 and w1 are multiples of 4 here) */
      w0 /= 4;
      w1 /= 4;
    } else if (vec4 == 2) { /* blocks of 4 x 4 pixels */
      w0 = 0;
      w1 = (uint64_t)(fw / 4) * (uint64_t)((fh + 3) / 4);
    }
    pc.word0 = (uint32_t)w0;
    pc.nwords = (uint32_t)(w1 - w0);
    uint32_t gx = 0, gy = 0;
    if (!split_groups((size_t)((w1 - w0 + 63) / 64), &gx, &gy, op, err))
      return false;
    st_cmd_dispatch(cmd, kern, bind, 3, &pc, sizeof pc, gx, gy, 1);
  }
  return true;
}
