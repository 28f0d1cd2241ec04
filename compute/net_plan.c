/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Plans (net_private.h): the frame unrolled into one op list with shapes inferred per FORMAT.md,
 * names resolved, values laid out in one device arena by lifetime; style plans likewise.
 */
#include "net_private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  int id;
} Bind;

typedef struct {
  Bind *b;
  int n, cap;
} Env;

bool st_net_perr(StError *err, const StModel *m, const char *fmt, ...) {
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

void st_net_prefix_error(StError *err, const char *prefix) {
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

void st_net_shape_str(char *s, size_t n, int rank, const int *shape) {
  size_t k = (size_t)snprintf(s, n, "[");
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(s + k, n - k, i ? ",%d" : "%d", shape[i]);
  if (k < n)
    snprintf(s + k, n - k, "]");
}

void st_plan_free(StDevice *dev, Plan *p) {
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
  s->window = 2;
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

size_t st_net_numel(int rank, const int *shape) {
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
      st_net_perr(err, m,
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
        st_net_perr(err, m, "subgraph '%s', op %d (%s): input '%s' is undefined", sg->name, oi,
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
        st_net_perr(
            err, m,
            "subgraph '%s', op %d (conv2d): weight '%s' is neither a tensor of the file nor a "
            "value",
            sg->name, oi, op->weight_value);
        goto out;
      }
      if (op->k != 1) {
        st_net_perr(err, m, "subgraph '%s', op %d (conv2d): a run-time weight needs k = 1",
                    sg->name, oi);
        goto out;
      }
    }
    int rank[2], shape[2][3];
    if (!st_net_infer(net, p, sg, oi, op, in, wval, rank, shape, err))
      goto out;
    for (int k = 0; k < op->nout; k++) {
      if (!numel_ok(rank[k], shape[k])) {
        char so[64];
        st_net_shape_str(so, sizeof so, rank[k], shape[k]);
        st_net_perr(err, m, "subgraph '%s', op %d (%s): '%s' would be %s, more than 2^40 elements",
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
        st_net_perr(err, m, "subgraph '%s', op %d (%s): '%s' is assigned twice", sg->name, oi,
                    st_graph_op_name(op->kind), op->out[k]);
        goto out;
      }
      int id;
      /* a reshape, and an identity act (the graph's 'x' = act(x0, none)), name their input's
       * memory: values are never written after their step, so no copy is needed */
      s->alias = op->kind == ST_GOP_RESHAPE || (op->kind == ST_GOP_ACT && op->act == ST_ACT_NONE);
      if (s->alias) {
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
      st_net_perr(err, m, "subgraph '%s': output '%s' is never computed", sg->name, sg->outputs[i]);
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

static bool is_binary_eltwise(const PStep *s) {
  return s->op->kind == ST_GOP_ADD || s->op->kind == ST_GOP_MUL || s->op->kind == ST_GOP_DIV;
}

/* The step that defines v, when v is an arena value read by step b and by no other step; -1
 * otherwise. */
static int sole_reader_def(const Plan *p, int v, int b) {
  const PVal *pv = &p->vals[v];
  if (pv->root != v || pv->store != VS_ARENA || pv->def < 0 || pv->def >= b || pv->last != b)
    return -1;
  const PStep *sa = &p->st[pv->def];
  if (sa->out[0] != v || sa->stage != p->st[b].stage)
    return -1;
  for (int i = pv->def + 1; i < b; i++) { /* a reshape alias of v has another root */
    const PStep *s = &p->st[i];
    for (int k = 0; k < s->nin; k++)
      if (s->in[k] == v)
        return -1;
    if (s->wval == v)
      return -1;
  }
  return pv->def;
}

/* Two pools in a row as one 4x4 pool (the content's two average pools before the EFA start: at
 * steps 0 most of the frame's memory traffic): step b pools the output v of pool step a, of
 * the same mode and stage, and nothing else reads v. Equal for max pools, and for average pools
 * (ceil mode, border windows averaging their in-bounds pixels) where a's input has even H and W:
 * then every window of b covers equally weighted input pixels. b reads a's input instead, a is
 * not recorded, and v is given no lifetime (its arena bytes are free for others). */
static void fuse_pools(Plan *p) {
  for (int b = 0; b < p->nst; b++) {
    PStep *sb = &p->st[b];
    if (sb->op->kind != ST_GOP_POOL || sb->window != 2)
      continue;
    int v = sb->in[0], a = sole_reader_def(p, v, b);
    if (a < 0)
      continue;
    PStep *sa = &p->st[a];
    if (sa->op->kind != ST_GOP_POOL || sa->window != 2 || sa->fused_away ||
        sa->op->mode != sb->op->mode)
      continue;
    const PVal *x = &p->vals[sa->in[0]];
    if (sb->op->mode == ST_POOL_AVG && (x->shape[1] % 2 != 0 || x->shape[2] % 2 != 0))
      continue;
    sb->in[0] = sa->in[0];
    sb->window = 4;
    use(p, sa->in[0], b);
    sa->fused_away = true;
    p->vals[v].last = p->vals[v].def;
    snprintf(sb->label, sizeof sb->label, "%.24s/pool4x4:%.24s", p->stage_names[sb->stage],
             sb->op->out[0]);
  }
}

/* The upload into a fused pool (frame plans, after fuse_pools): the step b that average-pools the
 * content 4x4 when nothing else reads the content (no refinement step, no preserve-colors) and
 * every step before b is not recorded; -1 otherwise. The content is then never needed in full:
 * the frame's upload can write b's output directly (net_frame.c record_frame). */
static int upload_pool_step(const Plan *p) {
  for (int b = 0; b < p->nst; b++) {
    const PStep *s = &p->st[b];
    if (s->fused_away || s->alias)
      continue;
    bool pool = s->op->kind == ST_GOP_POOL && s->op->mode == ST_POOL_AVG && s->window == 4;
    return pool && s->in[0] == p->input && p->vals[p->input].last == b &&
                   p->vals[p->input].root == p->input
               ? b
               : -1;
  }
  return -1;
}

/* Chains of elementwise ops as one dispatch (the EFA's colouring, mul by [C], add [C], add the
 * decoded detail, add the content with the strength's weights: four feature-map passes at steps
 * 0): step b (add, mul or div) whose first input v is the output of such a step a (or of a
 * chain ending there) that nothing else reads. The chain is recorded at b, its last step, where
 * every operand has been computed; the steps before it are not recorded, their outputs are given
 * no lifetime, and the chain's first input and the second inputs live until b. The values stay
 * fp32 between the stages (with fp16 feature maps the unfused path rounds each). */
static void fuse_eltwise(Plan *p) {
  for (int b = 0; b < p->nst; b++) {
    PStep *sb = &p->st[b];
    if (!is_binary_eltwise(sb))
      continue;
    int v = sb->in[0], a = sb->in[1] == v ? -1 : sole_reader_def(p, v, b); /* not v * v */
    if (a < 0)
      continue;
    PStep *sa = &p->st[a];
    int na = sa->nchain ? sa->nchain : 1;
    if (!is_binary_eltwise(sa) || sa->fused_away || na + 1 > ST_ELT_CHAIN_MAX ||
        st_net_numel(p->vals[v].rank, p->vals[v].shape) !=
            st_net_numel(p->vals[sb->out[0]].rank, p->vals[sb->out[0]].shape))
      continue;
    if (sa->nchain)
      memcpy(sb->chain, sa->chain, sizeof(int) * (size_t)na);
    else
      sb->chain[0] = a;
    sb->chain[na] = b;
    sb->nchain = na + 1;
    sa->nchain = 0;
    sa->fused_away = true;
    p->vals[v].last = p->vals[v].def;
    use(p, p->st[sb->chain[0]].in[0], b);
    for (int i = 0; i < sb->nchain; i++)
      use(p, p->st[sb->chain[i]].in[1], b);
    snprintf(sb->label, sizeof sb->label, "%.24s/eltwise%d:%.24s", p->stage_names[sb->stage],
             sb->nchain, sb->op->out[0]);
  }
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
    v->bytes = (VkDeviceSize)st_net_numel(v->rank, v->shape) * st_dtype_size(v->dtype);
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
void st_plan_bind(StNet *net, Plan *p, StBuffer *persist) {
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
    case VS_STYLE2:
      t->buf = &net->slots[STYLE_SECOND].buf;
      t->offset = r->offset;
      break;
    }
  }
}

/* Style plan: input 'style' [3,sh,sw]; outputs become VS_PERSIST. */
Plan *st_plan_style(StNet *net, int sw, int sh, StError *err) {
  Plan *p = calloc(1, sizeof *p);
  Env env = {0};
  if (!p) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  p->style_plan = true;
  p->state = p->state_src = p->orig = p->x_final = p->upload_pool = -1;
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
      st_net_perr(err, net->model, "style output '%s' is the style image itself",
                  net->model->style.outputs[i]);
      goto fail;
    }
    p->vals[p->vals[id].root].store = VS_PERSIST;
  }
  for (int i = 0; i < p->nvals; i++)
    p->vals[i].store = p->vals[p->vals[i].root].store;
  fuse_pools(p);
  fuse_eltwise(p);
  if (!layout_values(net, p, err))
    goto fail;
  free(env.b);
  return p;
fail:
  free(env.b);
  st_plan_free(net->dev, p);
  return NULL;
}

/* Frame plan at processing size pw x ph with `steps` refinement steps. `style` describes the style
 * state (shapes; offsets into net->style_buf). */
Plan *st_plan_frame(StNet *net, const StyleVal *style, int nstyle, const StyleVal *style2,
                    int nstyle2, int pw, int ph, int steps, bool preserve, StError *err) {
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
  p->masked = style2 != NULL;
  p->state = p->state_src = p->orig = p->mask = -1;
  if (p->masked && !m->mask_input) {
    st_net_perr(err, m, "the model has no subgraphs for two styles by a mask");
    goto fail;
  }
  for (int i = 0; i < nstyle; i++) {
    int id =
        new_value(p, style[i].name, style[i].rank, style[i].shape, style[i].dtype, VS_STYLE, -1);
    if (id < 0 || !env_set(&env, style[i].name, id))
      goto oom;
    p->vals[id].offset = style[i].offset;
  }
  for (int i = 0; p->masked && i < nstyle2; i++) {
    int id = new_value(p, style2[i].name, style2[i].rank, style2[i].shape, style2[i].dtype,
                       VS_STYLE2, -1);
    if (id < 0 || !env_set(&env, style2[i].name, id))
      goto oom;
    p->vals[id].offset = style2[i].offset;
  }
  int shape[3] = {3, ph, pw};
  p->input = new_value(p, "content", 3, shape, ST_F32, VS_ARENA, 0);
  if (p->input < 0 || !env_set(&env, "content", p->input))
    goto oom;
  if (p->masked) {
    int mshape[3] = {1, ph, pw};
    p->mask = new_value(p, m->mask_input, 3, mshape, ST_F32, VS_ARENA, 0);
    if (p->mask < 0 || !env_set(&env, m->mask_input, p->mask))
      goto oom;
  }
  if (m->state_name) {
    p->state = new_value(p, m->state_name, 3, shape, ST_F32, VS_STATE, -1);
    if (p->state < 0 || !env_set(&env, m->state_name, p->state))
      goto oom;
  }
  const StSubgraph *refine = p->masked ? m->masked_refine : m->refine;
  int nrefine = p->masked ? m->nmasked_refine : m->nrefine;
  if (!plan_subgraph(net, p, p->masked ? &m->masked_initial : &m->initial, &env, "initial", err))
    goto fail;
  for (int i = 0; i < steps && nrefine > 0; i++) {
    char name[32];
    snprintf(name, sizeof name, "refine_%d", i);
    int r = i < nrefine ? i : nrefine - 1;
    if (!plan_subgraph(net, p, &refine[r], &env, name, err))
      goto fail;
  }
  p->end_step = p->nst;
  p->x_final = env_get(&env, "x");
  if (p->x_final < 0) {
    st_net_perr(err, m, "no value 'x' after the initial/refine subgraphs");
    goto fail;
  }
  const PVal *x = &p->vals[p->x_final];
  if (x->rank != 3 || x->shape[0] != 3) {
    char sx[64];
    st_net_shape_str(sx, sizeof sx, x->rank, x->shape);
    st_net_perr(err, m, "the final 'x' is %s, not an RGB image [3,H,W]", sx);
    goto fail;
  }
  use(p, p->x_final, p->end_step);
  if (m->state_from) {
    int id = env_get(&env, m->state_from);
    if (id >= 0 && id != p->state) {
      const PVal *v = &p->vals[id];
      if (v->rank != 3 || v->shape[0] != 3) {
        char sv[64];
        st_net_shape_str(sv, sizeof sv, v->rank, v->shape);
        st_net_perr(err, m, "state '%s' is %s, it must be an RGB image [3,H,W]", m->state_from, sv);
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
  fuse_pools(p);
  fuse_eltwise(p);
  p->upload_pool = upload_pool_step(p);
  if (!layout_values(net, p, err))
    goto fail;
  free(env.b);
  return p;
oom:
  st_set_error(err, ST_ERROR_MEMORY, "out of memory");
fail:
  free(env.b);
  st_plan_free(net->dev, p);
  return NULL;
}

void st_style_vals_free(StyleVal *sv, int n) {
  for (int i = 0; i < n; i++)
    free(sv[i].name);
  free(sv);
}

/* Style descriptors of a style plan's outputs (offsets into the plan's persistent buffer). */
StyleVal *st_style_vals_of(const StNet *net, const Plan *p, int *n, StError *err) {
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
      st_style_vals_free(sv, i);
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

/* Checks the whole graph once (shapes, names) on a small size before touching the device: a bad
 * file fails here with a clear message instead of on the first frame. Needs no device (none is
 * touched: plans get no arena before get_plan). */
bool st_net_check_graph(StNet *net, StError *err) {
  const StModel *m = net->model;
  Plan *sp = st_plan_style(net, m->style_size, m->style_size, err);
  if (!sp)
    return false;
  int ns = 0;
  StyleVal *sv = st_style_vals_of(net, sp, &ns, err);
  st_plan_free(net->dev, sp);
  if (!sv)
    return false;
  Plan *fp = st_plan_frame(net, sv, ns, NULL, 0, 67, 45, m->nrefine + 1, true, err);
  bool ok = fp != NULL;
  st_plan_free(net->dev, fp);
  if (ok && m->mask_input) { /* and the masked subgraphs, the second style laid out as the first */
    int n2 = 0;
    StyleVal *sv2 = st_style_vals_second(m, sv, ns, &n2, err);
    fp = sv2 ? st_plan_frame(net, sv, ns, sv2, n2, 67, 45, m->nmasked_refine + 1, true, err) : NULL;
    ok = fp != NULL;
    if (!ok)
      st_net_prefix_error(err, "two styles by a mask: ");
    st_plan_free(net->dev, fp);
    st_style_vals_free(sv2, n2);
  }
  st_style_vals_free(sv, ns);
  return ok;
}

StyleVal *st_style_vals_second(const StModel *m, const StyleVal *sv, int n, int *n2, StError *err) {
  StyleVal *out = calloc((size_t)n + 1, sizeof *out);
  *n2 = 0;
  if (!out) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    if (strncmp(sv[i].name, "s_", 2) != 0)
      continue;
    size_t len = strlen(m->style2_prefix) + strlen(sv[i].name + 2) + 1;
    StyleVal *o = &out[*n2];
    *o = sv[i];
    o->name = malloc(len);
    if (!o->name) {
      st_style_vals_free(out, *n2);
      st_set_error(err, ST_ERROR_MEMORY, "out of memory");
      return NULL;
    }
    snprintf(o->name, len, "%s%s", m->style2_prefix, sv[i].name + 2);
    (*n2)++;
  }
  return out;
}

bool st_model_check_graph(StModel *m, bool fp16, StError *err) {
  StNet net = {.dev = NULL, .model = m, .fp16 = fp16};
  return st_net_check_graph(&net, err);
}
