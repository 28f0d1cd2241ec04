/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Whole-network test: runs the random-weight test model (tests/data/, written by
 * weights/export.py --test-data) and compares with the PyTorch reference outputs listed in
 * tests/data/index.json. fp32 must reach >= 40 dB PSNR, fp16 storage >= 35 dB. Also covers the
 * temporal two-frame sequence, the frame path (st_net_process) and error paths.
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"
#include "json.h"
#include "ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../st_test_log.h"
#include "check.h"

static const char *data_dir;

static void *read_file(const char *name, size_t *size) {
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", data_dir, name);
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf)
    *size = (size_t)n;
  return buf;
}

static float *read_f32(const char *name, const JsonValue *shape, int *c, int *h, int *w) {
  size_t size = 0;
  float *d = read_file(name, &size);
  if (!d) {
    fprintf(stderr, "cannot read %s\n", name);
    return NULL;
  }
  *c = (int)shape->items[0].number;
  *h = (int)shape->items[1].number;
  *w = (int)shape->items[2].number;
  if (size != (size_t)*c * *h * *w * 4) {
    fprintf(stderr, "%s: %zu bytes for shape %dx%dx%d\n", name, size, *c, *h, *w);
    free(d);
    return NULL;
  }
  return d;
}

typedef struct {
  double max_abs, psnr;
} Cmp;

static Cmp compare(const float *a, const float *b, size_t n) {
  double se = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= mx)) /* also catches NaN */
      mx = isnan(d) ? INFINITY : d;
    se += d * d;
  }
  Cmp c = {mx, 0};
  double mse = se / (double)n;
  c.psnr = mse > 0 ? 10.0 * log10(1.0 / mse) : 200.0;
  if (isnan(c.psnr) || isinf(mx))
    c.psnr = -1;
  return c;
}

static StNet *load_net(StDevice *dev, const char *model, bool fp16, const JsonValue *index) {
  StError err = {0};
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", data_dir, model);
  StNetOptions o = {.fp16 = fp16};
  StNet *net = st_net_load(dev, path, &o, &err);
  CHECK(net, "load %s: %s", path, err.message);
  if (!net)
    return NULL;
  const JsonValue *style = json_get(index, "style");
  int c, h, w;
  float *s = read_f32(json_get(style, "file")->string, json_get(style, "shape"), &c, &h, &w);
  CHECK(s && c == 3, "style image");
  if (!s) {
    st_net_free(net);
    return NULL;
  }
  CHECK(!st_net_has_style(net), "style before set_style");
  CHECK(st_net_set_style_float(net, s, w, h, &err), "set_style: %s", err.message);
  CHECK(st_net_has_style(net), "no style after set_style");
  free(s);
  return net;
}

/* Output smoothing (StFrameParams.smoothing) over a sequence with given motion: the first frame
 * is the network's output, every later one the CPU reference blend (st_ref_temporal_blend with
 * the given motion as a one-block field) of the network's output with the previous smoothed
 * output. The network's outputs come from a run without smoothing (the smoothing does not feed
 * back into the network). */
static void check_smoothing(StNet *net, const JsonValue *sq) {
  const JsonValue *frames = json_get(sq, "frames");
  size_t n = frames->len;
  float **x = calloc(n, sizeof *x), **y = calloc(n, sizeof *y), **cin = calloc(n, sizeof *cin);
  int ow = 0, oh = 0, cw = 0, chh = 0;
  bool ok = x && y && cin;
  /* pass 0: the network alone; pass 1: with smoothing */
  for (int pass = 0; pass < 2 && ok; pass++) {
    StFrameParams p;
    st_frame_params_init(&p);
    p.steps = (int)json_get(sq, "steps")->number;
    p.strength = (float)json_get(sq, "strength")->number;
    p.temporal = true;
    p.motion = ST_MOTION_GIVEN;
    p.smoothing = pass ? 0.6f : 0.0f;
    st_net_reset_temporal(net);
    for (size_t fi = 0; fi < n && ok; fi++) {
      const JsonValue *fr = &frames->items[fi];
      int c, h, w;
      float *in =
          read_f32(json_get(fr, "content")->string, json_get(fr, "content_shape"), &c, &h, &w);
      const JsonValue *shift = json_get(fr, "state_shift");
      p.motion_dy = shift ? (int)shift->items[0].number : 0;
      p.motion_dx = shift ? (int)shift->items[1].number : 0;
      StError err = {0};
      ok = in && st_net_run_float(net, in, w, h, &p, pass ? &y[fi] : &x[fi], &ow, &oh, &err);
      CHECK(ok, "smoothing pass %d frame %zu: %s", pass, fi, err.message);
      if (ok && pass == 0) { /* the content at the output's size */
        cin[fi] = malloc(sizeof(float) * 3 * (size_t)ow * oh);
        st_ref_resize(in, 3, h, w, ST_RESIZE_BILINEAR, oh, ow, cin[fi]);
        cw = w;
        chh = h;
      }
      free(in);
    }
  }
  if (ok) {
    size_t m = (size_t)3 * ow * oh;
    float *ref = malloc(sizeof(float) * m), *prev = malloc(sizeof(float) * m);
    memcpy(prev, x[0], sizeof(float) * m);
    Cmp r0 = compare(y[0], x[0], m);
    CHECK(r0.max_abs == 0.0, "smoothing: the first frame differs from the network's output");
    for (size_t fi = 1; fi < n; fi++) {
      const JsonValue *shift = json_get(&frames->items[fi], "state_shift");
      float flow[2] = {shift ? (float)shift->items[1].number * (float)ow / (float)cw : 0.0f,
                       shift ? (float)shift->items[0].number * (float)oh / (float)chh : 0.0f};
      st_ref_temporal_blend(x[fi], prev, cin[fi], cin[fi - 1], oh, ow, flow, 1, 1, (float)ow,
                            (float)oh, 0.6f, ST_SMOOTHING_THRESHOLD, ref);
      Cmp r = compare(y[fi], ref, m);
      Cmp rx = compare(y[fi], x[fi], m);
      printf("smoothing frame %zu (motion %g, %g): max|d| %.2e vs the CPU blend; differs from "
             "the network's output by max %.2e\n",
             fi, (double)flow[0], (double)flow[1], r.max_abs, rx.max_abs);
      CHECK(r.max_abs < 1e-4, "smoothing frame %zu: max|d| %.2e vs the CPU blend", fi, r.max_abs);
      CHECK(rx.max_abs > 1e-3, "smoothing frame %zu changed nothing", fi);
      memcpy(prev, ref, sizeof(float) * m);
    }
    free(ref);
    free(prev);
  }
  for (size_t i = 0; i < n && x && y && cin; i++) {
    free(x[i]);
    free(y[i]);
    free(cin[i]);
  }
  free(x);
  free(y);
  free(cin);
}

/* frame_only: only the st_net_process part (used with ST_FORCE_DEVICE_COPIES). */
/* A frame's recording is submitted again while nothing it depends on changed, and recorded
 * again when something did: the same frame twice gives the same bytes from the re-used
 * recording; another strength is recorded anew and differs; the first strength again re-uses
 * its recording (two are kept) and gives the first result. */
static void check_reuse(StNet *net, const JsonValue *cs, bool fp16) {
  int c, h, w;
  float *in = read_f32(json_get(cs, "content")->string, json_get(cs, "content_shape"), &c, &h, &w);
  if (!in)
    return;
  StError err = {0};
  StFrameParams p;
  st_frame_params_init(&p);
  p.steps = 1;
  p.strength = 1.0f;
  p.temporal = false;
  float *o[4] = {NULL, NULL, NULL, NULL};
  bool reused[4] = {false, false, false, false};
  const float strengths[4] = {0.75f, 0.75f, 0.25f, 0.75f};
  int rw = 0, rh = 0;
  bool ok = true;
  for (int i = 0; i < 4 && ok; i++) {
    p.strength = strengths[i];
    ok = st_net_run_float(net, in, w, h, &p, &o[i], &rw, &rh, &err);
    CHECK(ok, "reuse run %d: %s", i, err.message);
    StHostTiming ht;
    st_net_last_host_timing(net, &ht);
    reused[i] = ht.reused;
    CHECK(ht.total_ms > 0 && ht.wait_ms >= 0 && ht.record_ms >= 0 && ht.submit_ms >= 0 &&
              ht.total_ms >= ht.wait_ms,
          "host timing %d: record %g submit %g wait %g total %g", i, ht.record_ms, ht.submit_ms,
          ht.wait_ms, ht.total_ms);
  }
  if (ok) {
    size_t n = (size_t)3 * rw * rh;
    CHECK(!reused[0] && reused[1] && !reused[2] && reused[3], "%s re-use: %d %d %d %d",
          fp16 ? "fp16" : "fp32", reused[0], reused[1], reused[2], reused[3]);
    CHECK(memcmp(o[0], o[1], n * sizeof(float)) == 0, "re-used recording: another result");
    CHECK(memcmp(o[0], o[2], n * sizeof(float)) != 0,
          "strength 0.25 gave the strength-0.75 result");
    CHECK(memcmp(o[0], o[3], n * sizeof(float)) == 0, "strength 0.75 again: another result");
    printf("%s recordings re-used: %d %d %d %d\n", fp16 ? "fp16" : "fp32", reused[0], reused[1],
           reused[2], reused[3]);
  }
  for (int i = 0; i < 4; i++)
    free(o[i]);
  free(in);
}

/* One frame of `in` with `p` (temporal off); the output (3 * w * h floats) or NULL. */
static float *run_once(StNet *net, const float *in, int w, int h, const StFrameParams *p,
                       bool *reused, const char *what) {
  StError err = {0};
  float *o = NULL;
  int rw = 0, rh = 0;
  bool ok = st_net_run_float(net, in, w, h, p, &o, &rw, &rh, &err);
  CHECK(ok, "%s: %s", what, err.message);
  StHostTiming ht;
  st_net_last_host_timing(net, &ht);
  if (reused)
    *reused = ht.reused;
  return ok ? o : NULL;
}

static bool same(const float *a, const float *b, size_t n) {
  return a && b && memcmp(a, b, n * sizeof(float)) == 0;
}

/* Several styles (st_net_set_style_slot): the second style at mix 0 and 1 gives exactly the main
 * style alone and the second style alone; a mix in between differs from both and re-uses the
 * frame's recording (the mix is not part of it); a crossfade starts exactly at the old style and
 * ends exactly at the new one, also when a new crossfade starts in the middle of one; clearing
 * the second style; bad arguments. The main style is the file's style again at the end. */
static void check_styles(StNet *net, const JsonValue *cs, const JsonValue *index) {
  int c, h, w, sc, sh, sw;
  float *in = read_f32(json_get(cs, "content")->string, json_get(cs, "content_shape"), &c, &h, &w);
  const JsonValue *style = json_get(index, "style");
  float *sa = read_f32(json_get(style, "file")->string, json_get(style, "shape"), &sc, &sh, &sw);
  size_t ns = (size_t)3 * sw * sh;
  float *sb = malloc(ns * sizeof(float));
  if (!in || !sa || !sb) {
    free(in);
    free(sa);
    free(sb);
    return;
  }
  for (size_t i = 0; i < ns; i++) /* another style: the colours inverted, the rows reversed */
    sb[i] =
        1.0f -
        sa[(i / ((size_t)sw * sh)) * sw * sh + (size_t)(sh - 1 - (int)(i / sw % sh)) * sw + i % sw];
  StError err = {0};
  StFrameParams p;
  st_frame_params_init(&p);
  p.steps = 1;
  p.temporal = false;
  size_t n = 0;
  {
    int rw, rh;
    float *o = NULL;
    CHECK(st_net_run_float(net, in, w, h, &p, &o, &rw, &rh, &err), "%s", err.message);
    n = (size_t)3 * rw * rh;
    free(o);
  }
  bool r1, r2;
  float *oa = run_once(net, in, w, h, &p, NULL, "style A");
  CHECK(!st_net_has_style_slot(net, ST_STYLE_SECOND), "a second style before one was set");
  CHECK(st_net_set_style_slot_float(net, ST_STYLE_SECOND, sb, sw, sh, 0, &err), "second: %s",
        err.message);
  CHECK(st_net_has_style_slot(net, ST_STYLE_SECOND), "no second style after setting it");
  float *om0 = run_once(net, in, w, h, &p, NULL, "mix 0");
  p.style_mix = 1.0f;
  float *om1 = run_once(net, in, w, h, &p, NULL, "mix 1");
  p.style_mix = 0.5f;
  float *omh = run_once(net, in, w, h, &p, NULL, "mix 0.5");
  p.style_mix = 0.3f;
  float *om3 = run_once(net, in, w, h, &p, &r1, "mix 0.3");
  float *om3b = run_once(net, in, w, h, &p, &r2, "mix 0.3 again");
  CHECK(same(oa, om0, n), "mix 0 is not the main style alone");
  CHECK(!same(oa, om1, n) && !same(om1, omh, n) && !same(oa, omh, n) && !same(omh, om3, n),
        "the mix changes nothing");
  CHECK(r1 && r2 && same(om3, om3b, n), "a new mix re-recorded the frame (%d %d)", r1, r2);
  st_net_clear_style_slot(net, ST_STYLE_SECOND);
  float *oc = run_once(net, in, w, h, &p, NULL, "second cleared");
  CHECK(same(oa, oc, n), "mix 0.3 without a second style is not the main style alone");
  p.style_mix = 1.5f;
  float *bad = NULL;
  CHECK(!st_net_run_float(net, in, w, h, &p, &bad, NULL, NULL, &err) &&
            err.code == ST_ERROR_ARGUMENT,
        "style_mix 1.5 accepted");
  free(bad);
  p.style_mix = 0.0f;
  CHECK(!st_net_set_style_slot_float(net, ST_STYLE_SECOND, sb, sw, sh, ST_STYLE_CROSSFADE, &err) &&
            err.code == ST_ERROR_ARGUMENT,
        "a crossfade of the second style accepted");
  CHECK(!st_net_set_style_slot_float(net, (StStyleSlot)2, sb, sw, sh, 0, &err) &&
            err.code == ST_ERROR_ARGUMENT,
        "style slot 2 accepted");
  /* B as the main style alone: exactly the mix-1 result */
  CHECK(st_net_set_style_float(net, sb, sw, sh, &err), "%s", err.message);
  float *ob = run_once(net, in, w, h, &p, NULL, "style B");
  CHECK(same(ob, om1, n), "mix 1 is not the second style alone");
  /* crossfade B -> A: fade 0 is B, 1 is A */
  CHECK(st_net_set_style_slot_float(net, ST_STYLE_MAIN, sa, sw, sh, ST_STYLE_CROSSFADE, &err),
        "crossfade: %s", err.message);
  CHECK(st_net_crossfading(net), "no crossfade after ST_STYLE_CROSSFADE");
  p.style_fade = 0.0f;
  float *of0 = run_once(net, in, w, h, &p, NULL, "fade 0");
  p.style_fade = 0.5f;
  float *ofh = run_once(net, in, w, h, &p, NULL, "fade 0.5");
  /* a new crossfade (to B) in the middle: it starts where the first one was */
  CHECK(st_net_set_style_slot_float(net, ST_STYLE_MAIN, sb, sw, sh, ST_STYLE_CROSSFADE, &err),
        "second crossfade: %s", err.message);
  p.style_fade = 0.0f;
  float *of2 = run_once(net, in, w, h, &p, NULL, "second crossfade, fade 0");
  p.style_fade = 1.0f;
  float *of3 = run_once(net, in, w, h, &p, NULL, "second crossfade, fade 1");
  CHECK(!st_net_crossfading(net), "the crossfade did not end at fade 1");
  CHECK(same(of0, ob, n), "a crossfade does not start at the old style");
  CHECK(!same(ofh, ob, n) && !same(ofh, oa, n), "fade 0.5 is one of the styles");
  CHECK(same(of2, ofh, n), "a crossfade started during another does not start where it was");
  CHECK(same(of3, ob, n), "the crossfade does not end at the new style");
  printf("styles: mix and crossfade end points exact, mix re-uses the recording\n");
  CHECK(st_net_set_style_float(net, sa, sw, sh, &err), "%s", err.message);
  float *oa2 = run_once(net, in, w, h, &p, NULL, "style A again");
  CHECK(same(oa, oa2, n), "style A again: another result");
  float *outs[] = {oa, om0, om1, omh, om3, om3b, oc, ob, of0, ofh, of2, of3, oa2};
  for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
    free(outs[i]);
  free(in);
  free(sa);
  free(sb);
}

/* A mask without a second style: the stylized frame where the mask is 255, the input where it
 * is 0, a blend between (a 2x1 mask scaled to the frame: left quarter 255, right quarter 0). */
/* Plan fusions at steps 0 (net_plan.c), told by the per-op labels: at even H and W the content's
 * two 2x2 average pools (the EFA start) are one 4x4 pool (fuse_pools), done by the upload itself
 * when nothing else reads the content (smoothing off; with smoothing on it is its own dispatch);
 * at odd sizes the two pools run. The EFA's colouring chain of elementwise ops is one dispatch at
 * every size (fuse_eltwise). */
static void check_plan_fusion(StNet *net, const StImage *si, StImage *so, const StFrameParams *p) {
  StFrameParams q = *p;
  q.steps = 0;
  q.processing_width = q.processing_height = 0;
  StError err = {0};
  StTiming tm[256];
  int npools[3] = {0};
  for (int run = 0; run < 3; run++) {
    bool odd = run == 2;
    StImage a = *si, b = *so;
    a.width = b.width = (si->width & ~1) - odd;
    a.height = b.height = (si->height & ~1) - odd;
    q.smoothing = run == 1 ? 0.5f : 0.0f;
    q.temporal = run == 1 || p->temporal; /* the smoothing needs it */
    st_net_set_profiling(net, true);
    bool ok = st_net_process(net, &a, &b, &q, &err);
    st_net_set_profiling(net, false);
    CHECK(ok, "steps 0 at %dx%d with per-op timings: %s", a.width, a.height, err.message);
    if (!ok)
      continue;
    int nt = st_net_last_timings(net, tm, 256, true), fused = 0, pools = 0, chains = 0;
    for (int i = 0; i < nt; i++) {
      fused += strncmp(tm[i].name, "initial/pool4x4:", 16) == 0;
      pools += strncmp(tm[i].name, "initial/pool:", 13) == 0;
      chains += strncmp(tm[i].name, "initial/eltwise", 15) == 0;
    }
    npools[run] = pools;
    printf("steps 0 at %dx%d, smoothing %.1f: %d fused 4x4 pool(s), %d 2x2 pool(s), %d "
           "elementwise chain(s) in the initial stage\n",
           a.width, a.height, q.smoothing, fused, pools, chains);
    CHECK(chains >= 1, "%dx%d: no fused elementwise chain", a.width, a.height);
    if (odd)
      CHECK(fused == 0 && pools >= 2, "odd size: %d fused, %d pools", fused, pools);
    else if (run == 1)
      CHECK(fused == 1, "even size, smoothing on: %d fused 4x4 pools (%d 2x2)", fused, pools);
    else
      CHECK(fused == 0, "even size: the content's 4x4 pool is not in the upload (%d)", fused);
  }
  /* the upload's pool replaced the 4x4 pool, not the 2x2 ones */
  CHECK(npools[0] == npools[1], "even size: %d 2x2 pools, %d with smoothing", npools[0], npools[1]);
}

static void check_mask_composite(StNet *net, const StImage *si, StImage *so,
                                 const StFrameParams *p0) {
  StError err = {0};
  int w = si->width, h = si->height, stride = so->strides[0];
  size_t n = (size_t)stride * h;
  uint8_t *full = malloc(n);
  memcpy(full, so->planes[0], n);
  static const uint8_t half[2] = {255, 0};
  StMask m = {.data = half, .width = 2, .height = 1, .stride = 2};
  StFrameParams p = *p0;
  p.mask = &m;
  CHECK(st_net_process(net, si, so, &p, &err), "masked frame: %s", err.message);
  int bad_in = 0, bad_style = 0, between = 0;
  for (int y = 0; y < h; y++)
    for (int k = 0; k < 3; k++) {
      size_t l = (size_t)y * stride + k, r = (size_t)y * stride + 4 * (w - 1) + k;
      size_t c = (size_t)y * stride + 4 * (w / 2) + k;
      bad_style += so->planes[0][l] != full[l];
      bad_in += so->planes[0][r] != si->planes[0][r];
      int lo = full[c] < si->planes[0][c] ? full[c] : si->planes[0][c];
      int hi = full[c] ^ si->planes[0][c] ^ lo;
      between += so->planes[0][c] >= lo && so->planes[0][c] <= hi;
    }
  printf("mask composite: left column %d samples off the stylized frame, right column %d off "
         "the input, middle %d/%d between\n",
         bad_style, bad_in, between, 3 * h);
  CHECK(bad_style == 0 && bad_in == 0 && between == 3 * h, "mask composite");
  /* the same mask interleaved with other bytes (as the alpha of an RGBA frame): same output */
  uint8_t *first = malloc(n);
  memcpy(first, so->planes[0], n);
  static const uint8_t rgba[8] = {7, 7, 7, 255, 9, 9, 9, 0};
  StMask mi = {.data = rgba + 3, .width = 2, .height = 1, .stride = 8, .pixel_stride = 4};
  p.mask = &mi;
  CHECK(st_net_process(net, si, so, &p, &err), "interleaved mask: %s", err.message);
  CHECK(memcmp(first, so->planes[0], n) == 0, "an interleaved mask gives another output");
  free(first);
  p.mask = &m;
  /* the composite needs the same formats */
  StImage bgra = *so;
  bgra.format = ST_FORMAT_BGRA;
  CHECK(!st_net_process(net, si, &bgra, &p, &err) && strstr(err.message, "same input and output"),
        "mask with RGBA -> BGRA: %s", err.message);
  printf("mask, other output format: %s\n", err.message);
  StMask bad = m;
  bad.stride = 1;
  CHECK(!st_net_process(net, si, so,
                        &(StFrameParams){.steps = p.steps, .strength = 1, .mask = &bad}, &err) &&
            err.code == ST_ERROR_ARGUMENT,
        "bad mask stride accepted");
  free(full);
}

/* Two styles by a mask (index "masked_cases", the model's masked subgraphs): the main style
 * where the mask is 255, the second where it is 0, each region with its own statistics, against
 * the PyTorch model; a mask of 255 everywhere gives the one-style output. The second style is
 * cleared at the end. */
static void check_masked(StNet *net, const JsonValue *index, bool fp16, double min_psnr) {
  const JsonValue *cases = json_get(index, "masked_cases"), *st2 = json_get(index, "style2");
  if (!cases || !st2) {
    printf("no masked cases in the test data\n");
    return;
  }
  StError err = {0};
  int c, h, w;
  float *s2 = read_f32(json_get(st2, "file")->string, json_get(st2, "shape"), &c, &h, &w);
  CHECK(s2 && st_net_set_style_slot_float(net, ST_STYLE_SECOND, s2, w, h, 0, &err),
        "second style: %s", err.message);
  free(s2);
  for (size_t i = 0; i < cases->len; i++) {
    const JsonValue *cs = &cases->items[i];
    int oc, oh, ow;
    size_t msize = 0;
    float *in =
        read_f32(json_get(cs, "content")->string, json_get(cs, "content_shape"), &c, &h, &w);
    float *ref =
        read_f32(json_get(cs, "output")->string, json_get(cs, "output_shape"), &oc, &oh, &ow);
    uint8_t *mpx = read_file(json_get(cs, "mask")->string, &msize);
    CHECK(in && ref && mpx && msize == (size_t)w * h, "masked case %zu data", i);
    float *out = NULL;
    int rw = 0, rh = 0;
    StFrameParams p;
    st_frame_params_init(&p);
    p.steps = (int)json_get(cs, "steps")->number;
    p.strength = (float)json_get(cs, "strength")->number;
    p.temporal = false;
    StMask m = {.data = mpx, .width = w, .height = h, .stride = w};
    p.mask = &m;
    bool ok = in && ref && mpx && st_net_run_float(net, in, w, h, &p, &out, &rw, &rh, &err);
    CHECK(ok, "masked case %zu: %s", i, err.message);
    if (ok && rw == ow && rh == oh) {
      Cmp r = compare(out, ref, (size_t)3 * ow * oh);
      printf("%s masked %-14s steps %d strength %.1f -> %3dx%-3d  max|d| %.2e  PSNR %6.2f dB\n",
             fp16 ? "fp16" : "fp32", json_get(cs, "content")->string, p.steps, (double)p.strength,
             ow, oh, r.max_abs, r.psnr);
      CHECK(r.psnr >= min_psnr, "masked case %zu: PSNR %.2f dB < %.0f", i, r.psnr, min_psnr);
      /* a mask of 255 everywhere: the main style alone (the masked subgraphs' other path) */
      float *one = NULL, *all = NULL;
      memset(mpx, 255, msize);
      StFrameParams q = p;
      q.mask = NULL;
      st_net_clear_style_slot(net, ST_STYLE_SECOND);
      bool ok1 = st_net_run_float(net, in, w, h, &q, &one, NULL, NULL, &err);
      CHECK(ok1, "one style: %s", err.message);
      int sc, sh, sw;
      float *s2b = read_f32(json_get(st2, "file")->string, json_get(st2, "shape"), &sc, &sh, &sw);
      CHECK(s2b && st_net_set_style_slot_float(net, ST_STYLE_SECOND, s2b, sw, sh, 0, &err),
            "second style again: %s", err.message);
      free(s2b);
      bool ok2 = st_net_run_float(net, in, w, h, &p, &all, NULL, NULL, &err);
      CHECK(ok2, "mask of 255: %s", err.message);
      if (ok1 && ok2) {
        Cmp r1 = compare(all, one, (size_t)3 * ow * oh);
        CHECK(r1.psnr >= min_psnr, "masked case %zu: a mask of 255 is %.2f dB from one style", i,
              r1.psnr);
      }
      free(one);
      free(all);
    }
    free(out);
    free(in);
    free(ref);
    free(mpx);
  }
  st_net_clear_style_slot(net, ST_STYLE_SECOND);
}

static void run_cases(StDevice *dev, const JsonValue *index, bool fp16, bool frame_only) {
  double min_psnr = fp16 ? 35.0 : 40.0;
  StNet *net = load_net(dev, json_get(index, "model")->string, fp16, index);
  if (!net)
    return;
  StError err = {0};
  const JsonValue *cases = json_get(index, "cases");
  double worst = 1e9;
  for (size_t i = 0; i < cases->len && !frame_only; i++) {
    const JsonValue *cs = &cases->items[i];
    int c, h, w, oc, oh, ow;
    float *in =
        read_f32(json_get(cs, "content")->string, json_get(cs, "content_shape"), &c, &h, &w);
    float *ref =
        read_f32(json_get(cs, "output")->string, json_get(cs, "output_shape"), &oc, &oh, &ow);
    CHECK(in && ref, "case %zu data", i);
    if (!in || !ref) {
      free(in);
      free(ref);
      continue;
    }
    StFrameParams p;
    st_frame_params_init(&p);
    p.steps = (int)json_get(cs, "steps")->number;
    p.strength = (float)json_get(cs, "strength")->number;
    p.temporal = json_get(cs, "temporal")->boolean;
    float *out = NULL;
    int rw = 0, rh = 0;
    bool ok = st_net_run_float(net, in, w, h, &p, &out, &rw, &rh, &err);
    CHECK(ok, "case %zu: %s", i, err.message);
    if (ok) {
      CHECK(rw == ow && rh == oh, "case %zu: output %dx%d, reference %dx%d", i, rw, rh, ow, oh);
      if (rw == ow && rh == oh) {
        Cmp r = compare(out, ref, (size_t)3 * ow * oh);
        printf("%s %-22s steps %d strength %.1f -> %3dx%-3d  max|d| %.2e  PSNR %6.2f dB\n",
               fp16 ? "fp16" : "fp32", json_get(cs, "content")->string, p.steps, (double)p.strength,
               ow, oh, r.max_abs, r.psnr);
        CHECK(r.psnr >= min_psnr, "case %zu (%s, steps %d, strength %.1f): PSNR %.2f dB < %.0f", i,
              json_get(cs, "content")->string, p.steps, (double)p.strength, r.psnr, min_psnr);
        if (r.psnr < worst)
          worst = r.psnr;
      }
    }
    free(out);
    free(in);
    free(ref);
  }
  if (!frame_only)
    printf("%s: worst PSNR over %zu cases: %.2f dB\n", fp16 ? "fp16" : "fp32", cases->len, worst);
  if (!frame_only && cases->len > 0)
    check_reuse(net, &cases->items[0], fp16);
  if (!frame_only && cases->len > 0)
    check_styles(net, &cases->items[0], index);
  if (!frame_only)
    check_masked(net, index, fp16, min_psnr);

  /* Temporal sequences: state carried from frame to frame. */
  const JsonValue *seqs = frame_only ? NULL : json_get(index, "sequences");
  for (size_t si = 0; seqs && si < seqs->len; si++) {
    const JsonValue *sq = &seqs->items[si];
    StFrameParams p;
    st_frame_params_init(&p);
    p.steps = (int)json_get(sq, "steps")->number;
    p.strength = (float)json_get(sq, "strength")->number;
    p.temporal = json_get(sq, "temporal")->boolean;
    st_net_reset_temporal(net);
    const JsonValue *frames = json_get(sq, "frames");
    for (size_t fi = 0; fi < frames->len; fi++) {
      const JsonValue *fr = &frames->items[fi];
      int c, h, w, oc, oh, ow;
      float *in =
          read_f32(json_get(fr, "content")->string, json_get(fr, "content_shape"), &c, &h, &w);
      float *ref =
          read_f32(json_get(fr, "output")->string, json_get(fr, "output_shape"), &oc, &oh, &ow);
      float *out = NULL;
      int rw, rh;
      /* the reference moved the previous residual by the frame's given motion */
      const JsonValue *shift = json_get(fr, "state_shift");
      p.motion = shift ? ST_MOTION_GIVEN : ST_MOTION_NONE;
      p.motion_dy = shift ? (int)shift->items[0].number : 0;
      p.motion_dx = shift ? (int)shift->items[1].number : 0;
      bool ok = in && ref && st_net_run_float(net, in, w, h, &p, &out, &rw, &rh, &err);
      CHECK(ok, "sequence %zu frame %zu: %s", si, fi, err.message);
      if (ok) {
        int mdx, mdy;
        st_net_last_motion(net, &mdx, &mdy);
        CHECK(mdx == p.motion_dx && mdy == p.motion_dy, "motion (%d, %d) applied, (%d, %d) given",
              mdx, mdy, p.motion_dx, p.motion_dy);
      }
      if (ok && rw == ow && rh == oh) {
        Cmp r = compare(out, ref, (size_t)3 * ow * oh);
        printf("%s sequence %zu frame %zu: max|d| %.2e PSNR %.2f dB\n", fp16 ? "fp16" : "fp32", si,
               fi, r.max_abs, r.psnr);
        CHECK(r.psnr >= min_psnr, "sequence %zu frame %zu: PSNR %.2f dB", si, fi, r.psnr);
        if (fi > 0 && fi + 1 == frames->len && p.temporal && p.steps > 0) {
          /* The same frame without the carried state must give a different result, so the
           * state really is used (and compares worse against the temporal reference). Only on
           * the last frame: this run replaces the carried state. */
          StFrameParams q = p;
          q.temporal = false;
          float *out2 = NULL;
          ok = st_net_run_float(net, in, w, h, &q, &out2, &rw, &rh, &err);
          CHECK(ok, "%s", err.message);
          if (ok) {
            Cmp r2 = compare(out2, ref, (size_t)3 * ow * oh);
            printf("  same frame without temporal state: PSNR %.2f dB vs the temporal reference\n",
                   r2.psnr);
            CHECK(r2.psnr < r.psnr, "temporal state has no effect (%.2f vs %.2f dB)", r2.psnr,
                  r.psnr);
          }
          free(out2);
        }
      }
      free(out);
      free(in);
      free(ref);
    }
  }

  for (size_t si = 0; seqs && si < seqs->len; si++)
    if (json_get(&seqs->items[si], "temporal")->boolean)
      check_smoothing(net, &seqs->items[si]);

  /* Frame path: RGBA bytes in, RGBA bytes out (at the frame size) vs. the float reference. */
  {
    const JsonValue *cs = NULL;
    for (size_t i = 0; i < cases->len; i++) {
      const JsonValue *x = &cases->items[i];
      if (json_get(x, "steps")->number >= 2 && json_get(x, "strength")->number == 1.0 &&
          json_get(x, "output_shape")->items[1].number ==
              json_get(x, "content_shape")->items[1].number)
        cs = x;
    }
    CHECK(cs != NULL, "no full-resolution case for the frame test");
    if (cs) {
      int c, h, w, oc, oh, ow;
      float *in =
          read_f32(json_get(cs, "content")->string, json_get(cs, "content_shape"), &c, &h, &w);
      float *ref =
          read_f32(json_get(cs, "output")->string, json_get(cs, "output_shape"), &oc, &oh, &ow);
      if (in && ref) {
        int stride = w * 4 + 12; /* padded rows */
        uint8_t *src = malloc((size_t)stride * h), *dst = malloc((size_t)stride * h);
        for (int y = 0; y < h; y++)
          for (int x = 0; x < w; x++) {
            for (int k = 0; k < 3; k++)
              src[y * stride + 4 * x + k] =
                  (uint8_t)lrintf(fminf(fmaxf(in[(k * h + y) * w + x], 0.f), 1.f) * 255.f);
            src[y * stride + 4 * x + 3] = 255;
          }
        StImage si = {.format = ST_FORMAT_RGBA, .width = w, .height = h};
        si.planes[0] = src;
        si.strides[0] = stride;
        StImage so = si;
        so.planes[0] = dst;
        StFrameParams p;
        st_frame_params_init(&p);
        p.steps = (int)json_get(cs, "steps")->number;
        p.temporal = false;
        bool ok = st_net_process(net, &si, &so, &p, &err);
        CHECK(ok, "st_net_process: %s", err.message);
        if (ok) {
          float *got = malloc(sizeof(float) * 3 * w * h), *want = malloc(sizeof(float) * 3 * w * h);
          for (int k = 0; k < 3; k++)
            for (int y = 0; y < h; y++)
              for (int x = 0; x < w; x++) {
                got[(k * h + y) * w + x] = dst[y * stride + 4 * x + k] / 255.f;
                want[(k * h + y) * w + x] = fminf(fmaxf(ref[(k * h + y) * w + x], 0.f), 1.f);
              }
          Cmp r = compare(got, want, (size_t)3 * w * h);
          printf("%s frame path RGBA %dx%d: max|d| %.3f PSNR %.2f dB\n", fp16 ? "fp16" : "fp32", w,
                 h, r.max_abs, r.psnr);
          CHECK(r.psnr >= 30.0, "frame path PSNR %.2f dB", r.psnr);
          free(got);
          free(want);
          check_mask_composite(net, &si, &so, &p);
          StTiming tm[32];
          int nt = st_net_last_timings(net, tm, 32, false);
          CHECK(nt >= 3 && strcmp(tm[0].name, "upload") == 0 &&
                    strcmp(tm[nt - 1].name, "download") == 0,
                "stage timings (%d)", nt);
          for (int i = 0; i < nt; i++)
            printf("  %-10s %.3f ms\n", tm[i].name, tm[i].ms);
          check_plan_fusion(net, &si, &so, &p);
        }
        /* Odd sizes, YUV formats, processing size smaller than the frame. */
        int fw = 37, fh = 23;
        uint8_t *y = malloc(64 * 32), *u = malloc(32 * 16), *v = malloc(32 * 16);
        uint8_t *y2 = malloc(64 * 32), *u2 = malloc(64 * 16), *v2 = malloc(32 * 16);
        memset(y2, 0, 64 * 32);
        for (int i = 0; i < 64 * 32; i++)
          y[i] = (uint8_t)(16 + (i * 7) % 220);
        for (int i = 0; i < 32 * 16; i++) {
          u[i] = (uint8_t)(128 + (i % 50) - 25);
          v[i] = (uint8_t)(128 - (i % 40) + 20);
        }
        StImage yi = {.format = ST_FORMAT_I420, .width = fw, .height = fh};
        yi.planes[0] = y;
        yi.planes[1] = u;
        yi.planes[2] = v;
        yi.strides[0] = 64;
        yi.strides[1] = yi.strides[2] = 32;
        StImage yo = yi;
        yo.format = ST_FORMAT_NV12;
        yo.planes[0] = y2;
        yo.planes[1] = u2;
        yo.planes[2] = NULL;
        yo.strides[1] = 64;
        p.processing_width = 20;
        p.processing_height = 0;
        p.preserve_colors = true;
        p.temporal = true;
        ok = st_net_process(net, &yi, &yo, &p, &err) && st_net_process(net, &yi, &yo, &p, &err);
        CHECK(ok, "I420 -> NV12 with preserve-colors: %s", err.message);
        /* every step count, with x at a coarser level than the frame (steps 0, 1) */
        for (int steps = 0; steps <= st_net_max_steps(net) + 1; steps++) {
          StFrameParams q = p;
          q.steps = steps;
          CHECK(st_net_process(net, &yi, &yo, &q, &err), "I420 -> NV12, steps %d: %s", steps,
                err.message);
        }
        int nonzero = 0;
        for (int yy = 0; yy < fh; yy++)
          for (int xx = 0; xx < fw; xx++)
            nonzero += y2[yy * 64 + xx] != 0;
        CHECK(nonzero > fw * fh / 2, "NV12 output mostly empty (%d)", nonzero);
        /* A processing size beyond the device's storage-buffer range is refused at planning
         * time (before any allocation) with a clear message. */
        uint32_t range = st_device_limits(dev)->maxStorageBufferRange;
        if (range <= (1u << 30)) {
          StFrameParams q = p;
          q.steps = 2;
          q.processing_width = 4096;
          q.processing_height = 4096; /* 16 channels fp32 = 1 GiB */
          CHECK(!st_net_process(net, &si, &so, &q, &err) && err.code == ST_ERROR_ARGUMENT &&
                    strstr(err.message, "storage-buffer limit"),
                "oversized processing size: %s", err.message);
          printf("oversized processing size: %s\n", err.message);
          /* and the net still works afterwards */
          CHECK(st_net_process(net, &si, &so, &p, &err), "after refusal: %s", err.message);
        } else {
          printf("storage-buffer range %u: oversized-plan check not exercised\n", range);
        }
        /* Argument errors */
        StImage bad = si;
        bad.strides[0] = w; /* too small for RGBA */
        CHECK(!st_net_process(net, &bad, &so, &p, &err) && err.code == ST_ERROR_ARGUMENT,
              "bad stride accepted");
        printf("bad stride: %s\n", err.message);
        p.strength = 2.0f;
        CHECK(!st_net_process(net, &si, &so, &p, &err) && err.code == ST_ERROR_ARGUMENT,
              "strength 2 accepted");
        free(y);
        free(u);
        free(v);
        free(y2);
        free(u2);
        free(v2);
        free(src);
        free(dst);
      }
      free(in);
      free(ref);
    }
  }

  /* Style from a real (byte) image of another aspect ratio: set_style resizes it. */
  {
    int sw = 50, sh = 90;
    uint8_t *px = malloc((size_t)sw * sh * 4);
    for (int i = 0; i < sw * sh * 4; i++)
      px[i] = (uint8_t)((i * 37) % 251);
    StImage s = {.format = ST_FORMAT_BGRX, .width = sw, .height = sh};
    s.planes[0] = px;
    s.strides[0] = sw * 4;
    /* extreme aspect ratio: the short side becomes 1 pixel */
    StImage thin = s;
    thin.width = 2;
    thin.height = 90;
    thin.strides[0] = 8;
    CHECK(st_net_set_style(net, &thin, &err), "set_style 2x90: %s", err.message);
    CHECK(st_net_set_style(net, &s, &err), "set_style BGRx 50x90: %s", err.message);
    float *in = calloc((size_t)3 * 16 * 16, sizeof(float)), *out = NULL;
    for (int i = 0; i < 3 * 16 * 16; i++)
      in[i] = (float)(i % 16) / 15.0f;
    StFrameParams p;
    st_frame_params_init(&p);
    int rw, rh;
    CHECK(st_net_run_float(net, in, 16, 16, &p, &out, &rw, &rh, &err), "after restyle: %s",
          err.message);
    bool finite = out != NULL;
    for (int i = 0; out && i < 3 * rw * rh; i++)
      finite = finite && isfinite(out[i]);
    CHECK(finite, "non-finite output after restyle");
    free(out);
    free(in);
    free(px);
  }
  st_net_free(net);
}

/* A frame whose fence wait times out (the GPU "stops answering"): a clean error; the next frame
 * waits for that work and succeeds; freeing the network right after a timeout waits for the work
 * too instead of destroying buffers it still uses (lavapipe crashed in its queue thread). */
static void check_gpu_timeout(StDevice *dev, const char *model_path) {
  StError err = {0};
  StNetOptions o = {.fp16 = false};
  enum { W = 96, H = 72 };
  static float style[3 * 32 * 32], content[3 * W * H];
  for (size_t i = 0; i < sizeof style / sizeof style[0]; i++)
    style[i] = (float)((i * 7919) % 251) / 250.0f;
  for (size_t i = 0; i < sizeof content / sizeof content[0]; i++)
    content[i] = (float)((i * 104729) % 241) / 240.0f;
  StFrameParams p;
  st_frame_params_init(&p);
  const uint64_t timeout = dev->timeout_ns;
  for (int free_at_once = 0; free_at_once < 2; free_at_once++) {
    StNet *net = st_net_load(dev, model_path, &o, &err);
    CHECK(net && st_net_set_style_float(net, style, 32, 32, &err), "%s", err.message);
    if (!net)
      return;
    p.steps = st_net_max_steps(net);
    float *out = NULL;
    dev->timeout_ns = 1; /* 1 ns: no frame finishes in time */
    bool ok = st_net_run_float(net, content, W, H, &p, &out, NULL, NULL, &err);
    dev->timeout_ns = timeout;
    CHECK(!ok && err.code == ST_ERROR_VULKAN && strstr(err.message, "did not finish"),
          "a timed-out frame: ok %d, %s", ok, err.message);
    printf("timed-out frame: %s\n", err.message);
    free(out);
    out = NULL;
    if (!free_at_once) {
      int ow = 0, oh = 0;
      CHECK(st_net_run_float(net, content, W, H, &p, &out, &ow, &oh, &err) && ow == W && oh == H,
            "the frame after a timeout: %s", err.message);
      free(out);
    }
    st_net_free(net);
    CHECK(!dev->unfinished, "work left unfinished after st_net_free");
  }
}

int main(void) {
  st_test_log_init();
  data_dir = getenv("ST_TEST_DATA");
  if (!data_dir)
    data_dir = "tests/data";
  size_t isize = 0;
  char *itext = read_file("index.json", &isize);
  if (!itext) {
    fprintf(stderr, "FAIL: cannot read %s/index.json\n", data_dir);
    return 1;
  }
  char jerr[256];
  JsonValue *index = json_parse(itext, isize, jerr, sizeof jerr);
  free(itext);
  if (!index || !json_get(index, "cases") || !json_get(index, "model")) {
    fprintf(stderr, "FAIL: index.json: %s\n", index ? "missing keys" : jerr);
    return 1;
  }

  StError err = {0};
  StDeviceOptions opts;
  st_device_options_init(&opts);
  StDevice *dev = st_device_new(&opts, &err);
  if (!dev) {
    fprintf(stderr, "FAIL: st_device_new: %s\n", err.message);
    return 1;
  }
  printf("device: %s, fp16 storage %d\n", st_device_name(dev), st_device_has_fp16_storage(dev));

  /* Error paths that need no model. */
  StNetOptions o = {.fp16 = false};
  char path[2048];
  snprintf(path, sizeof path, "%s/does-not-exist.safetensors", data_dir);
  CHECK(!st_net_load(dev, path, &o, &err) && err.code == ST_ERROR_MODEL, "missing file: %d",
        err.code);
  printf("missing model: %s\n", err.message);
  snprintf(path, sizeof path, "%s/%s", data_dir, json_get(index, "model")->string);
  StNet *net = st_net_load(dev, path, &o, &err);
  CHECK(net, "%s", err.message);
  if (net) {
    float px[3 * 4 * 4] = {0}, *out = NULL;
    StFrameParams p;
    st_frame_params_init(&p);
    CHECK(!st_net_run_float(net, px, 4, 4, &p, &out, NULL, NULL, &err) &&
              err.code == ST_ERROR_NO_STYLE,
          "run without style: %d", err.code);
    CHECK(st_net_max_steps(net) >= 1, "max steps %d", st_net_max_steps(net));
    st_net_free(net);
  }

  check_gpu_timeout(dev, path);
  run_cases(dev, index, false, false);
  if (st_device_has_fp16_storage(dev))
    run_cases(dev, index, true, false);
  else
    printf("fp16 storage not supported: fp16 run skipped\n");
  unsigned msgs = st_device_validation_messages(dev);
  CHECK(msgs == 0, "%u validation messages", msgs);
  st_device_free(dev);

  /* The frame path through device-local staging buffers (what discrete GPUs use). */
  setenv("ST_FORCE_DEVICE_COPIES", "1", 1);
  dev = st_device_new(&opts, &err);
  CHECK(dev != NULL, "%s", err.message);
  if (dev) {
    CHECK(dev->device_copies, "ST_FORCE_DEVICE_COPIES ignored");
    printf("with device-local frame copies:\n");
    run_cases(dev, index, false, true);
    msgs = st_device_validation_messages(dev);
    CHECK(msgs == 0, "%u validation messages", msgs);
    st_device_free(dev);
  }
  json_free(index);
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
