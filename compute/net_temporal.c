/* SPDX-License-Identifier: LGPL-2.1-or-later
 * The temporal state (net_private.h): its motion from frame to frame, its zeroing, translation
 * and update around the steps; and the output smoothing (previous output and content, the
 * motion field).
 */
#include "net_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void st_net_last_motion(const StNet *net, int *dx, int *dy) {
  *dx = net ? net->motion_dx : 0;
  *dy = net ? net->motion_dy : 0;
}

void st_net_reset_temporal(StNet *net) {
  net->state_valid = false;
  net->luma_prev_valid = false;
  net->blend_valid = false;
}

/* Whether this frame estimates motion from the input (temporal state or smoothing). */
bool st_uses_motion(const Plan *p, const StFrameParams *params) {
  /* the state is read by this frame's steps (steps 0 of a model whose state feeds a refinement
   * step does not read it) */
  bool reads_state = p->state >= 0 && p->vals[p->state].last >= 0;
  return (reads_state || params->smoothing > 0.0f) && params->temporal &&
         params->motion == ST_MOTION_ESTIMATE;
}

bool st_have_prev_frame(const StNet *net, const StFrameParams *params) {
  return params->temporal && (net->state_valid || net->blend_valid);
}

/* The motion of the temporal state for this frame (processing px); with have_cur, net->luma_cur
 * is this frame's luma at the motion resolution, kept for the next frame. */
void st_frame_motion(StNet *net, const StFrameParams *params, bool have_prev, int pw,
                     bool have_cur) {
  net->motion_dx = net->motion_dy = 0;
  net->field_valid = false;
  if (params->motion == ST_MOTION_GIVEN) {
    net->motion_dx = params->motion_dx;
    net->motion_dy = params->motion_dy;
  } else if (params->motion == ST_MOTION_ESTIMATE && have_cur && have_prev &&
             net->luma_prev_valid) {
    int dx, dy;
    if (st_motion_estimate(&net->luma_prev, &net->luma_cur, &dx, &dy)) {
      double f = (double)pw / net->luma_cur.w;
      net->motion_dx = (int)lround(dx * f);
      net->motion_dy = (int)lround(dy * f);
      if (params->smoothing > 0.0f)
        net->field_valid = st_motion_field(&net->luma_prev, &net->luma_cur, dx, dy, &net->field);
    }
  }
  if (have_cur) { /* this frame's luma becomes the previous one */
    StLuma t = net->luma_prev;
    net->luma_prev = net->luma_cur;
    net->luma_cur = t;
  }
  net->luma_prev_valid = have_cur;
}

void st_state_prepare(StNet *net, const Plan *p, const StFrameParams *params, RecKey *key) {
  const bool have_prev = params->temporal && net->state_valid;
  key->state_op = STATE_NONE;
  key->state_valid = 0.0f;
  if (p->state < 0)
    return;
  if (!have_prev) {
    key->state_op = STATE_ZERO;
  } else if (net->motion_dx || net->motion_dy) {
    key->state_op = STATE_TRANSLATE;
    key->dx = net->motion_dx;
    key->dy = net->motion_dy;
  } else {
    key->state_op = STATE_KEEP;
  }
  key->state_valid = have_prev ? 1.0f : 0.0f;
}

bool st_record_network(StNet *net, StCmd *cmd, Plan *p, const RecKey *key, StError *err) {
  if (key->state_op == STATE_ZERO)
    st_cmd_fill_zero(cmd, &net->state_buf, 0, net->state_buf.size);
  if (key->state_op == STATE_TRANSLATE) {
    /* move the previous residual with the scene */
    const StTensor *st = &p->vals[p->state].t;
    StTensor tmp = *st;
    tmp.buf = &net->state_tmp;
    tmp.offset = 0;
    if (!st_op_translate(net->dev, cmd, st, key->dy, key->dx, &tmp, err))
      return false;
    st_cmd_copy(cmd, &net->state_tmp, 0, &net->state_buf, 0, net->state_buf.size);
  }
  const Scalars sc = {key->strength, key->state_valid};
  if (!st_record_steps(net, cmd, p, &sc, st_upload_pool_step(p, key), err))
    return false;
  if (p->state_src >= 0) {
    const StTensor *t = &p->vals[p->state_src].t;
    if (p->state_resize) {
      if (!st_op_resize(net->dev, cmd, t, ST_RESIZE_BILINEAR, &p->vals[p->state].t, err))
        return false;
    } else {
      st_cmd_copy(cmd, t->buf, t->offset, &net->state_buf, 0, (VkDeviceSize)st_tensor_numel(t) * 4);
    }
  }
  return true;
}

/* ---- temporal smoothing of the output ----------------------------------------------------- */

/* The motion field for the smoothing at the output size (w, h) of a (pw, ph) processing size, as
 * [2, bh, bw] floats in output pixels, written to net->flow_buf (net->blend_flow); the block size
 * in net->blend_bp. */
static bool upload_field(StNet *net, int pw, int ph, int w, int h, StError *err) {
  int bw = 1, bh = 1;
  const StFlow *f = net->field_valid ? &net->field : NULL;
  if (f) {
    bw = f->bw;
    bh = f->bh;
  }
  if (!st_net_buffer(net, &net->flow_buf, sizeof(float) * 2 * (size_t)bw * bh, ST_MEM_UPLOAD, err))
    return false;
  float *v = net->flow_buf.mapped;
  StBlendParams *bp = &net->blend_bp;
  if (f) { /* motion px -> output px */
    float sx = (float)w / (float)net->luma_prev.w, sy = (float)h / (float)net->luma_prev.h;
    for (int i = 0; i < bw * bh; i++) {
      v[i] = f->v[i] * sx;
      v[bw * bh + i] = f->v[bw * bh + i] * sy;
    }
    bp->block_x = (float)f->block * sx;
    bp->block_y = (float)f->block * sy;
  } else { /* one vector: the given or estimated global motion (processing px -> output px) */
    v[0] = (float)net->motion_dx * (float)w / (float)pw;
    v[1] = (float)net->motion_dy * (float)h / (float)ph;
    bp->block_x = (float)w;
    bp->block_y = (float)h;
  }
  net->blend_flow = (StTensor){&net->flow_buf, 0, ST_F32, 3, {2, bh, bw}};
  return true;
}

bool st_blend_prepare(StNet *net, Plan *p, const StFrameParams *params, int pw, int ph, RecKey *key,
                      StError *err) {
  const StTensor *x = &p->vals[p->x_final].t;
  net->blend_pending = false;
  key->blend = BLEND_OFF;
  if (!params->temporal || params->smoothing <= 0.0f) {
    net->blend_valid = false;
    return true;
  }
  int h = x->shape[1], w = x->shape[2];
  VkDeviceSize bytes = (VkDeviceSize)3 * w * h * sizeof(float);
  if (w != net->blend_w || h != net->blend_h) {
    net->blend_valid = false;
    net->res_gen++;
    for (int i = 0; i < 2; i++) {
      st_buffer_destroy(net->dev, &net->blend_out[i]);
      st_buffer_destroy(net->dev, &net->blend_in[i]);
    }
    net->blend_w = net->blend_h = 0;
    for (int i = 0; i < 2; i++)
      if (!st_buffer_create(net->dev, bytes, ST_MEM_DEVICE, &net->blend_out[i], err) ||
          !st_buffer_create(net->dev, bytes, ST_MEM_DEVICE, &net->blend_in[i], err))
        return false;
    net->blend_w = w;
    net->blend_h = h;
  }
  /* a new look (style, steps, strength, colours) starts afresh rather than fading in */
  if (net->blend_style_epoch != net->style_epoch || net->blend_steps != params->steps ||
      net->blend_strength != params->strength || net->blend_preserve != params->preserve_colors)
    net->blend_valid = false;
  int cur = net->blend_cur ^ 1, prev = net->blend_cur;
  StTensor *t = net->blend_t;
  StBuffer *bufs[4] = {&net->blend_out[cur], &net->blend_in[cur], &net->blend_out[prev],
                       &net->blend_in[prev]};
  for (int i = 0; i < 4; i++)
    t[i] = (StTensor){bufs[i], 0, ST_F32, 3, {3, h, w}};
  key->blend = BLEND_COPY;
  key->blend_cur = cur;
  if (net->blend_valid) {
    net->blend_bp = (StBlendParams){0, 0, params->smoothing, ST_SMOOTHING_THRESHOLD};
    if (!upload_field(net, pw, ph, w, h, err))
      return false;
    key->blend = BLEND_MIX;
    key->bp = net->blend_bp;
    key->flow_bw = net->blend_flow.shape[2];
    key->flow_bh = net->blend_flow.shape[1];
  }
  net->blend_pending = true;
  return true;
}

bool st_blend_record_input(StNet *net, StCmd *cmd, Plan *p, const RecKey *key, StError *err) {
  if (key->blend == BLEND_OFF)
    return true;
  const StTensor *t = net->blend_t;
  const StTensor *in = &p->vals[p->input].t;
  int h = t[1].shape[1], w = t[1].shape[2];
  if (in->shape[1] == h && in->shape[2] == w && in->dtype == ST_F32)
    st_cmd_copy(cmd, in->buf, in->offset, t[1].buf, 0, (VkDeviceSize)3 * w * h * sizeof(float));
  else if (!st_op_resize(net->dev, cmd, in, ST_RESIZE_BILINEAR, &t[1], err))
    return false;
  return true;
}

bool st_blend_record(StNet *net, StCmd *cmd, Plan *p, const RecKey *key, const StTensor **out,
                     StError *err) {
  const StTensor *x = &p->vals[p->x_final].t;
  *out = x;
  if (key->blend == BLEND_OFF)
    return true;
  StTensor *t = net->blend_t;
  if (key->blend == BLEND_MIX) {
    if (!st_op_temporal_blend(net->dev, cmd, x, &t[2], &t[1], &t[3], &net->blend_flow, &key->bp,
                              &t[0], err))
      return false;
  } else {
    st_cmd_copy(cmd, x->buf, x->offset, t[0].buf, 0, t[0].buf->size);
  }
  st_cmd_mark(cmd, "smoothing");
  *out = &t[0];
  return true;
}

void st_blend_finish(StNet *net, const StFrameParams *params) {
  if (!net->blend_pending)
    return;
  net->blend_pending = false;
  net->blend_cur ^= 1;
  net->blend_valid = true;
  net->blend_style_epoch = net->style_epoch;
  net->blend_steps = params->steps;
  net->blend_strength = params->strength;
  net->blend_preserve = params->preserve_colors;
}
