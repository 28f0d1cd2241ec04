/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Internal Vulkan runtime of the compute engine (not installed). Used by ops.c (the shader
 * dispatchers) and net.c (graph executor). Implemented in device.c / buffer.c / kernel.c / cmd.c.
 *
 * Model: every dispatch records into one StCmd (one command buffer, one submit per frame);
 * st_cmd_dispatch() writes a descriptor set from a per-StCmd pool, pushes constants and puts a
 * compute->compute (and transfer) memory barrier after the dispatch, so ops can be chained
 * without further synchronisation.
 */
#ifndef ST_VK_H
#define ST_VK_H

#include "st.h"
#include "st_shaders.h"
#include <vulkan/vulkan.h>

typedef enum {
  ST_MEM_DEVICE = 0, /* device-local storage buffer */
  ST_MEM_UPLOAD,     /* host-visible, coherent, mapped: host writes, GPU reads */
  ST_MEM_DOWNLOAD,   /* host-visible, cached if possible, mapped: GPU writes, host reads */
} StMemKind;

typedef struct {
  VkBuffer buffer;
  VkDeviceMemory memory;
  VkDeviceSize size;
  void *mapped; /* non-NULL for UPLOAD/DOWNLOAD */
  StMemKind kind;
  VkDeviceSize allocated; /* bytes of its VkDeviceMemory (counted in the device's use) */
} StBuffer;

bool st_buffer_create(StDevice *dev, VkDeviceSize size, StMemKind kind, StBuffer *out,
                      StError *err);
void st_buffer_destroy(StDevice *dev, StBuffer *buf); /* safe on a zeroed StBuffer */
/* Download buffers need an invalidate after the fence when non-coherent. */
void st_buffer_invalidate(StDevice *dev, StBuffer *buf);

typedef enum { ST_F32 = 0, ST_F16 = 1 } StDType;

/* A tensor view into a buffer. Semantics: planar C-major [C,H,W] (rank 3), [M,N] (rank 2),
 * [N] (rank 1); elements are contiguous from `offset` (bytes). */
typedef struct {
  StBuffer *buf;
  VkDeviceSize offset;
  StDType dtype;
  int rank;
  int shape[3];
} StTensor;

static inline size_t st_tensor_numel(const StTensor *t) {
  size_t n = 1;
  for (int i = 0; i < t->rank; i++)
    n *= (size_t)t->shape[i];
  return n;
}

/* A compute pipeline for one shader and one set of specialization constants (constant_id 0..n-1,
 * all 32-bit). Created on first use and cached in the device (also in the on-disk VkPipelineCache).
 * `nbindings` storage buffers at set 0, bindings 0..nbindings-1; `push_size` bytes of push
 * constants (<= 128). Returns NULL with err set if the shader name is unknown. */
typedef struct StKernel StKernel;
StKernel *st_kernel_get(StDevice *dev, const char *shader, const int32_t *spec, int nspec,
                        int nbindings, int push_size, StError *err);

/* The same for shader `id` (st_shaders.h), its _f16 variant with f16. */
StKernel *st_kernel_get_id(StDevice *dev, StShaderId id, bool f16, const int32_t *spec, int nspec,
                           int nbindings, int push_size, StError *err);

typedef struct StCmd StCmd;
StCmd *st_cmd_begin(StDevice *dev, StError *err);
/* Starts recording `cmd` again from the beginning (after a submission, or to discard what was
 * recorded): its command buffer, fence, descriptor pools and query pools are kept and reset, not
 * made again. A recording submitted with st_cmd_submit_wait can instead be submitted again as
 * it is (another st_cmd_submit_wait). */
bool st_cmd_reset(StCmd *cmd, StError *err);
/* Binds bindings[i] (whole tensor ranges: buffer, offset, size = numel*dtype size) to binding i. */
void st_cmd_dispatch(StCmd *cmd, StKernel *k, const StTensor *const *bindings, int nbindings,
                     const void *push, int push_size, uint32_t gx, uint32_t gy, uint32_t gz);
void st_cmd_copy(StCmd *cmd, StBuffer *src, VkDeviceSize src_off, StBuffer *dst,
                 VkDeviceSize dst_off, VkDeviceSize size);
void st_cmd_fill_zero(StCmd *cmd, StBuffer *dst, VkDeviceSize off, VkDeviceSize size);
/* GPU timestamp: the time between consecutive marks is attributed to `label` of the later mark. */
void st_cmd_mark(StCmd *cmd, const char *label);
/* Submits, waits on a fence (with a timeout; a GPU hang becomes an error, not a hang). */
bool st_cmd_submit_wait(StCmd *cmd, StError *err);
/* After submit_wait: timings between marks. */
int st_cmd_timings(const StCmd *cmd, StTiming *out, int max);
void st_cmd_free(StCmd *cmd);

/* Device internals that ops may query. */
VkDevice st_device_vk(const StDevice *dev);
const VkPhysicalDeviceLimits *st_device_limits(const StDevice *dev);
uint32_t st_device_subgroup_size(const StDevice *dev);
/* Subgroup operations (VkSubgroupFeatureFlags) supported in compute shaders; 0 when the compute
 * stage has none. */
uint32_t st_device_subgroup_ops(const StDevice *dev);

/* Error helper: formats into err (if non-NULL) and returns false. */
bool st_set_error(StError *err, StStatus code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* ST_VK_H */
