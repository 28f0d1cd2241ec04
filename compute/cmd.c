/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Command recording: one command buffer per StCmd, descriptor sets from per-StCmd pools (grown on
 * demand), a global memory barrier after every dispatch/transfer, timestamp queries for marks.
 * Recording errors (bad bindings, exhausted pools) are sticky and reported by submit_wait.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETS_PER_POOL 256
#define DESCS_PER_POOL 2048
#define QUERIES_PER_POOL 256

struct StCmd {
  StDevice *dev;
  VkCommandBuffer cb;
  VkFence fence;
  VkDescriptorPool *pools;
  int npools, pools_cap;
  int pool_cur; /* the pool sets come from (pools after it are free after a reset), or -1 */
  int sets_left, descs_left;
  VkQueryPool *qpools;
  int nqpools;
  char (*labels)[64]; /* labels[i] for timestamp i+1 (timestamp 0 is the start) */
  uint32_t nts, ts_cap;
  StTiming *timings;
  int ntimings;
  bool recording;
  bool pending; /* submitted and not known complete */
  bool failed;
  StError error;
  double submit_ms, wait_ms; /* host time of the last submission (st_cmd_host_times) */
};

static void cmd_fail(StCmd *cmd, StStatus code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cmd_fail(StCmd *cmd, StStatus code, const char *fmt, ...) {
  if (cmd->failed)
    return;
  cmd->failed = true;
  cmd->error.code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd->error.message, sizeof cmd->error.message, fmt, ap);
  va_end(ap);
}

static bool add_query_pool(StCmd *cmd) {
  VkQueryPool *np = realloc(cmd->qpools, sizeof *np * (size_t)(cmd->nqpools + 1));
  if (!np)
    return false;
  cmd->qpools = np;
  VkQueryPoolCreateInfo qci = {
      .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
      .queryType = VK_QUERY_TYPE_TIMESTAMP,
      .queryCount = QUERIES_PER_POOL,
  };
  VkQueryPool qp;
  if (vkCreateQueryPool(cmd->dev->device, &qci, NULL, &qp) != VK_SUCCESS)
    return false;
  cmd->qpools[cmd->nqpools++] = qp;
  vkCmdResetQueryPool(cmd->cb, qp, 0, QUERIES_PER_POOL);
  return true;
}

static void write_timestamp(StCmd *cmd) {
  uint32_t i = cmd->nts;
  if ((int)(i / QUERIES_PER_POOL) >= cmd->nqpools && !add_query_pool(cmd))
    return;
  vkCmdWriteTimestamp(cmd->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT,
                      cmd->qpools[i / QUERIES_PER_POOL], i % QUERIES_PER_POOL);
  cmd->nts++;
}

/* Starts recording into cmd->cb (new or reset): every query pool it owns is reset first. */
static bool begin_recording(StCmd *cmd, StError *err) {
  VkCommandBufferBeginInfo bi = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
  };
  VkResult r = vkBeginCommandBuffer(cmd->cb, &bi);
  if (r != VK_SUCCESS)
    return st_set_error(err, ST_ERROR_VULKAN, "vkBeginCommandBuffer failed: %s",
                        st_vk_result_str(r));
  cmd->recording = true;
  for (int i = 0; i < cmd->nqpools; i++)
    vkCmdResetQueryPool(cmd->cb, cmd->qpools[i], 0, QUERIES_PER_POOL);
  if (cmd->dev->timestamp_valid_bits)
    write_timestamp(cmd); /* start reference: the first mark times everything recorded before it */
  return true;
}

StCmd *st_cmd_begin(StDevice *dev, StError *err) {
  StCmd *cmd = calloc(1, sizeof *cmd);
  if (!cmd) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  cmd->dev = dev;
  cmd->pool_cur = -1;
  VkCommandBufferAllocateInfo ai = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
      .commandPool = dev->cmd_pool,
      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
      .commandBufferCount = 1,
  };
  VkResult r = vkAllocateCommandBuffers(dev->device, &ai, &cmd->cb);
  if (r != VK_SUCCESS) {
    free(cmd);
    st_set_error(err, ST_ERROR_VULKAN, "vkAllocateCommandBuffers failed: %s", st_vk_result_str(r));
    return NULL;
  }
  VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  r = vkCreateFence(dev->device, &fci, NULL, &cmd->fence);
  if (r != VK_SUCCESS) {
    vkFreeCommandBuffers(dev->device, dev->cmd_pool, 1, &cmd->cb);
    free(cmd);
    st_set_error(err, ST_ERROR_VULKAN, "vkCreateFence failed: %s", st_vk_result_str(r));
    return NULL;
  }
  if (!begin_recording(cmd, err)) {
    st_cmd_free(cmd);
    return NULL;
  }
  return cmd;
}

bool st_cmd_reset(StCmd *cmd, StError *err) {
  if (!cmd)
    return st_set_error(err, ST_ERROR_ARGUMENT, "no command buffer");
  StDevice *dev = cmd->dev;
  if (cmd->pending) { /* its fence wait timed out: wait until the device is done with it */
    st_device_settle(dev);
    if (dev->lost)
      return st_set_error(err, ST_ERROR_VULKAN,
                          "the GPU was lost earlier (VK_ERROR_DEVICE_LOST); "
                          "the engine must be created again");
    cmd->pending = false;
  }
  VkResult r = vkResetCommandBuffer(cmd->cb, 0);
  if (r == VK_SUCCESS)
    r = vkResetFences(dev->device, 1, &cmd->fence);
  if (r != VK_SUCCESS)
    return st_set_error(err, ST_ERROR_VULKAN, "resetting a command buffer failed: %s",
                        st_vk_result_str(r));
  for (int i = 0; i < cmd->npools; i++)
    vkResetDescriptorPool(dev->device, cmd->pools[i], 0);
  cmd->pool_cur = -1;
  cmd->sets_left = cmd->descs_left = 0;
  cmd->nts = 0;
  cmd->ntimings = 0;
  cmd->recording = false;
  cmd->failed = false;
  memset(&cmd->error, 0, sizeof cmd->error);
  return begin_recording(cmd, err);
}

static VkDescriptorSet alloc_set(StCmd *cmd, StKernel *k) {
  StDevice *dev = cmd->dev;
  int need = k->nbindings ? k->nbindings : 1;
  if (cmd->pool_cur < 0 || cmd->sets_left < 1 || cmd->descs_left < need) {
    if (cmd->pool_cur + 1 == cmd->npools) { /* no pool left from before a reset: a new one */
      if (cmd->npools == cmd->pools_cap) {
        int cap = cmd->pools_cap ? 2 * cmd->pools_cap : 4;
        VkDescriptorPool *np = realloc(cmd->pools, sizeof *np * (size_t)cap);
        if (!np)
          return VK_NULL_HANDLE;
        cmd->pools = np;
        cmd->pools_cap = cap;
      }
      VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                 .descriptorCount = DESCS_PER_POOL};
      VkDescriptorPoolCreateInfo pci = {
          .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
          .maxSets = SETS_PER_POOL,
          .poolSizeCount = 1,
          .pPoolSizes = &ps,
      };
      VkDescriptorPool pool;
      if (vkCreateDescriptorPool(dev->device, &pci, NULL, &pool) != VK_SUCCESS)
        return VK_NULL_HANDLE;
      cmd->pools[cmd->npools++] = pool;
    }
    cmd->pool_cur++;
    cmd->sets_left = SETS_PER_POOL;
    cmd->descs_left = DESCS_PER_POOL;
  }
  VkDescriptorSetAllocateInfo ai = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
      .descriptorPool = cmd->pools[cmd->pool_cur],
      .descriptorSetCount = 1,
      .pSetLayouts = &k->set_layout,
  };
  VkDescriptorSet set;
  if (vkAllocateDescriptorSets(dev->device, &ai, &set) != VK_SUCCESS)
    return VK_NULL_HANDLE;
  cmd->sets_left--;
  cmd->descs_left -= need;
  return set;
}

static void barrier(StCmd *cmd, VkPipelineStageFlags src_stage, VkAccessFlags src_access) {
  VkMemoryBarrier mb = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
      .srcAccessMask = src_access,
      .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                       VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
  };
  vkCmdPipelineBarrier(cmd->cb, src_stage,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1,
                       &mb, 0, NULL, 0, NULL);
}

void st_cmd_dispatch(StCmd *cmd, StKernel *k, const StTensor *const *bindings, int nbindings,
                     const void *push, int push_size, uint32_t gx, uint32_t gy, uint32_t gz) {
  if (!cmd || cmd->failed)
    return;
  if (!cmd->recording) {
    cmd_fail(cmd, ST_ERROR_ARGUMENT, "st_cmd_dispatch after submit");
    return;
  }
  if (!k) {
    cmd_fail(cmd, ST_ERROR_ARGUMENT, "st_cmd_dispatch: no kernel");
    return;
  }
  if (nbindings != k->nbindings || push_size != k->push_size || (push_size && !push)) {
    cmd_fail(cmd, ST_ERROR_ARGUMENT,
             "dispatch of %s: %d bindings / %d bytes of push constants do not match the kernel",
             k->shader, nbindings, push_size);
    return;
  }
  const VkPhysicalDeviceLimits *lim = &cmd->dev->props.limits;
  if (gx > lim->maxComputeWorkGroupCount[0] || gy > lim->maxComputeWorkGroupCount[1] ||
      gz > lim->maxComputeWorkGroupCount[2]) {
    cmd_fail(cmd, ST_ERROR_ARGUMENT,
             "dispatch of %s: workgroup count %u x %u x %u exceeds the device limit", k->shader, gx,
             gy, gz);
    return;
  }
  if (gx == 0 || gy == 0 || gz == 0)
    return;
  VkDescriptorBufferInfo infos[16];
  VkWriteDescriptorSet writes[16];
  for (int i = 0; i < nbindings; i++) {
    const StTensor *t = bindings[i];
    if (!t || !t->buf || !t->buf->buffer) {
      cmd_fail(cmd, ST_ERROR_ARGUMENT, "dispatch of %s: binding %d has no buffer", k->shader, i);
      return;
    }
    VkDeviceSize range = (VkDeviceSize)st_tensor_numel(t) * st_dtype_size(t->dtype);
    range = (range + 3) & ~(VkDeviceSize)3;
    if (range == 0)
      range = 4;
    if (t->offset + range > t->buf->size)
      range = t->buf->size > t->offset ? t->buf->size - t->offset : 0;
    if (range == 0 || t->offset % lim->minStorageBufferOffsetAlignment != 0) {
      cmd_fail(cmd, ST_ERROR_ARGUMENT,
               "dispatch of %s: binding %d has a bad offset %llu or lies outside its buffer",
               k->shader, i, (unsigned long long)t->offset);
      return;
    }
    if (range > lim->maxStorageBufferRange) {
      cmd_fail(cmd, ST_ERROR_ARGUMENT,
               "dispatch of %s: binding %d is %llu bytes, more than the device's storage buffer "
               "range limit of %u bytes (use a smaller processing size, or fp16)",
               k->shader, i, (unsigned long long)range, lim->maxStorageBufferRange);
      return;
    }
    infos[i] =
        (VkDescriptorBufferInfo){.buffer = t->buf->buffer, .offset = t->offset, .range = range};
  }
  VkDescriptorSet set = VK_NULL_HANDLE;
  if (nbindings > 0) {
    set = alloc_set(cmd, k);
    if (!set) {
      cmd_fail(cmd, ST_ERROR_VULKAN, "dispatch of %s: descriptor set allocation failed", k->shader);
      return;
    }
    for (int i = 0; i < nbindings; i++)
      writes[i] = (VkWriteDescriptorSet){
          .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
          .dstSet = set,
          .dstBinding = (uint32_t)i,
          .descriptorCount = 1,
          .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
          .pBufferInfo = &infos[i],
      };
    vkUpdateDescriptorSets(cmd->dev->device, (uint32_t)nbindings, writes, 0, NULL);
  }
  vkCmdBindPipeline(cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
  if (nbindings > 0)
    vkCmdBindDescriptorSets(cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout, 0, 1, &set, 0,
                            NULL);
  if (push_size > 0)
    vkCmdPushConstants(cmd->cb, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)push_size,
                       push);
  vkCmdDispatch(cmd->cb, gx, gy, gz);
  barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT);
}

void st_cmd_copy(StCmd *cmd, StBuffer *src, VkDeviceSize src_off, StBuffer *dst,
                 VkDeviceSize dst_off, VkDeviceSize size) {
  if (!cmd || cmd->failed)
    return;
  if (!cmd->recording) {
    cmd_fail(cmd, ST_ERROR_ARGUMENT, "st_cmd_copy after submit");
    return;
  }
  if (size == 0)
    return;
  if (!src || !dst || !src->buffer || !dst->buffer || src_off + size > src->size ||
      dst_off + size > dst->size) {
    cmd_fail(cmd, ST_ERROR_ARGUMENT, "st_cmd_copy: %llu bytes at %llu -> %llu lie outside a buffer",
             (unsigned long long)size, (unsigned long long)src_off, (unsigned long long)dst_off);
    return;
  }
  VkBufferCopy c = {.srcOffset = src_off, .dstOffset = dst_off, .size = size};
  vkCmdCopyBuffer(cmd->cb, src->buffer, dst->buffer, 1, &c);
  barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT);
}

void st_cmd_fill_zero(StCmd *cmd, StBuffer *dst, VkDeviceSize off, VkDeviceSize size) {
  if (!cmd || cmd->failed)
    return;
  if (!cmd->recording) {
    cmd_fail(cmd, ST_ERROR_ARGUMENT, "st_cmd_fill_zero after submit");
    return;
  }
  if (size == 0)
    return;
  if (!dst || !dst->buffer || (off & 3) || (size & 3) || off + size > dst->size) {
    cmd_fail(cmd, ST_ERROR_ARGUMENT,
             "st_cmd_fill_zero: %llu bytes at %llu are unaligned or outside the buffer",
             (unsigned long long)size, (unsigned long long)off);
    return;
  }
  vkCmdFillBuffer(cmd->cb, dst->buffer, off, size, 0);
  barrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT);
}

void st_cmd_mark(StCmd *cmd, const char *label) {
  if (!cmd || cmd->failed || !cmd->recording || cmd->dev->timestamp_valid_bits == 0)
    return;
  if (cmd->nts == 0)
    write_timestamp(cmd); /* start reference */
  if (cmd->nts == 0)
    return;
  if (cmd->nts >= cmd->ts_cap) {
    uint32_t cap = cmd->ts_cap ? 2 * cmd->ts_cap : 64;
    char(*nl)[64] = realloc(cmd->labels, sizeof *nl * cap);
    if (!nl)
      return;
    cmd->labels = nl;
    cmd->ts_cap = cap;
  }
  uint32_t before = cmd->nts;
  write_timestamp(cmd);
  if (cmd->nts == before)
    return;
  snprintf(cmd->labels[before - 1], 64, "%s", label ? label : "");
}

bool st_cmd_submit_wait(StCmd *cmd, StError *err) {
  if (!cmd)
    return st_set_error(err, ST_ERROR_ARGUMENT, "no command buffer");
  if (cmd->failed) {
    if (err)
      *err = cmd->error;
    return false;
  }
  StDevice *dev = cmd->dev;
  VkResult r;
  if (cmd->recording) {
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    vkCmdPipelineBarrier(cmd->cb,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    cmd->recording = false;
    r = vkEndCommandBuffer(cmd->cb);
    if (r != VK_SUCCESS) {
      cmd->failed = true;
      st_set_error(&cmd->error, ST_ERROR_VULKAN, "vkEndCommandBuffer failed: %s",
                   st_vk_result_str(r));
      if (err)
        *err = cmd->error;
      return false;
    }
  } else {
    /* Re-submission of an already recorded command buffer. */
    if (cmd->pending)
      return st_set_error(err, ST_ERROR_VULKAN, "command buffer still pending (GPU hang?)");
    vkResetFences(dev->device, 1, &cmd->fence);
  }
  /* ST_VALIDATION_FATAL: recorded after a validation message, the work is not submitted */
  if (!st_device_check_validation(dev, err))
    return false;
  VkSubmitInfo si = {
      .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
      .commandBufferCount = 1,
      .pCommandBuffers = &cmd->cb,
  };
  if (dev->lost)
    return st_set_error(err, ST_ERROR_VULKAN,
                        "the GPU was lost earlier (VK_ERROR_DEVICE_LOST); "
                        "the engine must be created again");
  double t0 = st_now_ms();
  r = vkQueueSubmit(dev->queue, 1, &si, cmd->fence);
  double t1 = st_now_ms();
  cmd->submit_ms = t1 - t0;
  cmd->wait_ms = 0;
  if (r == VK_ERROR_DEVICE_LOST)
    dev->lost = true;
  if (r != VK_SUCCESS)
    return st_set_error(err, r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? ST_ERROR_MEMORY : ST_ERROR_VULKAN,
                        "vkQueueSubmit failed: %s", st_vk_result_str(r));
  cmd->pending = true;
  r = vkWaitForFences(dev->device, 1, &cmd->fence, VK_TRUE, dev->timeout_ns);
  cmd->wait_ms = st_now_ms() - t1;
  if (r == VK_TIMEOUT)
    dev->unfinished = dev->timed_out = true;
  if (r == VK_ERROR_DEVICE_LOST)
    dev->lost = true;
  if (r == VK_TIMEOUT)
    return st_set_error(err, ST_ERROR_VULKAN,
                        "the GPU did not finish the work within %.3g s (device hang or far too "
                        "large a frame for this device; ST_GPU_TIMEOUT_MS raises the limit)",
                        (double)dev->timeout_ns / 1e9);
  if (r != VK_SUCCESS)
    return st_set_error(err, ST_ERROR_VULKAN, "waiting for the GPU failed: %s",
                        st_vk_result_str(r));
  cmd->pending = false;
  if (!st_device_check_validation(dev, err))
    return false;

  cmd->ntimings = 0;
  if (cmd->nts >= 2) {
    uint64_t *ts = calloc(cmd->nts, sizeof *ts);
    StTiming *tm = realloc(cmd->timings, sizeof *tm * (cmd->nts - 1));
    if (ts && tm) {
      cmd->timings = tm;
      bool ok = true;
      /* the pools this recording wrote (a reset recording may own more) */
      for (int p = 0; p < cmd->nqpools && (uint32_t)p * QUERIES_PER_POOL < cmd->nts && ok; p++) {
        uint32_t first = (uint32_t)p * QUERIES_PER_POOL;
        uint32_t count = cmd->nts - first;
        if (count > QUERIES_PER_POOL)
          count = QUERIES_PER_POOL;
        ok = vkGetQueryPoolResults(dev->device, cmd->qpools[p], 0, count, sizeof(uint64_t) * count,
                                   ts + first, sizeof(uint64_t),
                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS;
      }
      if (ok) {
        uint64_t mask =
            dev->timestamp_valid_bits >= 64 ? ~0ull : ((1ull << dev->timestamp_valid_bits) - 1);
        for (uint32_t i = 1; i < cmd->nts; i++) {
          uint64_t d = (ts[i] - ts[i - 1]) & mask;
          memcpy(cmd->timings[i - 1].name, cmd->labels[i - 1], 64);
          cmd->timings[i - 1].ms = (double)d * dev->props.limits.timestampPeriod / 1e6;
        }
        cmd->ntimings = (int)cmd->nts - 1;
      }
    } else if (tm) {
      cmd->timings = tm;
    }
    free(ts);
  }
  return true;
}

void st_cmd_host_times(const StCmd *cmd, double *submit_ms, double *wait_ms) {
  *submit_ms = cmd ? cmd->submit_ms : 0;
  *wait_ms = cmd ? cmd->wait_ms : 0;
}

int st_cmd_timings(const StCmd *cmd, StTiming *out, int max) {
  if (!cmd)
    return 0;
  int n = cmd->ntimings < max ? cmd->ntimings : max;
  if (n > 0)
    memcpy(out, cmd->timings, sizeof *out * (size_t)n);
  return n;
}

void st_cmd_free(StCmd *cmd) {
  if (!cmd)
    return;
  StDevice *dev = cmd->dev;
  if (cmd->pending)
    st_device_settle(dev); /* its fence wait timed out: the work may still be running */
  for (int i = 0; i < cmd->npools; i++)
    vkDestroyDescriptorPool(dev->device, cmd->pools[i], NULL);
  for (int i = 0; i < cmd->nqpools; i++)
    vkDestroyQueryPool(dev->device, cmd->qpools[i], NULL);
  if (cmd->fence)
    vkDestroyFence(dev->device, cmd->fence, NULL);
  if (cmd->cb)
    vkFreeCommandBuffers(dev->device, dev->cmd_pool, 1, &cmd->cb);
  free(cmd->pools);
  free(cmd->qpools);
  free(cmd->labels);
  free(cmd->timings);
  free(cmd);
}
