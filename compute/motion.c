/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Global motion between consecutive input frames, on the CPU, for the temporal state: the
 * previous frame's residual is moved by the camera's motion before the network reuses it.
 *
 * Both frames are reduced to a luma image of at most ST_MOTION_MAX_SIDE px (box filter over each
 * output pixel's footprint); a coarse search on a 4x smaller copy (+-12% of the image) is refined
 * by +-3 px at the motion resolution. The cost is the mean absolute luma difference over the
 * overlap (at least half of the image), sampled every second pixel at the fine level. A shift is
 * kept only when it explains the change clearly better than no motion (a still scene, noise, or
 * a moving object on a still background give (0, 0)).
 */
#include "format.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COARSE 4
#define MAX_FRACTION 0.12
#define REFINE 3
#define ACCEPT 0.85 /* the best shift must cost less than this times the cost of no motion */

void st_luma_free(StLuma *l) {
  free(l->y);
  memset(l, 0, sizeof *l);
}

static bool luma_alloc(StLuma *l, int w, int h) {
  if (l->w != w || l->h != h || !l->y) {
    free(l->y);
    l->y = malloc(sizeof *l->y * (size_t)w * (size_t)h);
    if (!l->y) {
      memset(l, 0, sizeof *l);
      return false;
    }
    l->w = w;
    l->h = h;
  }
  return true;
}

void st_motion_size(int pw, int ph, int *mw, int *mh) {
  int side = pw > ph ? pw : ph;
  int f = (side + ST_MOTION_MAX_SIDE - 1) / ST_MOTION_MAX_SIDE;
  *mw = (pw + f - 1) / f;
  *mh = (ph + f - 1) / f;
}

/* Luma of pixel (x, y) of a frame in 8-bit code units (BT.601 weights for RGB; the Y plane for
 * YUV). */
static float frame_luma(const StFormatInfo *fi, const uint8_t *const planes[3],
                        const int strides[3], int x, int y) {
  if (fi->yuv)
    return (float)st_format_read(fi, planes, strides, 0, x, y) / (float)(1 << (fi->depth - 8));
  float r = (float)st_format_read(fi, planes, strides, 0, x, y);
  float g = (float)st_format_read(fi, planes, strides, 1, x, y);
  float b = (float)st_format_read(fi, planes, strides, 2, x, y);
  return 0.299f * r + 0.587f * g + 0.114f * b;
}

/* Whether component c is one byte per sample at full resolution (read directly). */
static bool direct8(const StFormatInfo *fi, int c) {
  const StComponent *k = &fi->comp[c];
  return fi->depth == 8 && k->bytes == 1 && k->shift == 0 && k->wsub == 0 && k->hsub == 0;
}

bool st_luma_from_image(const StImage *img, int mw, int mh, StLuma *out) {
  const StFormatInfo *fi = st_format_info(img->format);
  if (!fi || mw > ST_MOTION_MAX_SIDE || !luma_alloc(out, mw, mh))
    return false;
  const uint8_t *const planes[3] = {img->planes[0], img->planes[1], img->planes[2]};
  /* 8-bit RGB and the Y plane of 8-bit YUV are read in place, row by row; other formats through
   * st_format_read. Either way each output pixel sums its footprint row by row, left to right. */
  int nc = fi->yuv ? 1 : 3;
  bool direct = true;
  for (int c = 0; c < nc; c++)
    direct = direct && direct8(fi, c);
  int xs[ST_MOTION_MAX_SIDE + 1];
  for (int mx = 0; mx <= mw; mx++)
    xs[mx] = (int)((long long)mx * img->width / mw);
  float acc[ST_MOTION_MAX_SIDE];
  for (int my = 0; my < mh; my++) {
    int y0 = (int)((long long)my * img->height / mh);
    int y1 = (int)((long long)(my + 1) * img->height / mh);
    if (y1 <= y0)
      y1 = y0 + 1;
    for (int mx = 0; mx < mw; mx++)
      acc[mx] = 0.0f;
    for (int y = y0; y < y1; y++) {
      const uint8_t *px[3] = {NULL, NULL, NULL};
      int ps[3] = {0, 0, 0};
      if (direct)
        for (int c = 0; c < nc; c++) {
          const StComponent *k = &fi->comp[c];
          px[c] = planes[k->plane] + (size_t)y * (size_t)img->strides[k->plane] + k->offset;
          ps[c] = k->pstride;
        }
      for (int mx = 0; mx < mw; mx++) {
        int x0 = xs[mx], x1 = xs[mx + 1] > x0 ? xs[mx + 1] : x0 + 1;
        float s = acc[mx];
        if (direct && nc == 1) {
          for (int x = x0; x < x1; x++)
            s += (float)px[0][(size_t)x * ps[0]];
        } else if (direct) {
          for (int x = x0; x < x1; x++)
            s += 0.299f * (float)px[0][(size_t)x * ps[0]] +
                 0.587f * (float)px[1][(size_t)x * ps[1]] +
                 0.114f * (float)px[2][(size_t)x * ps[2]];
        } else {
          for (int x = x0; x < x1; x++)
            s += frame_luma(fi, planes, img->strides, x, y);
        }
        acc[mx] = s;
      }
    }
    for (int mx = 0; mx < mw; mx++) {
      int x0 = xs[mx], x1 = xs[mx + 1] > x0 ? xs[mx + 1] : x0 + 1;
      out->y[(size_t)my * mw + mx] = acc[mx] / (float)((y1 - y0) * (x1 - x0));
    }
  }
  return true;
}

bool st_luma_from_float(const float *rgb, int w, int h, int mw, int mh, StLuma *out) {
  if (!luma_alloc(out, mw, mh))
    return false;
  size_t plane = (size_t)w * (size_t)h;
  for (int my = 0; my < mh; my++) {
    int y0 = (int)((long long)my * h / mh), y1 = (int)((long long)(my + 1) * h / mh);
    if (y1 <= y0)
      y1 = y0 + 1;
    for (int mx = 0; mx < mw; mx++) {
      int x0 = (int)((long long)mx * w / mw), x1 = (int)((long long)(mx + 1) * w / mw);
      if (x1 <= x0)
        x1 = x0 + 1;
      float s = 0.0f;
      for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
          size_t i = (size_t)y * w + x;
          s += 255.0f * (0.299f * rgb[i] + 0.587f * rgb[plane + i] + 0.114f * rgb[2 * plane + i]);
        }
      out->y[(size_t)my * mw + mx] = s / (float)((y1 - y0) * (x1 - x0));
    }
  }
  return true;
}

/* Mean |b(x, y) - a(x + dx, y + dy)| over the overlap, every `step`-th pixel; -1 when the
 * overlap is less than half of the image. */
static double cost(const float *a, const float *b, int w, int h, int dx, int dy, int step) {
  int x0 = dx < 0 ? -dx : 0, x1 = dx > 0 ? w - dx : w;
  int y0 = dy < 0 ? -dy : 0, y1 = dy > 0 ? h - dy : h;
  if ((long long)(x1 - x0) * (y1 - y0) * 2 < (long long)w * h)
    return -1.0;
  double s = 0.0;
  long long n = 0;
  for (int y = y0; y < y1; y += step) {
    const float *rb = b + (size_t)y * w, *ra = a + (size_t)(y + dy) * w + dx;
    for (int x = x0; x < x1; x += step) {
      s += fabsf(rb[x] - ra[x]);
      n++;
    }
  }
  return n ? s / (double)n : -1.0;
}

/* Best shift in [cx-r, cx+r] x [cy-r, cy+r]; returns its cost (or -1 if none fits). */
static double search(const float *a, const float *b, int w, int h, int cx, int cy, int r, int step,
                     int *bx, int *by) {
  double best = -1.0;
  for (int dy = cy - r; dy <= cy + r; dy++)
    for (int dx = cx - r; dx <= cx + r; dx++) {
      double c = cost(a, b, w, h, dx, dy, step);
      /* ties go to the smaller motion */
      if (c >= 0.0 && (best < 0.0 || c < best - 1e-9 ||
                       (fabs(c - best) <= 1e-9 && abs(dx) + abs(dy) < abs(*bx) + abs(*by)))) {
        best = c;
        *bx = dx;
        *by = dy;
      }
    }
  return best;
}

static float *downsample(const StLuma *l, int f, int *ow, int *oh) {
  int w = l->w / f, h = l->h / f;
  if (w < 1 || h < 1)
    return NULL;
  float *o = malloc(sizeof *o * (size_t)w * (size_t)h);
  if (!o)
    return NULL;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      float s = 0.0f;
      for (int j = 0; j < f; j++)
        for (int i = 0; i < f; i++)
          s += l->y[(size_t)(y * f + j) * l->w + x * f + i];
      o[(size_t)y * w + x] = s / (float)(f * f);
    }
  *ow = w;
  *oh = h;
  return o;
}

bool st_motion_estimate(const StLuma *prev, const StLuma *cur, int *dx, int *dy) {
  *dx = *dy = 0;
  if (!prev->y || !cur->y || prev->w != cur->w || prev->h != cur->h || cur->w < 8 || cur->h < 8)
    return false;
  int w = cur->w, h = cur->h, cw = 0, ch = 0, tmp = 0;
  int cx = 0, cy = 0;
  float *ca = downsample(prev, COARSE, &cw, &ch);
  float *cb = downsample(cur, COARSE, &tmp, &tmp);
  if (ca && cb && cw >= 4 && ch >= 4) {
    int r = (int)ceil(MAX_FRACTION * (cw > ch ? cw : ch));
    search(ca, cb, cw, ch, 0, 0, r, 1, &cx, &cy);
  }
  free(ca);
  free(cb);
  int bx = 0, by = 0;
  double best = search(prev->y, cur->y, w, h, cx * COARSE, cy * COARSE, REFINE, 2, &bx, &by);
  double still = cost(prev->y, cur->y, w, h, 0, 0, 2);
  if (best >= 0.0 && (bx || by) && best < ACCEPT * still) {
    *dx = bx;
    *dy = by;
  }
  return true;
}

/* ---- local motion field ------------------------------------------------------------------- */

#define FIELD_RADIUS 4     /* search +-4 motion px around the global motion */
#define FIELD_MARGIN 2     /* each block is matched on its window grown by this many px */
#define FIELD_PENALTY 0.3f /* luma units per px of deviation from the global motion */

void st_flow_free(StFlow *f) {
  free(f->v);
  memset(f, 0, sizeof *f);
}

/* Mean |cur - prev(. + d)| over the window [x0,x1) x [y0,y1) (checkerboard samples) where the
 * displaced position is inside; -1 when fewer than half of the samples are. */
static float window_cost(const StLuma *prev, const StLuma *cur, int x0, int x1, int y0, int y1,
                         int dx, int dy) {
  int w = cur->w, h = cur->h, n = 0, total = 0;
  float s = 0.0f;
  for (int y = y0; y < y1; y++) {
    int py = y + dy;
    const float *rc = cur->y + (size_t)y * w;
    for (int x = x0 + ((y ^ x0) & 1); x < x1; x += 2) {
      total++;
      int px = x + dx;
      if (py < 0 || py >= h || px < 0 || px >= w)
        continue;
      s += fabsf(rc[x] - prev->y[(size_t)py * w + px]);
      n++;
    }
  }
  return n * 2 >= total && n > 0 ? s / (float)n : -1.0f;
}

static int median9(int *v) {
  for (int i = 1; i < 9; i++) /* insertion sort */
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      int t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return v[4];
}

bool st_motion_field(const StLuma *prev, const StLuma *cur, int gdx, int gdy, StFlow *out) {
  if (!prev->y || !cur->y || prev->w != cur->w || prev->h != cur->h)
    return false;
  int w = cur->w, h = cur->h, B = ST_FLOW_BLOCK;
  int bw = (w + B - 1) / B, bh = (h + B - 1) / B;
  if (out->bw != bw || out->bh != bh || !out->v) {
    st_flow_free(out);
    out->v = malloc(sizeof *out->v * 2 * (size_t)bw * bh);
    if (!out->v)
      return false;
    out->bw = bw;
    out->bh = bh;
  }
  int *raw = malloc(sizeof *raw * 2 * (size_t)bw * bh);
  if (!raw)
    return false;
  float *v = out->v;
  for (int by = 0; by < bh; by++)
    for (int bx = 0; bx < bw; bx++) {
      int x0 = bx * B - FIELD_MARGIN, x1 = bx * B + B + FIELD_MARGIN;
      int y0 = by * B - FIELD_MARGIN, y1 = by * B + B + FIELD_MARGIN;
      x0 = x0 < 0 ? 0 : x0;
      y0 = y0 < 0 ? 0 : y0;
      x1 = x1 > w ? w : x1;
      y1 = y1 > h ? h : y1;
      float best = -1.0f;
      int best_dx = gdx, best_dy = gdy;
      for (int j = -FIELD_RADIUS; j <= FIELD_RADIUS + 1; j++)
        for (int i = -FIELD_RADIUS; i <= FIELD_RADIUS; i++) {
          /* the last row holds one extra candidate: no motion */
          bool zero = j == FIELD_RADIUS + 1;
          if (zero && i != 0)
            continue;
          int dx = zero ? 0 : gdx + i, dy = zero ? 0 : gdy + j;
          float c = window_cost(prev, cur, x0, x1, y0, y1, dx, dy);
          if (c < 0.0f)
            continue;
          c += FIELD_PENALTY * (float)(abs(dx - gdx) + abs(dy - gdy));
          if (best < 0.0f || c < best) {
            best = c;
            best_dx = dx;
            best_dy = dy;
          }
        }
      raw[(size_t)by * bw + bx] = best_dx;
      raw[(size_t)(bh + by) * bw + bx] = best_dy;
    }
  /* 3x3 median of each component removes isolated wrong matches */
  for (int comp = 0; comp < 2; comp++)
    for (int by = 0; by < bh; by++)
      for (int bx = 0; bx < bw; bx++) {
        int nb[9], k = 0;
        for (int j = -1; j <= 1; j++)
          for (int i = -1; i <= 1; i++) {
            int yy = by + j < 0 ? 0 : (by + j >= bh ? bh - 1 : by + j);
            int xx = bx + i < 0 ? 0 : (bx + i >= bw ? bw - 1 : bx + i);
            nb[k++] = raw[(size_t)(comp * bh + yy) * bw + xx];
          }
        v[(size_t)(comp * bh + by) * bw + bx] = (float)median9(nb);
      }
  free(raw);
  out->block = B;
  return true;
}
