/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Private definitions shared by device.c, buffer.c, kernel.c, cmd.c and net.c (not part of vk.h).
 */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include "vk.h"

#define ST_KERNEL_MAX_SPEC 32 /* specialization constants of a kernel at most */

struct StKernel {
  char shader[64];
  int32_t spec[ST_KERNEL_MAX_SPEC];
  int nspec;
  int nbindings;
  int push_size;
  VkShaderModule module;
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout layout;
  VkPipeline pipeline;
  struct StKernel *next;
};

struct StDevice {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger;
  VkPhysicalDevice phys;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  VkPhysicalDeviceProperties props;
  VkPhysicalDeviceMemoryProperties mem_props;
  uint8_t uuid[VK_UUID_SIZE];
  uint32_t subgroup_size;
  uint32_t subgroup_ops; /* VkSubgroupFeatureFlags usable in compute shaders (queried once) */
  uint32_t timestamp_valid_bits;
  bool fp16_storage;
  bool is_cpu;
  bool device_copies; /* frames staged through device-local buffers (not on CPU devices) */
  bool validation;
  bool validation_fatal;
  unsigned validation_messages;
  char validation_failure[512]; /* the first message, with validation_fatal */
  VkPipelineCache pipeline_cache;
  char *pipeline_cache_path;
  size_t pipeline_cache_loaded_size;
  VkCommandPool cmd_pool;
  struct StKernel *kernels;
  uint64_t timeout_ns;
  /* A fence wait timed out: submitted work may still be running and reading or writing buffers.
   * Whatever frees device objects first waits for the device (st_device_settle). */
  bool unfinished;
  bool lost; /* VK_ERROR_DEVICE_LOST was returned: nothing more is submitted */
  int conv_force, gram_force, linear_force; /* ops.c's kernel choices (st_ops_read_env) */
  bool timed_out; /* a fence wait ever timed out (st_device_reusable: never reused) */
  /* The environment settings read when the device was opened (device_env_settings) */
  char env_settings[256];
  /* Bytes of device memory the engine holds (all buffers; atomic), and a cap on it from
   * ST_DEVICE_MEMORY_LIMIT_MB (0: none): an allocation past it fails as an exhausted device
   * would, with VK_ERROR_OUT_OF_DEVICE_MEMORY's error code (a GPU shared with other work; the
   * tests' way to exhaust device memory without exhausting the machine). */
  VkDeviceSize memory_in_use;
  VkDeviceSize memory_limit;
  char uuid_text[ST_DEVICE_UUID_LEN]; /* st_device_uuid, st_device_pci_bus_id */
  char pci_bus_id[ST_DEVICE_PCI_LEN];
};

/* Like st_kernel_get but with caller-provided SPIR-V (tests; shaders outside st_shaders). The
 * kernel is cached under `name` like the others. */
StKernel *st_kernel_get_spirv(StDevice *dev, const char *name, const uint32_t *code,
                              size_t code_size, const int32_t *spec, int nspec, int nbindings,
                              int push_size, StError *err);
void st_kernels_destroy(StDevice *dev);

/* Size in bytes of one element. */
static inline size_t st_dtype_size(StDType t) { return t == ST_F16 ? 2 : 4; }

const char *st_vk_result_str(VkResult r);
/* Sends a message to the log function (st_set_log_func), if any. */
void st_log(StLogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* False, with `err` quoting it, once a validation message was seen with validation_fatal. */
bool st_device_check_validation(const StDevice *dev, StError *err);
/* After a timed-out fence wait: waits until the device has finished its work (or reports itself
 * lost) so that buffers and command buffers can be destroyed; nothing otherwise. */
void st_device_settle(StDevice *dev);
/* Monotonic clock in milliseconds (host-time figures). */
double st_now_ms(void);
/* Host time of the last st_cmd_submit_wait of `cmd`: in vkQueueSubmit and waiting for the fence. */
void st_cmd_host_times(const StCmd *cmd, double *submit_ms, double *wait_ms);

/* Tests: sets the style from planar float RGB [3,h,w] in [0,1], bound to the style subgraph's
 * input as is (no resize to style_size). */
bool st_net_set_style_float(StNet *net, const float *rgb, int w, int h, StError *err);
/* The same for any slot, with st_net_set_style_slot's flags. */
bool st_net_set_style_slot_float(StNet *net, StStyleSlot slot, const float *rgb, int w, int h,
                                 unsigned flags, StError *err);
/* Bytes of device memory of the current frame plan's arena (0 before the first frame). */
VkDeviceSize st_net_arena_bytes(const StNet *net);

/* ---- global motion (motion.c) ---- */
#define ST_MOTION_MAX_SIDE 320 /* luma images for motion estimation are at most this large */
typedef struct {
  int w, h;
  float *y; /* w * h luma values, 0..255 */
} StLuma;
/* Motion resolution for a processing size: the processing size divided by the smallest integer
 * that brings the longer side to at most ST_MOTION_MAX_SIDE. */
void st_motion_size(int pw, int ph, int *mw, int *mh);
bool st_luma_from_image(const StImage *img, int mw, int mh, StLuma *out);
bool st_luma_from_float(const float *rgb, int w, int h, int mw, int mh, StLuma *out);
void st_luma_free(StLuma *l);
/* Global shift (dx, dy) such that cur(x, y) shows prev(x + dx, y + dy), in motion pixels;
 * (0, 0) when no shift explains the change clearly better than no motion. */
bool st_motion_estimate(const StLuma *prev, const StLuma *cur, int *dx, int *dy);

/* Local motion: one vector per ST_FLOW_BLOCK x ST_FLOW_BLOCK block of the luma images (motion
 * px), block (i, j) centred at ((i + 0.5) * block, (j + 0.5) * block). */
#define ST_FLOW_BLOCK 8
typedef struct {
  int bw, bh, block;
  float *v; /* [2][bh][bw]: x then y; cur(p) shows prev(p + v) */
} StFlow;
/* Block matching (+-4 px around the global motion (gdx, gdy), plus no motion, small penalty for
 * leaving the global motion) followed by a 3x3 median of the vectors. */
bool st_motion_field(const StLuma *prev, const StLuma *cur, int gdx, int gdy, StFlow *out);
void st_flow_free(StFlow *f);

#endif /* ST_INTERNAL_H */
