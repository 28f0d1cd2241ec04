/* SPDX-License-Identifier: LGPL-2.1-or-later
 * safetensors + styletransfer-graph loader (weights/FORMAT.md).
 */
#include "model.h"
#include "internal.h"
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADER (64u << 20)
/* A header of up to 64 MiB could otherwise hold a graph whose check takes hours (the planner is
 * quadratic in the number of operations): the shipped model has 3 refine subgraphs and 257 ops. */
#define MAX_REFINE 64
#define MAX_OPS 16384 /* over all subgraphs, a subgraph counted once per use */

typedef struct {
  const char *path;
  StError *err;
  int *nops; /* ops parsed so far */
} Ctx;

static bool merr(const Ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool merr(const Ctx *c, const char *fmt, ...) {
  if (c->err) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_set_error(c->err, ST_ERROR_MODEL, "model %s: %s", c->path, msg);
  }
  return false;
}

float st_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { /* subnormal */
      float f = ldexpf((float)mant, -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

#define OP_DEF(id, name, min_in, max_in, nout) [ST_GOP_##id] = {#name, min_in, max_in, nout},
const StGraphOpDef st_graph_ops[ST_GOP_COUNT] = {ST_GRAPH_OPS(OP_DEF)};
#undef OP_DEF

const char *st_graph_op_name(StGraphOpKind k) {
  return (unsigned)k < ST_GOP_COUNT ? st_graph_ops[k].name : "?";
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

/* A JSON number that is an integer in [lo, hi]. */
static bool json_int(const JsonValue *v, double lo, double hi, long long *out) {
  if (!v || v->type != JSON_NUMBER || v->number != floor(v->number) || v->number < lo ||
      v->number > hi)
    return false;
  *out = (long long)v->number;
  return true;
}

static void free_subgraph(StSubgraph *sg) {
  free(sg->name);
  for (int i = 0; i < sg->ninputs; i++)
    free(sg->inputs[i]);
  free(sg->inputs);
  for (int i = 0; i < sg->noutputs; i++)
    free(sg->outputs[i]);
  free(sg->outputs);
  for (int i = 0; i < sg->nops; i++) {
    StGraphOp *op = &sg->ops[i];
    for (int j = 0; j < op->nin; j++)
      free(op->in[j]);
    free(op->in);
    free(op->out[0]);
    free(op->out[1]);
    free(op->weight_value);
  }
  free(sg->ops);
  memset(sg, 0, sizeof *sg);
}

void st_model_free(StModel *m) {
  if (!m)
    return;
  free(m->path);
  free(m->file);
  for (int i = 0; i < m->ntensors; i++)
    free(m->tensors[i].name);
  free(m->tensors);
  free(m->by_name);
  free_subgraph(&m->style);
  free_subgraph(&m->initial);
  for (int i = 0; i < m->nrefine; i++)
    free_subgraph(&m->refine[i]);
  free(m->refine);
  free(m->state_name);
  free(m->state_from);
  free(m->mask_input);
  free(m->style2_prefix);
  free_subgraph(&m->masked_initial);
  for (int i = 0; i < m->nmasked_refine; i++)
    free_subgraph(&m->masked_refine[i]);
  free(m->masked_refine);
  free(m);
}

void st_model_drop_data(StModel *m) {
  free(m->file);
  m->file = NULL;
  m->data = NULL;
}

int st_model_find_tensor(const StModel *m, const char *name) {
  if (!m->by_name) {
    for (int i = 0; i < m->ntensors; i++)
      if (strcmp(m->tensors[i].name, name) == 0)
        return i;
    return -1;
  }
  int lo = 0, hi = m->ntensors - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, r = strcmp(m->tensors[m->by_name[mid]].name, name);
    if (r == 0)
      return m->by_name[mid];
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp((*(StModelTensor *const *)a)->name, (*(StModelTensor *const *)b)->name);
}

static int cmp_offset(const void *a, const void *b) {
  const StModelTensor *x = *(StModelTensor *const *)a, *y = *(StModelTensor *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

static bool parse_tensors(const Ctx *c, StModel *m, const JsonValue *hdr) {
  m->tensors = calloc(hdr->len ? hdr->len : 1, sizeof *m->tensors);
  if (!m->tensors)
    return merr(c, "out of memory");
  for (size_t i = 0; i < hdr->len; i++) {
    const char *name = hdr->keys[i];
    const JsonValue *e = &hdr->items[i];
    if (strcmp(name, "__metadata__") == 0)
      continue;
    if (e->type != JSON_OBJECT)
      return merr(c, "tensor '%s': entry is a %s, not an object", name, json_type_name(e->type));
    StModelTensor *t = &m->tensors[m->ntensors];
    t->name = xstrdup(name);
    if (!t->name)
      return merr(c, "out of memory");
    m->ntensors++;
    const JsonValue *dt = json_get(e, "dtype"), *sh = json_get(e, "shape"),
                    *off = json_get(e, "data_offsets");
    if (!dt || dt->type != JSON_STRING)
      return merr(c, "tensor '%s': missing or non-string dtype", name);
    if (strcmp(dt->string, "F32") == 0)
      t->dtype = ST_F32;
    else if (strcmp(dt->string, "F16") == 0)
      t->dtype = ST_F16;
    else
      return merr(c, "tensor '%s': unsupported dtype '%s' (only F32 and F16)", name, dt->string);
    if (!sh || sh->type != JSON_ARRAY)
      return merr(c, "tensor '%s': missing shape", name);
    if (sh->len < 1 || sh->len > 4)
      return merr(c, "tensor '%s': rank %zu not supported (1 to 4)", name, sh->len);
    t->rank = (int)sh->len;
    t->numel = 1;
    for (size_t d = 0; d < sh->len; d++) {
      long long v;
      if (!json_int(&sh->items[d], 1, 1 << 24, &v))
        return merr(c, "tensor '%s': shape entry %zu is not an integer in 1..16777216", name, d);
      t->shape[d] = (int)v;
      if (t->numel > ((size_t)1 << 40) / (size_t)v)
        return merr(c, "tensor '%s': too many elements", name);
      t->numel *= (size_t)v;
    }
    long long a, b;
    if (!off || off->type != JSON_ARRAY || off->len != 2 ||
        !json_int(&off->items[0], 0, 9007199254740992.0, &a) ||
        !json_int(&off->items[1], 0, 9007199254740992.0, &b))
      return merr(c, "tensor '%s': data_offsets must be two non-negative integers", name);
    if (b < a || (unsigned long long)b > m->data_size)
      return merr(c,
                  "tensor '%s': data_offsets [%lld, %lld] lie outside the data area (%zu bytes; "
                  "file truncated?)",
                  name, a, b, m->data_size);
    t->offset = (size_t)a;
    t->nbytes = (size_t)(b - a);
    size_t want = t->numel * st_dtype_size(t->dtype);
    if (t->nbytes != want)
      return merr(c, "tensor '%s': %zu bytes of data, but shape and dtype %s need %zu", name,
                  t->nbytes, dt->string, want);
  }
  /* No overlaps. */
  StModelTensor **sorted = malloc(sizeof *sorted * (size_t)(m->ntensors ? m->ntensors : 1));
  if (!sorted)
    return merr(c, "out of memory");
  for (int i = 0; i < m->ntensors; i++)
    sorted[i] = &m->tensors[i];
  /* The name index (names are unique: JSON keys), then the offset order. */
  qsort(sorted, (size_t)m->ntensors, sizeof *sorted, cmp_name);
  m->by_name = malloc(sizeof *m->by_name * (size_t)(m->ntensors ? m->ntensors : 1));
  if (!m->by_name) {
    free(sorted);
    return merr(c, "out of memory");
  }
  for (int i = 0; i < m->ntensors; i++)
    m->by_name[i] = (int)(sorted[i] - m->tensors);
  qsort(sorted, (size_t)m->ntensors, sizeof *sorted, cmp_offset);
  /* As safetensors requires: tensors tile the data area exactly (no overlap, no holes), so a
   * shifted or padded data area cannot go unnoticed. */
  size_t end = 0;
  for (int i = 0; i < m->ntensors; i++) {
    const StModelTensor *t = sorted[i];
    bool r = true;
    if (t->offset < end)
      r = merr(c, "tensors '%s' and '%s' overlap in the data area", sorted[i - 1]->name, t->name);
    else if (t->offset > end)
      r = merr(c, "data area bytes %zu..%zu are not covered by any tensor (before '%s')", end,
               t->offset, t->name);
    if (!r) {
      free(sorted);
      return false;
    }
    end = t->offset + t->nbytes;
  }
  free(sorted);
  if (end != m->data_size)
    return merr(c,
                "data area is %zu bytes but the tensors cover %zu (bytes not covered by any "
                "tensor: file corrupt or header length wrong)",
                m->data_size, end);
  return true;
}

static bool string_list(const Ctx *c, const JsonValue *v, const char *what, char ***out, int *n) {
  if (!v || v->type != JSON_ARRAY)
    return merr(c, "%s must be a list of names", what);
  *out = calloc(v->len ? v->len : 1, sizeof **out);
  if (!*out)
    return merr(c, "out of memory");
  for (size_t i = 0; i < v->len; i++) {
    if (v->items[i].type != JSON_STRING || v->items[i].len == 0)
      return merr(c, "%s: entry %zu is not a non-empty string", what, i);
    (*out)[i] = xstrdup(v->items[i].string);
    if (!(*out)[i])
      return merr(c, "out of memory");
    (*n)++;
  }
  return true;
}

static bool parse_act(const Ctx *c, const char *where, const JsonValue *v, bool extended,
                      StAct *out) {
  if (!v) {
    *out = ST_ACT_NONE;
    return true;
  }
  if (v->type != JSON_STRING)
    return merr(c, "%s: act must be a string", where);
  if (strcmp(v->string, "none") == 0)
    *out = ST_ACT_NONE;
  else if (strcmp(v->string, "relu") == 0)
    *out = ST_ACT_RELU;
  else if (strcmp(v->string, "lrelu") == 0)
    *out = ST_ACT_LRELU;
  else if (extended && strcmp(v->string, "tanh") == 0)
    *out = ST_ACT_TANH;
  else if (extended && strcmp(v->string, "sigmoid") == 0)
    *out = ST_ACT_SIGMOID;
  else
    return merr(c, "%s: unknown act '%s'", where, v->string);
  return true;
}

static bool parse_float(const Ctx *c, const char *where, const char *key, const JsonValue *op,
                        float def, float *out) {
  const JsonValue *v = json_get(op, key);
  if (!v) {
    *out = def;
    return true;
  }
  if (v->type != JSON_NUMBER)
    return merr(c, "%s: %s must be a number", where, key);
  *out = (float)v->number;
  return true;
}

static bool parse_bool(const Ctx *c, const char *where, const char *key, const JsonValue *op,
                       bool *out) {
  const JsonValue *v = json_get(op, key);
  if (!v) {
    *out = false;
    return true;
  }
  if (v->type != JSON_BOOL)
    return merr(c, "%s: %s must be true or false", where, key);
  *out = v->boolean;
  return true;
}

static bool parse_scalar(const Ctx *c, const char *where, const char *key, const JsonValue *op,
                         float def, StScalar *out) {
  const JsonValue *v = json_get(op, key);
  out->kind = ST_SCALAR_CONST;
  out->value = def;
  if (!v)
    return true;
  if (v->type == JSON_NUMBER) {
    out->value = (float)v->number;
    return true;
  }
  if (v->type == JSON_STRING) {
    if (strcmp(v->string, "strength") == 0)
      out->kind = ST_SCALAR_STRENGTH;
    else if (strcmp(v->string, "neg_strength") == 0)
      out->kind = ST_SCALAR_NEG;
    else if (strcmp(v->string, "one_minus_strength") == 0)
      out->kind = ST_SCALAR_ONE_MINUS;
    else if (strcmp(v->string, "state_valid") == 0)
      out->kind = ST_SCALAR_STATE_VALID;
    else
      return merr(c, "%s: unknown scalar '%s' for %s", where, v->string, key);
    return true;
  }
  return merr(c, "%s: %s must be a number or a scalar name", where, key);
}

static bool file_tensor(const Ctx *c, const StModel *m, const char *where, const char *key,
                        const JsonValue *v, int *out) {
  if (v->type != JSON_STRING)
    return merr(c, "%s: %s must be a tensor name", where, key);
  *out = st_model_find_tensor(m, v->string);
  if (*out < 0)
    return merr(c, "%s: %s tensor '%s' is not in the file", where, key, v->string);
  return true;
}

static bool attrs_conv2d(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                         StGraphOp *op) {
  const JsonValue *w = json_get(j, "weight");
  if (!w || w->type != JSON_STRING)
    return merr(c, "%s: missing weight", where);
  int ti = st_model_find_tensor(m, w->string);
  if (ti >= 0) {
    const StModelTensor *t = &m->tensors[ti];
    op->weight = ti;
    if (t->rank != 4 || t->shape[2] != t->shape[3] || (t->shape[2] != 1 && t->shape[2] != 3))
      return merr(c, "%s: weight '%s' must be [O, I, k, k] with k 1 or 3", where, t->name);
    op->k = t->shape[2];
  } else {
    op->weight_value = xstrdup(w->string); /* run-time [O,I] matrix; checked when planned */
    if (!op->weight_value)
      return merr(c, "out of memory");
    op->k = 1;
  }
  const JsonValue *b = json_get(j, "bias");
  if (b) {
    if (!file_tensor(c, m, where, "bias", b, &op->bias))
      return false;
    const StModelTensor *t = &m->tensors[op->bias];
    if (t->rank != 1)
      return merr(c, "%s: bias '%s' must have rank 1", where, t->name);
    if (op->weight >= 0 && t->shape[0] != m->tensors[op->weight].shape[0])
      return merr(c, "%s: bias '%s' has %d entries for %d output channels", where, t->name,
                  t->shape[0], m->tensors[op->weight].shape[0]);
  }
  long long s = 1;
  const JsonValue *sv = json_get(j, "stride");
  if (sv && !json_int(sv, 1, 2, &s))
    return merr(c, "%s: stride must be 1 or 2", where);
  op->stride = (int)s;
  const JsonValue *pv = json_get(j, "pad");
  op->pad = ST_PAD_ZERO;
  if (pv) {
    if (pv->type != JSON_STRING)
      return merr(c, "%s: pad must be a string", where);
    if (strcmp(pv->string, "zero") == 0)
      op->pad = ST_PAD_ZERO;
    else if (strcmp(pv->string, "reflect") == 0)
      op->pad = ST_PAD_REFLECT;
    else
      return merr(c, "%s: unknown pad '%s'", where, pv->string);
  }
  return true;
}

/* pool and resize: the mode */
static bool parse_mode(const Ctx *c, const char *where, const JsonValue *j, StGraphOp *op,
                       bool pool) {
  const JsonValue *mv = json_get(j, "mode");
  op->mode = pool ? ST_POOL_AVG : ST_RESIZE_BILINEAR;
  if (mv) {
    if (mv->type != JSON_STRING)
      return merr(c, "%s: mode must be a string", where);
    if (pool && strcmp(mv->string, "avg") == 0)
      op->mode = ST_POOL_AVG;
    else if (pool && strcmp(mv->string, "max") == 0)
      op->mode = ST_POOL_MAX;
    else if (!pool && strcmp(mv->string, "nearest") == 0)
      op->mode = ST_RESIZE_NEAREST;
    else if (!pool && strcmp(mv->string, "bilinear") == 0)
      op->mode = ST_RESIZE_BILINEAR;
    else
      return merr(c, "%s: unknown mode '%s'", where, mv->string);
  }
  return true;
}

static bool attrs_pool(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                       StGraphOp *op) {
  (void)m;
  return parse_mode(c, where, j, op, true);
}

static bool attrs_resize(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                         StGraphOp *op) {
  (void)m;
  return parse_mode(c, where, j, op, false);
}

static bool attrs_add(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                      StGraphOp *op) {
  (void)m;
  if (!parse_scalar(c, where, "ka", j, 1.0f, &op->ka) ||
      !parse_scalar(c, where, "kb", j, 1.0f, &op->kb))
    return false;
  return true;
}

static bool attrs_moments(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                          StGraphOp *op) {
  (void)m;
  if (!parse_float(c, where, "eps", j, 1e-5f, &op->eps))
    return false;
  if (!(op->eps >= 0.0f))
    return merr(c, "%s: eps must be >= 0", where);
  return true;
}

static bool attrs_gram(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                       StGraphOp *op) {
  (void)m;
  if (!parse_bool(c, where, "center", j, &op->center) ||
      !parse_bool(c, where, "sqrt", j, &op->sqrt_))
    return false;
  return true;
}

static bool attrs_matmul(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                         StGraphOp *op) {
  (void)m;
  if (!parse_bool(c, where, "ta", j, &op->ta) || !parse_bool(c, where, "tb", j, &op->tb))
    return false;
  return true;
}

static bool attrs_linear(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                         StGraphOp *op) {
  const JsonValue *w = json_get(j, "weight");
  if (!w)
    return merr(c, "%s: missing weight", where);
  if (!file_tensor(c, m, where, "weight", w, &op->weight))
    return false;
  const StModelTensor *t = &m->tensors[op->weight];
  if (t->rank != 2)
    return merr(c, "%s: weight '%s' must be [N, K]", where, t->name);
  const JsonValue *b = json_get(j, "bias");
  if (b) {
    if (!file_tensor(c, m, where, "bias", b, &op->bias))
      return false;
    const StModelTensor *bt = &m->tensors[op->bias];
    if (bt->rank != 1 || bt->shape[0] != t->shape[0])
      return merr(c, "%s: bias '%s' must be [%d]", where, bt->name, t->shape[0]);
  }
  return true;
}

static bool attrs_softmax(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                          StGraphOp *op) {
  (void)m;
  if (!parse_scalar(c, where, "scale", j, 1.0f, &op->scale))
    return false;
  return true;
}

static bool attrs_reshape(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                          StGraphOp *op) {
  (void)m;
  const JsonValue *sv = json_get(j, "shape");
  if (!sv || sv->type != JSON_ARRAY || sv->len < 1 || sv->len > 3)
    return merr(c, "%s: shape must be a list of 1 to 3 sizes", where);
  op->shape_rank = (int)sv->len;
  size_t numel = 1;
  for (size_t d = 0; d < sv->len; d++) {
    long long v;
    if (!json_int(&sv->items[d], 1, 1 << 28, &v))
      return merr(c, "%s: shape entry %zu must be a positive integer", where, d);
    op->shape[d] = (int)v;
    if (numel > ((size_t)1 << 40) / (size_t)v)
      return merr(c, "%s: shape has more than 2^40 elements", where);
    numel *= (size_t)v;
  }
  return true;
}

/* mul, div, concat and act have no attributes of their own (act and alpha are read for every
 * op). */
static bool attrs_none(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                       StGraphOp *op) {
  (void)c;
  (void)m;
  (void)where;
  (void)j;
  (void)op;
  return true;
}
#define attrs_mul attrs_none
#define attrs_div attrs_none
#define attrs_concat attrs_none
#define attrs_act attrs_none

typedef bool (*ParseAttrs)(const Ctx *c, StModel *m, const char *where, const JsonValue *j,
                           StGraphOp *op);
#define PARSE_ENTRY(id, name, min_in, max_in, nout) [ST_GOP_##id] = attrs_##name,
static const ParseAttrs op_attrs[ST_GOP_COUNT] = {ST_GRAPH_OPS(PARSE_ENTRY)};
#undef PARSE_ENTRY

static bool parse_op(const Ctx *c, StModel *m, const char *sgname, int idx, const JsonValue *j,
                     StGraphOp *op) {
  char where[300];
  const JsonValue *kind = json_get(j, "op");
  snprintf(where, sizeof where, "subgraph '%s', op %d (%s)", sgname, idx,
           kind && kind->type == JSON_STRING ? kind->string : "?");
  op->weight = -1;
  op->bias = -1;
  if (j->type != JSON_OBJECT)
    return merr(c, "%s: not an object", where);
  if (!kind || kind->type != JSON_STRING)
    return merr(c, "%s: missing \"op\"", where);
  int ki = -1;
  for (int i = 0; i < ST_GOP_COUNT; i++)
    if (strcmp(st_graph_ops[i].name, kind->string) == 0)
      ki = i;
  if (ki < 0)
    return merr(c, "%s: unknown op '%s'", where, kind->string);
  op->kind = (StGraphOpKind)ki;
  const StGraphOpDef *def = &st_graph_ops[ki];
  const JsonValue *in = json_get(j, "in");
  if (!string_list(c, in, where, &op->in, &op->nin))
    return false;
  if (op->nin < def->min_in || op->nin > def->max_in)
    return merr(c, "%s: %d inputs, expected %d to %d", where, op->nin, def->min_in, def->max_in);
  const JsonValue *out = json_get(j, "out");
  if (def->nout == 1) {
    if (!out || out->type != JSON_STRING || out->len == 0)
      return merr(c, "%s: \"out\" must be a name", where);
    op->out[0] = xstrdup(out->string);
    op->nout = 1;
  } else {
    if (!out || out->type != JSON_ARRAY || out->len != 2 || out->items[0].type != JSON_STRING ||
        out->items[1].type != JSON_STRING || !out->items[0].len || !out->items[1].len)
      return merr(c, "%s: \"out\" must be a list of 2 names", where);
    op->out[0] = xstrdup(out->items[0].string);
    op->out[1] = xstrdup(out->items[1].string);
    op->nout = 2;
  }
  if (!op->out[0] || (op->nout == 2 && !op->out[1]))
    return merr(c, "out of memory");

  bool ext = op->kind == ST_GOP_ACT;
  if (!parse_act(c, where, json_get(j, "act"), ext, &op->act))
    return false;
  if (!parse_float(c, where, "alpha", j, 0.2f, &op->alpha))
    return false;

  return op_attrs[op->kind](c, m, where, j, op);
}

static bool parse_subgraph(const Ctx *c, StModel *m, const JsonValue *subgraphs, const char *name,
                           StSubgraph *sg) {
  const JsonValue *j = json_get(subgraphs, name);
  if (!j)
    return merr(c, "graph: subgraph '%s' is missing", name);
  if (j->type != JSON_OBJECT)
    return merr(c, "graph: subgraph '%s' is not an object", name);
  sg->name = xstrdup(name);
  if (!sg->name)
    return merr(c, "out of memory");
  char what[200];
  snprintf(what, sizeof what, "subgraph '%s': inputs", name);
  if (!string_list(c, json_get(j, "inputs"), what, &sg->inputs, &sg->ninputs))
    return false;
  snprintf(what, sizeof what, "subgraph '%s': outputs", name);
  if (!string_list(c, json_get(j, "outputs"), what, &sg->outputs, &sg->noutputs))
    return false;
  const JsonValue *ops = json_get(j, "ops");
  if (!ops || ops->type != JSON_ARRAY)
    return merr(c, "subgraph '%s': ops must be a list", name);
  if (ops->len > (size_t)(MAX_OPS - *c->nops))
    return merr(c, "graph: more than %d ops (a subgraph counted once per use)", MAX_OPS);
  *c->nops += (int)ops->len;
  sg->ops = calloc(ops->len ? ops->len : 1, sizeof *sg->ops);
  if (!sg->ops)
    return merr(c, "out of memory");
  for (size_t i = 0; i < ops->len; i++) {
    sg->nops++;
    if (!parse_op(c, m, name, (int)i, &ops->items[i], &sg->ops[i]))
      return false;
  }
  return true;
}

/* A list of refine subgraph names (`what` names it in messages). */
static bool parse_refine(const Ctx *c, StModel *m, const JsonValue *sgs, const JsonValue *ref,
                         const char *what, StSubgraph **out, int *n) {
  if (!ref || ref->type != JSON_ARRAY)
    return merr(c, "graph: \"%s\" must be a list of subgraph names", what);
  if (ref->len > MAX_REFINE)
    return merr(c, "graph: \"%s\" lists %zu subgraphs, more than %d", what, ref->len, MAX_REFINE);
  *out = calloc(ref->len ? ref->len : 1, sizeof **out);
  if (!*out)
    return merr(c, "out of memory");
  for (size_t i = 0; i < ref->len; i++) {
    if (ref->items[i].type != JSON_STRING)
      return merr(c, "graph: %s entry %zu is not a name", what, i);
    (*n)++;
    if (!parse_subgraph(c, m, sgs, ref->items[i].string, &(*out)[i]))
      return false;
  }
  return true;
}

static bool parse_graph(const Ctx *c, StModel *m, const JsonValue *g) {
  if (g->type != JSON_OBJECT)
    return merr(c, "graph is not a JSON object");
  long long ss;
  if (!json_int(json_get(g, "style_size"), 1, 4096, &ss))
    return merr(c, "graph: style_size must be an integer in 1..4096");
  m->style_size = (int)ss;
  const JsonValue *sgs = json_get(g, "subgraphs");
  if (!sgs || sgs->type != JSON_OBJECT)
    return merr(c, "graph: \"subgraphs\" object missing");
  if (!parse_subgraph(c, m, sgs, "style", &m->style) ||
      !parse_subgraph(c, m, sgs, "initial", &m->initial))
    return false;
  if (!parse_refine(c, m, sgs, json_get(g, "refine"), "refine", &m->refine, &m->nrefine))
    return false;
  const JsonValue *mk = json_get(g, "masked");
  if (mk) {
    const JsonValue *ini = json_get(mk, "initial"), *in = json_get(mk, "input"),
                    *pre = json_get(mk, "style_prefix");
    if (mk->type != JSON_OBJECT || !ini || ini->type != JSON_STRING || !in ||
        in->type != JSON_STRING || !in->len || !pre || pre->type != JSON_STRING || !pre->len)
      return merr(c, "graph: \"masked\" must be {\"initial\": ..., \"refine\": [...], "
                     "\"input\": ..., \"style_prefix\": ...}");
    if (!parse_subgraph(c, m, sgs, ini->string, &m->masked_initial) ||
        !parse_refine(c, m, sgs, json_get(mk, "refine"), "masked.refine", &m->masked_refine,
                      &m->nmasked_refine))
      return false;
    m->mask_input = xstrdup(in->string);
    m->style2_prefix = xstrdup(pre->string);
    if (!m->mask_input || !m->style2_prefix)
      return merr(c, "out of memory");
  }
  const JsonValue *st = json_get(g, "state");
  if (st) {
    const JsonValue *n = json_get(st, "name"), *f = json_get(st, "from");
    if (st->type != JSON_OBJECT || !n || n->type != JSON_STRING || !f || f->type != JSON_STRING ||
        !n->len || !f->len)
      return merr(c, "graph: \"state\" must be {\"name\": ..., \"from\": ...}");
    m->state_name = xstrdup(n->string);
    m->state_from = xstrdup(f->string);
    if (!m->state_name || !m->state_from)
      return merr(c, "out of memory");
  }
  return true;
}

/* Takes ownership of `bytes` (malloc'ed). */
static StModel *parse_owned(const char *path, uint8_t *bytes, size_t size, StError *err) {
  int nops = 0;
  Ctx c = {.path = path, .err = err, .nops = &nops};
  StModel *m = calloc(1, sizeof *m);
  JsonValue *hdr = NULL, *graph = NULL;
  char jerr[256];
  if (!m) {
    free(bytes);
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  m->file = bytes;
  m->file_size = size;
  m->path = xstrdup(path);
  if (!m->path) {
    st_model_free(m);
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  if (size < 8) {
    merr(&c, "file too short (%zu bytes) for a safetensors header", size);
    goto fail;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | m->file[i];
  if (n == 0 || n > size - 8 || n > MAX_HEADER) {
    merr(&c,
         "header length %llu is impossible for a %zu-byte file (not a safetensors file, or "
         "truncated)",
         (unsigned long long)n, size);
    goto fail;
  }
  m->data = m->file + 8 + n;
  m->data_size = size - 8 - (size_t)n;
  hdr = json_parse((const char *)m->file + 8, (size_t)n, jerr, sizeof jerr);
  if (!hdr) {
    merr(&c, "header is not valid JSON: %s", jerr);
    goto fail;
  }
  if (hdr->type != JSON_OBJECT) {
    merr(&c, "header is a JSON %s, not an object", json_type_name(hdr->type));
    goto fail;
  }
  if (!parse_tensors(&c, m, hdr))
    goto fail;
  const JsonValue *meta = json_get(hdr, "__metadata__");
  if (!meta || meta->type != JSON_OBJECT) {
    merr(&c, "no __metadata__ (not a styletransfer model)");
    goto fail;
  }
  for (size_t i = 0; i < meta->len; i++) {
    if (meta->items[i].type != JSON_STRING) {
      merr(&c, "__metadata__ value '%s' is not a string", meta->keys[i]);
      goto fail;
    }
  }
  const JsonValue *fmt = json_get(meta, "format"), *ver = json_get(meta, "format_version"),
                  *gs = json_get(meta, "graph");
  if (!fmt || strcmp(fmt->string, "styletransfer-graph") != 0) {
    merr(&c, "__metadata__ format is '%s', expected 'styletransfer-graph'",
         fmt ? fmt->string : "(missing)");
    goto fail;
  }
  if (!ver || strcmp(ver->string, "1") != 0) {
    merr(&c, "format_version '%s' is not supported (this engine reads version 1)",
         ver ? ver->string : "(missing)");
    goto fail;
  }
  if (!gs) {
    merr(&c, "__metadata__ has no graph");
    goto fail;
  }
  graph = json_parse(gs->string, gs->len, jerr, sizeof jerr);
  if (!graph) {
    merr(&c, "graph is not valid JSON: %s", jerr);
    goto fail;
  }
  if (!parse_graph(&c, m, graph))
    goto fail;
  json_free(hdr);
  json_free(graph);
  return m;
fail:
  json_free(hdr);
  json_free(graph);
  st_model_free(m);
  return NULL;
}

StModel *st_model_load(const char *path, StError *err) {
  if (!path || !path[0]) {
    st_set_error(err, ST_ERROR_MODEL, "no model file given");
    return NULL;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    st_set_error(err, ST_ERROR_MODEL, "model %s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  uint8_t *buf = NULL;
  size_t size = 0, cap = 0;
  for (;;) {
    if (size == cap) {
      cap = cap ? cap * 2 : (1u << 20);
      uint8_t *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        st_set_error(err, ST_ERROR_MEMORY, "model %s: out of memory", path);
        return NULL;
      }
      buf = nb;
    }
    size_t r = fread(buf + size, 1, cap - size, f);
    size += r;
    if (r == 0)
      break;
  }
  bool read_err = ferror(f);
  fclose(f);
  if (read_err) {
    free(buf);
    st_set_error(err, ST_ERROR_MODEL, "model %s: read error", path);
    return NULL;
  }
  return parse_owned(path, buf, size, err);
}

StModel *st_model_parse(const char *path, const uint8_t *bytes, size_t size, StError *err) {
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  memcpy(copy, bytes, size);
  return parse_owned(path, copy, size, err);
}
