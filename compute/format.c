/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Pixel format descriptions and colour conversion coefficients (see format.h).
 */
#include "format.h"

#include <stddef.h>

/* plane, byte offset in the row, bytes between samples, log2 subsampling x/y, bytes, shift */
#define C(pl, off, ps, ws, hs, b, sh)                                                              \
  { pl, off, ps, ws, hs, b, sh }
#define C8(pl, off, ps) C(pl, off, ps, 0, 0, 1, 0)
#define CS(pl, off, ps, ws, hs) C(pl, off, ps, ws, hs, 1, 0) /* 8-bit chroma */

/* One format a line. */
/* clang-format off */
static const StFormatInfo formats[ST_FORMAT_COUNT] = {
  [ST_FORMAT_RGBA] = {"RGBA", false, 8, 1, 4, {C8(0, 0, 4), C8(0, 1, 4), C8(0, 2, 4), C8(0, 3, 4)}},
  [ST_FORMAT_BGRA] = {"BGRA", false, 8, 1, 4, {C8(0, 2, 4), C8(0, 1, 4), C8(0, 0, 4), C8(0, 3, 4)}},
  [ST_FORMAT_RGBX] = {"RGBx", false, 8, 1, 4, {C8(0, 0, 4), C8(0, 1, 4), C8(0, 2, 4), C8(0, 3, 4)}},
  [ST_FORMAT_BGRX] = {"BGRx", false, 8, 1, 4, {C8(0, 2, 4), C8(0, 1, 4), C8(0, 0, 4), C8(0, 3, 4)}},
  [ST_FORMAT_I420] = {"I420", true, 8, 3, 3, {C8(0, 0, 1), CS(1, 0, 1, 1, 1), CS(2, 0, 1, 1, 1)}},
  [ST_FORMAT_NV12] = {"NV12", true, 8, 2, 3, {C8(0, 0, 1), CS(1, 0, 2, 1, 1), CS(1, 1, 2, 1, 1)}},
  [ST_FORMAT_RGB] = {"RGB", false, 8, 1, 3, {C8(0, 0, 3), C8(0, 1, 3), C8(0, 2, 3)}},
  [ST_FORMAT_BGR] = {"BGR", false, 8, 1, 3, {C8(0, 2, 3), C8(0, 1, 3), C8(0, 0, 3)}},
  [ST_FORMAT_YUY2] = {"YUY2", true, 8, 1, 3, {C8(0, 0, 2), CS(0, 1, 4, 1, 0), CS(0, 3, 4, 1, 0)}},
  [ST_FORMAT_UYVY] = {"UYVY", true, 8, 1, 3, {C8(0, 1, 2), CS(0, 0, 4, 1, 0), CS(0, 2, 4, 1, 0)}},
  [ST_FORMAT_YVYU] = {"YVYU", true, 8, 1, 3, {C8(0, 0, 2), CS(0, 3, 4, 1, 0), CS(0, 1, 4, 1, 0)}},
  [ST_FORMAT_P010] = {"P010_10LE", true, 10, 2, 3,
                      {C(0, 0, 2, 0, 0, 2, 6), C(1, 0, 4, 1, 1, 2, 6), C(1, 2, 4, 1, 1, 2, 6)}},
  [ST_FORMAT_I420_10] = {"I420_10LE", true, 10, 3, 3,
                         {C(0, 0, 2, 0, 0, 2, 0), C(1, 0, 2, 1, 1, 2, 0), C(2, 0, 2, 1, 1, 2, 0)}},
};
/* clang-format on */

const StFormatInfo *st_format_info(StPixelFormat format) {
  if ((unsigned)format >= ST_FORMAT_COUNT)
    return NULL;
  return &formats[format];
}

const char *st_format_name(StPixelFormat format) {
  const StFormatInfo *fi = st_format_info(format);
  return fi ? fi->name : NULL;
}

void st_format_plane_size(const StFormatInfo *fi, int plane, int width, int height, int *rowbytes,
                          int *rows) {
  *rowbytes = *rows = 0;
  for (int c = 0; c < fi->ncomp; c++) {
    const StComponent *k = &fi->comp[c];
    if (k->plane != plane)
      continue;
    int samples = (width + (1 << k->wsub) - 1) >> k->wsub;
    int rb = samples * k->pstride, r = (height + (1 << k->hsub) - 1) >> k->hsub;
    *rowbytes = rb > *rowbytes ? rb : *rowbytes;
    *rows = r > *rows ? r : *rows;
  }
}

int st_format_planes(StPixelFormat format, int width, int height, int rowbytes[3], int rows[3]) {
  const StFormatInfo *fi = st_format_info(format);
  if (!fi || width < 1 || height < 1)
    return 0;
  for (int i = 0; i < 3; i++) {
    rowbytes[i] = rows[i] = 0;
    if (i < fi->nplanes)
      st_format_plane_size(fi, i, width, height, &rowbytes[i], &rows[i]);
  }
  return fi->nplanes;
}

int st_format_samples(const StFormatInfo *fi, int c, int rowbytes) {
  const StComponent *k = &fi->comp[c];
  if (rowbytes < k->offset + k->bytes)
    return 0;
  return (rowbytes - k->offset - k->bytes) / k->pstride + 1;
}

int st_format_component_at(const StFormatInfo *fi, int plane, int col, int *sample, int *byte) {
  for (int c = 0; c < fi->ncomp; c++) {
    const StComponent *k = &fi->comp[c];
    if (k->plane != plane || col < k->offset)
      continue;
    int d = col - k->offset;
    if (d % k->pstride < k->bytes) {
      *sample = d / k->pstride;
      *byte = d % k->pstride;
      return c;
    }
  }
  return -1;
}

uint32_t st_format_read(const StFormatInfo *fi, const uint8_t *const planes[3],
                        const int strides[3], int c, int x, int y) {
  const StComponent *k = &fi->comp[c];
  const uint8_t *p = planes[k->plane] + (size_t)(y >> k->hsub) * (size_t)strides[k->plane] +
                     k->offset + (size_t)(x >> k->wsub) * k->pstride;
  uint32_t v = p[0];
  if (k->bytes == 2)
    v |= (uint32_t)p[1] << 8;
  return (v >> k->shift) & ((1u << fi->depth) - 1u);
}

/* ---- colour ------------------------------------------------------------------------------ */

/* The matrices' coefficients to six decimals (the BT.601 figures are those of JFIF); test_formats
 * checks them against their definition from Kr and Kb. */
static const struct {
  double kr, kb;
  float dec[4], ky[3], kcb[3], kcr[3];
} matrices[] = {
    {0.299,
     0.114,
     {1.402f, 0.344136f, 0.714136f, 1.772f},
     {0.299f, 0.587f, 0.114f},
     {-0.168736f, -0.331264f, 0.5f},
     {0.5f, -0.418688f, -0.081312f}},
    {0.2126,
     0.0722,
     {1.5748f, 0.187324f, 0.468124f, 1.8556f},
     {0.2126f, 0.7152f, 0.0722f},
     {-0.114572f, -0.385428f, 0.5f},
     {0.5f, -0.454153f, -0.045847f}},
    {0.2627,
     0.0593,
     {1.4746f, 0.164553f, 0.571353f, 1.8814f},
     {0.2627f, 0.678f, 0.0593f},
     {-0.13963f, -0.36037f, 0.5f},
     {0.5f, -0.459786f, -0.040214f}},
};

static int matrix_index(StColorMatrix m) {
  switch (m) {
  case ST_MATRIX_DEFAULT:
  case ST_MATRIX_BT601:
    return 0;
  case ST_MATRIX_BT709:
    return 1;
  case ST_MATRIX_BT2020:
    return 2;
  }
  return -1;
}

void st_color_matrix_kr_kb(StColorMatrix m, double *kr, double *kb) {
  int i = matrix_index(m);
  i = i < 0 ? 0 : i;
  *kr = matrices[i].kr;
  *kb = matrices[i].kb;
}

bool st_color_coeffs(const StFormatInfo *fi, StColorMatrix m, StColorRange r, StColorCoeffs *c) {
  int mi = matrix_index(m);
  if (mi < 0 || (r != ST_RANGE_DEFAULT && r != ST_RANGE_LIMITED && r != ST_RANGE_FULL))
    return false;
  bool full = r == ST_RANGE_FULL || (r == ST_RANGE_DEFAULT && !fi->yuv);
  int d = fi->depth;
  float max = (float)((1 << d) - 1);
  /* GStreamer's gst_video_color_range_offsets() */
  c->off[0] = full ? 0.0f : (float)(16 << (d - 8));
  c->scale[0] = full ? max : (float)(219 << (d - 8));
  c->off[1] = fi->yuv ? (float)(1 << (d - 1)) : c->off[0];
  c->scale[1] = fi->yuv && !full ? (float)(224 << (d - 8)) : c->scale[0];
  for (int i = 0; i < 4; i++)
    c->dec[i] = matrices[mi].dec[i];
  for (int i = 0; i < 3; i++) {
    c->ky[i] = matrices[mi].ky[i];
    c->kcb[i] = matrices[mi].kcb[i];
    c->kcr[i] = matrices[mi].kcr[i];
  }
  return true;
}
