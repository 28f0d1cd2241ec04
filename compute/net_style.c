/* SPDX-License-Identifier: LGPL-2.1-or-later
 * The style state (st.h "styles"): the style subgraph's outputs of each style slot (the main
 * style, a second style, and the main style's predecessor while a crossfade runs), and the
 * effective state the frame plans read (net->style_buf): each value interpolated between the
 * slots' (StFrameParams.style_mix and style_fade), updated by a small submission of its own only
 * when the weights or a slot changed, so that frame recordings never depend on them.
 */
#include "net_private.h"
#include "ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

static void slot_free(StDevice *dev, StyleSlot *s) {
  st_buffer_destroy(dev, &s->buf);
  st_style_vals_free(s->vals, s->nvals);
  memset(s, 0, sizeof *s);
}

void st_styles_free(StNet *net) {
  for (int i = 0; i < STYLE_SLOTS; i++)
    slot_free(net->dev, &net->slots[i]);
  st_buffer_destroy(net->dev, &net->style_buf);
  st_style_vals_free(net->style_vals, net->nstyle);
  net->style_vals = NULL;
  net->nstyle = 0;
  st_style_vals_free(net->style2_vals, net->nstyle2);
  net->style2_vals = NULL;
  net->nstyle2 = 0;
}

/* After the second slot changed: its values under their masked names (models with masked
 * subgraphs), and new frame plans and recordings (they bind its buffer). */
static bool second_changed(StNet *net, StError *err) {
  const StyleSlot *s = &net->slots[STYLE_SECOND];
  st_style_vals_free(net->style2_vals, net->nstyle2);
  net->style2_vals = NULL;
  net->nstyle2 = 0;
  net->mix_valid = false;
  net->style_gen++;
  net->res_gen++;
  if (!s->vals || !net->model->mask_input)
    return true;
  net->style2_vals = st_style_vals_second(net->model, s->vals, s->nvals, &net->nstyle2, err);
  return net->style2_vals != NULL;
}

/* Same values (names, ranks, shapes, types) and the same offsets. */
static bool same_layout(const StyleVal *a, int na, const StyleVal *b, int nb) {
  if (na != nb)
    return false;
  for (int i = 0; i < na; i++)
    if (strcmp(a[i].name, b[i].name) != 0 || a[i].rank != b[i].rank ||
        memcmp(a[i].shape, b[i].shape, sizeof a[i].shape) != 0 || a[i].dtype != b[i].dtype ||
        a[i].offset != b[i].offset)
      return false;
  return true;
}

static StyleVal *copy_vals(const StyleVal *v, int n, StError *err) {
  StyleVal *c = calloc((size_t)n + 1, sizeof *c);
  if (!c) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    c[i] = v[i];
    size_t len = strlen(v[i].name) + 1;
    c[i].name = malloc(len);
    if (!c[i].name) {
      st_style_vals_free(c, i);
      st_set_error(err, ST_ERROR_MEMORY, "out of memory");
      return NULL;
    }
    memcpy(c[i].name, v[i].name, len);
  }
  return c;
}

static StTensor val_tensor(StBuffer *buf, const StyleVal *v) {
  StTensor t = {buf, v->offset, v->dtype, v->rank, {1, 1, 1}};
  memcpy(t.shape, v->shape, sizeof t.shape);
  return t;
}

/* Records y_i = sum_k w[k] * slot_k[i] for every value i of the effective state (slots with a
 * zero weight are not read; one slot of weight 1 is a copy of its buffer). */
static bool record_mix(StNet *net, StCmd *cmd, StyleSlot *const *slots, const float *w, int n,
                       StBuffer *dst, const StyleVal *vals, int nvals, StError *err) {
  StyleSlot *use[STYLE_SLOTS];
  float wu[STYLE_SLOTS];
  int k = 0;
  for (int i = 0; i < n; i++)
    if (w[i] != 0.0f) {
      use[k] = slots[i];
      wu[k++] = w[i];
    }
  if (k == 0)
    return st_set_error(err, ST_ERROR_ARGUMENT, "no style to interpolate");
  if (k == 1 && wu[0] == 1.0f && same_layout(use[0]->vals, use[0]->nvals, vals, nvals)) {
    st_cmd_copy(cmd, &use[0]->buf, 0, dst, 0, use[0]->size);
    return true;
  }
  for (int i = 0; i < nvals; i++) {
    StTensor y = val_tensor(dst, &vals[i]);
    StTensor a = val_tensor(&use[0]->buf, &use[0]->vals[i]);
    StTensor b = k > 1 ? val_tensor(&use[1]->buf, &use[1]->vals[i]) : a;
    if (!st_op_add(net->dev, cmd, &a, &b, wu[0], k > 1 ? wu[1] : 0.0f, ST_ACT_NONE, 0, &y, err))
      return false;
    if (k > 2) {
      StTensor c = val_tensor(&use[2]->buf, &use[2]->vals[i]);
      if (!st_op_add(net->dev, cmd, &y, &c, 1.0f, wu[2], ST_ACT_NONE, 0, &y, err))
        return false;
    }
  }
  return true;
}

static bool submit_mix(StNet *net, StyleSlot *const *slots, const float *w, int n, StBuffer *dst,
                       const StyleVal *vals, int nvals, StError *err) {
  StCmd *cmd = st_cmd_begin(net->dev, err);
  if (!cmd)
    return false;
  bool ok =
      record_mix(net, cmd, slots, w, n, dst, vals, nvals, err) && st_cmd_submit_wait(cmd, err);
  st_cmd_free(cmd);
  return ok;
}

/* The new main style's values become the effective layout (a new buffer when it differs). */
static bool adopt_layout(StNet *net, const StyleSlot *s, StError *err) {
  if (net->style_vals && same_layout(net->style_vals, net->nstyle, s->vals, s->nvals) &&
      net->style_buf.size >= s->size)
    return true;
  StyleVal *vals = copy_vals(s->vals, s->nvals, err);
  if (!vals)
    return false;
  StBuffer buf = {0};
  if (!st_buffer_create(net->dev, s->size ? s->size : 16, ST_MEM_DEVICE, &buf, err)) {
    st_style_vals_free(vals, s->nvals);
    return false;
  }
  st_buffer_destroy(net->dev, &net->style_buf);
  st_style_vals_free(net->style_vals, net->nstyle);
  net->style_buf = buf;
  net->style_vals = vals;
  net->nstyle = s->nvals;
  net->style_gen++; /* frame plans bind the effective buffer's layout */
  return true;
}

/* Runs the style subgraph on `style` (any format, resized to style_size) or `rgb` (planar float
 * [3,fh,fw], bound as is) into *out. */
static bool compute_style(StNet *net, const StImage *style, const float *rgb, int fw, int fh,
                          StyleSlot *out, StError *err) {
  StDevice *dev = net->dev;
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
  StyleSlot s = {0};
  StCmd *cmd = NULL;
  bool ok = false;
  s.size = p->persist_size ? p->persist_size : 16;
  if (!st_buffer_create(dev, s.size, ST_MEM_DEVICE, &s.buf, err) ||
      !st_buffer_create(dev, p->arena_size, ST_MEM_DEVICE, &p->arena, err))
    goto out;
  st_plan_bind(net, p, &s.buf);
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
  if (!st_record_steps(net, cmd, p, &style_sc, -1, err) || !st_cmd_submit_wait(cmd, err))
    goto out;
  st_net_save_timings(net, cmd);
  s.vals = st_style_vals_of(net, p, &s.nvals, err);
  if (!s.vals)
    goto out;
  *out = s;
  memset(&s, 0, sizeof s);
  ok = true;
out:
  st_cmd_free(cmd);
  slot_free(dev, &s);
  st_plan_free(dev, p);
  return ok;
}

/* Crossfade start: the main-side blend in use (the main style, or the blend of the main style
 * and its predecessor at the last fade applied) becomes the predecessor. */
static bool start_crossfade(StNet *net, StError *err) {
  StyleSlot *from = &net->slots[STYLE_FROM], *main_ = &net->slots[STYLE_MAIN];
  if (from->vals && net->mix_fade < 1.0f) {
    StyleSlot *s[2] = {main_, from};
    const float w[2] = {net->mix_fade, 1.0f - net->mix_fade};
    /* in place: each value's element i is read before it is written, by the same invocation */
    if (!submit_mix(net, s, w, 2, &from->buf, from->vals, from->nvals, err))
      return false;
    slot_free(net->dev, main_);
  } else {
    slot_free(net->dev, from);
    *from = *main_;
    memset(main_, 0, sizeof *main_);
  }
  net->mix_fade = 0.0f;
  return true;
}

static bool set_style_slot(StNet *net, StStyleSlot slot, const StImage *style, const float *rgb,
                           int fw, int fh, unsigned flags, StError *err) {
  if (!net)
    return st_set_error(err, ST_ERROR_ARGUMENT, "no network");
  if (slot != ST_STYLE_MAIN && slot != ST_STYLE_SECOND)
    return st_set_error(err, ST_ERROR_ARGUMENT, "unknown style slot %d", (int)slot);
  if ((flags & ~ST_STYLE_CROSSFADE) != 0 || ((flags & ST_STYLE_CROSSFADE) && slot != ST_STYLE_MAIN))
    return st_set_error(err, ST_ERROR_ARGUMENT, "bad style flags 0x%x for slot %d", flags,
                        (int)slot);
  st_device_settle(net->dev);
  StyleSlot s;
  if (!compute_style(net, style, rgb, fw, fh, &s, err))
    return false;
  if (slot == ST_STYLE_SECOND) {
    const StyleSlot *m = &net->slots[STYLE_MAIN];
    if (m->vals && !same_layout(m->vals, m->nvals, s.vals, s.nvals)) {
      slot_free(net->dev, &s);
      return st_set_error(err, ST_ERROR_MODEL, "the second style's state differs from the first's");
    }
    slot_free(net->dev, &net->slots[STYLE_SECOND]);
    net->slots[STYLE_SECOND] = s;
    return second_changed(net, err);
  }
  bool fade =
      (flags & ST_STYLE_CROSSFADE) && net->slots[STYLE_MAIN].vals &&
      same_layout(net->slots[STYLE_MAIN].vals, net->slots[STYLE_MAIN].nvals, s.vals, s.nvals);
  if (!adopt_layout(net, &s, err) || (fade && !start_crossfade(net, err))) {
    slot_free(net->dev, &s);
    return false;
  }
  if (!fade) {
    slot_free(net->dev, &net->slots[STYLE_FROM]);
    net->mix_fade = 1.0f;
    net->style_epoch++; /* a new look: the temporal state and the smoothing start afresh */
    net->state_valid = false;
  }
  StyleSlot *second = &net->slots[STYLE_SECOND];
  if (second->vals && !same_layout(second->vals, second->nvals, s.vals, s.nvals)) {
    slot_free(net->dev, second); /* cannot happen with one model; never mixed if it did */
    second_changed(net, err);
  }
  slot_free(net->dev, &net->slots[STYLE_MAIN]);
  net->slots[STYLE_MAIN] = s;
  net->has_style = true;
  net->mix_valid = false;
  return true;
}

bool st_net_set_style(StNet *net, const StImage *style, StError *err) {
  return set_style_slot(net, ST_STYLE_MAIN, style, NULL, 0, 0, 0, err);
}

bool st_net_set_style_slot(StNet *net, StStyleSlot slot, const StImage *style, unsigned flags,
                           StError *err) {
  if (!style)
    return st_set_error(err, ST_ERROR_ARGUMENT, "no style image");
  return set_style_slot(net, slot, style, NULL, 0, 0, flags, err);
}

bool st_net_set_style_float(StNet *net, const float *rgb, int w, int h, StError *err) {
  return set_style_slot(net, ST_STYLE_MAIN, NULL, rgb, w, h, 0, err);
}

bool st_net_set_style_slot_float(StNet *net, StStyleSlot slot, const float *rgb, int w, int h,
                                 unsigned flags, StError *err) {
  return set_style_slot(net, slot, NULL, rgb, w, h, flags, err);
}

void st_net_clear_style_slot(StNet *net, StStyleSlot slot) {
  if (!net || slot != ST_STYLE_SECOND || !net->slots[STYLE_SECOND].vals)
    return;
  st_device_settle(net->dev);
  slot_free(net->dev, &net->slots[STYLE_SECOND]);
  second_changed(net, NULL);
}

bool st_net_has_style_slot(const StNet *net, StStyleSlot slot) {
  return net && (slot == ST_STYLE_MAIN || slot == ST_STYLE_SECOND) &&
         net->slots[slot == ST_STYLE_MAIN ? STYLE_MAIN : STYLE_SECOND].vals != NULL;
}

bool st_net_crossfading(const StNet *net) { return net && net->slots[STYLE_FROM].vals != NULL; }

bool st_style_prepare(StNet *net, const StFrameParams *params, bool masked, StError *err) {
  StyleSlot *main_ = &net->slots[STYLE_MAIN], *second = &net->slots[STYLE_SECOND],
            *from = &net->slots[STYLE_FROM];
  /* masked: the second style has its own region (and values), style_mix does not apply */
  float m = second->vals && !masked ? params->style_mix : 0.0f;
  float f = from->vals ? params->style_fade : 1.0f;
  if (f >= 1.0f && from->vals) {
    slot_free(net->dev, from); /* the crossfade ended */
    net->mix_valid = false;
  }
  StyleSlot *s[STYLE_SLOTS] = {main_, second, from};
  const float w[STYLE_SLOTS] = {(1.0f - m) * f, m, (1.0f - m) * (1.0f - f)};
  if (net->mix_valid && memcmp(w, net->mix_w, sizeof w) == 0)
    return true;
  if (!submit_mix(net, s, w, STYLE_SLOTS, &net->style_buf, net->style_vals, net->nstyle, err))
    return false;
  memcpy(net->mix_w, w, sizeof w);
  net->mix_fade = f;
  net->mix_valid = true;
  return true;
}
