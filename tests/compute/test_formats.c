/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Every pixel format and colorimetry of the frame conversion shaders (frame_to_float,
 * float_to_frame) at odd sizes (19x37 and 37x19: odd widths of packed 4:2:2 rows, partial chroma
 * blocks of 4:2:0), on the device against independent expectations and the CPU reference:
 *
 * - coefficients: compute/format.c's matrix table against its definition from Kr and Kb (the
 *   Kr, Kb of ITU-R BT.601, BT.709, BT.2020 written here), its code ranges against GStreamer's
 *   rule (gst_video_color_range_offsets);
 * - colour bars: frames packed by this file's own description of each format (locate(), written
 *   out per format, not compute/format.c's table), with code values computed here in double from
 *   Kr and Kb, decode on the device to the bars' RGB (within the rounding of the codes), and the
 *   device's encoding of the bars gives those codes (within one);
 * - round trip: a test pattern encoded by the CPU reference, decoded and encoded again on the
 *   device (fp32 and fp16 tensors) gives the frame back within one code value (two for 10-bit,
 *   mean error below a quarter: the 10 bits survive the float path), the device's float values
 *   and frame match the reference (compute/ref.c), and bytes outside the pixels are untouched;
 * - resizing and preserve-colors: device against reference at other tensor sizes;
 * - refused arguments: unknown format, matrix, range.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "format.h"
#include "ops.h"
#include "ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static StDevice *dev;
static bool have_f16;
static int checks;

/* The formats as this test knows them: name, YUV, bits per value. */
static const struct {
  StPixelFormat f;
  const char *name;
  bool yuv;
  int depth;
} FORMATS[] = {
    {ST_FORMAT_RGBA, "RGBA", false, 8},         {ST_FORMAT_BGRA, "BGRA", false, 8},
    {ST_FORMAT_RGBX, "RGBx", false, 8},         {ST_FORMAT_BGRX, "BGRx", false, 8},
    {ST_FORMAT_RGB, "RGB", false, 8},           {ST_FORMAT_BGR, "BGR", false, 8},
    {ST_FORMAT_I420, "I420", true, 8},          {ST_FORMAT_NV12, "NV12", true, 8},
    {ST_FORMAT_YUY2, "YUY2", true, 8},          {ST_FORMAT_UYVY, "UYVY", true, 8},
    {ST_FORMAT_YVYU, "YVYU", true, 8},          {ST_FORMAT_P010, "P010_10LE", true, 10},
    {ST_FORMAT_I420_10, "I420_10LE", true, 10},
};
#define NFORMATS (int)(sizeof FORMATS / sizeof FORMATS[0])

static const struct {
  StColorMatrix m;
  const char *name;
  double kr, kb;
} MATRICES[] = {{ST_MATRIX_DEFAULT, "default", 0.299, 0.114},
                {ST_MATRIX_BT601, "bt601", 0.299, 0.114},
                {ST_MATRIX_BT709, "bt709", 0.2126, 0.0722},
                {ST_MATRIX_BT2020, "bt2020", 0.2627, 0.0593}};
static const struct {
  StColorRange r;
  const char *name;
} RANGES[] = {
    {ST_RANGE_DEFAULT, "default"}, {ST_RANGE_LIMITED, "limited"}, {ST_RANGE_FULL, "full"}};

static const int SIZES[][2] = {{19, 37}, {37, 19}};

/* ---- helpers --------------------------------------------------------------------------- */

static uint32_t rng = 12345u;
static uint32_t rnd(void) {
  rng = rng * 1664525u + 1013904223u;
  return rng >> 8;
}

static float f16_to_f32(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(m | 0x400), e - 25);
  return (h & 0x8000) ? -v : v;
}

typedef struct {
  StBuffer buf;
  StTensor t;
} DT;

static void dt_init(DT *d, StDType dt, int h, int w) {
  StError err = {0};
  d->t = (StTensor){&d->buf, 0, dt, 3, {3, h, w}};
  if (!st_buffer_create(dev, st_tensor_numel(&d->t) * (dt == ST_F16 ? 2 : 4), ST_MEM_UPLOAD,
                        &d->buf, &err)) {
    fprintf(stderr, "buffer: %s\n", err.message);
    exit(1);
  }
}

static void dt_read(const DT *d, float *host) {
  size_t n = st_tensor_numel(&d->t);
  for (size_t i = 0; i < n; i++)
    host[i] = d->t.dtype == ST_F16 ? f16_to_f32(((const uint16_t *)d->buf.mapped)[i])
                                   : ((const float *)d->buf.mapped)[i];
}

/* fp32 host values into a fp32 tensor */
static void dt_write(DT *d, const float *host) {
  memcpy(d->buf.mapped, host, st_tensor_numel(&d->t) * 4);
}

static bool run(StCmd *cmd, bool ok, StError *err, const char *what) {
  if (ok)
    ok = st_cmd_submit_wait(cmd, err);
  st_cmd_free(cmd);
  CHECK(ok, "%s: %s", what, err->message);
  return ok;
}

static StCmd *begin(void) {
  StError err = {0};
  StCmd *cmd = st_cmd_begin(dev, &err);
  if (!cmd) {
    fprintf(stderr, "st_cmd_begin: %s\n", err.message);
    exit(1);
  }
  return cmd;
}

/* A frame in host-visible memory: planes at unaligned offsets with odd row padding and gaps
 * between them (random bytes outside the pixels), pixel bytes marked in `mask`. */
typedef struct {
  int fi; /* index in FORMATS */
  StFrameLayout l;
  StBuffer buf;
  size_t size;
  uint8_t *mask;
} Frame;

static void frame_init(Frame *f, int fi, int w, int h, StColorMatrix m, StColorRange r) {
  memset(f, 0, sizeof *f);
  f->fi = fi;
  f->l = (StFrameLayout){.format = FORMATS[fi].f, .width = w, .height = h, .matrix = m, .range = r};
  int rowbytes[3], rows[3];
  int np = st_format_planes(FORMATS[fi].f, w, h, rowbytes, rows);
  size_t off = 3;
  for (int i = 0; i < np; i++) {
    f->l.offsets[i] = off;
    f->l.strides[i] = rowbytes[i] + 1 + 2 * i;
    off += (size_t)f->l.strides[i] * rows[i] + 5;
  }
  f->size = off + 2;
  StError err = {0};
  if (!st_buffer_create(dev, f->size, ST_MEM_UPLOAD, &f->buf, &err)) {
    fprintf(stderr, "buffer: %s\n", err.message);
    exit(1);
  }
  f->mask = calloc(f->size, 1);
  for (int i = 0; i < np; i++)
    for (int y = 0; y < rows[i]; y++)
      memset(f->mask + f->l.offsets[i] + (size_t)y * f->l.strides[i], 1, (size_t)rowbytes[i]);
  uint8_t *b = f->buf.mapped;
  for (size_t i = 0; i < f->size; i++)
    b[i] = (uint8_t)rnd();
}

static void frame_free(Frame *f) {
  st_buffer_destroy(dev, &f->buf);
  free(f->mask);
}

static void frame_name(const Frame *f, char *s, size_t n) {
  int mi = 0, ri = 0;
  while (MATRICES[mi].m != f->l.matrix)
    mi++;
  while (RANGES[ri].r != f->l.range)
    ri++;
  snprintf(s, n, "%s %dx%d %s/%s", FORMATS[f->fi].name, f->l.width, f->l.height,
           FORMATS[f->fi].yuv ? MATRICES[mi].name : "-", RANGES[ri].name);
}

/* Where the samples (Y, U, V or R, G, B) of pixel (x, y) lie: this test's own description of
 * each format, written out. *wide: 16-bit little-endian samples holding value << *shift. */
static void locate(const Frame *f, int x, int y, uint8_t *p[3], bool *wide, int *shift) {
  const StFrameLayout *l = &f->l;
  uint8_t *b = f->buf.mapped;
  uint8_t *r0 = b + l->offsets[0] + (size_t)y * l->strides[0];
  uint8_t *r1 = b + l->offsets[1] + (size_t)(y / 2) * l->strides[1];
  uint8_t *r2 = b + l->offsets[2] + (size_t)(y / 2) * l->strides[2];
  uint8_t *q = r0 + 4 * (x / 2); /* the pixel pair of packed 4:2:2 */
  int h = x / 2, odd = x % 2;
  *wide = false;
  *shift = 0;
  switch (l->format) {
  case ST_FORMAT_RGBA:
  case ST_FORMAT_RGBX:
    p[0] = r0 + 4 * x, p[1] = r0 + 4 * x + 1, p[2] = r0 + 4 * x + 2;
    break;
  case ST_FORMAT_BGRA:
  case ST_FORMAT_BGRX:
    p[0] = r0 + 4 * x + 2, p[1] = r0 + 4 * x + 1, p[2] = r0 + 4 * x;
    break;
  case ST_FORMAT_RGB:
    p[0] = r0 + 3 * x, p[1] = r0 + 3 * x + 1, p[2] = r0 + 3 * x + 2;
    break;
  case ST_FORMAT_BGR:
    p[0] = r0 + 3 * x + 2, p[1] = r0 + 3 * x + 1, p[2] = r0 + 3 * x;
    break;
  case ST_FORMAT_I420:
    p[0] = r0 + x, p[1] = r1 + h, p[2] = r2 + h;
    break;
  case ST_FORMAT_NV12:
    p[0] = r0 + x, p[1] = r1 + 2 * h, p[2] = r1 + 2 * h + 1;
    break;
  case ST_FORMAT_YUY2:
    p[0] = q + 2 * odd, p[1] = q + 1, p[2] = q + 3;
    break;
  case ST_FORMAT_UYVY:
    p[0] = q + 1 + 2 * odd, p[1] = q, p[2] = q + 2;
    break;
  case ST_FORMAT_YVYU:
    p[0] = q + 2 * odd, p[1] = q + 3, p[2] = q + 1;
    break;
  case ST_FORMAT_P010:
    p[0] = r0 + 2 * x, p[1] = r1 + 4 * h, p[2] = r1 + 4 * h + 2;
    *wide = true;
    *shift = 6;
    break;
  case ST_FORMAT_I420_10:
    p[0] = r0 + 2 * x, p[1] = r1 + 2 * h, p[2] = r2 + 2 * h;
    *wide = true;
    break;
  default:
    abort();
  }
}

static int get_sample(const uint8_t *p, bool wide, int shift) {
  return wide ? (p[0] | p[1] << 8) >> shift : p[0];
}

static void set_sample(uint8_t *p, bool wide, int shift, int v) {
  if (wide) {
    p[0] = (uint8_t)(v << shift);
    p[1] = (uint8_t)((v << shift) >> 8);
  } else {
    p[0] = (uint8_t)v;
  }
}

static void get_codes(const Frame *f, int x, int y, int v[3]) {
  uint8_t *p[3];
  bool wide;
  int shift;
  locate(f, x, y, p, &wide, &shift);
  for (int c = 0; c < 3; c++)
    v[c] = get_sample(p[c], wide, shift);
}

/* The second luma byte of the last pair of an odd-width packed 4:2:2 row (beyond the frame; the
 * output repeats the last pixel there); NULL for other formats and even widths. */
static uint8_t *extra_luma(const Frame *f, int y) {
  int w = f->l.width;
  StPixelFormat fm = f->l.format;
  if (w % 2 == 0 || (fm != ST_FORMAT_YUY2 && fm != ST_FORMAT_UYVY && fm != ST_FORMAT_YVYU))
    return NULL;
  uint8_t *q = (uint8_t *)f->buf.mapped + f->l.offsets[0] + (size_t)y * f->l.strides[0] +
               4 * (size_t)(w / 2);
  return q + (fm == ST_FORMAT_UYVY ? 3 : 2);
}

/* Code ranges (GStreamer's rule, written out): code = off + scale * value. */
static void code_range(const Frame *f, double *yoff, double *yscale, double *coff, double *cscale) {
  int d = FORMATS[f->fi].depth;
  bool yuv = FORMATS[f->fi].yuv;
  bool full = f->l.range == ST_RANGE_FULL || (f->l.range == ST_RANGE_DEFAULT && !yuv);
  double k = (double)(1 << (d - 8)), max = (double)((1 << d) - 1);
  *yoff = full ? 0.0 : 16.0 * k;
  *yscale = full ? max : 219.0 * k;
  *coff = (double)(1 << (d - 1));
  *cscale = full ? max : 224.0 * k;
}

/* Exact code values (unrounded) of an RGB colour in the frame's format and colorimetry. */
static void exact_codes(const Frame *f, const double rgb[3], double v[3]) {
  double yoff, ys, coff, cs;
  code_range(f, &yoff, &ys, &coff, &cs);
  if (!FORMATS[f->fi].yuv) {
    for (int c = 0; c < 3; c++)
      v[c] = yoff + ys * rgb[c];
    return;
  }
  int mi = 0;
  while (MATRICES[mi].m != f->l.matrix)
    mi++;
  double kr = MATRICES[mi].kr, kb = MATRICES[mi].kb, kg = 1.0 - kr - kb;
  double Y = kr * rgb[0] + kg * rgb[1] + kb * rgb[2];
  v[0] = yoff + ys * Y;
  v[1] = coff + cs * (rgb[2] - Y) / (2.0 * (1.0 - kb));
  v[2] = coff + cs * (rgb[0] - Y) / (2.0 * (1.0 - kr));
}

/* ---- coefficients ---------------------------------------------------------------------- */

static void test_coefficients(void) {
  for (size_t i = 0; i < sizeof MATRICES / sizeof MATRICES[0]; i++) {
    double kr, kb;
    st_color_matrix_kr_kb(MATRICES[i].m, &kr, &kb);
    checks++;
    CHECK(kr == MATRICES[i].kr && kb == MATRICES[i].kb, "%s: Kr %g Kb %g", MATRICES[i].name, kr,
          kb);
    kr = MATRICES[i].kr;
    kb = MATRICES[i].kb;
    double kg = 1 - kr - kb;
    const double dec[4] = {2 * (1 - kr), 2 * kb * (1 - kb) / kg, 2 * kr * (1 - kr) / kg,
                           2 * (1 - kb)};
    const double ky[3] = {kr, kg, kb};
    const double kcb[3] = {-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5};
    const double kcr[3] = {0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))};
    StColorCoeffs cc;
    CHECK(st_color_coeffs(st_format_info(ST_FORMAT_I420), MATRICES[i].m, ST_RANGE_LIMITED, &cc),
          "%s refused", MATRICES[i].name);
    double err = 0;
    for (int j = 0; j < 4; j++)
      err = fmax(err, fabs(cc.dec[j] - dec[j]));
    for (int j = 0; j < 3; j++)
      err = fmax(err, fmax(fabs(cc.ky[j] - ky[j]),
                           fmax(fabs(cc.kcb[j] - kcb[j]), fabs(cc.kcr[j] - kcr[j]))));
    checks++;
    CHECK(err < 1e-6, "%s coefficients differ from their definition by %g", MATRICES[i].name, err);
  }
  for (int fi = 0; fi < NFORMATS; fi++) {
    const StFormatInfo *info = st_format_info(FORMATS[fi].f);
    checks++;
    CHECK(info && strcmp(info->name, FORMATS[fi].name) == 0 && info->yuv == FORMATS[fi].yuv &&
              info->depth == FORMATS[fi].depth,
          "format %s described as %s", FORMATS[fi].name, info ? info->name : "nothing");
    for (size_t r = 0; r < sizeof RANGES / sizeof RANGES[0]; r++) {
      Frame f = {.fi = fi, .l = {.format = FORMATS[fi].f, .range = RANGES[r].r}};
      double yoff, ys, coff, cs;
      code_range(&f, &yoff, &ys, &coff, &cs);
      StColorCoeffs cc;
      checks++;
      CHECK(st_color_coeffs(info, ST_MATRIX_DEFAULT, RANGES[r].r, &cc) && cc.off[0] == yoff &&
                cc.scale[0] == ys && (!info->yuv || (cc.off[1] == coff && cc.scale[1] == cs)),
            "%s %s range: %g %g %g %g", FORMATS[fi].name, RANGES[r].name, (double)cc.off[0],
            (double)cc.scale[0], (double)cc.off[1], (double)cc.scale[1]);
    }
  }
}

/* ---- colour bars ----------------------------------------------------------------------- */

/* Colour (a corner of the RGB cube) of pixel (x, y): vertical bars of even width, moved by one
 * bar every even band of rows, so that chroma is constant over every chroma block. */
static int bar_colour(int x, int y, int w, int h) {
  int bw = (w / 8) & ~1, bh = (h / 4) & ~1;
  bw = bw < 2 ? 2 : bw;
  bh = bh < 2 ? 2 : bh;
  int bar = x / bw < 7 ? x / bw : 7;
  return (bar + y / bh) % 8;
}

static void test_bars_case(int fi, int w, int h, StColorMatrix m, StColorRange r) {
  Frame f, g;
  frame_init(&f, fi, w, h, m, r);
  frame_init(&g, fi, w, h, m, r);
  char name[96];
  frame_name(&f, name, sizeof name);
  /* pack the bars: codes rounded from the exact values (full-range chroma of +0.5 is 255.5 or
   * 1023.5, clamped) */
  int max = (1 << FORMATS[fi].depth) - 1;
  size_t n = (size_t)w * h;
  float *rgb = malloc(sizeof(float) * 3 * n), *got = malloc(sizeof(float) * 3 * n);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int i = bar_colour(x, y, w, h);
      double c[3] = {(i >> 2) & 1, (i >> 1) & 1, i & 1}, v[3];
      exact_codes(&f, c, v);
      uint8_t *p[3];
      bool wide;
      int shift;
      locate(&f, x, y, p, &wide, &shift);
      for (int k = 0; k < 3; k++) {
        set_sample(p[k], wide, shift, (int)fmin(lround(v[k]), max));
        rgb[(size_t)k * n + (size_t)y * w + x] = (float)c[k];
      }
      uint8_t *e = x == w - 1 ? extra_luma(&f, y) : NULL;
      if (e)
        *e = (uint8_t)fmin(lround(v[0]), max);
    }
  /* decode: the bars' RGB within the rounding of the codes */
  double yoff, ys, coff, cs;
  code_range(&f, &yoff, &ys, &coff, &cs);
  double tol = FORMATS[fi].yuv ? 0.5 / ys + 0.5 * 1.9 / cs + 1e-4 : 0.5 / ys + 1e-4;
  DT t;
  dt_init(&t, ST_F32, h, w);
  StError err = {0};
  StCmd *cmd = begin();
  char what[160];
  snprintf(what, sizeof what, "bars %s decode", name);
  if (run(cmd, st_op_frame_to_float(dev, cmd, &f.buf, &f.l, &t.t, &err), &err, what)) {
    dt_read(&t, got);
    double emax = 0;
    for (size_t i = 0; i < 3 * n; i++)
      emax = fmax(emax, fabs(got[i] - rgb[i]));
    checks++;
    CHECK(emax <= tol, "%s: max error %.4f (tolerance %.4f)", what, emax, tol);
  }
  /* encode the bars' RGB: the packed codes within one, alpha/padding bytes at the maximum */
  dt_write(&t, rgb);
  snprintf(what, sizeof what, "bars %s encode", name);
  cmd = begin();
  if (run(cmd, st_op_float_to_frame(dev, cmd, &t.t, NULL, false, &g.buf, &g.l, &err), &err, what)) {
    int bad = 0, vf[3], vg[3];
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) {
        get_codes(&f, x, y, vf);
        get_codes(&g, x, y, vg);
        for (int k = 0; k < 3; k++)
          bad += abs(vf[k] - vg[k]) > 1;
        if (FORMATS[fi].f <= ST_FORMAT_BGRX)
          bad +=
              ((uint8_t *)g.buf.mapped)[g.l.offsets[0] + (size_t)y * g.l.strides[0] + 4 * x + 3] !=
              255;
      }
      uint8_t *ef = extra_luma(&f, y), *eg = extra_luma(&g, y);
      if (ef)
        bad += abs(*ef - *eg) > 1;
    }
    checks++;
    CHECK(bad == 0, "%s: %d samples differ by more than one code", what, bad);
  }
  st_buffer_destroy(dev, &t.buf);
  free(rgb);
  free(got);
  frame_free(&f);
  frame_free(&g);
}

/* ---- round trip, reference ------------------------------------------------------------- */

/* Test pattern: smooth gradients (in [0.1, 0.9], small steps between neighbours) with flat 4x4
 * patches of the RGB cube's corners (black, white, primaries, secondaries). */
static void pattern(int w, int h, float *rgb) {
  size_t n = (size_t)w * h;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      size_t i = (size_t)y * w + x;
      int bx = x / 4, by = y / 4;
      if ((bx + 2 * by) % 5 == 0) {
        int k = (bx * 3 + by) % 8;
        rgb[i] = (float)((k >> 2) & 1);
        rgb[n + i] = (float)((k >> 1) & 1);
        rgb[2 * n + i] = (float)(k & 1);
      } else {
        rgb[i] = 0.1f + 0.8f * (float)x / (float)(w - 1);
        rgb[n + i] = 0.1f + 0.8f * (float)y / (float)(h - 1);
        rgb[2 * n + i] = 0.5f + 0.3f * sinf(0.15f * (float)(x + y));
      }
    }
}

/* Compares the pixels of two frames (codes, with the odd-width extra luma): the count of samples
 * more than `tol` apart, of samples off at all and the sum of the differences. */
static int compare_codes(const Frame *a, const Frame *b, int tol, int *off, double *sum,
                         int *nsamples) {
  int bad = 0, va[3], vb[3];
  *off = 0;
  *sum = 0;
  *nsamples = 0;
  for (int y = 0; y < a->l.height; y++) {
    for (int x = 0; x < a->l.width; x++) {
      get_codes(a, x, y, va);
      get_codes(b, x, y, vb);
      for (int k = 0; k < 3; k++) {
        int d = abs(va[k] - vb[k]);
        bad += d > tol;
        *off += d > 0;
        *sum += d;
        (*nsamples)++;
      }
    }
    uint8_t *ea = extra_luma(a, y), *eb = extra_luma(b, y);
    if (ea)
      bad += abs(*ea - *eb) > tol;
  }
  return bad;
}

/* Bytes outside the pixels that differ between two frames. */
static int padding_changed(const Frame *a, const Frame *b) {
  const uint8_t *pa = a->buf.mapped, *pb = b->buf.mapped;
  int n = 0;
  for (size_t i = 0; i < a->size; i++)
    n += !a->mask[i] && pa[i] != pb[i];
  return n;
}

static void test_round_trip_case(int fi, int w, int h, StColorMatrix m, StColorRange r,
                                 StDType dt) {
  Frame f0, f1, fr;
  frame_init(&f0, fi, w, h, m, r);
  frame_init(&f1, fi, w, h, m, r);
  frame_init(&fr, fi, w, h, m, r);
  char name[96], what[160];
  frame_name(&f0, name, sizeof name);
  size_t n = (size_t)3 * w * h;
  float *rgb = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n),
        *ref = malloc(sizeof(float) * n);
  pattern(w, h, rgb);
  st_ref_float_to_frame(rgb, NULL, w, h, false, f0.buf.mapped, &f0.l);
  memcpy(f1.buf.mapped, f0.buf.mapped, f0.size);
  memcpy(fr.buf.mapped, f0.buf.mapped, f0.size);
  DT t;
  dt_init(&t, dt, h, w);
  StError err = {0};
  StCmd *cmd = begin();
  snprintf(what, sizeof what, "round trip %s %s", name, dt == ST_F16 ? "f16" : "f32");
  bool ok = st_op_frame_to_float(dev, cmd, &f0.buf, &f0.l, &t.t, &err) &&
            st_op_float_to_frame(dev, cmd, &t.t, NULL, false, &f1.buf, &f1.l, &err);
  if (run(cmd, ok, &err, what)) {
    /* decoded values against the reference */
    dt_read(&t, got);
    st_ref_frame_to_float(f0.buf.mapped, &f0.l, w, h, ref);
    double emax = 0, tol = dt == ST_F16 ? 1e-3 : 1e-5;
    for (size_t i = 0; i < n; i++)
      emax = fmax(emax, fabs(got[i] - ref[i]));
    checks++;
    CHECK(emax <= tol, "%s: decoded values differ from the reference by %g", what, emax);
    /* the frame back */
    int off, ns, tol_codes = FORMATS[fi].depth > 8 ? 2 : 1;
    double sum, mean_max = FORMATS[fi].depth > 8 ? 0.25 : 0.1;
    int bad = compare_codes(&f0, &f1, tol_codes, &off, &sum, &ns);
    checks++;
    CHECK(bad == 0 && sum / ns < mean_max,
          "%s: %d samples off by more than %d, %d off, mean error %.3f codes", what, bad, tol_codes,
          off, sum / ns);
    int rt_off = off;
    checks++;
    CHECK(padding_changed(&f0, &f1) == 0, "%s: bytes outside the pixels changed", what);
    /* the device's encoding against the reference's, from the same floats */
    st_ref_float_to_frame(got, NULL, w, h, false, fr.buf.mapped, &fr.l);
    bad = compare_codes(&fr, &f1, 1, &off, &sum, &ns);
    checks++;
    CHECK(bad == 0 && off * 50 <= ns,
          "%s: encoding differs from the reference (%d off by more "
          "than one, %d of %d off)",
          what, bad, off, ns);
    if (getenv("ST_TEST_VERBOSE"))
      printf("ok   %s (back: %d of %d samples off; against the reference: %d off)\n", what, rt_off,
             ns, off);
  }
  st_buffer_destroy(dev, &t.buf);
  free(rgb);
  free(got);
  free(ref);
  frame_free(&f0);
  frame_free(&f1);
  frame_free(&fr);
}

/* Resized conversions with preserve-colors against the reference. */
static void test_resize_case(int fi, int w, int h, int tw, int th, StColorMatrix m,
                             StColorRange r) {
  Frame f, g;
  frame_init(&f, fi, w, h, m, r);
  frame_init(&g, fi, w, h, m, r);
  char name[96], what[160];
  frame_name(&f, name, sizeof name);
  snprintf(what, sizeof what, "resize %s <-> %dx%d", name, tw, th);
  size_t n = (size_t)3 * tw * th;
  float *got = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n),
        *x = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
  for (size_t i = 0; i < n; i++) {
    x[i] = -0.1f + 1.2f * (float)(rnd() & 0xffff) / 65535.0f;
    o[i] = (float)(rnd() & 0xffff) / 65535.0f;
  }
  DT ty, tx, to;
  dt_init(&ty, ST_F32, th, tw);
  dt_init(&tx, ST_F32, th, tw);
  dt_init(&to, ST_F32, th, tw);
  dt_write(&tx, x);
  dt_write(&to, o);
  memcpy(g.buf.mapped, f.buf.mapped, f.size);
  StError err = {0};
  StCmd *cmd = begin();
  bool ok = st_op_frame_to_float(dev, cmd, &f.buf, &f.l, &ty.t, &err) &&
            st_op_float_to_frame(dev, cmd, &tx.t, &to.t, true, &g.buf, &g.l, &err);
  if (run(cmd, ok, &err, what)) {
    dt_read(&ty, got);
    st_ref_frame_to_float(f.buf.mapped, &f.l, tw, th, ref);
    double emax = 0;
    for (size_t i = 0; i < n; i++)
      emax = fmax(emax, fabs(got[i] - ref[i]));
    checks++;
    CHECK(emax <= 1e-5, "%s: decoded values differ from the reference by %g", what, emax);
    st_ref_float_to_frame(x, o, tw, th, true, f.buf.mapped, &f.l);
    int off, ns;
    double sum;
    int bad = compare_codes(&f, &g, 1, &off, &sum, &ns);
    checks++;
    CHECK(bad == 0 && off * 50 <= ns && padding_changed(&f, &g) == 0,
          "%s: encoding differs from the reference (%d off by more than one, %d of %d off, %d "
          "padding bytes changed)",
          what, bad, off, ns, padding_changed(&f, &g));
  }
  st_buffer_destroy(dev, &ty.buf);
  st_buffer_destroy(dev, &tx.buf);
  st_buffer_destroy(dev, &to.buf);
  free(got);
  free(ref);
  free(x);
  free(o);
  frame_free(&f);
  frame_free(&g);
}

/* Every format with every colorimetry it has (RGB formats: ranges only, the matrix is unused). */
static void for_each_case(void (*fn)(int fi, int w, int h, StColorMatrix m, StColorRange r)) {
  for (int fi = 0; fi < NFORMATS; fi++)
    for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++)
      for (size_t mi = 0; mi < (FORMATS[fi].yuv ? sizeof MATRICES / sizeof MATRICES[0] : 1); mi++)
        for (size_t ri = 0; ri < sizeof RANGES / sizeof RANGES[0]; ri++)
          fn(fi, SIZES[s][0], SIZES[s][1], MATRICES[mi].m, RANGES[ri].r);
}

static void test_bars(void) { for_each_case(test_bars_case); }

static void round_trip_both(int fi, int w, int h, StColorMatrix m, StColorRange r) {
  test_round_trip_case(fi, w, h, m, r, ST_F32);
  if (have_f16)
    test_round_trip_case(fi, w, h, m, r, ST_F16);
}

static void test_round_trip(void) { for_each_case(round_trip_both); }

static void test_resize(void) {
  for (int fi = 0; fi < NFORMATS; fi++) {
    test_resize_case(fi, 19, 37, 11, 23, ST_MATRIX_BT709, ST_RANGE_FULL);
    test_resize_case(fi, 37, 19, 50, 26, ST_MATRIX_BT2020, ST_RANGE_LIMITED);
  }
}

/* ---- refused arguments ----------------------------------------------------------------- */

static void test_errors(void) {
  int rb[3], rows[3];
  checks++;
  CHECK(st_format_planes(ST_FORMAT_COUNT, 4, 4, rb, rows) == 0 &&
            st_format_name(ST_FORMAT_COUNT) == NULL &&
            st_format_planes(ST_FORMAT_YUY2, 0, 4, rb, rows) == 0,
        "unknown format or empty size accepted");
  struct {
    StPixelFormat f;
    StColorMatrix m;
    StColorRange r;
  } bad[] = {{ST_FORMAT_COUNT, ST_MATRIX_DEFAULT, ST_RANGE_DEFAULT},
             {ST_FORMAT_YUY2, (StColorMatrix)9, ST_RANGE_DEFAULT},
             {ST_FORMAT_RGB, ST_MATRIX_DEFAULT, (StColorRange)9}};
  Frame f;
  frame_init(&f, 0, 8, 8, ST_MATRIX_DEFAULT, ST_RANGE_DEFAULT);
  DT t;
  dt_init(&t, ST_F32, 8, 8);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    StFrameLayout l = f.l;
    l.format = bad[i].f;
    l.matrix = bad[i].m;
    l.range = bad[i].r;
    StError err = {0};
    StCmd *cmd = begin();
    bool a = st_op_frame_to_float(dev, cmd, &f.buf, &l, &t.t, &err);
    bool b = st_op_float_to_frame(dev, cmd, &t.t, NULL, false, &f.buf, &l, &err);
    checks++;
    CHECK(!a && !b && err.code == ST_ERROR_ARGUMENT && err.message[0], "case %zu accepted", i);
    if (getenv("ST_TEST_VERBOSE"))
      printf("ok   refused: %s\n", err.message);
    CHECK(st_cmd_submit_wait(cmd, &err), "empty command buffer: %s", err.message);
    st_cmd_free(cmd);
  }
  st_buffer_destroy(dev, &t.buf);
  frame_free(&f);
}

int main(int argc, char **argv) {
  StDeviceOptions opts;
  st_device_options_init(&opts);
  StError err = {0};
  dev = st_device_new(&opts, &err);
  if (!dev) {
    fprintf(stderr, "no Vulkan device: %s\n", err.message);
    return 77; /* skipped */
  }
  have_f16 = st_device_has_fp16_storage(dev);
  printf("device: %s (fp16 storage: %s)\n", st_device_name(dev), have_f16 ? "yes" : "no");
  const char *only = argc > 1 ? argv[1] : NULL;
  struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {{"coefficients", test_coefficients},
               {"bars", test_bars},
               {"round-trip", test_round_trip},
               {"resize", test_resize},
               {"errors", test_errors}};
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    if (only && strcmp(only, tests[i].name) != 0)
      continue;
    int f0 = failures, c0 = checks;
    tests[i].fn();
    printf("%-12s %d checks, %d failures\n", tests[i].name, checks - c0, failures - f0);
    fflush(stdout);
  }
  unsigned vmsg = st_device_validation_messages(dev);
  CHECK(vmsg == 0, "%u validation messages", vmsg);
  st_device_free(dev);
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
