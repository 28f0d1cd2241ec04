/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Graph executor, public API (st.h): loading (weights on the device), the style, accessors and
 * timings. Plans, recording, frames and the temporal state are in the net_*.c files
 * (net_private.h, compute/README.md).
 */
#include "net_private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  if (total == 0)
    return true;
  StBuffer staging;
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
    if (t->dtype == w->dtype) {
      memcpy(dst, src, t->nbytes);
    } else { /* F16 file data -> F32 */
      float *f = (float *)(void *)dst;
      for (size_t k = 0; k < t->numel; k++) {
        uint16_t h = (uint16_t)(src[2 * k] | (src[2 * k + 1] << 8));
        f[k] = st_half_to_float(h);
      }
    }
  }
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
}

void st_net_free(StNet *net) {
  if (!net)
    return;
  StDevice *dev = net->dev;
  st_device_settle(dev); /* after a timed-out frame, its buffers may still be in use */
  st_recordings_free(net);
  st_plan_free(dev, net->plan);
  st_buffer_destroy(dev, &net->weights);
  st_buffer_destroy(dev, &net->style_buf);
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
  st_style_vals_free(net->style_vals, net->nstyle);
  free(net->wt);
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

static void style_size(int w, int h, int s, int *sw, int *sh) {
  if (w >= h) {
    *sw = s;
    *sh = (int)lround((double)h * s / w);
  } else {
    *sh = s;
    *sw = (int)lround((double)w * s / h);
  }
  if (*sw < 1)
    *sw = 1;
  if (*sh < 1)
    *sh = 1;
}

/* Either `style` (any format, resized to style_size) or `rgb` (planar float [3,fh,fw], bound as
 * is). */
static bool set_style_impl(StNet *net, const StImage *style, const float *rgb, int fw, int fh,
                           StError *err) {
  StDevice *dev = net->dev;
  st_device_settle(dev);
  PlaneInfo pi;
  int sw = fw, sh = fh;
  if (style) {
    if (!st_net_image_info(net->dev, style, "style image", &pi, err))
      return false;
    style_size(style->width, style->height, net->model->style_size, &sw, &sh);
  } else if (!rgb || fw < 1 || fh < 1 || fw > MAX_SIDE || fh > MAX_SIDE) {
    return st_set_error(err, ST_ERROR_ARGUMENT, "bad style image (%dx%d)", fw, fh);
  }
  Plan *p = st_plan_style(net, sw, sh, err);
  if (!p)
    return false;
  StBuffer persist = {0};
  StCmd *cmd = NULL;
  StyleVal *sv = NULL;
  int nsv = 0;
  bool ok = false;
  if (!st_buffer_create(dev, p->persist_size ? p->persist_size : 16, ST_MEM_DEVICE, &persist,
                        err) ||
      !st_buffer_create(dev, p->arena_size, ST_MEM_DEVICE, &p->arena, err))
    goto out;
  st_plan_bind(net, p, &persist);
  cmd = st_cmd_begin(dev, err);
  if (!cmd)
    goto out;
  if (style) {
    StFrameLayout lay;
    VkDeviceSize size;
    if (!st_net_stage_image(net, style, &pi, &lay, &size, err))
      goto out;
    StBuffer *src = st_net_record_image_upload(net, cmd, size);
    if (!st_op_frame_to_float(dev, cmd, src, &lay, &p->vals[p->input].t, err))
      goto out;
  } else {
    VkDeviceSize bytes = (VkDeviceSize)3 * fw * fh * 4;
    if (!st_net_buffer(net, &net->up, bytes, ST_MEM_UPLOAD, err))
      goto out;
    memcpy(net->up.mapped, rgb, bytes);
    const StTensor *t = &p->vals[p->input].t;
    st_cmd_copy(cmd, &net->up, 0, t->buf, t->offset, bytes);
  }
  st_cmd_mark(cmd, "upload");
  const Scalars style_sc = {1.0f, 0.0f};
  if (!st_record_steps(net, cmd, p, &style_sc, err))
    goto out;
  if (!st_cmd_submit_wait(cmd, err))
    goto out;
  st_net_save_timings(net, cmd);
  sv = st_style_vals_of(net, p, &nsv, err);
  if (!sv)
    goto out;
  /* success: swap in the new style state */
  st_buffer_destroy(dev, &net->style_buf);
  net->style_buf = persist;
  memset(&persist, 0, sizeof persist);
  st_style_vals_free(net->style_vals, net->nstyle);
  net->style_vals = sv;
  net->nstyle = nsv;
  net->has_style = true;
  net->style_gen++;
  net->state_valid = false;
  ok = true;
out:
  st_cmd_free(cmd);
  st_buffer_destroy(dev, &persist);
  st_plan_free(dev, p);
  return ok;
}

bool st_net_set_style(StNet *net, const StImage *style, StError *err) {
  if (!net)
    return st_set_error(err, ST_ERROR_ARGUMENT, "no network");
  return set_style_impl(net, style, NULL, 0, 0, err);
}

bool st_net_set_style_float(StNet *net, const float *rgb, int w, int h, StError *err) {
  if (!net)
    return st_set_error(err, ST_ERROR_ARGUMENT, "no network");
  return set_style_impl(net, NULL, rgb, w, h, err);
}
