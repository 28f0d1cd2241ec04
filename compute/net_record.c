/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Recording (net_private.h): a plan's steps as dispatches, and the frame recordings that are
 * kept and submitted again while nothing they depend on changed (RecKey).
 */
#include "net_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float scalar(StScalar s, const Scalars *sc) {
  switch (s.kind) {
  case ST_SCALAR_STRENGTH:
    return sc->strength;
  case ST_SCALAR_NEG:
    return -sc->strength;
  case ST_SCALAR_ONE_MINUS:
    return 1.0f - sc->strength;
  case ST_SCALAR_STATE_VALID:
    return sc->state_valid;
  default:
    return s.value;
  }
}

static bool exec_step(StNet *net, StCmd *cmd, Plan *p, const PStep *s, const Scalars *sc,
                      StError *err) {
  StDevice *dev = net->dev;
  const StGraphOp *op = s->op;
  const StTensor *a = &p->vals[s->in[0]].t;
  const StTensor *b = s->nin > 1 ? &p->vals[s->in[1]].t : NULL;
  const StTensor *y = s->out[0] >= 0 ? &p->vals[s->out[0]].t : NULL;
  bool ok = true;
  switch (op->kind) {
  case ST_GOP_CONV2D: {
    StTensor wv;
    const StTensor *w;
    if (op->weight >= 0) {
      wv = net->wt[op->weight];
      /* [O,I,k,k] as rank 3 [O, I, k*k] (StTensor holds rank <= 3; data is identical) */
      const StModelTensor *mt = &net->model->tensors[op->weight];
      wv.rank = 3;
      wv.shape[0] = mt->shape[0];
      wv.shape[1] = mt->shape[1];
      wv.shape[2] = mt->shape[2] * mt->shape[3];
      w = &wv;
    } else {
      w = &p->vals[s->wval].t;
    }
    ok = st_op_conv2d(dev, cmd, a, w, op->bias >= 0 ? &net->wt[op->bias] : NULL, op->k, op->stride,
                      op->pad, op->act, op->alpha, y, err);
    break;
  }
  case ST_GOP_POOL:
    ok = st_op_pool(dev, cmd, a, (StPoolMode)op->mode, y, err);
    break;
  case ST_GOP_RESIZE:
    ok = st_op_resize(dev, cmd, a, (StResizeMode)op->mode, y, err);
    break;
  case ST_GOP_ADD:
    ok = st_op_add(dev, cmd, a, b, scalar(op->ka, sc), scalar(op->kb, sc), op->act, op->alpha, y,
                   err);
    break;
  case ST_GOP_MUL:
    ok = st_op_mul(dev, cmd, a, b, op->act, op->alpha, y, err);
    break;
  case ST_GOP_DIV:
    ok = st_op_div(dev, cmd, a, b, op->act, op->alpha, y, err);
    break;
  case ST_GOP_MOMENTS:
    ok = st_op_moments(dev, cmd, a, op->eps, y, &p->vals[s->out[1]].t, err);
    break;
  case ST_GOP_GRAM:
    ok = st_op_gram(dev, cmd, a, b, op->center, op->sqrt_, y, err);
    break;
  case ST_GOP_MATMUL:
    ok = st_op_matmul(dev, cmd, a, b, op->ta, op->tb, y, err);
    break;
  case ST_GOP_LINEAR:
    ok = st_op_linear(dev, cmd, a, &net->wt[op->weight], op->bias >= 0 ? &net->wt[op->bias] : NULL,
                      op->act, op->alpha, y, err);
    break;
  case ST_GOP_SOFTMAX:
    ok = st_op_softmax(dev, cmd, a, scalar(op->scale, sc), y, err);
    break;
  case ST_GOP_RESHAPE:
    break; /* an alias: no work */
  case ST_GOP_CONCAT: {
    const StTensor *xs[64];
    for (int i = 0; i < s->nin; i++)
      xs[i] = &p->vals[s->in[i]].t;
    ok = st_op_concat(dev, cmd, xs, s->nin, y, err);
    break;
  }
  case ST_GOP_ACT:
    ok = st_op_act(dev, cmd, a, op->act, op->alpha, y, err);
    break;
  }
  if (!ok) {
    char pre[96];
    snprintf(pre, sizeof pre, "%s: ", s->label);
    st_net_prefix_error(err, pre);
  }
  return ok;
}

bool st_record_steps(StNet *net, StCmd *cmd, Plan *p, const Scalars *sc, StError *err) {
  for (int i = 0; i < p->nst; i++) {
    const PStep *s = &p->st[i];
    if (!exec_step(net, cmd, p, s, sc, err))
      return false;
    if (net->per_op) {
      if (s->op->kind != ST_GOP_RESHAPE)
        st_cmd_mark(cmd, s->label);
    } else if (i + 1 == p->nst || p->st[i + 1].stage != s->stage) {
      st_cmd_mark(cmd, p->stage_names[s->stage]);
    }
  }
  return true;
}

void st_net_save_timings(StNet *net, StCmd *cmd) {
  if (!net->timings)
    net->timings = malloc(sizeof *net->timings * MAX_TIMINGS);
  net->ntimings = net->timings ? st_cmd_timings(cmd, net->timings, MAX_TIMINGS) : 0;
}

Recording *st_recording_get(StNet *net, const RecKey *key, bool *reused, StError *err) {
  *reused = false;
  for (int i = 0; i < NET_RECORDINGS; i++) {
    Recording *r = &net->rec[i];
    if (r->valid && memcmp(&r->key, key, sizeof *key) == 0) {
      net->rec_last = i;
      *reused = true;
      return r;
    }
  }
  /* a slot that holds nothing valid, else the one not submitted last */
  int slot = (net->rec_last + 1) % NET_RECORDINGS;
  for (int i = 0; i < NET_RECORDINGS; i++)
    if (!net->rec[i].valid) {
      slot = i;
      break;
    }
  Recording *r = &net->rec[slot];
  r->valid = false;
  if (r->cmd) {
    if (!st_cmd_reset(r->cmd, err)) {
      st_cmd_free(r->cmd);
      r->cmd = NULL;
      return NULL;
    }
  } else if (!(r->cmd = st_cmd_begin(net->dev, err))) {
    return NULL;
  }
  r->key = *key;
  net->rec_last = slot;
  return r;
}

void st_recordings_free(StNet *net) {
  for (int i = 0; i < NET_RECORDINGS; i++) {
    st_cmd_free(net->rec[i].cmd);
    memset(&net->rec[i], 0, sizeof net->rec[i]);
  }
}
