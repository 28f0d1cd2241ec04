/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Frames (net_private.h): the one frame-run path with its two I/O strategies (pixel-format frames
 * for st_net_process, planar floats for st_net_run_float): host-side preparation, then the
 * frame's recording, submitted again as it is while its key (RecKey) is unchanged.
 */
#include "format.h"
#include "net_private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool st_net_image_info(const StDevice *dev, const StImage *img, const char *what, PlaneInfo *pi,
                       StError *err) {
  if (!img)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: no image", what);
  if (img->width < 1 || img->height < 1 || img->width > MAX_SIDE || img->height > MAX_SIDE)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: size %dx%d out of range (1..%d)", what,
                        img->width, img->height, MAX_SIDE);
  memset(pi, 0, sizeof *pi);
  int rowbytes[3];
  pi->nplanes = st_format_planes(img->format, img->width, img->height, rowbytes, pi->rows);
  if (!pi->nplanes)
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: unknown pixel format %d", what,
                        (int)img->format);
  StColorCoeffs cc;
  if (!st_color_coeffs(st_format_info(img->format), img->matrix, img->range, &cc))
    return st_set_error(err, ST_ERROR_ARGUMENT, "%s: unknown colour matrix %d or range %d", what,
                        (int)img->matrix, (int)img->range);
  VkDeviceSize bytes = 0;
  for (int i = 0; i < pi->nplanes; i++) {
    pi->rowbytes[i] = (size_t)rowbytes[i];
    if (!img->planes[i])
      return st_set_error(err, ST_ERROR_ARGUMENT, "%s: plane %d missing", what, i);
    if (img->strides[i] < 0 || (size_t)img->strides[i] < pi->rowbytes[i])
      return st_set_error(err, ST_ERROR_ARGUMENT, "%s: stride %d of plane %d is below %zu", what,
                          img->strides[i], i, pi->rowbytes[i]);
    bytes += (VkDeviceSize)img->strides[i] * (VkDeviceSize)(pi->rows[i] - 1) + pi->rowbytes[i];
    bytes = (bytes + 15) & ~(VkDeviceSize)15; /* as frame_layout */
  }
  /* the shaders read and write the whole frame through one storage-buffer binding */
  uint32_t range = st_device_limits(dev)->maxStorageBufferRange;
  if (bytes > range)
    return st_set_error(err, ST_ERROR_ARGUMENT,
                        "%s: a %dx%d %s frame takes %.1f MiB, more than the %.1f MiB that %s can "
                        "bind in one storage buffer (scale the video down before the element, "
                        "e.g. with videoscale)",
                        what, img->width, img->height, st_format_name(img->format),
                        (double)bytes / 1048576.0, (double)range / 1048576.0, st_device_name(dev));
  return true;
}

/* Device-side layout: rows packed at the image's strides, planes 16-byte aligned. */
static VkDeviceSize frame_layout(const StImage *img, const PlaneInfo *pi, StFrameLayout *lay) {
  memset(lay, 0, sizeof *lay);
  lay->format = img->format;
  lay->width = img->width;
  lay->height = img->height;
  lay->matrix = img->matrix;
  lay->range = img->range;
  VkDeviceSize off = 0;
  for (int i = 0; i < pi->nplanes; i++) {
    lay->offsets[i] = off;
    lay->strides[i] = img->strides[i];
    off += (VkDeviceSize)img->strides[i] * (VkDeviceSize)(pi->rows[i] - 1) + pi->rowbytes[i];
    off = (off + 15) & ~(VkDeviceSize)15;
  }
  return off;
}

bool st_net_buffer(StNet *net, StBuffer *b, VkDeviceSize size, StMemKind kind, StError *err) {
  if (b->buffer && b->size >= size)
    return true;
  StDevice *dev = net->dev;
  st_buffer_destroy(dev, b);
  net->res_gen++;
  /* grow with some headroom so that small size changes do not reallocate, but never past what
   * one storage-buffer binding can hold when the size itself fits (the whole buffer is bound) */
  VkDeviceSize range = st_device_limits(dev)->maxStorageBufferRange;
  VkDeviceSize grown = size + size / 8 + 256;
  if (size <= range && grown > range)
    grown = range;
  return st_buffer_create(dev, grown, kind, b, err);
}

bool st_net_stage_image(StNet *net, const StImage *img, const PlaneInfo *pi, StFrameLayout *lay,
                        VkDeviceSize *size, StError *err) {
  *size = frame_layout(img, pi, lay);
  if (!st_net_buffer(net, &net->up, *size, ST_MEM_UPLOAD, err) ||
      (net->dev->device_copies && !st_net_buffer(net, &net->up_dev, *size, ST_MEM_DEVICE, err)))
    return false;
  for (int i = 0; i < pi->nplanes; i++) {
    uint8_t *dst = (uint8_t *)net->up.mapped + lay->offsets[i];
    size_t n = (size_t)img->strides[i] * (size_t)(pi->rows[i] - 1) + pi->rowbytes[i];
    memcpy(dst, img->planes[i], n);
  }
  return true;
}

StBuffer *st_net_record_image_upload(StNet *net, StCmd *cmd, VkDeviceSize size) {
  if (!net->dev->device_copies)
    return &net->up;
  st_cmd_copy(cmd, &net->up, 0, &net->up_dev, 0, size);
  return &net->up_dev;
}

/* The checks every frame entry point starts with; after a frame that timed out, also waits for
 * its work to end before this frame reuses the buffers. */
static bool check_frame(StNet *net, const StFrameParams *params, StError *err) {
  if (!net)
    return st_set_error(err, ST_ERROR_ARGUMENT, "no network");
  st_device_settle(net->dev);
  if (!params)
    return st_set_error(err, ST_ERROR_ARGUMENT, "no frame parameters");
  if (params->steps < 0 || params->steps > 64)
    return st_set_error(err, ST_ERROR_ARGUMENT, "steps %d out of range (0..64)", params->steps);
  if (!(params->strength >= 0.0f && params->strength <= 1.0f))
    return st_set_error(err, ST_ERROR_ARGUMENT, "strength %g out of range (0..1)",
                        (double)params->strength);
  if (params->processing_width < 0 || params->processing_height < 0 ||
      params->processing_width > MAX_SIDE || params->processing_height > MAX_SIDE)
    return st_set_error(err, ST_ERROR_ARGUMENT, "processing size %dx%d out of range",
                        params->processing_width, params->processing_height);
  if (params->motion != ST_MOTION_NONE && params->motion != ST_MOTION_ESTIMATE &&
      params->motion != ST_MOTION_GIVEN)
    return st_set_error(err, ST_ERROR_ARGUMENT, "unknown motion mode %d", (int)params->motion);
  if (!(params->smoothing >= 0.0f && params->smoothing <= ST_MAX_SMOOTHING))
    return st_set_error(err, ST_ERROR_ARGUMENT, "smoothing %g out of range (0..%g)",
                        (double)params->smoothing, (double)ST_MAX_SMOOTHING);
  if (!(params->style_mix >= 0.0f && params->style_mix <= 1.0f) ||
      !(params->style_fade >= 0.0f && params->style_fade <= 1.0f))
    return st_set_error(err, ST_ERROR_ARGUMENT, "style mix %g / fade %g out of range (0..1)",
                        (double)params->style_mix, (double)params->style_fade);
  if (abs(params->motion_dx) > MAX_SIDE || abs(params->motion_dy) > MAX_SIDE)
    return st_set_error(err, ST_ERROR_ARGUMENT, "motion (%d, %d) out of range", params->motion_dx,
                        params->motion_dy);
  return true;
}

/* Two styles by a mask need the model's masked subgraphs. */
static bool check_two_styles(const StNet *net, StError *err) {
  if (net->model->mask_input)
    return true;
  return st_set_error(err, ST_ERROR_ARGUMENT,
                      "model %s cannot put two styles in one frame (it has no masked subgraphs, "
                      "weights/FORMAT.md): clear the second style to stylize only where the mask "
                      "is set, or use a model exported with them",
                      net->model->path);
}

/* The frame plan for this size/steps (re-planned when anything in the key changes). */
static Plan *get_plan(StNet *net, int pw, int ph, int steps, bool preserve, bool masked,
                      StError *err) {
  Plan *p = net->plan;
  if (p && p->pw == pw && p->ph == ph && p->steps == steps && p->preserve == preserve &&
      p->masked == masked && p->style_gen == net->style_gen)
    return p;
  st_plan_free(net->dev, net->plan);
  net->plan = NULL;
  p = st_plan_frame(net, net->style_vals, net->nstyle, masked ? net->style2_vals : NULL,
                    net->nstyle2, pw, ph, steps, preserve, err);
  if (!p)
    return NULL;
  p->style_gen = net->style_gen;
  p->gen = ++net->plan_gen;
  /* Every value must fit in one storage-buffer binding of this device. */
  uint32_t range = st_device_limits(net->dev)->maxStorageBufferRange;
  for (int i = 0; i < p->nvals; i++) {
    const PVal *v = &p->vals[i];
    VkDeviceSize bytes = (VkDeviceSize)st_net_numel(v->rank, v->shape) * st_dtype_size(v->dtype);
    if (bytes > range) {
      char sv[64];
      st_net_shape_str(sv, sizeof sv, v->rank, v->shape);
      st_set_error(err, ST_ERROR_ARGUMENT,
                   "processing size %dx%d is too large for %s: value '%s' %s needs %.1f MiB, "
                   "more than the device's %.1f MiB storage-buffer limit (use a smaller "
                   "processing size%s)",
                   pw, ph, st_device_name(net->dev), v->name, sv, (double)bytes / 1048576.0,
                   (double)range / 1048576.0,
                   !net->fp16 && st_device_has_fp16_storage(net->dev) && v->rank == 3 &&
                           v->shape[0] > 3
                       ? " or fp16"
                       : "");
      st_plan_free(net->dev, p);
      return NULL;
    }
  }
  if (!st_buffer_create(net->dev, p->arena_size ? p->arena_size : 16, ST_MEM_DEVICE, &p->arena,
                        err)) {
    char pre[128];
    snprintf(pre, sizeof pre, "processing size %dx%d needs %.1f MiB of device memory: ", pw, ph,
             (double)p->arena_size / 1048576.0);
    st_net_prefix_error(err, pre);
    st_plan_free(net->dev, p);
    return NULL;
  }
  if (pw != net->state_w || ph != net->state_h || !net->state_buf.buffer) {
    st_buffer_destroy(net->dev, &net->state_buf);
    st_buffer_destroy(net->dev, &net->state_tmp);
    net->res_gen++;
    net->state_valid = false;
    net->luma_prev_valid = false;
    net->state_w = net->state_h = 0;
    if (!st_buffer_create(net->dev, (VkDeviceSize)3 * pw * ph * 4, ST_MEM_DEVICE, &net->state_buf,
                          err) ||
        !st_buffer_create(net->dev, (VkDeviceSize)3 * pw * ph * 4, ST_MEM_DEVICE, &net->state_tmp,
                          err)) {
      st_plan_free(net->dev, p);
      return NULL;
    }
    net->state_w = pw;
    net->state_h = ph;
  }
  st_plan_bind(net, p, NULL);
  net->plan = p;
  return p;
}

static void processing_size(const StFrameParams *params, int w, int h, int *pw, int *ph) {
  *pw = params->processing_width;
  *ph = params->processing_height;
  if (*pw > 0 && *ph <= 0)
    *ph = (int)lround((double)h * *pw / w);
  else if (*ph > 0 && *pw <= 0)
    *pw = (int)lround((double)w * *ph / h);
  else if (*pw <= 0 && *ph <= 0) {
    *pw = w;
    *ph = h;
  }
  if (*pw < 1)
    *pw = 1;
  if (*ph < 1)
    *ph = 1;
}

/* One frame's input and output, as frames (image) or planar floats. */
typedef struct {
  bool image;
  int w, h; /* frame size */
  const StImage *in;
  StImage *out;
  PlaneInfo pin, pout;
  StFrameLayout lin, lout;
  VkDeviceSize in_size, out_size; /* bytes in the upload and download buffers */
  const float *content;
  float **fout;
  int *out_w, *out_h;
  const StMask *mask; /* two styles by a mask (the model's masked subgraphs), else NULL */
} FrameIO;

/* Host side before recording: the input in the upload buffer, the output buffers allocated. */
static bool stage_io(StNet *net, FrameIO *io, const Plan *p, StError *err) {
  StDevice *dev = net->dev;
  if (p->mask >= 0) { /* the mask at the processing size, read by the recorded copy */
    VkDeviceSize bytes = (VkDeviceSize)p->pw * p->ph * sizeof(float);
    if (!st_net_buffer(net, &net->mask_up, bytes, ST_MEM_UPLOAD, err))
      return false;
    st_mask_resize(io->mask, p->pw, p->ph, net->mask_up.mapped, NULL);
  }
  if (io->image) {
    if (!st_net_stage_image(net, io->in, &io->pin, &io->lin, &io->in_size, err))
      return false;
    io->out_size = frame_layout(io->out, &io->pout, &io->lout);
    return st_net_buffer(net, &net->down, io->out_size, ST_MEM_DOWNLOAD, err) &&
           (!dev->device_copies ||
            st_net_buffer(net, &net->down_dev, io->out_size, ST_MEM_DEVICE, err));
  }
  const StTensor *x = &p->vals[p->x_final].t;
  io->in_size = (VkDeviceSize)3 * io->w * io->h * 4;
  io->out_size = (VkDeviceSize)3 * x->shape[1] * x->shape[2] * 4;
  if (!st_net_buffer(net, &net->up, io->in_size, ST_MEM_UPLOAD, err) ||
      !st_net_buffer(net, &net->down, io->out_size, ST_MEM_DOWNLOAD, err))
    return false;
  memcpy(net->up.mapped, io->content, io->in_size);
  return true;
}

/* The whole frame into one command buffer: input conversion, the network and its temporal
 * state, the smoothing, output conversion. */
static bool record_frame(StNet *net, StCmd *cmd, Plan *p, const FrameIO *io, const RecKey *key,
                         StError *err) {
  StDevice *dev = net->dev;
  const StTensor *c = &p->vals[p->input].t;
  int pool = st_upload_pool_step(p, key); /* the content's 4x4 average pool in the upload */
  if (io->image) {
    StBuffer *src = st_net_record_image_upload(net, cmd, io->in_size);
    if (pool >= 0) {
      const StTensor *y = &p->vals[p->st[pool].out[0]].t;
      if (!st_op_frame_to_float_pooled(dev, cmd, src, &io->lin, p->pw, p->ph, 4, y, err))
        return false;
    } else if (!st_op_frame_to_float(dev, cmd, src, &io->lin, c, err)) {
      return false;
    }
  } else {
    st_cmd_copy(cmd, &net->up, 0, c->buf, c->offset, io->in_size);
  }
  if (p->mask >= 0) {
    const StTensor *m = &p->vals[p->mask].t;
    st_cmd_copy(cmd, &net->mask_up, 0, m->buf, m->offset,
                (VkDeviceSize)p->pw * p->ph * sizeof(float));
  }
  if (!st_blend_record_input(net, cmd, p, key, err))
    return false;
  st_cmd_mark(cmd, "upload");
  const StTensor *final;
  if (!st_record_network(net, cmd, p, key, err) || !st_blend_record(net, cmd, p, key, &final, err))
    return false;
  if (io->image) {
    StBuffer *dst = dev->device_copies ? &net->down_dev : &net->down;
    const StTensor *orig = NULL;
    if (key->preserve) {
      orig = &p->vals[p->orig].t;
      if (p->orig != p->input &&
          !st_op_resize(dev, cmd, &p->vals[p->input].t, ST_RESIZE_BILINEAR, orig, err))
        return false;
    }
    if (!st_op_float_to_frame(dev, cmd, final, orig, key->preserve, dst, &io->lout, err))
      return false;
    if (dst != &net->down)
      st_cmd_copy(cmd, dst, 0, &net->down, 0, io->out_size);
  } else {
    st_cmd_copy(cmd, final->buf, final->offset, &net->down, 0, io->out_size);
  }
  st_cmd_mark(cmd, "download");
  return true;
}

/* Host side after the frame: the output copied out of the download buffer. */
static bool finish_io(StNet *net, const FrameIO *io, const Plan *p, StError *err) {
  st_buffer_invalidate(net->dev, &net->down);
  if (io->image) {
    for (int i = 0; i < io->pout.nplanes; i++) {
      const uint8_t *s = (const uint8_t *)net->down.mapped + io->lout.offsets[i];
      size_t n =
          (size_t)io->out->strides[i] * (size_t)(io->pout.rows[i] - 1) + io->pout.rowbytes[i];
      memcpy(io->out->planes[i], s, n);
    }
    return true;
  }
  *io->fout = malloc(io->out_size);
  if (!*io->fout)
    return st_set_error(err, ST_ERROR_MEMORY, "out of memory");
  memcpy(*io->fout, net->down.mapped, io->out_size);
  const StTensor *x = &p->vals[p->x_final].t;
  if (io->out_w)
    *io->out_w = x->shape[2];
  if (io->out_h)
    *io->out_h = x->shape[1];
  return true;
}

static bool run_frame(StNet *net, FrameIO *io, const StFrameParams *params, double t_call,
                      StError *err) {
  int pw = io->w, ph = io->h;
  bool preserve = io->image && params->preserve_colors;
  if (io->image)
    processing_size(params, io->w, io->h, &pw, &ph);
  if (!st_style_prepare(net, params, io->mask != NULL, err))
    return false;
  Plan *p = get_plan(net, pw, ph, params->steps, preserve, io->mask != NULL, err);
  if (!p)
    return false;
  bool have_cur = false;
  if (st_uses_motion(p, params)) {
    int mw, mh;
    st_motion_size(pw, ph, &mw, &mh);
    have_cur = io->image ? st_luma_from_image(io->in, mw, mh, &net->luma_cur)
                         : st_luma_from_float(io->content, io->w, io->h, mw, mh, &net->luma_cur);
  }
  st_frame_motion(net, params, st_have_prev_frame(net, params), pw, have_cur);
  RecKey key;
  memset(&key, 0, sizeof key); /* compared with memcmp, padding included */
  key.plan_gen = p->gen;
  key.image_io = io->image;
  key.preserve = preserve;
  key.strength = params->strength;
  key.per_op = net->per_op;
  st_state_prepare(net, p, params, &key);
  if (!stage_io(net, io, p, err) || !st_blend_prepare(net, p, params, pw, ph, &key, err))
    return false;
  if (io->image) {
    key.lin = io->lin;
    key.lout = io->lout;
  }
  key.res_gen = net->res_gen; /* after every buffer of the frame was made */
  double t_rec = st_now_ms();
  bool reused;
  Recording *r = st_recording_get(net, &key, &reused, err);
  if (!r || (!reused && !record_frame(net, r->cmd, p, io, &key, err)))
    return false;
  net->host.record_ms = st_now_ms() - t_rec;
  if (!st_cmd_submit_wait(r->cmd, err)) {
    r->valid = false;
    return false;
  }
  r->valid = true;
  st_cmd_host_times(r->cmd, &net->host.submit_ms, &net->host.wait_ms);
  net->host.reused = reused;
  st_net_save_timings(net, r->cmd);
  if (!finish_io(net, io, p, err))
    return false;
  net->state_valid = p->state_src >= 0;
  st_blend_finish(net, params);
  net->host.total_ms = st_now_ms() - t_call;
  return true;
}

bool st_net_process(StNet *net, const StImage *in, StImage *out, const StFrameParams *params,
                    StError *err) {
  double t_call = st_now_ms();
  if (!check_frame(net, params, err))
    return false;
  if (!net->has_style)
    return st_set_error(err, ST_ERROR_NO_STYLE, "no style image set");
  FrameIO io = {.image = true, .in = in, .out = out};
  if (!st_net_image_info(net->dev, in, "input frame", &io.pin, err) ||
      !st_net_image_info(net->dev, out, "output frame", &io.pout, err))
    return false;
  if (in->width != out->width || in->height != out->height)
    return st_set_error(err, ST_ERROR_ARGUMENT, "input %dx%d and output %dx%d sizes differ",
                        in->width, in->height, out->width, out->height);
  io.w = in->width;
  io.h = in->height;
  const StMask *mask = params->mask;
  if (!mask)
    return run_frame(net, &io, params, t_call, err);
  if (!st_mask_check(mask, err))
    return false;
  if (st_net_has_style_slot(net, ST_STYLE_SECOND)) {
    /* The main style where the mask is 255, the second where it is 0, in the network. */
    if (!check_two_styles(net, err))
      return false;
    io.mask = mask;
    return run_frame(net, &io, params, t_call, err);
  }
  if (in->format != out->format)
    return st_set_error(err, ST_ERROR_ARGUMENT,
                        "a mask without a second style needs the same input and output format "
                        "(%s and %s)",
                        st_format_name(in->format), st_format_name(out->format));
  /* One style in the mask's region, the input frame elsewhere. */
  return run_frame(net, &io, params, t_call, err) && st_mask_composite(net, mask, in, out, err);
}

bool st_net_run_float(StNet *net, const float *content, int w, int h, const StFrameParams *params,
                      float **out, int *out_w, int *out_h, StError *err) {
  double t_call = st_now_ms();
  if (!check_frame(net, params, err))
    return false;
  if (!content || !out || w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE)
    return st_set_error(err, ST_ERROR_ARGUMENT, "bad content image (%dx%d)", w, h);
  if (!net->has_style)
    return st_set_error(err, ST_ERROR_NO_STYLE, "no style image set");
  FrameIO io = {.image = false,
                .w = w,
                .h = h,
                .content = content,
                .fout = out,
                .out_w = out_w,
                .out_h = out_h};
  if (params->mask) { /* floats have no input to show: a mask needs the second style */
    if (!st_mask_check(params->mask, err))
      return false;
    if (!st_net_has_style_slot(net, ST_STYLE_SECOND))
      return st_set_error(err, ST_ERROR_ARGUMENT,
                          "a mask on float frames needs a second style (the mask puts the main "
                          "style where it is 255 and the second where it is 0)");
    if (!check_two_styles(net, err))
      return false;
    io.mask = params->mask;
  }
  return run_frame(net, &io, params, t_call, err);
}
