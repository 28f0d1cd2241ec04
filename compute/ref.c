/* SPDX-License-Identifier: LGPL-2.1-or-later
 * CPU reference implementations (ref.h). Straightforward loops, double accumulation.
 */
#include "ref.h"
#include "format.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float st_ref_act1(float v, StAct act, float alpha) {
  switch (act) {
  case ST_ACT_RELU:
    return v > 0.0f ? v : 0.0f;
  case ST_ACT_LRELU:
    return v >= 0.0f ? v : v * alpha;
  case ST_ACT_TANH:
    return tanhf(v);
  case ST_ACT_SIGMOID:
    return 1.0f / (1.0f + expf(-v));
  default:
    return v;
  }
}

static int reflect_index(int i, int n) {
  if (i < 0)
    i = -i;
  if (i >= n)
    i = 2 * n - 2 - i;
  if (i < 0)
    i = 0;
  if (i > n - 1)
    i = n - 1;
  return i;
}

void st_ref_conv2d(const float *x, int ci, int h, int w, const float *wt, const float *b, int co,
                   int k, int stride, StPad pad, StAct act, float alpha, float *y) {
  int p = (k - 1) / 2, oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
  for (int o = 0; o < co; o++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        double s = b ? b[o] : 0.0;
        for (int i = 0; i < ci; i++)
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int iy = oy * stride + ky - p, ix = ox * stride + kx - p;
              if (pad == ST_PAD_REFLECT) {
                iy = reflect_index(iy, h);
                ix = reflect_index(ix, w);
              } else if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
                continue;
              }
              s += (double)x[((size_t)i * h + iy) * w + ix] *
                   wt[(((size_t)o * ci + i) * k + ky) * k + kx];
            }
        y[((size_t)o * oh + oy) * ow + ox] = st_ref_act1((float)s, act, alpha);
      }
}

void st_ref_pool(const float *x, int c, int h, int w, StPoolMode mode, int k, float *y) {
  int oh = (h + k - 1) / k, ow = (w + k - 1) / k;
  for (int ch = 0; ch < c; ch++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        double s = 0.0;
        float m = -INFINITY;
        int n = 0;
        for (int dy = 0; dy < k; dy++)
          for (int dx = 0; dx < k; dx++) {
            int iy = k * oy + dy, ix = k * ox + dx;
            if (iy >= h || ix >= w)
              continue;
            float v = x[((size_t)ch * h + iy) * w + ix];
            s += v;
            m = v > m ? v : m;
            n++;
          }
        y[((size_t)ch * oh + oy) * ow + ox] = mode == ST_POOL_MAX ? m : (float)(s / n);
      }
}

void st_ref_translate(const float *x, int c, int h, int w, int ty, int tx, float *y) {
  for (int ch = 0; ch < c; ch++)
    for (int i = 0; i < h; i++)
      for (int j = 0; j < w; j++) {
        int si = i + ty < 0 ? 0 : (i + ty > h - 1 ? h - 1 : i + ty);
        int sj = j + tx < 0 ? 0 : (j + tx > w - 1 ? w - 1 : j + tx);
        y[((size_t)ch * h + i) * w + j] = x[((size_t)ch * h + si) * w + sj];
      }
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Bilinear interpolation of a [n, h, w] plane at (fx, fy), the position clamped to the plane. */
static float bilinear(const float *a, int h, int w, float fx, float fy) {
  fx = clampf(fx, 0.0f, (float)(w - 1));
  fy = clampf(fy, 0.0f, (float)(h - 1));
  int x0 = (int)floorf(fx), y0 = (int)floorf(fy);
  int x1 = x0 + 1 < w ? x0 + 1 : w - 1, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
  float lx = fx - (float)x0, ly = fy - (float)y0;
  float r0 = a[(size_t)y0 * w + x0] + lx * (a[(size_t)y0 * w + x1] - a[(size_t)y0 * w + x0]);
  float r1 = a[(size_t)y1 * w + x0] + lx * (a[(size_t)y1 * w + x1] - a[(size_t)y1 * w + x0]);
  return r0 + ly * (r1 - r0);
}

void st_ref_temporal_blend(const float *x, const float *prev_out, const float *cur_in,
                           const float *prev_in, int h, int w, const float *flow, int bh, int bw,
                           float block_x, float block_y, float keep, float thr, float *y) {
  size_t plane = (size_t)h * w;
  for (int oy = 0; oy < h; oy++)
    for (int ox = 0; ox < w; ox++) {
      /* the motion field between block centres */
      float u = ((float)ox + 0.5f) / block_x - 0.5f, v = ((float)oy + 0.5f) / block_y - 0.5f;
      float fx = bilinear(flow, bh, bw, u, v);
      float fy = bilinear(flow + (size_t)bh * bw, bh, bw, u, v);
      float sx = (float)ox + fx, sy = (float)oy + fy;
      bool inside = sx >= 0.0f && sx <= (float)(w - 1) && sy >= 0.0f && sy <= (float)(h - 1);
      double d = 0.0;
      for (int b = -1; b <= 1; b++)
        for (int a = -1; a <= 1; a++) {
          int qx = ox + a < 0 ? 0 : (ox + a > w - 1 ? w - 1 : ox + a);
          int qy = oy + b < 0 ? 0 : (oy + b > h - 1 ? h - 1 : oy + b);
          for (int c = 0; c < 3; c++)
            d += fabsf(cur_in[c * plane + (size_t)qy * w + qx] -
                       bilinear(prev_in + c * plane, h, w, (float)qx + fx, (float)qy + fy));
        }
      float m = inside ? keep * clampf(1.0f - (float)(d / 27.0) / thr, 0.0f, 1.0f) : 0.0f;
      for (int c = 0; c < 3; c++) {
        size_t i = c * plane + (size_t)oy * w + ox;
        y[i] = x[i] + m * (bilinear(prev_out + c * plane, h, w, sx, sy) - x[i]);
      }
    }
}

void st_ref_resize(const float *x, int c, int h, int w, StResizeMode mode, int oh, int ow,
                   float *y) {
  float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
  for (int ch = 0; ch < c; ch++) {
    const float *xp = x + (size_t)ch * h * w;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        float v;
        if (mode == ST_RESIZE_NEAREST) {
          int iy = (int)floorf((float)oy * sy), ix = (int)floorf((float)ox * sx);
          iy = iy < h - 1 ? iy : h - 1;
          ix = ix < w - 1 ? ix : w - 1;
          v = xp[(size_t)iy * w + ix];
        } else {
          float fy = ((float)oy + 0.5f) * sy - 0.5f, fx = ((float)ox + 0.5f) * sx - 0.5f;
          fy = fy < 0.0f ? 0.0f : fy;
          fx = fx < 0.0f ? 0.0f : fx;
          int y0 = (int)fy, x0 = (int)fx;
          y0 = y0 < h - 1 ? y0 : h - 1;
          x0 = x0 < w - 1 ? x0 : w - 1;
          int y1 = y0 + (y0 < h - 1), x1 = x0 + (x0 < w - 1);
          float ly = fy - (float)y0, lx = fx - (float)x0;
          float r0 = (1.0f - lx) * xp[(size_t)y0 * w + x0] + lx * xp[(size_t)y0 * w + x1];
          float r1 = (1.0f - lx) * xp[(size_t)y1 * w + x0] + lx * xp[(size_t)y1 * w + x1];
          v = (1.0f - ly) * r0 + ly * r1;
        }
        y[((size_t)ch * oh + oy) * ow + ox] = v;
      }
  }
}

static size_t bcast_index(size_t i, StRefBcast bcast, size_t hw) {
  return bcast == ST_REF_BCAST_C ? i / hw : bcast == ST_REF_BCAST_HW ? i % hw : i;
}

void st_ref_add(const float *a, const float *b, size_t n, StRefBcast bcast, size_t hw, float ka,
                float kb, StAct act, float alpha, float *y) {
  for (size_t i = 0; i < n; i++)
    y[i] = st_ref_act1(ka * a[i] + kb * b[bcast_index(i, bcast, hw)], act, alpha);
}

void st_ref_mul(const float *a, const float *b, size_t n, StRefBcast bcast, size_t hw, StAct act,
                float alpha, float *y) {
  for (size_t i = 0; i < n; i++)
    y[i] = st_ref_act1(a[i] * b[bcast_index(i, bcast, hw)], act, alpha);
}

void st_ref_div(const float *a, const float *b, size_t n, StRefBcast bcast, size_t hw, StAct act,
                float alpha, float *y) {
  for (size_t i = 0; i < n; i++)
    y[i] = st_ref_act1(a[i] / b[bcast_index(i, bcast, hw)], act, alpha);
}

void st_ref_act(const float *x, size_t n, StAct act, float alpha, float *y) {
  for (size_t i = 0; i < n; i++)
    y[i] = st_ref_act1(x[i], act, alpha);
}

void st_ref_moments(const float *x, const float *w, int c, size_t hw, float eps, float *mean,
                    float *std) {
  double den = (double)hw;
  if (w) {
    double sw = 0.0;
    for (size_t i = 0; i < hw; i++)
      sw += w[i];
    den = sw + 1e-6;
  }
  for (int ch = 0; ch < c; ch++) {
    const float *p = x + (size_t)ch * hw;
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < hw; i++)
      s += w ? (double)w[i] * p[i] : p[i];
    double m = s / den;
    for (size_t i = 0; i < hw; i++)
      q += (w ? (double)w[i] : 1.0) * (p[i] - m) * (p[i] - m);
    mean[ch] = (float)m;
    std[ch] = (float)sqrt(q / den + eps);
  }
}

static void row_means(const float *x, int c, size_t hw, double *m) {
  for (int i = 0; i < c; i++) {
    double s = 0.0;
    for (size_t j = 0; j < hw; j++)
      s += x[(size_t)i * hw + j];
    m[i] = s / (double)hw;
  }
}

void st_ref_gram(const float *x, const float *y, int c, int d, size_t hw, bool center, bool sqrt_,
                 float *g) {
  if (!y) {
    y = x;
    d = c;
  }
  double *mx = calloc((size_t)c + (size_t)d, sizeof *mx);
  if (!mx) { /* out of memory: a result no comparison accepts */
    for (size_t i = 0; i < (size_t)c * (size_t)d; i++)
      g[i] = NAN;
    return;
  }
  double *my = mx + c;
  if (center) {
    row_means(x, c, hw, mx);
    row_means(y, d, hw, my);
  }
  for (int i = 0; i < c; i++)
    for (int j = 0; j < d; j++) {
      double s = 0.0;
      for (size_t t = 0; t < hw; t++)
        s += (x[(size_t)i * hw + t] - mx[i]) * (y[(size_t)j * hw + t] - my[j]);
      s /= (double)hw;
      if (sqrt_)
        s = sqrt((s > 0.0 ? s : 0.0) + 1e-8);
      g[(size_t)i * d + j] = (float)s;
    }
  free(mx);
}

void st_ref_matmul(const float *a, const float *b, int m, int n, int k, bool ta, bool tb,
                   float *c) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0.0;
      for (int t = 0; t < k; t++) {
        float av = ta ? a[(size_t)t * m + i] : a[(size_t)i * k + t];
        float bv = tb ? b[(size_t)j * k + t] : b[(size_t)t * n + j];
        s += (double)av * bv;
      }
      c[(size_t)i * n + j] = (float)s;
    }
}

void st_ref_linear(const float *x, const float *w, const float *b, int n, size_t k, StAct act,
                   float alpha, float *y) {
  for (int i = 0; i < n; i++) {
    double s = b ? b[i] : 0.0;
    for (size_t t = 0; t < k; t++)
      s += (double)w[(size_t)i * k + t] * x[t];
    y[i] = st_ref_act1((float)s, act, alpha);
  }
}

void st_ref_softmax(const float *x, int m, int n, float scale, float *y) {
  for (int i = 0; i < m; i++) {
    const float *r = x + (size_t)i * n;
    double mx = -INFINITY, s = 0.0;
    for (int j = 0; j < n; j++)
      mx = fmax(mx, (double)scale * r[j]);
    for (int j = 0; j < n; j++)
      s += exp((double)scale * r[j] - mx);
    for (int j = 0; j < n; j++)
      y[(size_t)i * n + j] = (float)(exp((double)scale * r[j] - mx) / s);
  }
}

void st_ref_concat(const float *const *xs, const int *cs, int n, size_t hw, float *y) {
  for (int i = 0; i < n; i++) {
    memcpy(y, xs[i], (size_t)cs[i] * hw * sizeof(float));
    y += (size_t)cs[i] * hw;
  }
}

/* ---- frames ------------------------------------------------------------------------------ */

/* BT.601 conversion of the preserve-colors blend (not the frame's colorimetry). */
static const float KY[3] = {0.299f, 0.587f, 0.114f};
static const float KCB[3] = {-0.168736f, -0.331264f, 0.5f};
static const float KCR[3] = {0.5f, -0.418688f, -0.081312f};
static const float DEC601[4] = {1.402f, 0.344136f, 0.714136f, 1.772f};

static float dot3(const float *a, const float *b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

static void ycc_to_rgb(float y, float cb, float cr, const float *d, float *rgb) {
  rgb[0] = y + d[0] * cr;
  rgb[1] = y - d[1] * cb - d[2] * cr;
  rgb[2] = y + d[3] * cb;
}

/* A frame's format, colorimetry and planes; false for an unknown format or colorimetry. */
typedef struct {
  const StFormatInfo *fi;
  StColorCoeffs cc;
  int maxcode;
} FrameDesc;

static bool frame_desc(const StFrameLayout *l, FrameDesc *d) {
  d->fi = st_format_info(l->format);
  if (!d->fi || !st_color_coeffs(d->fi, l->matrix, l->range, &d->cc))
    return false;
  d->maxcode = (1 << d->fi->depth) - 1;
  return true;
}

static void decode(const FrameDesc *d, const uint8_t *const planes[3], const int strides[3], int x,
                   int y, float *rgb) {
  const StColorCoeffs *cc = &d->cc;
  float v[3];
  for (int c = 0; c < 3; c++)
    v[c] = (float)st_format_read(d->fi, planes, strides, c, x, y);
  if (!d->fi->yuv) {
    for (int c = 0; c < 3; c++)
      rgb[c] = clamp01((v[c] - cc->off[0]) / cc->scale[0]);
    return;
  }
  ycc_to_rgb((v[0] - cc->off[0]) / cc->scale[0], (v[1] - cc->off[1]) / cc->scale[1],
             (v[2] - cc->off[1]) / cc->scale[1], cc->dec, rgb);
  for (int c = 0; c < 3; c++)
    rgb[c] = clamp01(rgb[c]);
}

/* Bilinear source position along one axis (PyTorch align_corners=False). */
static void bilin(int dst, float scale, int n, int *i0, int *i1, float *l) {
  float f = ((float)dst + 0.5f) * scale - 0.5f;
  f = f < 0.0f ? 0.0f : f;
  int a = (int)f;
  a = a < n - 1 ? a : n - 1;
  *i0 = a;
  *i1 = a + (a < n - 1);
  *l = f - (float)a;
}

void st_ref_frame_to_float(const uint8_t *buf, const StFrameLayout *l, int tw, int th, float *y) {
  FrameDesc d;
  if (!frame_desc(l, &d))
    return;
  const uint8_t *const planes[3] = {buf + l->offsets[0], buf + l->offsets[1], buf + l->offsets[2]};
  float sx = (float)l->width / (float)tw, sy = (float)l->height / (float)th;
  size_t plane = (size_t)tw * th;
  for (int oy = 0; oy < th; oy++)
    for (int ox = 0; ox < tw; ox++) {
      int x0, x1, y0, y1;
      float lx, ly, c00[3], c01[3], c10[3], c11[3];
      bilin(ox, sx, l->width, &x0, &x1, &lx);
      bilin(oy, sy, l->height, &y0, &y1, &ly);
      decode(&d, planes, l->strides, x0, y0, c00);
      decode(&d, planes, l->strides, x1, y0, c01);
      decode(&d, planes, l->strides, x0, y1, c10);
      decode(&d, planes, l->strides, x1, y1, c11);
      for (int c = 0; c < 3; c++) {
        float r0 = (1.0f - lx) * c00[c] + lx * c01[c];
        float r1 = (1.0f - lx) * c10[c] + lx * c11[c];
        y[c * plane + (size_t)oy * tw + ox] = (1.0f - ly) * r0 + ly * r1;
      }
    }
}

typedef struct {
  const float *x, *orig;
  int xw, xh;
  bool preserve;
  float sx, sy;
} Src;

static void tap(const Src *s, int px, int py, float *rgb) {
  size_t n = (size_t)s->xw * s->xh, i = (size_t)py * s->xw + px;
  float c[3] = {s->x[i], s->x[n + i], s->x[2 * n + i]};
  if (s->preserve) {
    float o[3] = {s->orig[i], s->orig[n + i], s->orig[2 * n + i]};
    ycc_to_rgb(dot3(c, KY), dot3(o, KCB), dot3(o, KCR), DEC601, rgb);
  } else {
    memcpy(rgb, c, sizeof c);
  }
}

static void sample_rgb(const Src *s, int fx, int fy, float *rgb) {
  int x0, x1, y0, y1;
  float lx, ly, c00[3], c01[3], c10[3], c11[3];
  bilin(fx, s->sx, s->xw, &x0, &x1, &lx);
  bilin(fy, s->sy, s->xh, &y0, &y1, &ly);
  tap(s, x0, y0, c00);
  tap(s, x1, y0, c01);
  tap(s, x0, y1, c10);
  tap(s, x1, y1, c11);
  for (int c = 0; c < 3; c++) {
    float r0 = (1.0f - lx) * c00[c] + lx * c01[c];
    float r1 = (1.0f - lx) * c10[c] + lx * c11[c];
    rgb[c] = clamp01((1.0f - ly) * r0 + ly * r1);
  }
}

/* Mean RGB of the in-frame pixels covered by sample k of row r of component `comp` (an
 * unsubsampled sample beyond the frame repeats the last pixel). */
static void block_rgb(const Src *s, const StComponent *comp, int k, int r, int w, int h,
                      float *rgb) {
  if (!comp->wsub && !comp->hsub) {
    sample_rgb(s, k < w ? k : w - 1, r, rgb);
    return;
  }
  float acc[3] = {0, 0, 0}, v[3];
  int cnt = 0;
  for (int dy = 0; dy < 1 << comp->hsub; dy++)
    for (int dx = 0; dx < 1 << comp->wsub; dx++) {
      int px = (k << comp->wsub) + dx, py = (r << comp->hsub) + dy;
      if (px >= w || py >= h)
        continue;
      sample_rgb(s, px, py, v);
      for (int c = 0; c < 3; c++)
        acc[c] += v[c];
      cnt++;
    }
  for (int c = 0; c < 3; c++)
    rgb[c] = acc[c] / (float)cnt;
}

static uint32_t to_code(float v, int maxcode) {
  float r = floorf(v + 0.5f);
  return (uint32_t)(r < 0.0f ? 0.0f : r > (float)maxcode ? (float)maxcode : r);
}

void st_ref_float_to_frame(const float *x, const float *orig, int xw, int xh, bool preserve_colors,
                           uint8_t *buf, const StFrameLayout *l) {
  FrameDesc d;
  if (!frame_desc(l, &d))
    return;
  const StColorCoeffs *cc = &d.cc;
  Src s = {
      x, orig, xw, xh, preserve_colors, (float)xw / (float)l->width, (float)xh / (float)l->height};
  for (int c = 0; c < d.fi->ncomp; c++) {
    const StComponent *k = &d.fi->comp[c];
    int rowbytes, rows;
    st_format_plane_size(d.fi, k->plane, l->width, l->height, &rowbytes, &rows);
    int n = st_format_samples(d.fi, c, rowbytes);
    for (int r = 0; r < rows; r++)
      for (int i = 0; i < n; i++) {
        uint32_t code = (uint32_t)d.maxcode; /* component 3: alpha / padding */
        if (c < 3) {
          float rgb[3], v;
          block_rgb(&s, k, i, r, l->width, l->height, rgb);
          if (!d.fi->yuv)
            v = cc->off[0] + cc->scale[0] * rgb[c];
          else if (c == 0)
            v = cc->off[0] + cc->scale[0] * dot3(rgb, cc->ky);
          else
            v = cc->off[1] + cc->scale[1] * dot3(rgb, c == 1 ? cc->kcb : cc->kcr);
          code = to_code(v, d.maxcode);
        }
        code <<= k->shift;
        uint8_t *p = buf + l->offsets[k->plane] + (size_t)r * (size_t)l->strides[k->plane] +
                     k->offset + (size_t)i * k->pstride;
        p[0] = (uint8_t)code;
        if (k->bytes == 2)
          p[1] = (uint8_t)(code >> 8);
      }
  }
}
