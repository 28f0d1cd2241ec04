// SPDX-License-Identifier: LGPL-2.1-or-later
// Pixel formats and colour conversion shared by frame_to_float.comp and float_to_frame.comp.
// Nothing here knows a format: ops.c packs compute/format.c's description of each component into
// one word (FRAME_COMP) and the format's kind and depth into the flags word (FRAME_FLAGS), with
// the code-value range and the YCbCr matrix of the frame's colorimetry as floats.
// A chroma sample covers the 2x2 (4:2:0) or 2x1 (4:2:2) block of pixels it is centred on
// (centre siting, as MPEG-1/JPEG): reading repeats it over the block, writing averages the
// block's in-frame pixels.

// Component word: bits 0-7 byte offset in the row, 8-15 bytes between samples, 16-17 plane,
// 18 horizontal and 19 vertical subsampling (log2), 20 two-byte little-endian samples, 21-24 left
// shift of the value in the sample.
uint comp_offset(uint d) { return d & 255u; }
uint comp_pstride(uint d) { return (d >> 8u) & 255u; }
uint comp_plane(uint d) { return (d >> 16u) & 3u; }
uint comp_wsub(uint d) { return (d >> 18u) & 1u; }
uint comp_hsub(uint d) { return (d >> 19u) & 1u; }
uint comp_bytes(uint d) { return 1u + ((d >> 20u) & 1u); }
uint comp_shift(uint d) { return (d >> 21u) & 15u; }

// Flags word: bit 0 YUV, bit 1 preserve colours (float_to_frame), bits 2-3 the plane being
// written (float_to_frame), bits 4-6 number of components, bits 8-15 bits per value.
bool flag_yuv(uint f) { return (f & 1u) != 0u; }
bool flag_preserve(uint f) { return (f & 2u) != 0u; }
uint flag_plane(uint f) { return (f >> 2u) & 3u; }
uint flag_ncomp(uint f) { return (f >> 4u) & 7u; }
uint flag_maxcode(uint f) { return (1u << ((f >> 8u) & 255u)) - 1u; }

// Colour conversion of the preserve-colors blend (independent of the frame's colorimetry).
const vec3 KY = vec3(0.299, 0.587, 0.114);
const vec3 KCB = vec3(-0.168736, -0.331264, 0.5);
const vec3 KCR = vec3(0.5, -0.418688, -0.081312);
const vec4 DEC601 = vec4(1.402, 0.344136, 0.714136, 1.772);

// YCbCr (Cb, Cr centred on 0) to RGB with the matrix coefficients d (format.h StColorCoeffs).
vec3 ycc_to_rgb(float y, float cb, float cr, vec4 d) {
  return vec3(y + d.x * cr, y - d.y * cb - d.z * cr, y + d.w * cb);
}
