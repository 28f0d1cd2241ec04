/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Graph executor: weights on the device, per-size plans (shape inference + liveness-based arena),
 * one command buffer and one submission per frame. See compute/README.md.
 */
#include "format.h"
#include "internal.h"
#include "model.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 16384
/* Elements of one run-time value at most (as of a file tensor, compute/model.c): far beyond any
 * device's buffers, and small enough that no size computed from it overflows. */
#define MAX_NUMEL ((size_t)1 << 40)
#define MAX_TIMINGS 4096

/* ---- plan data ---------------------------------------------------------------------------- */

typedef enum { VS_ARENA = 0, VS_STYLE, VS_STATE, VS_PERSIST } ValueStore;

typedef struct {
  const char *name;
  int rank;
  int shape[3];
  StDType dtype;
  int root; /* the value owning the memory (itself unless a reshape alias) */
  int def, last;
  ValueStore store;
  VkDeviceSize offset, bytes;
  StTensor t;
} PVal;

typedef struct {
  const StGraphOp *op; /* NULL: internal resize content -> orig */
  int *in;
  int nin;
  int out[2];
  int wval; /* run-time conv weight value, or -1 */
  int stage;
  char label[64];
} PStep;

typedef struct {
  const char *name;
  int id;
} Bind;

typedef struct {
  Bind *b;
  int n, cap;
} Env;

typedef struct {
  char *name;
  int rank;
  int shape[3];
  StDType dtype;
  VkDeviceSize offset;
} StyleVal;

typedef struct {
  /* key */
  int pw, ph, steps;
  bool preserve;
  unsigned style_gen;
  bool style_plan;
  /* values and steps */
  PVal *vals;
  int nvals, vcap;
  PStep *st;
  int nst, scap;
  int nstages;
  char (*stage_names)[32];
  int input;         /* content (frame plans) or style (style plans) */
  int state;         /* VS_STATE value or -1 */
  int x_final;       /* frame plans */
  int state_src;     /* value copied into the temporal state at the end, or -1 */
  int orig;          /* preserve-colors reference at x's size, or -1 (== input when sizes match) */
  int end_step;      /* index used for "at the end of the frame" liveness */
  int *outs;         /* style plans: value of each style output */
  bool state_resize; /* state_src is not at the processing size: resized into the state */
  VkDeviceSize arena_size, persist_size;
  StBuffer arena;
} Plan;

struct StNet {
  StDevice *dev;
  StModel *model;
  bool fp16;
  StBuffer weights;
  StTensor *wt; /* per file tensor */
  /* style state */
  bool has_style;
  unsigned style_gen;
  StyleVal *style_vals;
  int nstyle;
  StBuffer style_buf;
  /* temporal state */
  StBuffer state_buf;
  StBuffer state_tmp; /* the translated state before it is copied back */
  int state_w, state_h;
  bool state_valid;
  /* global motion: luma of the previous frame at the motion resolution */
  StLuma luma_prev, luma_cur;
  bool luma_prev_valid;
  int motion_dx, motion_dy; /* applied in the last frame (processing px) */
  StFlow field;             /* local motion of the last frame (motion px), for the smoothing */
  bool field_valid;
  /* temporal smoothing of the output: previous output and content at the output's size,
   * double-buffered ([cur] is written by this frame), and the motion field uploaded per frame */
  StBuffer blend_out[2], blend_in[2], flow_buf;
  StTensor blend_t[4]; /* this frame's output, content, previous output, previous content */
  int blend_w, blend_h, blend_cur;
  bool blend_valid, blend_pending;
  unsigned blend_style_gen;
  int blend_steps;
  float blend_strength;
  bool blend_preserve;
  /* current frame plan */
  Plan *plan;
  /* frame I/O */
  StBuffer up, up_dev, down, down_dev;
  /* timing */
  bool per_op;
  StTiming *timings;
  int ntimings;
  StHostTiming host; /* of the last frame */
  double copy_ms;    /* host time of this frame's copies into the upload buffer */
};

static bool perr(StError *err, const StModel *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool perr(StError *err, const StModel *m, const char *fmt, ...) {
  if (err) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_set_error(err, ST_ERROR_MODEL, "model %s: %s", m->path, msg);
  }
  return false;
}

static void prefix_error(StError *err, const char *prefix) {
  if (!err)
    return;
  size_t pl = strlen(prefix), ml = strlen(err->message), cap = sizeof err->message;
  if (pl >= cap)
    return;
  if (pl + ml + 1 > cap)
    ml = cap - pl - 1;
  memmove(err->message + pl, err->message, ml);
  memcpy(err->message, prefix, pl);
  err->message[pl + ml] = 0;
}

static void shape_str(char *s, size_t n, int rank, const int *shape) {
  size_t k = (size_t)snprintf(s, n, "[");
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(s + k, n - k, i ? ",%d" : "%d", shape[i]);
  if (k < n)
    snprintf(s + k, n - k, "]");
}

static void plan_free(StDevice *dev, Plan *p) {
  if (!p)
    return;
  for (int i = 0; i < p->nst; i++)
    free(p->st[i].in);
  free(p->outs);
  free(p->st);
  free(p->vals);
  free(p->stage_names);
  st_buffer_destroy(dev, &p->arena);
  free(p);
}

/* Makes room for element n of a growable array of capacity *cap (doubling): returns the array,
 * possibly moved, or NULL when out of memory (then the old array and *cap are unchanged). */
static void *grow(void *items, int *cap, int n, size_t elem, int first_cap) {
  if (n < *cap)
    return items;
  int ncap = *cap ? 2 * *cap : first_cap;
  void *ni = realloc(items, elem * (size_t)ncap);
  if (ni)
    *cap = ncap;
  return ni;
}

static int new_value(Plan *p, const char *name, int rank, const int *shape, StDType dtype,
                     ValueStore store, int def) {
  PVal *nv = grow(p->vals, &p->vcap, p->nvals, sizeof *nv, 64);
  if (!nv)
    return -1;
  p->vals = nv;
  PVal *v = &p->vals[p->nvals];
  memset(v, 0, sizeof *v);
  v->name = name;
  v->rank = rank;
  for (int i = 0; i < rank; i++)
    v->shape[i] = shape[i];
  v->dtype = dtype;
  v->root = p->nvals;
  v->def = def;
  v->last = def;
  v->store = store;
  return p->nvals++;
}

static PStep *new_step(Plan *p) {
  PStep *ns = grow(p->st, &p->scap, p->nst, sizeof *ns, 64);
  if (!ns)
    return NULL;
  p->st = ns;
  PStep *s = &p->st[p->nst++];
  memset(s, 0, sizeof *s);
  s->out[0] = s->out[1] = -1;
  s->wval = -1;
  return s;
}

static int add_stage(Plan *p, const char *name) {
  char(*ns)[32] = realloc(p->stage_names, sizeof *ns * (size_t)(p->nstages + 1));
  if (!ns)
    return -1;
  p->stage_names = ns;
  snprintf(p->stage_names[p->nstages], 32, "%s", name);
  return p->nstages++;
}

static int env_get(const Env *e, const char *name) {
  for (int i = e->n - 1; i >= 0; i--)
    if (strcmp(e->b[i].name, name) == 0)
      return e->b[i].id;
  return -1;
}

static bool env_set(Env *e, const char *name, int id) {
  for (int i = 0; i < e->n; i++)
    if (strcmp(e->b[i].name, name) == 0) {
      e->b[i].id = id;
      return true;
    }
  Bind *nb = grow(e->b, &e->cap, e->n, sizeof *nb, 32);
  if (!nb)
    return false;
  e->b = nb;
  e->b[e->n].name = name;
  e->b[e->n].id = id;
  e->n++;
  return true;
}

/* Feature maps (rank 3, more than 3 channels) are stored as fp16 when enabled; images,
 * statistics and matrices stay fp32. */
static StDType value_dtype(const StNet *net, int rank, const int *shape) {
  return net->fp16 && rank == 3 && shape[0] > 3 ? ST_F16 : ST_F32;
}

static void use(Plan *p, int id, int step) {
  int r = p->vals[id].root;
  if (p->vals[r].last < step)
    p->vals[r].last = step;
}

static size_t numel_of(int rank, const int *shape) {
  size_t n = 1;
  for (int i = 0; i < rank; i++)
    n *= (size_t)shape[i];
  return n;
}

/* Whether every size is positive and the product at most MAX_NUMEL (without overflowing). */
static bool numel_ok(int rank, const int *shape) {
  size_t n = 1;
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 1 || n > MAX_NUMEL / (size_t)shape[i])
      return false;
    n *= (size_t)shape[i];
  }
  return true;
}

/* Shape inference for one op (FORMAT.md rules). */
static bool infer(const StNet *net, Plan *p, const StSubgraph *sg, int opi, const StGraphOp *op,
                  const int *in, int wval, int *rank, int shape[2][3], StError *err) {
  const StModel *m = net->model;
  char where[256];
  snprintf(where, sizeof where, "subgraph '%s', op %d (%s -> %s)", sg->name, opi,
           st_graph_op_name(op->kind), op->out[0]);
  const PVal *a = &p->vals[in[0]];
  const PVal *b = op->nin > 1 ? &p->vals[in[1]] : NULL;
  char sa[64], sb[64];
  shape_str(sa, sizeof sa, a->rank, a->shape);
  if (b)
    shape_str(sb, sizeof sb, b->rank, b->shape);
  rank[0] = rank[1] = 0;
  switch (op->kind) {
  case ST_GOP_CONV2D: {
    if (a->rank != 3)
      return perr(err, m, "%s: input '%s' is %s, not [C,H,W]", where, op->in[0], sa);
    int o, i;
    if (op->weight >= 0) {
      const StModelTensor *t = &m->tensors[op->weight];
      o = t->shape[0];
      i = t->shape[1];
    } else {
      const PVal *w = &p->vals[wval];
      if (w->rank != 2)
        return perr(err, m, "%s: run-time weight '%s' must be an [O,I] matrix", where,
                    op->weight_value);
      o = w->shape[0];
      i = w->shape[1];
    }
    if (i != a->shape[0])
      return perr(err, m, "%s: weight expects %d input channels, input '%s' is %s", where, i,
                  op->in[0], sa);
    if (op->bias >= 0 && m->tensors[op->bias].shape[0] != o)
      return perr(err, m, "%s: bias has %d entries for %d output channels", where,
                  m->tensors[op->bias].shape[0], o);
    rank[0] = 3;
    shape[0][0] = o;
    shape[0][1] = (a->shape[1] + op->stride - 1) / op->stride;
    shape[0][2] = (a->shape[2] + op->stride - 1) / op->stride;
    return true;
  }
  case ST_GOP_POOL:
    if (a->rank != 3)
      return perr(err, m, "%s: input '%s' is %s, not [C,H,W]", where, op->in[0], sa);
    rank[0] = 3;
    shape[0][0] = a->shape[0];
    shape[0][1] = (a->shape[1] + 1) / 2;
    shape[0][2] = (a->shape[2] + 1) / 2;
    return true;
  case ST_GOP_RESIZE:
    if (a->rank != 3 || b->rank != 3)
      return perr(err, m, "%s: inputs %s and %s must both be [C,H,W]", where, sa, sb);
    rank[0] = 3;
    shape[0][0] = a->shape[0];
    shape[0][1] = b->shape[1];
    shape[0][2] = b->shape[2];
    return true;
  case ST_GOP_ADD:
  case ST_GOP_MUL:
  case ST_GOP_DIV: {
    bool same =
        a->rank == b->rank && memcmp(a->shape, b->shape, sizeof(int) * (size_t)a->rank) == 0;
    bool bcast = a->rank == 3 && b->rank == 1 && b->shape[0] == a->shape[0];
    if (!same && !bcast)
      return perr(err, m, "%s: '%s' %s and '%s' %s do not match (same shape or [C] expected)",
                  where, op->in[0], sa, op->in[1], sb);
    rank[0] = a->rank;
    memcpy(shape[0], a->shape, sizeof(int) * 3);
    return true;
  }
  case ST_GOP_MOMENTS:
    if (a->rank != 3)
      return perr(err, m, "%s: input '%s' is %s, not [C,H,W]", where, op->in[0], sa);
    rank[0] = rank[1] = 1;
    shape[0][0] = shape[1][0] = a->shape[0];
    return true;
  case ST_GOP_GRAM:
    if (a->rank != 3 ||
        (b && (b->rank != 3 || b->shape[1] != a->shape[1] || b->shape[2] != a->shape[2])))
      return perr(err, m, "%s: inputs must be [C,H,W] and [D,H,W] (got %s%s%s)", where, sa,
                  b ? " and " : "", b ? sb : "");
    rank[0] = 2;
    shape[0][0] = a->shape[0];
    shape[0][1] = b ? b->shape[0] : a->shape[0];
    return true;
  case ST_GOP_MATMUL: {
    if (a->rank != 2 || b->rank != 2)
      return perr(err, m, "%s: inputs %s and %s must be matrices", where, sa, sb);
    int am = op->ta ? a->shape[1] : a->shape[0], ak = op->ta ? a->shape[0] : a->shape[1];
    int bk = op->tb ? b->shape[1] : b->shape[0], bn = op->tb ? b->shape[0] : b->shape[1];
    if (ak != bk)
      return perr(err, m, "%s: inner sizes differ (%s x %s, ta %d tb %d)", where, sa, sb, op->ta,
                  op->tb);
    rank[0] = 2;
    shape[0][0] = am;
    shape[0][1] = bn;
    return true;
  }
  case ST_GOP_LINEAR: {
    const StModelTensor *t = &m->tensors[op->weight];
    size_t k = numel_of(a->rank, a->shape);
    if ((size_t)t->shape[1] != k)
      return perr(err, m, "%s: weight '%s' is [%d,%d] but the input '%s' %s has %zu elements",
                  where, t->name, t->shape[0], t->shape[1], op->in[0], sa, k);
    rank[0] = 1;
    shape[0][0] = t->shape[0];
    return true;
  }
  case ST_GOP_SOFTMAX:
    if (a->rank != 2)
      return perr(err, m, "%s: input '%s' is %s, not a matrix", where, op->in[0], sa);
    rank[0] = 2;
    memcpy(shape[0], a->shape, sizeof(int) * 3);
    return true;
  case ST_GOP_RESHAPE: {
    size_t n = numel_of(a->rank, a->shape), k = numel_of(op->shape_rank, op->shape);
    if (n != k) {
      char sr[64];
      shape_str(sr, sizeof sr, op->shape_rank, op->shape);
      return perr(err, m, "%s: cannot reshape %s to %s", where, sa, sr);
    }
    rank[0] = op->shape_rank;
    memcpy(shape[0], op->shape, sizeof(int) * 3);
    return true;
  }
  case ST_GOP_CONCAT: {
    long long c = 0; /* up to 64 inputs of up to INT_MAX channels each */
    for (int i = 0; i < op->nin; i++) {
      const PVal *v = &p->vals[in[i]];
      if (v->rank != 3 || v->shape[1] != a->shape[1] || v->shape[2] != a->shape[2]) {
        char sv[64];
        shape_str(sv, sizeof sv, v->rank, v->shape);
        return perr(err, m, "%s: input '%s' %s does not match [C,%d,%d]", where, op->in[i], sv,
                    a->rank == 3 ? a->shape[1] : 0, a->rank == 3 ? a->shape[2] : 0);
      }
      c += v->shape[0];
    }
    if (c > INT_MAX)
      return perr(err, m, "%s: %lld channels, more than %d", where, c, INT_MAX);
    rank[0] = 3;
    shape[0][0] = (int)c;
    shape[0][1] = a->shape[1];
    shape[0][2] = a->shape[2];
    return true;
  }
  case ST_GOP_ACT:
    rank[0] = a->rank;
    memcpy(shape[0], a->shape, sizeof(int) * 3);
    return true;
  }
  return perr(err, m, "%s: unknown op", where);
}

static bool plan_subgraph(const StNet *net, Plan *p, const StSubgraph *sg, Env *global,
                          const char *stage_name, StError *err) {
  const StModel *m = net->model;
  Env local = {0};
  bool ok = false;
  int stage = add_stage(p, stage_name);
  if (stage < 0) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return false;
  }
  for (int i = 0; i < sg->ninputs; i++) {
    if (env_get(global, sg->inputs[i]) < 0) {
      perr(err, m,
           "subgraph '%s': input '%s' is not available at this point (not the content, "
           "the state, or an output of the style/initial/earlier subgraphs)",
           sg->name, sg->inputs[i]);
      goto out;
    }
  }
  for (int oi = 0; oi < sg->nops; oi++) {
    const StGraphOp *op = &sg->ops[oi];
    int in[64];
    for (int i = 0; i < op->nin; i++) {
      in[i] = env_get(&local, op->in[i]);
      if (in[i] < 0)
        in[i] = env_get(global, op->in[i]);
      if (in[i] < 0) {
        perr(err, m, "subgraph '%s', op %d (%s): input '%s' is undefined", sg->name, oi,
             st_graph_op_name(op->kind), op->in[i]);
        goto out;
      }
    }
    int wval = -1;
    if (op->kind == ST_GOP_CONV2D && op->weight < 0) {
      wval = env_get(&local, op->weight_value);
      if (wval < 0)
        wval = env_get(global, op->weight_value);
      if (wval < 0) {
        perr(err, m,
             "subgraph '%s', op %d (conv2d): weight '%s' is neither a tensor of the file nor a "
             "value",
             sg->name, oi, op->weight_value);
        goto out;
      }
      if (op->k != 1) {
        perr(err, m, "subgraph '%s', op %d (conv2d): a run-time weight needs k = 1", sg->name, oi);
        goto out;
      }
    }
    int rank[2], shape[2][3];
    if (!infer(net, p, sg, oi, op, in, wval, rank, shape, err))
      goto out;
    for (int k = 0; k < op->nout; k++) {
      if (!numel_ok(rank[k], shape[k])) {
        char so[64];
        shape_str(so, sizeof so, rank[k], shape[k]);
        perr(err, m, "subgraph '%s', op %d (%s): '%s' would be %s, more than 2^40 elements",
             sg->name, oi, st_graph_op_name(op->kind), op->out[k], so);
        goto out;
      }
    }
    PStep *s = new_step(p);
    if (!s || !(s->in = malloc(sizeof(int) * (size_t)op->nin))) {
      st_set_error(err, ST_ERROR_MEMORY, "out of memory");
      goto out;
    }
    int step = p->nst - 1;
    s->op = op;
    s->nin = op->nin;
    memcpy(s->in, in, sizeof(int) * (size_t)op->nin);
    s->wval = wval;
    s->stage = stage;
    snprintf(s->label, sizeof s->label, "%s/%s:%s", stage_name, st_graph_op_name(op->kind),
             op->out[0]);
    for (int i = 0; i < op->nin; i++)
      use(p, in[i], step);
    if (wval >= 0)
      use(p, wval, step);
    for (int k = 0; k < op->nout; k++) {
      if (env_get(&local, op->out[k]) >= 0) {
        perr(err, m, "subgraph '%s', op %d (%s): '%s' is assigned twice", sg->name, oi,
             st_graph_op_name(op->kind), op->out[k]);
        goto out;
      }
      int id;
      if (op->kind == ST_GOP_RESHAPE) {
        const PVal *src = &p->vals[in[0]];
        id = new_value(p, op->out[k], rank[k], shape[k], src->dtype, src->store, step);
        if (id >= 0) {
          p->vals[id].root = p->vals[in[0]].root;
          p->vals[id].store = p->vals[p->vals[id].root].store;
        }
      } else {
        id = new_value(p, op->out[k], rank[k], shape[k], value_dtype(net, rank[k], shape[k]),
                       VS_ARENA, step);
      }
      if (id < 0 || !env_set(&local, op->out[k], id)) {
        st_set_error(err, ST_ERROR_MEMORY, "out of memory");
        goto out;
      }
      p->st[step].out[k] = id;
    }
  }
  for (int i = 0; i < sg->noutputs; i++) {
    int id = env_get(&local, sg->outputs[i]);
    if (id < 0)
      id = env_get(global, sg->outputs[i]);
    if (id < 0) {
      perr(err, m, "subgraph '%s': output '%s' is never computed", sg->name, sg->outputs[i]);
      goto out;
    }
    if (!env_set(global, sg->outputs[i], id)) {
      st_set_error(err, ST_ERROR_MEMORY, "out of memory");
      goto out;
    }
  }
  ok = true;
out:
  free(local.b);
  return ok;
}

/* Assigns arena offsets to VS_ARENA roots (first fit over lifetime intervals) and sizes
 * VS_PERSIST roots (laid out one after the other). */
static bool layout_values(const StNet *net, Plan *p, StError *err) {
  /* Without a device (st_model_check_graph) the values are laid out at 16-byte alignment. */
  VkDeviceSize align = net->dev ? st_device_limits(net->dev)->minStorageBufferOffsetAlignment : 16;
  if (align < 16)
    align = 16;
  int *order = malloc(sizeof(int) * (size_t)(p->nvals + 1));
  int *placed = malloc(sizeof(int) * 2 * (size_t)(p->nvals + 1)); /* placed + scratch */
  if (!order || !placed) {
    free(order);
    free(placed);
    return st_set_error(err, ST_ERROR_MEMORY, "out of memory");
  }
  int n = 0, np = 0;
  p->arena_size = 0;
  p->persist_size = 0;
  for (int i = 0; i < p->nvals; i++) {
    PVal *v = &p->vals[i];
    if (v->root != i)
      continue;
    v->bytes = (VkDeviceSize)numel_of(v->rank, v->shape) * st_dtype_size(v->dtype);
    v->bytes = (v->bytes + align - 1) / align * align;
    if (v->store == VS_ARENA)
      order[n++] = i;
    else if (v->store == VS_PERSIST) {
      v->offset = p->persist_size;
      p->persist_size += v->bytes;
    }
  }
  /* order by definition time (stable: values are created in step order already) */
  for (int a = 0; a < n; a++) {
    PVal *v = &p->vals[order[a]];
    /* blocks overlapping in time, sorted by offset */
    int cnt = 0;
    for (int b = 0; b < np; b++) {
      PVal *u = &p->vals[placed[b]];
      if (u->last >= v->def && u->def <= v->last)
        placed[np + cnt++] = placed[b]; /* scratch after the placed list */
    }
    int *ov = placed + np;
    for (int i = 1; i < cnt; i++) { /* insertion sort by offset */
      int x = ov[i], j = i - 1;
      while (j >= 0 && p->vals[ov[j]].offset > p->vals[x].offset) {
        ov[j + 1] = ov[j];
        j--;
      }
      ov[j + 1] = x;
    }
    VkDeviceSize off = 0;
    for (int i = 0; i < cnt; i++) {
      PVal *u = &p->vals[ov[i]];
      if (off + v->bytes <= u->offset)
        break;
      if (u->offset + u->bytes > off)
        off = u->offset + u->bytes;
    }
    v->offset = off;
    if (off + v->bytes > p->arena_size)
      p->arena_size = off + v->bytes;
    placed[np++] = order[a];
  }
  free(order);
  free(placed);
  /* Self-check: no two arena values alive at the same time share memory. */
  for (int i = 0; i < p->nvals; i++) {
    const PVal *a = &p->vals[i];
    if (a->root != i || a->store != VS_ARENA)
      continue;
    for (int j = i + 1; j < p->nvals; j++) {
      const PVal *b = &p->vals[j];
      if (b->root != j || b->store != VS_ARENA)
        continue;
      if (a->last >= b->def && b->last >= a->def && a->offset < b->offset + b->bytes &&
          b->offset < a->offset + a->bytes)
        return st_set_error(err, ST_ERROR_VULKAN, "internal error: arena values %s and %s overlap",
                            a->name, b->name);
    }
  }
  return true;
}

/* Points every value's StTensor at its memory. */
static void bind_tensors(StNet *net, Plan *p, StBuffer *persist) {
  for (int i = 0; i < p->nvals; i++) {
    PVal *v = &p->vals[i];
    PVal *r = &p->vals[v->root];
    StTensor *t = &v->t;
    t->dtype = r->dtype;
    t->rank = v->rank;
    memcpy(t->shape, v->shape, sizeof t->shape);
    switch (r->store) {
    case VS_ARENA:
      t->buf = &p->arena;
      t->offset = r->offset;
      break;
    case VS_PERSIST:
      t->buf = persist;
      t->offset = r->offset;
      break;
    case VS_STATE:
      t->buf = &net->state_buf;
      t->offset = 0;
      break;
    case VS_STYLE:
      t->buf = &net->style_buf;
      t->offset = r->offset;
      break;
    }
  }
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

/* Style plan: input 'style' [3,sh,sw]; outputs become VS_PERSIST. */
static Plan *plan_style(StNet *net, int sw, int sh, StError *err) {
  Plan *p = calloc(1, sizeof *p);
  Env env = {0};
  if (!p) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  p->style_plan = true;
  p->state = p->state_src = p->orig = p->x_final = -1;
  int shape[3] = {3, sh, sw};
  p->input = new_value(p, "style", 3, shape, ST_F32, VS_ARENA, 0);
  if (p->input < 0 || !env_set(&env, "style", p->input)) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    goto fail;
  }
  if (!plan_subgraph(net, p, &net->model->style, &env, "style", err))
    goto fail;
  p->outs = calloc((size_t)net->model->style.noutputs + 1, sizeof(int));
  if (!p->outs) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    goto fail;
  }
  for (int i = 0; i < net->model->style.noutputs; i++) {
    int id = env_get(&env, net->model->style.outputs[i]);
    p->outs[i] = id;
    if (p->vals[id].root == p->input) {
      perr(err, net->model, "style output '%s' is the style image itself",
           net->model->style.outputs[i]);
      goto fail;
    }
    p->vals[p->vals[id].root].store = VS_PERSIST;
  }
  for (int i = 0; i < p->nvals; i++)
    p->vals[i].store = p->vals[p->vals[i].root].store;
  if (!layout_values(net, p, err))
    goto fail;
  free(env.b);
  return p;
fail:
  free(env.b);
  plan_free(net->dev, p);
  return NULL;
}

/* Frame plan at processing size pw x ph with `steps` refinement steps. `style` describes the style
 * state (shapes; offsets into net->style_buf). */
static Plan *plan_frame(StNet *net, const StyleVal *style, int nstyle, int pw, int ph, int steps,
                        bool preserve, StError *err) {
  const StModel *m = net->model;
  Plan *p = calloc(1, sizeof *p);
  Env env = {0};
  if (!p) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  p->pw = pw;
  p->ph = ph;
  p->steps = steps;
  p->preserve = preserve;
  p->state = p->state_src = p->orig = -1;
  for (int i = 0; i < nstyle; i++) {
    int id =
        new_value(p, style[i].name, style[i].rank, style[i].shape, style[i].dtype, VS_STYLE, -1);
    if (id < 0 || !env_set(&env, style[i].name, id))
      goto oom;
    p->vals[id].offset = style[i].offset;
  }
  int shape[3] = {3, ph, pw};
  p->input = new_value(p, "content", 3, shape, ST_F32, VS_ARENA, 0);
  if (p->input < 0 || !env_set(&env, "content", p->input))
    goto oom;
  if (m->state_name) {
    p->state = new_value(p, m->state_name, 3, shape, ST_F32, VS_STATE, -1);
    if (p->state < 0 || !env_set(&env, m->state_name, p->state))
      goto oom;
  }
  if (!plan_subgraph(net, p, &m->initial, &env, "initial", err))
    goto fail;
  for (int i = 0; i < steps && m->nrefine > 0; i++) {
    char name[32];
    snprintf(name, sizeof name, "refine_%d", i);
    int r = i < m->nrefine ? i : m->nrefine - 1;
    if (!plan_subgraph(net, p, &m->refine[r], &env, name, err))
      goto fail;
  }
  p->end_step = p->nst;
  p->x_final = env_get(&env, "x");
  if (p->x_final < 0) {
    perr(err, m, "no value 'x' after the initial/refine subgraphs");
    goto fail;
  }
  const PVal *x = &p->vals[p->x_final];
  if (x->rank != 3 || x->shape[0] != 3) {
    char sx[64];
    shape_str(sx, sizeof sx, x->rank, x->shape);
    perr(err, m, "the final 'x' is %s, not an RGB image [3,H,W]", sx);
    goto fail;
  }
  use(p, p->x_final, p->end_step);
  if (m->state_from) {
    int id = env_get(&env, m->state_from);
    if (id >= 0 && id != p->state) {
      const PVal *v = &p->vals[id];
      if (v->rank != 3 || v->shape[0] != 3) {
        char sv[64];
        shape_str(sv, sizeof sv, v->rank, v->shape);
        perr(err, m, "state '%s' is %s, it must be an RGB image [3,H,W]", m->state_from, sv);
        goto fail;
      }
      /* A state produced at a coarser level (few steps) is resized to the processing size. */
      p->state_resize = v->shape[1] != ph || v->shape[2] != pw || p->vals[v->root].dtype != ST_F32;
      p->state_src = id;
      use(p, id, p->end_step);
    }
  }
  if (preserve) {
    if (x->shape[1] == ph && x->shape[2] == pw) {
      p->orig = p->input;
    } else {
      p->orig = new_value(p, "orig", 3, x->shape, ST_F32, VS_ARENA, p->end_step);
      if (p->orig < 0)
        goto oom;
    }
    use(p, p->input, p->end_step);
  }
  for (int i = 0; i < p->nvals; i++)
    p->vals[i].store = p->vals[p->vals[i].root].store;
  if (!layout_values(net, p, err))
    goto fail;
  free(env.b);
  return p;
oom:
  st_set_error(err, ST_ERROR_MEMORY, "out of memory");
fail:
  free(env.b);
  plan_free(net->dev, p);
  return NULL;
}

static void free_style_vals(StyleVal *sv, int n) {
  for (int i = 0; i < n; i++)
    free(sv[i].name);
  free(sv);
}

/* Style descriptors of a style plan's outputs (offsets into the plan's persistent buffer). */
static StyleVal *style_vals_of(const StNet *net, const Plan *p, int *n, StError *err) {
  const StSubgraph *sg = &net->model->style;
  StyleVal *sv = calloc((size_t)sg->noutputs + 1, sizeof *sv);
  if (!sv) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  for (int i = 0; i < sg->noutputs; i++) {
    const PVal *v = &p->vals[p->outs[i]];
    size_t len = strlen(sg->outputs[i]) + 1;
    sv[i].name = malloc(len);
    if (!sv[i].name) {
      free_style_vals(sv, i);
      st_set_error(err, ST_ERROR_MEMORY, "out of memory");
      return NULL;
    }
    memcpy(sv[i].name, sg->outputs[i], len);
    sv[i].rank = v->rank;
    memcpy(sv[i].shape, v->shape, sizeof sv[i].shape);
    sv[i].dtype = p->vals[v->root].dtype;
    sv[i].offset = p->vals[v->root].offset;
  }
  *n = sg->noutputs;
  return sv;
}

/* Values of the run-time scalars of FORMAT.md for one recording. */
typedef struct {
  float strength;    /* the element's strength */
  float state_valid; /* 1 when the temporal state holds the previous frame's value, else 0 */
} Scalars;

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
    prefix_error(err, pre);
  }
  return ok;
}

/* Records all steps of a plan with marks per stage (or per op). */
static bool record_steps(StNet *net, StCmd *cmd, Plan *p, const Scalars *sc, StError *err) {
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

static void save_timings(StNet *net, StCmd *cmd) {
  if (!net->timings)
    net->timings = malloc(sizeof *net->timings * MAX_TIMINGS);
  net->ntimings = net->timings ? st_cmd_timings(cmd, net->timings, MAX_TIMINGS) : 0;
}

/* ---- weights ------------------------------------------------------------------------------ */

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

void st_net_last_motion(const StNet *net, int *dx, int *dy) {
  *dx = net ? net->motion_dx : 0;
  *dy = net ? net->motion_dy : 0;
}

void st_net_free(StNet *net) {
  if (!net)
    return;
  StDevice *dev = net->dev;
  st_device_settle(dev); /* after a timed-out frame, its buffers may still be in use */
  plan_free(dev, net->plan);
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
  free_style_vals(net->style_vals, net->nstyle);
  free(net->wt);
  free(net->timings);
  st_model_free(net->model);
  free(net);
}

/* Checks the whole graph once (shapes, names) on a small size before touching the device: a bad
 * file fails here with a clear message instead of on the first frame. Needs no device (none is
 * touched: plans get no arena before get_plan). */
static bool check_graph(StNet *net, StError *err) {
  const StModel *m = net->model;
  Plan *sp = plan_style(net, m->style_size, m->style_size, err);
  if (!sp)
    return false;
  int ns = 0;
  StyleVal *sv = style_vals_of(net, sp, &ns, err);
  plan_free(net->dev, sp);
  if (!sv)
    return false;
  Plan *fp = plan_frame(net, sv, ns, 67, 45, m->nrefine + 1, true, err);
  free_style_vals(sv, ns);
  if (!fp)
    return false;
  plan_free(net->dev, fp);
  return true;
}

bool st_model_check_graph(StModel *m, bool fp16, StError *err) {
  StNet net = {.dev = NULL, .model = m, .fp16 = fp16};
  return check_graph(&net, err);
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
  if (!check_graph(net, err) || !upload_weights(net, err)) {
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
void st_net_reset_temporal(StNet *net) {
  net->state_valid = false;
  net->luma_prev_valid = false;
  net->blend_valid = false;
}
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

/* ---- frames -------------------------------------------------------------------------------- */

typedef struct {
  int nplanes;
  size_t rowbytes[3];
  int rows[3];
} PlaneInfo;

static bool image_info(const StDevice *dev, const StImage *img, const char *what, PlaneInfo *pi,
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

static bool ensure_buffer(StDevice *dev, StBuffer *b, VkDeviceSize size, StMemKind kind,
                          StError *err) {
  if (b->buffer && b->size >= size)
    return true;
  st_buffer_destroy(dev, b);
  /* grow with some headroom so that small size changes do not reallocate, but never past what
   * one storage-buffer binding can hold when the size itself fits (the whole buffer is bound) */
  VkDeviceSize range = st_device_limits(dev)->maxStorageBufferRange;
  VkDeviceSize grown = size + size / 8 + 256;
  if (size <= range && grown > range)
    grown = range;
  return st_buffer_create(dev, grown, kind, b, err);
}

/* Where frames are read/written by the shaders: host-visible memory directly on CPU devices
 * (same memory), a device-local copy otherwise. */
static bool upload_image(StNet *net, StCmd *cmd, const StImage *img, const PlaneInfo *pi,
                         StFrameLayout *lay, StBuffer **src, StError *err) {
  VkDeviceSize size = frame_layout(img, pi, lay);
  if (!ensure_buffer(net->dev, &net->up, size, ST_MEM_UPLOAD, err))
    return false;
  double t0 = st_now_ms();
  for (int i = 0; i < pi->nplanes; i++) {
    uint8_t *dst = (uint8_t *)net->up.mapped + lay->offsets[i];
    size_t n = (size_t)img->strides[i] * (size_t)(pi->rows[i] - 1) + pi->rowbytes[i];
    memcpy(dst, img->planes[i], n);
  }
  net->copy_ms += st_now_ms() - t0;
  *src = &net->up;
  if (net->dev->device_copies) {
    if (!ensure_buffer(net->dev, &net->up_dev, size, ST_MEM_DEVICE, err))
      return false;
    st_cmd_copy(cmd, &net->up, 0, &net->up_dev, 0, size);
    *src = &net->up_dev;
  }
  return true;
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
    if (!image_info(net->dev, style, "style image", &pi, err))
      return false;
    style_size(style->width, style->height, net->model->style_size, &sw, &sh);
  } else if (!rgb || fw < 1 || fh < 1 || fw > MAX_SIDE || fh > MAX_SIDE) {
    return st_set_error(err, ST_ERROR_ARGUMENT, "bad style image (%dx%d)", fw, fh);
  }
  Plan *p = plan_style(net, sw, sh, err);
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
  bind_tensors(net, p, &persist);
  cmd = st_cmd_begin(dev, err);
  if (!cmd)
    goto out;
  if (style) {
    StFrameLayout lay;
    StBuffer *src;
    if (!upload_image(net, cmd, style, &pi, &lay, &src, err))
      goto out;
    if (!st_op_frame_to_float(dev, cmd, src, &lay, &p->vals[p->input].t, err))
      goto out;
  } else {
    VkDeviceSize bytes = (VkDeviceSize)3 * fw * fh * 4;
    if (!ensure_buffer(dev, &net->up, bytes, ST_MEM_UPLOAD, err))
      goto out;
    memcpy(net->up.mapped, rgb, bytes);
    const StTensor *t = &p->vals[p->input].t;
    st_cmd_copy(cmd, &net->up, 0, t->buf, t->offset, bytes);
  }
  st_cmd_mark(cmd, "upload");
  const Scalars style_sc = {1.0f, 0.0f};
  if (!record_steps(net, cmd, p, &style_sc, err))
    goto out;
  if (!st_cmd_submit_wait(cmd, err))
    goto out;
  save_timings(net, cmd);
  sv = style_vals_of(net, p, &nsv, err);
  if (!sv)
    goto out;
  /* success: swap in the new style state */
  st_buffer_destroy(dev, &net->style_buf);
  net->style_buf = persist;
  memset(&persist, 0, sizeof persist);
  free_style_vals(net->style_vals, net->nstyle);
  net->style_vals = sv;
  net->nstyle = nsv;
  net->has_style = true;
  net->style_gen++;
  net->state_valid = false;
  ok = true;
out:
  st_cmd_free(cmd);
  st_buffer_destroy(dev, &persist);
  plan_free(dev, p);
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
  if (abs(params->motion_dx) > MAX_SIDE || abs(params->motion_dy) > MAX_SIDE)
    return st_set_error(err, ST_ERROR_ARGUMENT, "motion (%d, %d) out of range", params->motion_dx,
                        params->motion_dy);
  return true;
}

/* The frame plan for this size/steps (re-planned when anything in the key changes). */
static Plan *get_plan(StNet *net, int pw, int ph, int steps, bool preserve, StError *err) {
  Plan *p = net->plan;
  if (p && p->pw == pw && p->ph == ph && p->steps == steps && p->preserve == preserve &&
      p->style_gen == net->style_gen)
    return p;
  plan_free(net->dev, net->plan);
  net->plan = NULL;
  p = plan_frame(net, net->style_vals, net->nstyle, pw, ph, steps, preserve, err);
  if (!p)
    return NULL;
  p->style_gen = net->style_gen;
  /* Every value must fit in one storage-buffer binding of this device. */
  uint32_t range = st_device_limits(net->dev)->maxStorageBufferRange;
  for (int i = 0; i < p->nvals; i++) {
    const PVal *v = &p->vals[i];
    VkDeviceSize bytes = (VkDeviceSize)numel_of(v->rank, v->shape) * st_dtype_size(v->dtype);
    if (bytes > range) {
      char sv[64];
      shape_str(sv, sizeof sv, v->rank, v->shape);
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
      plan_free(net->dev, p);
      return NULL;
    }
  }
  if (!st_buffer_create(net->dev, p->arena_size ? p->arena_size : 16, ST_MEM_DEVICE, &p->arena,
                        err)) {
    char pre[128];
    snprintf(pre, sizeof pre, "processing size %dx%d needs %.1f MiB of device memory: ", pw, ph,
             (double)p->arena_size / 1048576.0);
    prefix_error(err, pre);
    plan_free(net->dev, p);
    return NULL;
  }
  if (pw != net->state_w || ph != net->state_h || !net->state_buf.buffer) {
    st_buffer_destroy(net->dev, &net->state_buf);
    st_buffer_destroy(net->dev, &net->state_tmp);
    net->state_valid = false;
    net->luma_prev_valid = false;
    net->state_w = net->state_h = 0;
    if (!st_buffer_create(net->dev, (VkDeviceSize)3 * pw * ph * 4, ST_MEM_DEVICE, &net->state_buf,
                          err) ||
        !st_buffer_create(net->dev, (VkDeviceSize)3 * pw * ph * 4, ST_MEM_DEVICE, &net->state_tmp,
                          err)) {
      plan_free(net->dev, p);
      return NULL;
    }
    net->state_w = pw;
    net->state_h = ph;
  }
  bind_tensors(net, p, NULL);
  net->plan = p;
  return p;
}

/* Whether this frame estimates motion from the input (temporal state or smoothing). */
static bool uses_motion(const Plan *p, const StFrameParams *params) {
  return (p->state >= 0 || params->smoothing > 0.0f) && params->temporal &&
         params->motion == ST_MOTION_ESTIMATE;
}

static bool have_prev_frame(const StNet *net, const StFrameParams *params) {
  return params->temporal && (net->state_valid || net->blend_valid);
}

/* The motion of the temporal state for this frame (processing px); `cur` is this frame's luma
 * at the motion resolution (NULL when there is none), kept for the next frame. */
static void frame_motion(StNet *net, const StFrameParams *params, bool have_prev, int pw,
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

/* Records initial + refine steps and the temporal state handling. */
static bool record_network(StNet *net, StCmd *cmd, Plan *p, const StFrameParams *params,
                           StError *err) {
  const bool have_prev = params->temporal && net->state_valid;
  if (p->state >= 0 && !have_prev)
    st_cmd_fill_zero(cmd, &net->state_buf, 0, net->state_buf.size);
  if (p->state >= 0 && have_prev && (net->motion_dx || net->motion_dy)) {
    /* move the previous residual with the scene */
    const StTensor *st = &p->vals[p->state].t;
    StTensor tmp = *st;
    tmp.buf = &net->state_tmp;
    tmp.offset = 0;
    if (!st_op_translate(net->dev, cmd, st, net->motion_dy, net->motion_dx, &tmp, err))
      return false;
    st_cmd_copy(cmd, &net->state_tmp, 0, &net->state_buf, 0, net->state_buf.size);
  }
  const Scalars sc = {params->strength, p->state >= 0 && have_prev ? 1.0f : 0.0f};
  if (!record_steps(net, cmd, p, &sc, err))
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
 * [2, bh, bw] floats in output pixels, written to net->flow_buf; the block size in *bx, *by. */
static bool upload_field(StNet *net, int pw, int ph, int w, int h, StTensor *flow, float *bx,
                         float *by, StError *err) {
  int bw = 1, bh = 1;
  const StFlow *f = net->field_valid ? &net->field : NULL;
  if (f) {
    bw = f->bw;
    bh = f->bh;
  }
  if (!ensure_buffer(net->dev, &net->flow_buf, sizeof(float) * 2 * (size_t)bw * bh, ST_MEM_UPLOAD,
                     err))
    return false;
  float *v = net->flow_buf.mapped;
  if (f) { /* motion px -> output px */
    float sx = (float)w / (float)net->luma_prev.w, sy = (float)h / (float)net->luma_prev.h;
    for (int i = 0; i < bw * bh; i++) {
      v[i] = f->v[i] * sx;
      v[bw * bh + i] = f->v[bw * bh + i] * sy;
    }
    *bx = (float)f->block * sx;
    *by = (float)f->block * sy;
  } else { /* one vector: the given or estimated global motion (processing px -> output px) */
    v[0] = (float)net->motion_dx * (float)w / (float)pw;
    v[1] = (float)net->motion_dy * (float)h / (float)ph;
    *bx = (float)w;
    *by = (float)h;
  }
  *flow = (StTensor){&net->flow_buf, 0, ST_F32, 3, {2, bh, bw}};
  return true;
}

/* Smoothing, part 1 (recorded before the network, whose arena reuses the input's memory):
 * this frame's content at the output's size. */
static bool record_blend_input(StNet *net, StCmd *cmd, Plan *p, const StFrameParams *params,
                               StError *err) {
  const StTensor *x = &p->vals[p->x_final].t;
  net->blend_pending = false;
  if (!params->temporal || params->smoothing <= 0.0f) {
    net->blend_valid = false;
    return true;
  }
  int h = x->shape[1], w = x->shape[2];
  VkDeviceSize bytes = (VkDeviceSize)3 * w * h * sizeof(float);
  if (w != net->blend_w || h != net->blend_h) {
    net->blend_valid = false;
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
  if (net->blend_style_gen != net->style_gen || net->blend_steps != params->steps ||
      net->blend_strength != params->strength || net->blend_preserve != params->preserve_colors)
    net->blend_valid = false;
  int cur = net->blend_cur ^ 1, prev = net->blend_cur;
  StTensor *t = net->blend_t;
  StBuffer *bufs[4] = {&net->blend_out[cur], &net->blend_in[cur], &net->blend_out[prev],
                       &net->blend_in[prev]};
  for (int i = 0; i < 4; i++)
    t[i] = (StTensor){bufs[i], 0, ST_F32, 3, {3, h, w}};
  const StTensor *in = &p->vals[p->input].t;
  if (in->shape[1] == h && in->shape[2] == w && in->dtype == ST_F32)
    st_cmd_copy(cmd, in->buf, in->offset, t[1].buf, 0, bytes);
  else if (!st_op_resize(net->dev, cmd, in, ST_RESIZE_BILINEAR, &t[1], err))
    return false;
  net->blend_pending = true;
  return true;
}

/* Smoothing, part 2: blends p's final x with the previous output; *out is the image to
 * download. The new output and content become the previous ones once the frame's submission
 * succeeds (finish_blend). */
static bool record_blend(StNet *net, StCmd *cmd, Plan *p, const StFrameParams *params, int pw,
                         int ph, const StTensor **out, StError *err) {
  const StTensor *x = &p->vals[p->x_final].t;
  *out = x;
  if (!net->blend_pending)
    return true;
  StTensor *t = net->blend_t;
  if (net->blend_valid) {
    StTensor flow;
    StBlendParams bp = {0, 0, params->smoothing, ST_SMOOTHING_THRESHOLD};
    if (!upload_field(net, pw, ph, net->blend_w, net->blend_h, &flow, &bp.block_x, &bp.block_y,
                      err) ||
        !st_op_temporal_blend(net->dev, cmd, x, &t[2], &t[1], &t[3], &flow, &bp, &t[0], err))
      return false;
  } else {
    st_cmd_copy(cmd, x->buf, x->offset, t[0].buf, 0, t[0].buf->size);
  }
  st_cmd_mark(cmd, "smoothing");
  *out = &t[0];
  return true;
}

static void finish_blend(StNet *net, const StFrameParams *params) {
  if (!net->blend_pending)
    return;
  net->blend_pending = false;
  net->blend_cur ^= 1;
  net->blend_valid = true;
  net->blend_style_gen = net->style_gen;
  net->blend_steps = params->steps;
  net->blend_strength = params->strength;
  net->blend_preserve = params->preserve_colors;
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

bool st_net_process(StNet *net, const StImage *in, StImage *out, const StFrameParams *params,
                    StError *err) {
  double t_call = st_now_ms();
  if (!check_frame(net, params, err))
    return false;
  if (!net->has_style)
    return st_set_error(err, ST_ERROR_NO_STYLE, "no style image set");
  PlaneInfo pin, pout;
  if (!image_info(net->dev, in, "input frame", &pin, err) ||
      !image_info(net->dev, out, "output frame", &pout, err))
    return false;
  if (in->width != out->width || in->height != out->height)
    return st_set_error(err, ST_ERROR_ARGUMENT, "input %dx%d and output %dx%d sizes differ",
                        in->width, in->height, out->width, out->height);
  int pw, ph;
  processing_size(params, in->width, in->height, &pw, &ph);
  Plan *p = get_plan(net, pw, ph, params->steps, params->preserve_colors, err);
  if (!p)
    return false;
  bool have_cur = false;
  if (uses_motion(p, params)) {
    int mw, mh;
    st_motion_size(pw, ph, &mw, &mh);
    have_cur = st_luma_from_image(in, mw, mh, &net->luma_cur);
  }
  frame_motion(net, params, have_prev_frame(net, params), pw, have_cur);
  StDevice *dev = net->dev;
  double t_rec = st_now_ms();
  net->copy_ms = 0;
  StCmd *cmd = st_cmd_begin(dev, err);
  if (!cmd)
    return false;
  bool ok = false;
  StFrameLayout lin, lout;
  StBuffer *src, *dst;
  if (!upload_image(net, cmd, in, &pin, &lin, &src, err))
    goto out;
  if (!st_op_frame_to_float(dev, cmd, src, &lin, &p->vals[p->input].t, err) ||
      !record_blend_input(net, cmd, p, params, err))
    goto out;
  st_cmd_mark(cmd, "upload");
  const StTensor *final;
  if (!record_network(net, cmd, p, params, err) ||
      !record_blend(net, cmd, p, params, pw, ph, &final, err))
    goto out;
  VkDeviceSize osize = frame_layout(out, &pout, &lout);
  if (!ensure_buffer(dev, &net->down, osize, ST_MEM_DOWNLOAD, err))
    goto out;
  dst = &net->down;
  if (dev->device_copies) {
    if (!ensure_buffer(dev, &net->down_dev, osize, ST_MEM_DEVICE, err))
      goto out;
    dst = &net->down_dev;
  }
  const StTensor *orig = NULL;
  if (params->preserve_colors) {
    orig = &p->vals[p->orig].t;
    if (p->orig != p->input &&
        !st_op_resize(dev, cmd, &p->vals[p->input].t, ST_RESIZE_BILINEAR, orig, err))
      goto out;
  }
  if (!st_op_float_to_frame(dev, cmd, final, orig, params->preserve_colors, dst, &lout, err))
    goto out;
  if (dst != &net->down)
    st_cmd_copy(cmd, dst, 0, &net->down, 0, osize);
  st_cmd_mark(cmd, "download");
  net->host.record_ms = st_now_ms() - t_rec - net->copy_ms;
  if (!st_cmd_submit_wait(cmd, err))
    goto out;
  st_buffer_invalidate(dev, &net->down);
  for (int i = 0; i < pout.nplanes; i++) {
    const uint8_t *s = (const uint8_t *)net->down.mapped + lout.offsets[i];
    size_t n = (size_t)out->strides[i] * (size_t)(pout.rows[i] - 1) + pout.rowbytes[i];
    memcpy(out->planes[i], s, n);
  }
  net->state_valid = p->state_src >= 0;
  finish_blend(net, params);
  save_timings(net, cmd);
  st_cmd_host_times(cmd, &net->host.submit_ms, &net->host.wait_ms);
  net->host.reused = false;
  net->host.total_ms = st_now_ms() - t_call;
  ok = true;
out:
  st_cmd_free(cmd);
  return ok;
}

bool st_net_run_float(StNet *net, const float *content, int w, int h, const StFrameParams *params,
                      float **out, int *out_w, int *out_h, StError *err) {
  if (!check_frame(net, params, err))
    return false;
  if (!content || !out || w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE)
    return st_set_error(err, ST_ERROR_ARGUMENT, "bad content image (%dx%d)", w, h);
  if (!net->has_style)
    return st_set_error(err, ST_ERROR_NO_STYLE, "no style image set");
  Plan *p = get_plan(net, w, h, params->steps, false, err);
  if (!p)
    return false;
  bool have_cur = false;
  if (uses_motion(p, params)) {
    int mw, mh;
    st_motion_size(w, h, &mw, &mh);
    have_cur = st_luma_from_float(content, w, h, mw, mh, &net->luma_cur);
  }
  frame_motion(net, params, have_prev_frame(net, params), w, have_cur);
  StDevice *dev = net->dev;
  VkDeviceSize in_bytes = (VkDeviceSize)3 * w * h * 4;
  const StTensor *x = &p->vals[p->x_final].t;
  int xh = x->shape[1], xw = x->shape[2];
  VkDeviceSize out_bytes = (VkDeviceSize)3 * xw * xh * 4;
  if (!ensure_buffer(dev, &net->up, in_bytes, ST_MEM_UPLOAD, err) ||
      !ensure_buffer(dev, &net->down, out_bytes, ST_MEM_DOWNLOAD, err))
    return false;
  memcpy(net->up.mapped, content, in_bytes);
  StCmd *cmd = st_cmd_begin(dev, err);
  if (!cmd)
    return false;
  bool ok = false;
  const StTensor *c = &p->vals[p->input].t;
  st_cmd_copy(cmd, &net->up, 0, c->buf, c->offset, in_bytes);
  if (!record_blend_input(net, cmd, p, params, err))
    goto out;
  st_cmd_mark(cmd, "upload");
  const StTensor *final;
  if (!record_network(net, cmd, p, params, err) ||
      !record_blend(net, cmd, p, params, w, h, &final, err))
    goto out;
  st_cmd_copy(cmd, final->buf, final->offset, &net->down, 0, out_bytes);
  st_cmd_mark(cmd, "download");
  if (!st_cmd_submit_wait(cmd, err))
    goto out;
  st_buffer_invalidate(dev, &net->down);
  *out = malloc(out_bytes);
  if (!*out) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    goto out;
  }
  memcpy(*out, net->down.mapped, out_bytes);
  if (out_w)
    *out_w = xw;
  if (out_h)
    *out_h = xh;
  net->state_valid = p->state_src >= 0;
  finish_blend(net, params);
  save_timings(net, cmd);
  ok = true;
out:
  st_cmd_free(cmd);
  return ok;
}
