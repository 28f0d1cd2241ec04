/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Shape inference of one graph op (weights/FORMAT.md rules), with the message a user sees for a
 * graph that breaks them.
 */
#include "net_private.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One op's inputs, for its shape inference. */
typedef struct {
  const StModel *m;
  const StGraphOp *op;
  const Plan *p;
  const int *in;
  int wval;
  const char *where;   /* "subgraph 's', op i (kind -> out)" */
  const PVal *a, *b;   /* the first two inputs (b NULL with one) */
  const char *sa, *sb; /* their shapes as text */
  StError *err;
} Infer;

/* The error of this op: "model <path>: <where>: <message>" (returns false). */
static bool fail(const Infer *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(const Infer *x, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return st_net_perr(x->err, x->m, "%s: %s", x->where, msg);
}

/* The first input has rank `rank` (`form` names it in the message). */
static bool first_input_is(const Infer *x, int rank, const char *form) {
  return x->a->rank == rank || fail(x, "input '%s' is %s, not %s", x->op->in[0], x->sa, form);
}

/* Output 0 with the first input's shape. */
static bool same_shape(const Infer *x, int *rank, int shape[2][3]) {
  rank[0] = x->a->rank;
  memcpy(shape[0], x->a->shape, sizeof(int) * 3);
  return true;
}

static bool infer_conv2d(const Infer *x, int *rank, int shape[2][3]) {
  const StGraphOp *op = x->op;
  const PVal *a = x->a;
  if (!first_input_is(x, 3, "[C,H,W]"))
    return false;
  int o, i;
  if (op->weight >= 0) {
    const StModelTensor *t = &x->m->tensors[op->weight];
    o = t->shape[0];
    i = t->shape[1];
  } else {
    const PVal *w = &x->p->vals[x->wval];
    if (w->rank != 2)
      return fail(x, "run-time weight '%s' must be an [O,I] matrix", op->weight_value);
    o = w->shape[0];
    i = w->shape[1];
  }
  if (i != a->shape[0])
    return fail(x, "weight expects %d input channels, input '%s' is %s", i, op->in[0], x->sa);
  if (op->bias >= 0 && x->m->tensors[op->bias].shape[0] != o)
    return fail(x, "bias has %d entries for %d output channels", x->m->tensors[op->bias].shape[0],
                o);
  rank[0] = 3;
  shape[0][0] = o;
  shape[0][1] = (a->shape[1] + op->stride - 1) / op->stride;
  shape[0][2] = (a->shape[2] + op->stride - 1) / op->stride;
  return true;
}

static bool infer_pool(const Infer *x, int *rank, int shape[2][3]) {
  if (!first_input_is(x, 3, "[C,H,W]"))
    return false;
  rank[0] = 3;
  shape[0][0] = x->a->shape[0];
  shape[0][1] = (x->a->shape[1] + 1) / 2;
  shape[0][2] = (x->a->shape[2] + 1) / 2;
  return true;
}

static bool infer_resize(const Infer *x, int *rank, int shape[2][3]) {
  if (x->a->rank != 3 || x->b->rank != 3)
    return fail(x, "inputs %s and %s must both be [C,H,W]", x->sa, x->sb);
  rank[0] = 3;
  shape[0][0] = x->a->shape[0];
  shape[0][1] = x->b->shape[1];
  shape[0][2] = x->b->shape[2];
  return true;
}

/* add, mul, div */
static bool infer_elementwise(const Infer *x, int *rank, int shape[2][3]) {
  const PVal *a = x->a, *b = x->b;
  bool same = a->rank == b->rank && memcmp(a->shape, b->shape, sizeof(int) * (size_t)a->rank) == 0;
  bool bcast = a->rank == 3 && b->rank == 1 && b->shape[0] == a->shape[0];
  /* [1,H,W] over the channels (C = 1 is the same shape) */
  bool spatial = a->rank == 3 && b->rank == 3 && a->shape[0] > 1 && b->shape[0] == 1 &&
                 b->shape[1] == a->shape[1] && b->shape[2] == a->shape[2];
  if (!same && !bcast && !spatial)
    return fail(x, "'%s' %s and '%s' %s do not match (same shape, [C] or [1,H,W] expected)",
                x->op->in[0], x->sa, x->op->in[1], x->sb);
  return same_shape(x, rank, shape);
}

static bool infer_moments(const Infer *x, int *rank, int shape[2][3]) {
  if (!first_input_is(x, 3, "[C,H,W]"))
    return false;
  const PVal *a = x->a, *w = x->b;
  if (w && (w->rank != 3 || w->shape[0] != 1 || w->shape[1] != a->shape[1] ||
            w->shape[2] != a->shape[2]))
    return fail(x, "mask '%s' is %s, not [1,%d,%d] (one channel, the H,W of '%s' %s)", x->op->in[1],
                x->sb, a->shape[1], a->shape[2], x->op->in[0], x->sa);
  rank[0] = rank[1] = 1;
  shape[0][0] = shape[1][0] = x->a->shape[0];
  return true;
}

static bool infer_gram(const Infer *x, int *rank, int shape[2][3]) {
  const PVal *a = x->a, *b = x->b;
  if (a->rank != 3 ||
      (b && (b->rank != 3 || b->shape[1] != a->shape[1] || b->shape[2] != a->shape[2])))
    return fail(x, "inputs must be [C,H,W] and [D,H,W] (got %s%s%s)", x->sa, b ? " and " : "",
                b ? x->sb : "");
  rank[0] = 2;
  shape[0][0] = a->shape[0];
  shape[0][1] = b ? b->shape[0] : a->shape[0];
  return true;
}

static bool infer_matmul(const Infer *x, int *rank, int shape[2][3]) {
  const StGraphOp *op = x->op;
  const PVal *a = x->a, *b = x->b;
  if (a->rank != 2 || b->rank != 2)
    return fail(x, "inputs %s and %s must be matrices", x->sa, x->sb);
  int am = op->ta ? a->shape[1] : a->shape[0], ak = op->ta ? a->shape[0] : a->shape[1];
  int bk = op->tb ? b->shape[1] : b->shape[0], bn = op->tb ? b->shape[0] : b->shape[1];
  if (ak != bk)
    return fail(x, "inner sizes differ (%s x %s, ta %d tb %d)", x->sa, x->sb, op->ta, op->tb);
  rank[0] = 2;
  shape[0][0] = am;
  shape[0][1] = bn;
  return true;
}

static bool infer_linear(const Infer *x, int *rank, int shape[2][3]) {
  const StModelTensor *t = &x->m->tensors[x->op->weight];
  size_t k = st_net_numel(x->a->rank, x->a->shape);
  if ((size_t)t->shape[1] != k)
    return fail(x, "weight '%s' is [%d,%d] but the input '%s' %s has %zu elements", t->name,
                t->shape[0], t->shape[1], x->op->in[0], x->sa, k);
  rank[0] = 1;
  shape[0][0] = t->shape[0];
  return true;
}

static bool infer_softmax(const Infer *x, int *rank, int shape[2][3]) {
  return first_input_is(x, 2, "a matrix") && same_shape(x, rank, shape);
}

static bool infer_reshape(const Infer *x, int *rank, int shape[2][3]) {
  const StGraphOp *op = x->op;
  size_t n = st_net_numel(x->a->rank, x->a->shape), k = st_net_numel(op->shape_rank, op->shape);
  if (n != k) {
    char sr[64];
    st_net_shape_str(sr, sizeof sr, op->shape_rank, op->shape);
    return fail(x, "cannot reshape %s to %s", x->sa, sr);
  }
  rank[0] = op->shape_rank;
  memcpy(shape[0], op->shape, sizeof(int) * 3);
  return true;
}

static bool infer_concat(const Infer *x, int *rank, int shape[2][3]) {
  const PVal *a = x->a;
  long long c = 0; /* up to 64 inputs of up to INT_MAX channels each */
  for (int i = 0; i < x->op->nin; i++) {
    const PVal *v = &x->p->vals[x->in[i]];
    if (v->rank != 3 || v->shape[1] != a->shape[1] || v->shape[2] != a->shape[2]) {
      char sv[64];
      st_net_shape_str(sv, sizeof sv, v->rank, v->shape);
      return fail(x, "input '%s' %s does not match [C,%d,%d]", x->op->in[i], sv,
                  a->rank == 3 ? a->shape[1] : 0, a->rank == 3 ? a->shape[2] : 0);
    }
    c += v->shape[0];
  }
  if (c > INT_MAX)
    return fail(x, "%lld channels, more than %d", c, INT_MAX);
  rank[0] = 3;
  shape[0][0] = (int)c;
  shape[0][1] = a->shape[1];
  shape[0][2] = a->shape[2];
  return true;
}

#define infer_act same_shape

typedef bool (*InferFn)(const Infer *x, int *rank, int shape[2][3]);
#define INFER_ENTRY(id, name, min_in, max_in, nout) [ST_GOP_##id] = infer_##name,
#define infer_add infer_elementwise
#define infer_mul infer_elementwise
#define infer_div infer_elementwise
static const InferFn infer_fns[ST_GOP_COUNT] = {ST_GRAPH_OPS(INFER_ENTRY)};
#undef INFER_ENTRY

bool st_net_infer(const StNet *net, const Plan *p, const StSubgraph *sg, int opi,
                  const StGraphOp *op, const int *in, int wval, int *rank, int shape[2][3],
                  StError *err) {
  char where[256];
  snprintf(where, sizeof where, "subgraph '%s', op %d (%s -> %s)", sg->name, opi,
           st_graph_op_name(op->kind), op->out[0]);
  const PVal *a = &p->vals[in[0]];
  const PVal *b = op->nin > 1 ? &p->vals[in[1]] : NULL;
  char sa[64], sb[64] = "";
  st_net_shape_str(sa, sizeof sa, a->rank, a->shape);
  if (b)
    st_net_shape_str(sb, sizeof sb, b->rank, b->shape);
  rank[0] = rank[1] = 0;
  if ((unsigned)op->kind >= ST_GOP_COUNT)
    return st_net_perr(err, net->model, "%s: unknown op", where);
  const Infer x = {net->model, op, p, in, wval, where, a, b, sa, sb, err};
  return infer_fns[op->kind](&x, rank, shape);
}
