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

/* One step's operands, for its recorder. */
typedef struct {
  StNet *net;
  StDevice *dev;
  StCmd *cmd;
  const Plan *p;
  const PStep *s;
  const StGraphOp *op;
  const Scalars *sc;
  const StTensor *a, *b, *y; /* first two inputs (b NULL with one), first output */
  StError *err;
} Rec;

static const StTensor *bias_of(const Rec *r) {
  return r->op->bias >= 0 ? &r->net->wt[r->op->bias] : NULL;
}

static bool record_conv2d(const Rec *r) {
  const StGraphOp *op = r->op;
  StTensor wv;
  const StTensor *w;
  if (op->weight >= 0) {
    wv = r->net->wt[op->weight];
    /* [O,I,k,k] as rank 3 [O, I, k*k] (StTensor holds rank <= 3; data is identical) */
    const StModelTensor *mt = &r->net->model->tensors[op->weight];
    wv.rank = 3;
    wv.shape[0] = mt->shape[0];
    wv.shape[1] = mt->shape[1];
    wv.shape[2] = mt->shape[2] * mt->shape[3];
    w = &wv;
    const StTensor *u = r->net->wg ? &r->net->wg[op->weight] : NULL;
    if (u && u->rank == 3 && op->k == 3 && op->stride == 1 &&
        st_op_winograd_applies(r->dev, 3, 1, r->y->shape[0]))
      return st_op_conv2d_winograd(r->dev, r->cmd, r->a, u, bias_of(r), op->pad, op->act, op->alpha,
                                   r->y, r->err);
  } else {
    w = &r->p->vals[r->s->wval].t;
  }
  return st_op_conv2d(r->dev, r->cmd, r->a, w, bias_of(r), op->k, op->stride, op->pad, op->act,
                      op->alpha, r->y, r->err);
}

static bool record_pool(const Rec *r) {
  return st_op_pool(r->dev, r->cmd, r->a, (StPoolMode)r->op->mode, r->s->window, r->y, r->err);
}

static bool record_resize(const Rec *r) {
  return st_op_resize(r->dev, r->cmd, r->a, (StResizeMode)r->op->mode, r->y, r->err);
}

static bool record_add(const Rec *r) {
  const StGraphOp *op = r->op;
  return st_op_add(r->dev, r->cmd, r->a, r->b, scalar(op->ka, r->sc), scalar(op->kb, r->sc),
                   op->act, op->alpha, r->y, r->err);
}

static bool record_mul(const Rec *r) {
  return st_op_mul(r->dev, r->cmd, r->a, r->b, r->op->act, r->op->alpha, r->y, r->err);
}

static bool record_div(const Rec *r) {
  return st_op_div(r->dev, r->cmd, r->a, r->b, r->op->act, r->op->alpha, r->y, r->err);
}

static bool record_moments(const Rec *r) {
  return st_op_moments(r->dev, r->cmd, r->a, r->b, r->op->eps, r->y, &r->p->vals[r->s->out[1]].t,
                       r->err);
}

static bool record_gram(const Rec *r) {
  return st_op_gram(r->dev, r->cmd, r->a, r->b, r->op->center, r->op->sqrt_, r->y, r->err);
}

static bool record_matmul(const Rec *r) {
  return st_op_matmul(r->dev, r->cmd, r->a, r->b, r->op->ta, r->op->tb, r->y, r->err);
}

static bool record_linear(const Rec *r) {
  return st_op_linear(r->dev, r->cmd, r->a, &r->net->wt[r->op->weight], bias_of(r), r->op->act,
                      r->op->alpha, r->y, r->err);
}

static bool record_softmax(const Rec *r) {
  return st_op_softmax(r->dev, r->cmd, r->a, scalar(r->op->scale, r->sc), r->y, r->err);
}

/* an alias of its input's memory (net_plan.c): no work (st_record_steps skips alias steps) */
static bool record_reshape(const Rec *r) {
  (void)r;
  return true;
}

static bool record_concat(const Rec *r) {
  const StTensor *xs[64];
  for (int i = 0; i < r->s->nin; i++)
    xs[i] = &r->p->vals[r->s->in[i]].t;
  return st_op_concat(r->dev, r->cmd, xs, r->s->nin, r->y, r->err);
}

static bool record_act(const Rec *r) {
  return st_op_act(r->dev, r->cmd, r->a, r->op->act, r->op->alpha, r->y, r->err);
}

/* a fused chain (net_plan.c fuse_eltwise): the first step's first input through every step's op
 * with its second input, into this (the last) step's output */
static bool record_chain(const Rec *r) {
  StEltStage st[ST_ELT_CHAIN_MAX];
  const Plan *p = r->p;
  for (int i = 0; i < r->s->nchain; i++) {
    const PStep *c = &p->st[r->s->chain[i]];
    const StGraphOp *op = c->op;
    bool add = op->kind == ST_GOP_ADD;
    st[i] = (StEltStage){.kind = add                      ? ST_ELT_ADD
                                 : op->kind == ST_GOP_MUL ? ST_ELT_MUL
                                                          : ST_ELT_DIV,
                         .b = &p->vals[c->in[1]].t,
                         .ka = add ? scalar(op->ka, r->sc) : 1.0f,
                         .kb = add ? scalar(op->kb, r->sc) : 1.0f,
                         .act = op->act,
                         .alpha = op->alpha};
  }
  const StTensor *a = &p->vals[p->st[r->s->chain[0]].in[0]].t;
  return st_op_eltwise_chain(r->dev, r->cmd, a, st, r->s->nchain, r->y, r->err);
}

typedef bool (*RecordFn)(const Rec *r);
#define RECORD_ENTRY(id, name, min_in, max_in, nout) [ST_GOP_##id] = record_##name,
static const RecordFn record_fns[ST_GOP_COUNT] = {ST_GRAPH_OPS(RECORD_ENTRY)};
#undef RECORD_ENTRY

static bool exec_step(StNet *net, StCmd *cmd, Plan *p, const PStep *s, const Scalars *sc,
                      StError *err) {
  const Rec r = {
      .net = net,
      .dev = net->dev,
      .cmd = cmd,
      .p = p,
      .s = s,
      .op = s->op,
      .sc = sc,
      .a = &p->vals[s->in[0]].t,
      .b = s->nin > 1 ? &p->vals[s->in[1]].t : NULL,
      .y = s->out[0] >= 0 ? &p->vals[s->out[0]].t : NULL,
      .err = err,
  };
  if (s->nchain ? record_chain(&r) : record_fns[s->op->kind](&r))
    return true;
  char pre[96];
  snprintf(pre, sizeof pre, "%s: ", s->label);
  st_net_prefix_error(err, pre);
  return false;
}

int st_upload_pool_step(const Plan *p, const RecKey *key) {
  return key->image_io && key->blend == BLEND_OFF ? p->upload_pool : -1;
}

bool st_record_steps(StNet *net, StCmd *cmd, Plan *p, const Scalars *sc, int skip, StError *err) {
  for (int i = 0; i < p->nst; i++) {
    const PStep *s = &p->st[i];
    bool work = !s->fused_away && !s->alias && i != skip;
    if (work && !exec_step(net, cmd, p, s, sc, err))
      return false;
    if (net->per_op) {
      if (work)
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
