/* SPDX-License-Identifier: LGPL-2.1-or-later
 * st-bench: GPU timings of the engine.
 *
 *   st-bench MODEL [--size WxH] [--steps N] [--frames N] [--fp16] [--per-op] [--device I]
 *            [--strength S] [--processing WxH] [--smoothing K] [--two-styles]
 *     runs N synthetic RGBA frames through st_net_process (one submission each) and prints
 *     the median GPU time per stage (and per op with --per-op) and the frame rate.
 *     --two-styles: a second style (the synthetic style inverted) and a mask, the left half 255
 *     and the right half 0, on every frame: two styles split by a mask in the network.
 *     --smoothing K: the output smoothing of the element's temporal-smoothing (default 0, off;
 *     the element's default is 0.8): adds its CPU motion field to the wall time and a
 *     "smoothing" GPU stage. Also accepted with --table.
 *   st-bench MODEL --table [--sizes WxH,WxH,...] [--steps-max N] [--frames N] [--fp16 [both]]
 *     one Markdown table: for each frame size (processing size = frame size; default 320x240,
 *     640x360, 1280x720, 1920x1080), steps 0..N (default 3) and precision (fp32, fp16 with
 *     --fp16, both with --fp16 both): fps (median wall time per frame, host copies included),
 *     GPU total and median GPU ms per stage (upload = frame upload + conversion, initial =
 *     encoder + EFA + decoder, refine_i, download). Progress goes to stderr.
 *   st-bench --conv [--size WxH --cin C --cout C] [--fp16] [--iters N] [--device I]
 *     times one 3x3 convolution with bias + ReLU (reflect padding); without --size, the shapes
 *     1280x720 16->16, 640x360 32->32, 320x180 64->64 and 320x180 128->128.
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"
#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --two-styles: a second style and a mask (left half 255, right half 0) on every frame */
static bool two_styles;
static float smoothing; /* --smoothing */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of the whole process (on a CPU Vulkan driver: the driver's worker threads), which a
 * busy machine disturbs less than wall or GPU-timestamp time. */
static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  if (n <= 0)
    return 0;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint16_t float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int exp = (int)((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (exp <= 0)
    return (uint16_t)sign; /* flush tiny values (bench data only) */
  if (exp >= 31)
    return (uint16_t)(sign | 0x7c00);
  return (uint16_t)(sign | ((uint32_t)exp << 10) | ((mant + 0x1000) >> 13));
}

static void usage(void) {
  fprintf(stderr,
          "usage: st-bench MODEL [--size WxH] [--processing WxH] [--steps N] [--frames N]\n"
          "                [--strength S] [--smoothing K] [--two-styles] [--fp16] [--per-op]\n"
          "                [--device I]\n"
          "       st-bench MODEL --table [--sizes WxH,...] [--steps-max N] [--frames N]\n"
          "                [--fp16 [both]] [--smoothing K] [--device I]\n"
          "       st-bench MODEL --formats [all|FORMAT,...] [--size WxH] [--processing WxH]\n"
          "                [--steps N] [--frames N] [--fp16] [--device I]\n"
          "       st-bench --conv [--size WxH --cin C --cout C] [--fp16] [--iters N] "
          "[--device I]\n");
}

static bool parse_size(const char *s, int *w, int *h) {
  return sscanf(s, "%dx%d", w, h) == 2 && *w > 0 && *h > 0;
}

/* ---- single convolution ------------------------------------------------------------------- */

static bool fill(StDevice *dev, StBuffer *dst, size_t n, StDType dt, unsigned seed, StError *err) {
  size_t bytes = n * st_dtype_size(dt);
  StBuffer up;
  if (!st_buffer_create(dev, bytes, ST_MEM_UPLOAD, &up, err))
    return false;
  uint32_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    float v = ((float)(s >> 8) / 16777216.0f) * 2.0f - 1.0f;
    if (dt == ST_F16)
      ((uint16_t *)up.mapped)[i] = float_to_half(v * 0.5f);
    else
      ((float *)up.mapped)[i] = v * 0.5f;
  }
  StCmd *cmd = st_cmd_begin(dev, err);
  bool ok = cmd != NULL;
  if (ok) {
    st_cmd_copy(cmd, &up, 0, dst, 0, bytes);
    ok = st_cmd_submit_wait(cmd, err);
  }
  st_cmd_free(cmd);
  st_buffer_destroy(dev, &up);
  return ok;
}

/* Times `iters` runs of one convolution (after a warm-up run that creates the pipeline) in one
 * submission; u: Winograd weights (st_op_conv2d_winograd) instead of w. */
static bool time_conv(StDevice *dev, const StTensor *x, const StTensor *w, const StTensor *u,
                      const StTensor *b, const StTensor *y, int iters, const char *what,
                      StError *err) {
  int w_ = x->shape[2], h = x->shape[1], cin = x->shape[0], cout = y->shape[0];
  StCmd *cmd = st_cmd_begin(dev, err);
  if (!cmd)
    return false;
  bool ok = true;
  for (int i = 0; ok && i <= iters; i++) {
    ok = u ? st_op_conv2d_winograd(dev, cmd, x, u, b, ST_PAD_REFLECT, ST_ACT_RELU, 0.0f, y, err)
           : st_op_conv2d(dev, cmd, x, w, b, 3, 1, ST_PAD_REFLECT, ST_ACT_RELU, 0.0f, y, err);
    st_cmd_mark(cmd, i == 0 ? "warmup" : "conv");
  }
  double cpu0 = cpu_ms();
  ok = ok && st_cmd_submit_wait(cmd, err);
  double cpu = (cpu_ms() - cpu0) / (iters + 1); /* all threads of the process (CPU drivers) */
  StTiming tm[256];
  int nt = ok ? st_cmd_timings(cmd, tm, 256) : 0;
  st_cmd_free(cmd);
  if (!ok)
    return false;
  double v[256];
  int nv = 0;
  for (int i = 1; i < nt; i++)
    v[nv++] = tm[i].ms;
  const char *dt = x->dtype == ST_F16 ? "fp16" : "fp32";
  if (nv == 0) {
    printf("conv3x3 %4dx%-4d %3d->%-3d %s %-8s: no GPU timestamps on this device\n", w_, h, cin,
           cout, dt, what);
  } else {
    double ms = median(v, nv);
    double flops = 2.0 * w_ * h * (double)cin * cout * 9;
    printf("conv3x3 %4dx%-4d %3d->%-3d %s %-8s: %9.3f ms  %8.1f GFLOP/s  (median of %d; process "
           "CPU %.1f ms/conv)\n",
           w_, h, cin, cout, dt, what, ms, flops / (ms * 1e6), nv, cpu);
  }
  return true;
}

/* One 3x3 convolution (reflect padding, bias, ReLU) with the device's direct kernel and, where
 * it applies (st_op_winograd_applies), Winograd F(2x2,3x3). */
static bool bench_conv(StDevice *dev, int w, int h, int cin, int cout, bool fp16, int iters,
                       StError *err) {
  StDType dt = fp16 ? ST_F16 : ST_F32;
  StBuffer bx = {0}, bw = {0}, bu = {0}, bb = {0}, by = {0};
  bool ok = false;
  size_t nx = (size_t)cin * w * h, nw = (size_t)cout * cin * 9, ny = (size_t)cout * w * h;
  size_t nu = st_winograd_weights_numel(cout, cin);
  if (!st_buffer_create(dev, nx * st_dtype_size(dt), ST_MEM_DEVICE, &bx, err) ||
      !st_buffer_create(dev, nw * st_dtype_size(dt), ST_MEM_DEVICE, &bw, err) ||
      !st_buffer_create(dev, nu * 4, ST_MEM_UPLOAD, &bu, err) ||
      !st_buffer_create(dev, (size_t)cout * 4, ST_MEM_DEVICE, &bb, err) ||
      !st_buffer_create(dev, ny * st_dtype_size(dt), ST_MEM_DEVICE, &by, err))
    goto out;
  if (!fill(dev, &bx, nx, dt, 1, err) || !fill(dev, &bw, nw, dt, 2, err) ||
      !fill(dev, &bb, (size_t)cout, ST_F32, 3, err))
    goto out;
  StTensor x = {.buf = &bx, .dtype = dt, .rank = 3, .shape = {cin, h, w}};
  StTensor wt = {.buf = &bw, .dtype = dt, .rank = 3, .shape = {cout, cin, 9}};
  StTensor u = {.buf = &bu, .dtype = ST_F32};
  st_winograd_shape(&u, cout, cin);
  StTensor b = {.buf = &bb, .dtype = ST_F32, .rank = 1, .shape = {cout}};
  StTensor y = {.buf = &by, .dtype = dt, .rank = 3, .shape = {cout, h, w}};
  memset(bu.mapped, 0, nu * 4); /* the timing does not depend on the values */
  ok = time_conv(dev, &x, &wt, NULL, &b, &y, iters, "direct", err) &&
       (!st_op_winograd_applies(dev, 3, 1, cout) ||
        time_conv(dev, &x, NULL, &u, &b, &y, iters, "winograd", err));
out:
  st_buffer_destroy(dev, &bx);
  st_buffer_destroy(dev, &bw);
  st_buffer_destroy(dev, &bu);
  st_buffer_destroy(dev, &bb);
  st_buffer_destroy(dev, &by);
  return ok;
}

/* ---- whole network ------------------------------------------------------------------------ */

typedef struct {
  char name[64];
  double *v;
  int n;
} Series;

static void add_sample(Series **s, int *ns, const char *name, double ms, int cap) {
  int i;
  for (i = 0; i < *ns; i++)
    if (strcmp((*s)[i].name, name) == 0)
      break;
  if (i == *ns) {
    *s = realloc(*s, sizeof **s * (size_t)(*ns + 1));
    memset(&(*s)[i], 0, sizeof **s);
    snprintf((*s)[i].name, sizeof(*s)[i].name, "%s", name);
    (*s)[i].v = calloc((size_t)cap, sizeof(double));
    (*ns)++;
  }
  if ((*s)[i].n < cap)
    (*s)[i].v[(*s)[i].n++] = ms;
}

/* synthetic style: colourful stripes (malloc'ed pixels in *buf) */
static void make_style(StImage *si, uint8_t **buf) {
  int sw = 320, sh = 240;
  uint8_t *style = malloc((size_t)sw * sh * 4);
  for (int y = 0; y < sh; y++)
    for (int x = 0; x < sw; x++) {
      uint8_t *p = style + ((size_t)y * sw + x) * 4;
      p[0] = (uint8_t)(127 + 127 * sin((x + y) * 0.11));
      p[1] = (uint8_t)(127 + 127 * sin(x * 0.05 - y * 0.07));
      p[2] = (uint8_t)(127 + 127 * cos(y * 0.13));
      p[3] = 255;
    }
  *si = (StImage){.format = ST_FORMAT_RGBA, .width = sw, .height = sh};
  si->planes[0] = style;
  si->strides[0] = sw * 4;
  *buf = style;
}

/* Test pattern of frame f (a ramp moving 3 px per frame over a checkerboard), RGBA. */
static void make_frame(uint8_t *in, int w, int h, int f) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *q = in + ((size_t)y * w + x) * 4;
      q[0] = (uint8_t)((x + 3 * f) * 255 / (w + 1));
      q[1] = (uint8_t)(y * 255 / (h + 1));
      q[2] = (uint8_t)(((x / 16 + y / 16) & 1) ? 200 : 40);
      q[3] = 255;
    }
}

/* Input and output RGBA images of w x h (malloc'ed planes; NULL planes when out of memory). */
static void make_frame_pair(int w, int h, StImage *fi, StImage *fo) {
  *fi = (StImage){.format = ST_FORMAT_RGBA, .width = w, .height = h};
  fi->planes[0] = malloc((size_t)w * h * 4);
  fi->strides[0] = w * 4;
  *fo = *fi;
  fo->planes[0] = malloc((size_t)w * h * 4);
}

static int bench_net(StDevice *dev, const char *model, int w, int h, int pw, int ph, int steps,
                     int frames, float strength, bool fp16, bool per_op) {
  StError err = {0};
  StNetOptions o = {.fp16 = fp16};
  StNet *net = st_net_load(dev, model, &o, &err);
  if (!net) {
    fprintf(stderr, "st-bench: %s\n", err.message);
    return 1;
  }
  StImage si;
  uint8_t *style = NULL;
  make_style(&si, &style);
  double t0 = now_ms();
  if (!st_net_set_style(net, &si, &err)) {
    fprintf(stderr, "st-bench: set_style: %s\n", err.message);
    free(style);
    st_net_free(net);
    return 1;
  }
  if (two_styles) { /* the second style: the same picture, colours inverted */
    for (size_t i = 0; i < (size_t)si.width * si.height * 4; i++)
      if (i % 4 != 3)
        style[i] = (uint8_t)(255 - style[i]);
    if (!st_net_set_style_slot(net, ST_STYLE_SECOND, &si, 0, &err)) {
      fprintf(stderr, "st-bench: second style: %s\n", err.message);
      free(style);
      st_net_free(net);
      return 1;
    }
  }
  printf("device: %s | model %s | frame %dx%d | processing %dx%d | steps %d | %s | smoothing "
         "%.2f%s\n",
         st_device_name(dev), model, w, h, pw ? pw : w, ph ? ph : h, steps,
         fp16 && st_device_has_fp16_storage(dev) ? "fp16 storage" : "fp32", (double)smoothing,
         two_styles ? " | two styles by a mask" : "");
  printf("set_style: %.1f ms (wall)\n", now_ms() - t0);
  free(style);

  StImage fi, fo;
  make_frame_pair(w, h, &fi, &fo);
  uint8_t *in = fi.planes[0], *out = fo.planes[0];
  StFrameParams p;
  st_frame_params_init(&p);
  p.steps = steps;
  p.strength = strength;
  p.processing_width = pw;
  p.processing_height = ph;
  p.smoothing = smoothing;
  uint8_t *mask_px = NULL;
  StMask mask;
  if (two_styles) {
    mask_px = malloc((size_t)w * h);
    if (!mask_px) {
      fprintf(stderr, "st-bench: out of memory\n");
      st_net_free(net);
      free(in);
      free(out);
      return 1;
    }
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        mask_px[(size_t)y * w + x] = x < w / 2 ? 255 : 0;
    mask = (StMask){.data = mask_px, .width = w, .height = h, .stride = w};
    p.mask = &mask;
  }
  st_net_set_profiling(net, per_op);
  Series *stages = NULL, *ops = NULL;
  int nstages = 0, nops = 0;
  double *wall = calloc((size_t)frames + 1, sizeof(double));
  StTiming *tm = malloc(sizeof *tm * 4096);
  int rc = 0;
  for (int f = 0; f <= frames; f++) { /* frame 0: warm-up (pipelines, allocation) */
    make_frame(in, w, h, f);
    double t = now_ms();
    if (!st_net_process(net, &fi, &fo, &p, &err)) {
      fprintf(stderr, "st-bench: frame %d: %s\n", f, err.message);
      rc = 1;
      break;
    }
    t = now_ms() - t;
    if (f == 0)
      continue;
    wall[f - 1] = t;
    int n = st_net_last_timings(net, tm, 4096, false);
    double total = 0;
    for (int i = 0; i < n; i++) {
      add_sample(&stages, &nstages, tm[i].name, tm[i].ms, frames);
      total += tm[i].ms;
    }
    add_sample(&stages, &nstages, "GPU total", total, frames);
    if (per_op) {
      n = st_net_last_timings(net, tm, 4096, true);
      for (int i = 0; i < n; i++)
        add_sample(&ops, &nops, tm[i].name, tm[i].ms, frames);
    }
  }
  if (rc == 0 && frames > 0) {
    printf("\nper stage (median GPU ms over %d frames):\n", frames);
    for (int i = 0; i < nstages; i++)
      printf("  %-12s %10.3f\n", stages[i].name, median(stages[i].v, stages[i].n));
    printf("activation arena: %.1f MiB\n", (double)st_net_arena_bytes(net) / 1048576.0);
    double wm = median(wall, frames);
    printf("wall time per frame (median): %.3f ms -> %.2f fps\n", wm, 1000.0 / wm);
    if (per_op) {
      printf("\nper op (median GPU ms):\n");
      double sum = 0;
      for (int i = 0; i < nops; i++) {
        double m = median(ops[i].v, ops[i].n);
        sum += m;
        printf("  %-48s %10.3f\n", ops[i].name, m);
      }
      printf("  %-48s %10.3f\n", "sum", sum);
    }
  }
  for (int i = 0; i < nstages; i++)
    free(stages[i].v);
  for (int i = 0; i < nops; i++)
    free(ops[i].v);
  free(stages);
  free(ops);
  free(wall);
  free(tm);
  free(in);
  free(out);
  free(mask_px);
  st_net_free(net);
  return rc;
}

/* ---- benchmark table ---------------------------------------------------------------------- */

#define TABLE_MAX_COLS 16

typedef struct {
  int w, h, steps;
  bool fp16;
  bool ok;
  double fps, gpu_total;
  double host_rs, host_other; /* median host ms: record + submit; the rest of the call */
  double col[TABLE_MAX_COLS]; /* median GPU ms per stage column, < 0 when absent */
} TableRow;

static int table_col(char (*cols)[32], int *ncols, const char *name) {
  for (int i = 0; i < *ncols; i++)
    if (strcmp(cols[i], name) == 0)
      return i;
  if (*ncols >= TABLE_MAX_COLS)
    return -1;
  size_t n = strlen(name) < 31 ? strlen(name) : 31;
  memcpy(cols[*ncols], name, n);
  cols[*ncols][n] = 0;
  return (*ncols)++;
}

/* Stage columns in pipeline order: upload, initial, refine_0.., then others, download last. */
static int stage_rank(const char *n) {
  if (strcmp(n, "upload") == 0)
    return 0;
  if (strcmp(n, "initial") == 0)
    return 1;
  if (strncmp(n, "refine_", 7) == 0)
    return 10 + atoi(n + 7);
  if (strcmp(n, "download") == 0)
    return 1000;
  return 500;
}

/* One row: `frames` timed frames after one warm-up frame at w x h (processing size = frame). */
static bool table_row(StNet *net, TableRow *r, int frames, char (*cols)[32], int *ncols,
                      StError *err) {
  int w = r->w, h = r->h;
  StImage fi, fo;
  make_frame_pair(w, h, &fi, &fo);
  uint8_t *in = fi.planes[0], *out = fo.planes[0];
  StFrameParams p;
  st_frame_params_init(&p);
  p.steps = r->steps;
  p.processing_width = w;
  p.processing_height = h;
  p.smoothing = smoothing;
  double *wall = calloc((size_t)frames, sizeof(double));
  double *tot = calloc((size_t)frames, sizeof(double));
  double *hrs = calloc((size_t)frames, sizeof(double));
  double *hot = calloc((size_t)frames, sizeof(double));
  double(*v)[TABLE_MAX_COLS] = calloc((size_t)frames, sizeof *v);
  StTiming tm[256];
  bool ok = in && out && wall && tot && hrs && hot && v;
  st_net_reset_temporal(net);
  for (int f = 0; ok && f <= frames; f++) {
    make_frame(in, w, h, f);
    double t = now_ms();
    ok = st_net_process(net, &fi, &fo, &p, err);
    t = now_ms() - t;
    if (!ok || f == 0)
      continue;
    wall[f - 1] = t;
    StHostTiming ht;
    st_net_last_host_timing(net, &ht);
    hrs[f - 1] = ht.record_ms + ht.submit_ms;
    hot[f - 1] = ht.total_ms - ht.wait_ms - hrs[f - 1];
    for (int c = 0; c < TABLE_MAX_COLS; c++)
      v[f - 1][c] = -1;
    int n = st_net_last_timings(net, tm, 256, false);
    for (int i = 0; i < n; i++) {
      int c = table_col(cols, ncols, tm[i].name);
      if (c >= 0)
        v[f - 1][c] = (v[f - 1][c] < 0 ? 0 : v[f - 1][c]) + tm[i].ms;
      tot[f - 1] += tm[i].ms;
    }
    fprintf(stderr, ".");
  }
  if (ok) {
    r->fps = 1000.0 / median(wall, frames);
    r->gpu_total = median(tot, frames);
    r->host_rs = median(hrs, frames);
    r->host_other = median(hot, frames);
    for (int c = 0; c < TABLE_MAX_COLS; c++) {
      double *cv = calloc((size_t)frames, sizeof(double));
      int n = 0;
      for (int f = 0; f < frames; f++)
        if (v[f][c] >= 0)
          cv[n++] = v[f][c];
      r->col[c] = n ? median(cv, n) : -1;
      free(cv);
    }
  }
  r->ok = ok;
  free(in);
  free(out);
  free(wall);
  free(tot);
  free(hrs);
  free(hot);
  free(v);
  return ok;
}

static int bench_table(StDevice *dev, const char *model, const char *sizes, int steps_max,
                       int frames, int fp16_mode /* 0 fp32, 1 fp16, 2 both */) {
  int sz[16][2], nsz = 0;
  const char *s = sizes ? sizes : "320x240,640x360,1280x720,1920x1080";
  while (*s && nsz < 16) {
    if (!parse_size(s, &sz[nsz][0], &sz[nsz][1])) {
      fprintf(stderr, "st-bench: bad --sizes entry at \"%s\"\n", s);
      return 2;
    }
    nsz++;
    const char *c = strchr(s, ',');
    if (!c)
      break;
    s = c + 1;
  }
  bool precs[2] = {fp16_mode != 1, fp16_mode != 0};
  if (precs[1] && !st_device_has_fp16_storage(dev)) {
    fprintf(stderr, "st-bench: %s has no 16-bit storage; fp16 rows skipped\n", st_device_name(dev));
    precs[1] = false;
  }
  int nrows_max = 2 * nsz * (steps_max + 1);
  TableRow *rows = calloc((size_t)nrows_max, sizeof *rows);
  char cols[TABLE_MAX_COLS][32];
  int ncols = 0, nrows = 0, rc = 0;
  for (int pi = 0; pi < 2 && rc == 0; pi++) {
    if (!precs[pi])
      continue;
    StError err = {0};
    StNetOptions o = {.fp16 = pi == 1};
    StNet *net = st_net_load(dev, model, &o, &err);
    StImage si;
    uint8_t *style = NULL;
    make_style(&si, &style);
    if (!net || !st_net_set_style(net, &si, &err)) {
      fprintf(stderr, "st-bench: %s\n", err.message);
      free(style);
      st_net_free(net);
      rc = 1;
      break;
    }
    free(style);
    for (int i = 0; i < nsz && rc == 0; i++)
      for (int st = 0; st <= steps_max; st++) {
        TableRow *r = &rows[nrows++];
        *r = (TableRow){.w = sz[i][0], .h = sz[i][1], .steps = st, .fp16 = pi == 1};
        fprintf(stderr, "st-bench: %dx%d steps %d %s ", r->w, r->h, st, pi ? "fp16" : "fp32");
        double t0 = now_ms();
        if (!table_row(net, r, frames, cols, &ncols, &err)) {
          fprintf(stderr, " failed: %s\n", err.message);
          rc = 1;
          break;
        }
        fprintf(stderr, " %.1f fps (%.1f s)\n", r->fps, (now_ms() - t0) / 1000.0);
      }
    st_net_free(net);
  }
  /* columns in pipeline order */
  int order[TABLE_MAX_COLS];
  for (int i = 0; i < ncols; i++)
    order[i] = i;
  for (int i = 1; i < ncols; i++)
    for (int j = i; j > 0 && stage_rank(cols[order[j]]) < stage_rank(cols[order[j - 1]]); j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  printf("Engine (st-bench --table) on %s, processing size = frame size, median of %d frames "
         "after one warm-up frame; fps from wall time per frame (host copies included), stage "
         "columns are GPU ms (timestamps); host ms: recording + submission of the command "
         "buffer, and the rest of the call outside the GPU wait (frame copies, motion); output "
         "smoothing %.2f.\n\n",
         st_device_name(dev), frames, (double)smoothing);
  printf("| frame | steps | precision | fps | GPU ms | host record+submit ms | host other ms |");
  for (int i = 0; i < ncols; i++)
    printf(" %s |", cols[order[i]]);
  printf("\n|---|---|---|---|---|---|---|");
  for (int i = 0; i < ncols; i++)
    printf("---|");
  printf("\n");
  for (int k = 0; k < nrows; k++) {
    TableRow *r = &rows[k];
    if (!r->ok)
      continue;
    printf("| %dx%d | %d | %s | %.2f | %.1f | %.3f | %.3f |", r->w, r->h, r->steps,
           r->fp16 ? "fp16" : "fp32", r->fps, r->gpu_total, r->host_rs, r->host_other);
    for (int i = 0; i < ncols; i++) {
      double m = r->col[order[i]];
      if (m < 0)
        printf(" - |");
      else
        printf(" %.1f |", m);
    }
    printf("\n");
  }
  free(rows);
  return rc;
}

/* ---- conversion cost per format ----------------------------------------------------------- */

/* Frames of each format in `list` (comma-separated GStreamer names; NULL: every format) at
 * w x h through the network: the GPU time of the "upload" stage (host-visible copy, conversion to
 * the float tensor) and of the "download" stage (conversion back, copy), medians of `frames`
 * frames after one warm-up frame. */
static int bench_formats(StDevice *dev, const char *model, const char *list, int w, int h, int pw,
                         int ph, int steps, int frames, bool fp16) {
  StError err = {0};
  StNetOptions o = {.fp16 = fp16};
  StNet *net = st_net_load(dev, model, &o, &err);
  StImage si;
  uint8_t *style = NULL;
  make_style(&si, &style);
  if (!net || !st_net_set_style(net, &si, &err)) {
    fprintf(stderr, "st-bench: %s\n", err.message);
    free(style);
    st_net_free(net);
    return 1;
  }
  free(style);
  printf("Conversion cost per format (st-bench --formats) on %s: frame %dx%d, processing %dx%d, "
         "steps %d, %s; median GPU ms of %d frames after one warm-up frame. upload = copy to the "
         "device + conversion to the float tensor, download = conversion back + copy.\n\n",
         st_device_name(dev), w, h, pw ? pw : w, ph ? ph : h, steps,
         fp16 && st_device_has_fp16_storage(dev) ? "fp16 storage" : "fp32", frames);
  printf("| format | bytes per frame | upload ms | download ms | GPU total ms | wall ms |\n");
  printf("|---|---|---|---|---|---|\n");
  StFrameParams p;
  st_frame_params_init(&p);
  p.steps = steps;
  p.processing_width = pw;
  p.processing_height = ph;
  p.smoothing = smoothing;
  int rc = 0, done = 0;
  for (int f = 0; f < ST_FORMAT_COUNT && rc == 0; f++) {
    const char *name = st_format_name((StPixelFormat)f);
    if (list) { /* the name as a whole entry of the list */
      size_t n = strlen(name);
      const char *at = list;
      bool found = false;
      while ((at = strstr(at, name)) != NULL && !found) {
        found = (at == list || at[-1] == ',') && (at[n] == ',' || at[n] == '\0');
        at += n;
      }
      if (!found)
        continue;
    }
    int rowbytes[3], rows[3];
    int np = st_format_planes((StPixelFormat)f, w, h, rowbytes, rows);
    StImage fi = {.format = (StPixelFormat)f, .width = w, .height = h};
    StImage fo = fi;
    size_t total = 0;
    bool ok = np > 0;
    for (int i = 0; i < np && ok; i++) {
      size_t n = (size_t)rowbytes[i] * rows[i];
      fi.planes[i] = malloc(n);
      fo.planes[i] = malloc(n);
      fi.strides[i] = fo.strides[i] = rowbytes[i];
      ok = fi.planes[i] && fo.planes[i];
      for (size_t k = 0; ok && k < n; k++) /* any bytes: the timing does not depend on them */
        fi.planes[i][k] = (uint8_t)((k * 2654435761u) >> 13);
      total += n;
    }
    double *up = calloc((size_t)frames, sizeof(double));
    double *down = calloc((size_t)frames, sizeof(double));
    double *gpu = calloc((size_t)frames, sizeof(double));
    double *wall = calloc((size_t)frames, sizeof(double));
    ok = ok && up && down && gpu && wall;
    if (!ok)
      st_set_error(&err, ST_ERROR_MEMORY, "out of memory");
    st_net_reset_temporal(net);
    StTiming tm[256];
    for (int k = 0; ok && k <= frames; k++) {
      double t = now_ms();
      ok = st_net_process(net, &fi, &fo, &p, &err);
      t = now_ms() - t;
      if (!ok || k == 0)
        continue;
      wall[k - 1] = t;
      int n = st_net_last_timings(net, tm, 256, false);
      for (int i = 0; i < n; i++) {
        if (strcmp(tm[i].name, "upload") == 0)
          up[k - 1] += tm[i].ms;
        else if (strcmp(tm[i].name, "download") == 0)
          down[k - 1] += tm[i].ms;
        gpu[k - 1] += tm[i].ms;
      }
    }
    if (ok) {
      printf("| %s | %zu | %.3f | %.3f | %.2f | %.2f |\n", name, total, median(up, frames),
             median(down, frames), median(gpu, frames), median(wall, frames));
      fflush(stdout);
      done++;
    } else {
      fprintf(stderr, "st-bench: %s: %s\n", name, err.message);
      rc = 1;
    }
    for (int i = 0; i < 3; i++) {
      free(fi.planes[i]);
      free(fo.planes[i]);
    }
    free(up);
    free(down);
    free(gpu);
    free(wall);
  }
  if (rc == 0 && done == 0) {
    fprintf(stderr, "st-bench: --formats \"%s\" names no format\n", list);
    rc = 2;
  }
  st_net_free(net);
  return rc;
}

/* the engine's diagnostics (validation messages) on stderr */
static void log_stderr(StLogLevel level, const char *message, void *user_data) {
  (void)user_data;
  fprintf(stderr, "st-bench: %s: %s\n", level == ST_LOG_ERROR ? "error" : "warning", message);
}

int main(int argc, char **argv) {
  st_set_log_func(log_stderr, NULL);
  const char *model = NULL;
  bool conv = false, fp16 = false, per_op = false, have_size = false, table = false;
  bool formats = false;
  const char *sizes = NULL, *format_list = NULL;
  int steps_max = 3, fp16_mode = 0, frames_set = 0;
  int w = 1280, h = 720, pw = 0, ph = 0, steps = 2, frames = 10, cin = 16, cout = 16, iters = 10;
  int device = -1;
  float strength = 1.0f;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--conv") == 0)
      conv = true;
    else if (strcmp(a, "--fp16") == 0) {
      fp16 = true;
      fp16_mode = 1;
      if (v && strcmp(v, "both") == 0) {
        fp16_mode = 2;
        i++;
      }
    } else if (strcmp(a, "--table") == 0)
      table = true;
    else if (strcmp(a, "--formats") == 0) {
      formats = true;
      if (v && v[0] != '-' && strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_,all") == strlen(v)) {
        format_list = strcmp(v, "all") == 0 ? NULL : v;
        i++;
      }
    } else if (strcmp(a, "--sizes") == 0 && v) {
      sizes = v;
      i++;
    } else if (strcmp(a, "--steps-max") == 0 && v && (steps_max = atoi(v)) >= 0 && steps_max <= 8)
      i++;
    else if (strcmp(a, "--per-op") == 0)
      per_op = true;
    else if (strcmp(a, "--size") == 0 && v && parse_size(v, &w, &h)) {
      have_size = true;
      i++;
    } else if (strcmp(a, "--processing") == 0 && v && parse_size(v, &pw, &ph))
      i++;
    else if (strcmp(a, "--steps") == 0 && v && (steps = atoi(v)) >= 0)
      i++;
    else if (strcmp(a, "--frames") == 0 && v && (frames = atoi(v)) >= 1) {
      frames_set = 1;
      i++;
    } else if (strcmp(a, "--iters") == 0 && v && (iters = atoi(v)) >= 1 && iters <= 200)
      i++;
    else if (strcmp(a, "--cin") == 0 && v && (cin = atoi(v)) >= 1)
      i++;
    else if (strcmp(a, "--cout") == 0 && v && (cout = atoi(v)) >= 1)
      i++;
    else if (strcmp(a, "--device") == 0 && v) {
      device = atoi(v);
      i++;
    } else if (strcmp(a, "--smoothing") == 0 && v) {
      smoothing = (float)atof(v);
      i++;
    } else if (strcmp(a, "--two-styles") == 0) {
      two_styles = true;
    } else if (strcmp(a, "--strength") == 0 && v) {
      strength = (float)atof(v);
      i++;
    } else if (a[0] != '-' && !model)
      model = a;
    else {
      usage();
      return 2;
    }
  }
  if ((!conv && !model) || ((table || formats) && (conv || !model)) || (table && formats)) {
    usage();
    return 2;
  }
  StError err = {0};
  StDeviceOptions opts;
  st_device_options_init(&opts);
  opts.index = device;
  StDevice *dev = st_device_new(&opts, &err);
  if (!dev) {
    fprintf(stderr, "st-bench: %s\n", err.message);
    return 1;
  }
  if (table) {
    int rc = bench_table(dev, model, sizes, steps_max, frames_set ? frames : 5, fp16_mode);
    if (st_device_validation_messages(dev))
      rc = 1;
    st_device_free(dev);
    return rc;
  }
  if (fp16 && !st_device_has_fp16_storage(dev)) {
    fprintf(stderr, "st-bench: %s has no 16-bit storage; using fp32\n", st_device_name(dev));
    fp16 = false;
  }
  int rc = 0;
  if (formats) {
    rc = bench_formats(dev, model, format_list, w, h, pw, ph, steps, frames_set ? frames : 5, fp16);
  } else if (conv) {
    printf("device: %s\n", st_device_name(dev));
    if (have_size) {
      if (!bench_conv(dev, w, h, cin, cout, fp16, iters, &err))
        rc = 1;
    } else {
      static const int shapes[][4] = {
          {1280, 720, 16, 16}, {640, 360, 32, 32}, {320, 180, 64, 64}, {320, 180, 128, 128}};
      for (int i = 0; i < 4 && rc == 0; i++)
        if (!bench_conv(dev, shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], fp16, iters,
                        &err))
          rc = 1;
    }
    if (rc)
      fprintf(stderr, "st-bench: %s\n", err.message);
  } else {
    rc = bench_net(dev, model, w, h, pw, ph, steps, frames, strength, fp16, per_op);
  }
  if (st_device_validation_messages(dev))
    rc = 1;
  st_device_free(dev);
  return rc;
}
