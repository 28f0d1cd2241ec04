/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Pixel format descriptions and colour conversion coefficients (format.c): the one place where
 * the frame layouts live. ops.c packs them into the push constants of frame_to_float.comp and
 * float_to_frame.comp (shaders/frame.glsl), ref.c, net.c and motion.c read frames with them.
 */
#ifndef ST_FORMAT_H
#define ST_FORMAT_H

#include "st.h"

#include <stdbool.h>
#include <stdint.h>

/* One component of a format: component 0, 1, 2 are Y, U (Cb), V (Cr) of YUV formats and R, G, B
 * of RGB formats; component 3 (when ncomp is 4) is the alpha/padding byte of 32-bit RGB formats,
 * written as the largest code value and never read. Sample k of row r of a component lies at
 * byte offset + k * pstride of row r of its plane; it covers the pixels x in
 * [k << wsub, (k + 1) << wsub), y in [r << hsub, (r + 1) << hsub). A sample is `bytes` bytes
 * (1, or 2 little-endian) holding the value shifted left by `shift` bits. */
typedef struct {
  uint8_t plane, offset, pstride, wsub, hsub, bytes, shift;
} StComponent;

typedef struct {
  const char *name; /* GStreamer's name */
  bool yuv;
  uint8_t depth; /* bits per value: 8 or 10 */
  uint8_t nplanes, ncomp;
  StComponent comp[4];
} StFormatInfo;

/* NULL for an unknown format. */
const StFormatInfo *st_format_info(StPixelFormat format);
/* Bytes of pixel data in a row of `plane` and the plane's rows for a width x height frame. */
void st_format_plane_size(const StFormatInfo *fi, int plane, int width, int height, int *rowbytes,
                          int *rows);
/* Samples of component c in a row of its plane that holds rowbytes bytes of pixel data. */
int st_format_samples(const StFormatInfo *fi, int c, int rowbytes);
/* The component (0..ncomp-1) that byte `col` of a row of `plane` belongs to, the sample index
 * and the byte within the sample; -1 when no component owns it. */
int st_format_component_at(const StFormatInfo *fi, int plane, int col, int *sample, int *byte);
/* Value (0..2^depth-1) of component c at pixel (x, y); planes[i] is the start of plane i. */
uint32_t st_format_read(const StFormatInfo *fi, const uint8_t *const planes[3],
                        const int strides[3], int c, int x, int y);

/* Code values of a frame: code = off + scale * value, value in [0, 1] for Y, R, G, B and in
 * [-0.5, 0.5] for Cb, Cr (index 0: Y or R, G, B; index 1: Cb, Cr). YCbCr -> RGB is
 * R = Y + dec[0] Cr, G = Y - dec[1] Cb - dec[2] Cr, B = Y + dec[3] Cb, and RGB -> YCbCr is
 * Y = ky . RGB, Cb = kcb . RGB, Cr = kcr . RGB (values of ITU-R BT.601, BT.709, BT.2020). */
typedef struct {
  float off[2], scale[2];
  float dec[4];
  float ky[3], kcb[3], kcr[3];
} StColorCoeffs;

/* The luma weights Kr, Kb of a matrix (DEFAULT = BT.601). */
void st_color_matrix_kr_kb(StColorMatrix m, double *kr, double *kb);
/* Coefficients of a format with a colorimetry; false for an unknown matrix or range. */
bool st_color_coeffs(const StFormatInfo *fi, StColorMatrix m, StColorRange r, StColorCoeffs *c);

#endif /* ST_FORMAT_H */
