/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Graph executor, public API (st.h): loading (weights on the device), accessors and timings. Plans,
 * recording, frames and the temporal state are in the net_*.c files (net_private.h,
 * compute/README.md).
 */
#include "net_private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Marks in `used` the tensors that some 3x3 stride-1 convolution of `sg` takes as its weight. */
static void mark_conv3x3_weights(const StSubgraph *sg, bool *used) {
  for (int i = 0; i < sg->nops; i++) {
    const StGraphOp *op = &sg->ops[i];
    if (op->kind == ST_GOP_CONV2D && op->weight >= 0 && op->k == 3 && op->stride == 1)
      used[op->weight] = true;
  }
}

/* Where the device takes Winograd 3x3 convolutions (st_op_winograd_applies), places in the
 * weight buffer, after `*total` bytes, the transform (st_winograd_weights) of the weights of the
 * model's 3x3 stride-1 convolutions: net->wg[i] of rank 3 for tensor i (fp32: the transform of
 * the file's values without a second rounding; on CPU devices an fp32 vec4 costs as many loads
 * as an fp16 one), rank 0 elsewhere. net->wg stays NULL on other devices. */
static bool winograd_layout(StNet *net, VkDeviceSize align, VkDeviceSize *total, StError *err) {
  StModel *m = net->model;
  if (!st_op_winograd_applies(net->dev, 3, 1, 8) || m->ntensors == 0)
    return true;
  bool *used = calloc((size_t)m->ntensors, sizeof *used);
  net->wg = calloc((size_t)m->ntensors, sizeof *net->wg);
  if (!used || !net->wg) {
    free(used);
    return st_set_error(err, ST_ERROR_MEMORY, "out of memory");
  }
  const StSubgraph *sgs[3] = {&m->style, &m->initial, &m->masked_initial};
  for (int i = 0; i < 3; i++)
    mark_conv3x3_weights(sgs[i], used);
  for (int i = 0; i < m->nrefine; i++)
    mark_conv3x3_weights(&m->refine[i], used);
  for (int i = 0; i < m->nmasked_refine; i++)
    mark_conv3x3_weights(&m->masked_refine[i], used);
  for (int i = 0; i < m->ntensors; i++) {
    const StModelTensor *t = &m->tensors[i];
    int co = t->shape[0], ci = t->shape[1];
    /* the shape is checked against the graph later (plan): never read past a tensor here */
    if (!used[i] || t->rank != 4 || t->shape[2] != 3 || t->shape[3] != 3 ||
        !st_op_winograd_applies(net->dev, 3, 1, co))
      continue;
    StTensor *u = &net->wg[i];
    *u = (StTensor){.buf = &net->weights, .dtype = ST_F32, .offset = *total};
    st_winograd_shape(u, co, ci);
    *total += ((VkDeviceSize)st_winograd_weights_numel(co, ci) * 4 + align - 1) / align * align;
  }
  free(used);
  return true;
}

/* A file tensor's values as floats (F16 or F32 in the file). */
static void tensor_floats(const StModel *m, const StModelTensor *t, float *f) {
  const uint8_t *src = m->data + t->offset;
  if (t->dtype == ST_F32) {
    memcpy(f, src, t->numel * sizeof *f);
    return;
  }
  for (size_t k = 0; k < t->numel; k++)
    f[k] = st_half_to_float((uint16_t)(src[2 * k] | (src[2 * k + 1] << 8)));
}

static bool upload_weights(StNet *net, StError *err) {
  StModel *m = net->model;
  StDevice *dev = net->dev;
  VkDeviceSize align = st_device_limits(dev)->minStorageBufferOffsetAlignment;
  if (align < 16)
    align = 16;
  net->wt = calloc((size_t)m->ntensors + 1, sizeof *net->wt);
  if (!net->wt)
    return st_set_error(err, ST_ERROR_MEMORY, "out of memory");
  VkDeviceSize total = 0;
  for (int i = 0; i < m->ntensors; i++) {
    StModelTensor *t = &m->tensors[i];
    /* fp16 kept for convolution weights when fp16 storage is on; everything else is fp32 */
    StDType dt = (net->fp16 && t->dtype == ST_F16 && t->rank == 4) ? ST_F16 : ST_F32;
    StTensor *w = &net->wt[i];
    w->dtype = dt;
    w->offset = total;
    w->rank = t->rank > 3 ? 3 : t->rank;
    for (int d = 0; d < w->rank; d++)
      w->shape[d] = t->shape[d];
    if (t->rank == 4)
      w->shape[2] = t->shape[2] * t->shape[3];
    total += ((VkDeviceSize)t->numel * st_dtype_size(dt) + align - 1) / align * align;
  }
  if (!winograd_layout(net, align, &total, err))
    return false;
  if (total == 0)
    return true;
  StBuffer staging;
  float *g = NULL;
  if (!st_buffer_create(dev, total, ST_MEM_UPLOAD, &staging, err))
    return false;
  if (!st_buffer_create(dev, total, ST_MEM_DEVICE, &net->weights, err)) {
    st_buffer_destroy(dev, &staging);
    return false;
  }
  for (int i = 0; i < m->ntensors; i++) {
    StModelTensor *t = &m->tensors[i];
    StTensor *w = &net->wt[i];
    w->buf = &net->weights;
    uint8_t *dst = (uint8_t *)staging.mapped + w->offset;
    const uint8_t *src = m->data + t->offset;
    if (t->dtype == w->dtype)
      memcpy(dst, src, t->nbytes);
    else /* F16 file data -> F32 */
      tensor_floats(m, t, (float *)(void *)dst);
    if (net->wg && net->wg[i].rank == 3) {
      float *f = realloc(g, t->numel * sizeof *g);
      if (!f) {
        st_buffer_destroy(dev, &staging);
        free(g);
        return st_set_error(err, ST_ERROR_MEMORY, "out of memory");
      }
      g = f;
      tensor_floats(m, t, g);
      st_winograd_weights(g, t->shape[0], t->shape[1],
                          (float *)(void *)((uint8_t *)staging.mapped + net->wg[i].offset));
    }
  }
  free(g);
  StCmd *cmd = st_cmd_begin(dev, err);
  bool ok = cmd != NULL;
  if (ok) {
    st_cmd_copy(cmd, &staging, 0, &net->weights, 0, total);
    ok = st_cmd_submit_wait(cmd, err);
    st_cmd_free(cmd);
  }
  st_buffer_destroy(dev, &staging);
  return ok;
}

/* ---- public API --------------------------------------------------------------------------- */

void st_frame_params_init(StFrameParams *p) {
  memset(p, 0, sizeof *p);
  p->steps = 2;
  p->strength = 1.0f;
  p->preserve_colors = false;
  p->temporal = true;
  p->motion = ST_MOTION_ESTIMATE;
  p->style_fade = 1.0f;
}

void st_net_free(StNet *net) {
  if (!net)
    return;
  StDevice *dev = net->dev;
  st_device_settle(dev); /* after a timed-out frame, its buffers may still be in use */
  st_recordings_free(net);
  st_plan_free(dev, net->plan);
  st_buffer_destroy(dev, &net->weights);
  st_styles_free(net);
  st_buffer_destroy(dev, &net->state_buf);
  st_buffer_destroy(dev, &net->state_tmp);
  st_luma_free(&net->luma_prev);
  st_luma_free(&net->luma_cur);
  st_flow_free(&net->field);
  for (int i = 0; i < 2; i++) {
    st_buffer_destroy(dev, &net->blend_out[i]);
    st_buffer_destroy(dev, &net->blend_in[i]);
  }
  st_buffer_destroy(dev, &net->flow_buf);
  st_buffer_destroy(dev, &net->up);
  st_buffer_destroy(dev, &net->up_dev);
  st_buffer_destroy(dev, &net->down);
  st_buffer_destroy(dev, &net->down_dev);
  st_buffer_destroy(dev, &net->mask_up);
  free(net->mask_px);
  free(net->wt);
  free(net->wg);
  free(net->timings);
  st_model_free(net->model);
  free(net);
}

StNet *st_net_load(StDevice *dev, const char *model_path, const StNetOptions *opts, StError *err) {
  if (!dev) {
    st_set_error(err, ST_ERROR_ARGUMENT, "no device");
    return NULL;
  }
  StModel *m = st_model_load(model_path, err);
  if (!m)
    return NULL;
  StNet *net = calloc(1, sizeof *net);
  if (!net) {
    st_model_free(m);
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  net->dev = dev;
  net->model = m;
  net->fp16 = opts && opts->fp16 && st_device_has_fp16_storage(dev);
  if (!st_net_check_graph(net, err) || !upload_weights(net, err)) {
    st_net_free(net);
    return NULL;
  }
  st_model_drop_data(m);
  return net;
}

int st_net_max_steps(const StNet *net) { return net->model->nrefine; }

bool st_net_has_masked_styles(const StNet *net) { return net && net->model->mask_input; }
VkDeviceSize st_net_arena_bytes(const StNet *net) { return net->plan ? net->plan->arena_size : 0; }
bool st_net_has_style(const StNet *net) { return net->has_style; }

int st_net_style_size(const StNet *net) { return net->model->style_size; }
void st_net_set_profiling(StNet *net, bool per_op) { net->per_op = per_op; }
void st_net_last_host_timing(const StNet *net, StHostTiming *out) { *out = net->host; }

int st_net_last_timings(const StNet *net, StTiming *out, int max, bool per_op) {
  int n = 0;
  if (per_op) {
    for (int i = 0; i < net->ntimings && n < max; i++)
      if (strchr(net->timings[i].name, '/'))
        out[n++] = net->timings[i];
    return n;
  }
  /* Per stage: stage marks as they are, per-op marks summed into their stage ("stage/..."). */
  for (int i = 0; i < net->ntimings; i++) {
    char stage[64];
    snprintf(stage, sizeof stage, "%s", net->timings[i].name);
    char *slash = strchr(stage, '/');
    if (slash)
      *slash = 0;
    int j;
    for (j = 0; j < n; j++)
      if (strcmp(out[j].name, stage) == 0)
        break;
    if (j == n) {
      if (n >= max)
        continue;
      snprintf(out[n].name, sizeof out[n].name, "%s", stage);
      out[n].ms = 0;
      n++;
    }
    out[j].ms += net->timings[i].ms;
  }
  return n;
}
