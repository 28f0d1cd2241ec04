/*
 * Spatial masks (StMask): checks, bilinear scaling to a frame or processing size, and the
 * composite of output and input where no second style is set.
 */
#include "format.h"
#include "net_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool st_mask_check(const StMask *m, StError *err) {
  if (!m->data || m->width < 1 || m->height < 1 || m->width > MAX_SIDE || m->height > MAX_SIDE ||
      m->pixel_stride < 0 || m->pixel_stride > 16 ||
      (int64_t)m->stride < (int64_t)m->width * (m->pixel_stride ? m->pixel_stride : 1))
    return st_set_error(err, ST_ERROR_ARGUMENT, "bad mask (%dx%d, stride %d, pixel stride %d)",
                        m->width, m->height, m->stride, m->pixel_stride);
  return true;
}

/* Source coordinate of destination index i (pixel centres, as the engine's bilinear resize). */
static void src_coord(int i, int dst, int src, int *i0, int *i1, float *f) {
  float s = ((float)i + 0.5f) * (float)src / (float)dst - 0.5f;
  if (s < 0.0f)
    s = 0.0f;
  int a = (int)s;
  if (a > src - 1)
    a = src - 1;
  *i0 = a;
  *i1 = a + 1 < src ? a + 1 : src - 1;
  *f = s - (float)a;
}

void st_mask_resize(const StMask *m, int w, int h, float *outf, uint8_t *outb) {
  size_t ps = m->pixel_stride > 0 ? (size_t)m->pixel_stride : 1;
  for (int y = 0; y < h; y++) {
    int y0, y1;
    float fy;
    src_coord(y, h, m->height, &y0, &y1, &fy);
    const uint8_t *r0 = m->data + (size_t)y0 * m->stride;
    const uint8_t *r1 = m->data + (size_t)y1 * m->stride;
    for (int x = 0; x < w; x++) {
      int x0, x1;
      float fx;
      src_coord(x, w, m->width, &x0, &x1, &fx);
      float a0 = r0[x0 * ps], a1 = r0[x1 * ps], b0 = r1[x0 * ps], b1 = r1[x1 * ps];
      float top = a0 + (a1 - a0) * fx;
      float bot = b0 + (b1 - b0) * fx;
      float v = (top + (bot - top) * fy) / 255.0f;
      if (outf)
        outf[(size_t)y * w + x] = v;
      if (outb)
        outb[(size_t)y * w + x] = (uint8_t)lrintf(v * 255.0f);
    }
  }
}

bool st_mask_composite(StNet *net, const StMask *m, const StImage *in, StImage *out, StError *err) {
  int w = in->width, h = in->height;
  size_t n = (size_t)w * h;
  if (net->mask_px_size < n) {
    uint8_t *p = realloc(net->mask_px, n);
    if (!p)
      return st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    net->mask_px = p;
    net->mask_px_size = n;
  }
  uint8_t *mp = net->mask_px;
  st_mask_resize(m, w, h, NULL, mp);
  const StFormatInfo *fi = st_format_info(in->format);
  for (int c = 0; c < 3; c++) {
    const StComponent *cp = &fi->comp[c];
    int rowbytes, rows;
    st_format_plane_size(fi, cp->plane, w, h, &rowbytes, &rows);
    int ns = st_format_samples(fi, c, rowbytes);
    for (int r = 0; r < rows; r++) {
      const uint8_t *src = in->planes[cp->plane] + (size_t)r * in->strides[cp->plane] + cp->offset;
      uint8_t *dst = out->planes[cp->plane] + (size_t)r * out->strides[cp->plane] + cp->offset;
      const uint8_t *mrow = mp + (size_t)(r << cp->hsub < h ? r << cp->hsub : h - 1) * w;
      for (int k = 0; k < ns; k++) {
        int x = k << cp->wsub < w ? k << cp->wsub : w - 1;
        int a = mrow[x];
        if (a == 255)
          continue;
        size_t o = (size_t)k * cp->pstride;
        if (cp->bytes == 1) {
          dst[o] = (uint8_t)((dst[o] * a + src[o] * (255 - a) + 127) / 255);
        } else {
          int vs = src[o] | src[o + 1] << 8, vd = dst[o] | dst[o + 1] << 8;
          int v = (vd * a + vs * (255 - a) + 127) / 255;
          dst[o] = (uint8_t)v;
          dst[o + 1] = (uint8_t)(v >> 8);
        }
      }
    }
  }
  return true;
}
