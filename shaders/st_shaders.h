/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPIR-V of the compute shaders, compiled from shaders/ by glslc at build time and embedded.
 * Each shader `name.comp` is present as `name` (fp32 buffers) and `name_f16` (built with
 * -DST_F16: bindings selected by the DT_MASK specialization constant may be fp16; needs
 * VK_KHR_16bit_storage's storageBuffer16BitAccess).
 */
#ifndef ST_SHADERS_H
#define ST_SHADERS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns the SPIR-V words of shader `name` (file stem, plus "_f16" for the fp16 variant) and
 * its size in bytes, or NULL (size 0) if there is no such shader. */
const uint32_t *st_shader_find(const char *name, size_t *size_bytes);

#ifdef __cplusplus
}
#endif
#endif /* ST_SHADERS_H */
