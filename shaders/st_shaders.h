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

#include "st_shader_ids.h" /* generated: StShaderId, one ST_SHADER_<NAME> per shader */

#ifdef __cplusplus
extern "C" {
#endif

/* The shader's name (its file stem or tile variant, shaders/meson.build); NULL for a bad id. */
const char *st_shader_name(StShaderId id);
/* SPIR-V words of a shader (f16: the -DST_F16 variant) and its size in bytes; NULL for a bad id. */
const uint32_t *st_shader_code(StShaderId id, int f16, size_t *size_bytes);
/* By name (file stem, plus "_f16" for the fp16 variant), or NULL (size 0) if there is none. */
const uint32_t *st_shader_find(const char *name, size_t *size_bytes);

#ifdef __cplusplus
}
#endif
#endif /* ST_SHADERS_H */
