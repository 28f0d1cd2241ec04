/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Buffer allocation: one VkBuffer + VkDeviceMemory per StBuffer, memory type chosen by kind.
 */
#include "internal.h"

#include <string.h>

static int find_memory_type(const StDevice *dev, uint32_t type_bits, VkMemoryPropertyFlags need,
                            VkMemoryPropertyFlags want) {
  const VkPhysicalDeviceMemoryProperties *mp = &dev->mem_props;
  int fallback = -1;
  for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
    if (!(type_bits & (1u << i)))
      continue;
    VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
    if ((f & need) != need)
      continue;
    if ((f & want) == want)
      return (int)i;
    if (fallback < 0)
      fallback = (int)i;
  }
  return fallback;
}

bool st_buffer_create(StDevice *dev, VkDeviceSize size, StMemKind kind, StBuffer *out,
                      StError *err) {
  memset(out, 0, sizeof *out);
  if (size == 0)
    return st_set_error(err, ST_ERROR_ARGUMENT, "cannot create an empty buffer");
  /* Round up so that 16-bit data can always be bound in whole 32-bit words. */
  size = (size + 15) & ~(VkDeviceSize)15;
  VkBufferCreateInfo bci = {
      .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
      .size = size,
      .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
               VK_BUFFER_USAGE_TRANSFER_DST_BIT,
      .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkResult r = vkCreateBuffer(dev->device, &bci, NULL, &out->buffer);
  if (r != VK_SUCCESS) {
    out->buffer = VK_NULL_HANDLE;
    return st_set_error(
        err,
        r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? ST_ERROR_MEMORY
                                                                               : ST_ERROR_VULKAN,
        "vkCreateBuffer(%llu bytes) failed: %s", (unsigned long long)size, st_vk_result_str(r));
  }
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(dev->device, out->buffer, &req);
  VkMemoryPropertyFlags need, want;
  switch (kind) {
  case ST_MEM_UPLOAD:
    need = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    want = need;
    break;
  case ST_MEM_DOWNLOAD:
    need = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    break;
  default:
    need = 0;
    want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    break;
  }
  int type = find_memory_type(dev, req.memoryTypeBits, need, want);
  if (type < 0) {
    st_buffer_destroy(dev, out);
    return st_set_error(err, ST_ERROR_VULKAN, "no suitable Vulkan memory type for a %s buffer",
                        kind == ST_MEM_UPLOAD     ? "upload"
                        : kind == ST_MEM_DOWNLOAD ? "download"
                                                  : "device");
  }
  if (dev->memory_limit) {
    VkDeviceSize used = __atomic_load_n(&dev->memory_in_use, __ATOMIC_RELAXED);
    if (used + req.size > dev->memory_limit) {
      st_buffer_destroy(dev, out);
      return st_set_error(err, ST_ERROR_MEMORY,
                          "vkAllocateMemory(%llu bytes) refused: %.1f MiB of the %.1f MiB "
                          "device memory limit (ST_DEVICE_MEMORY_LIMIT_MB) are in use",
                          (unsigned long long)req.size, (double)used / 1048576.0,
                          (double)dev->memory_limit / 1048576.0);
    }
  }
  VkMemoryAllocateInfo mai = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
      .allocationSize = req.size,
      .memoryTypeIndex = (uint32_t)type,
  };
  r = vkAllocateMemory(dev->device, &mai, NULL, &out->memory);
  if (r != VK_SUCCESS) {
    out->memory = VK_NULL_HANDLE;
    st_buffer_destroy(dev, out);
    return st_set_error(err, ST_ERROR_MEMORY, "vkAllocateMemory(%llu bytes) failed: %s",
                        (unsigned long long)req.size, st_vk_result_str(r));
  }
  out->allocated = req.size;
  __atomic_add_fetch(&dev->memory_in_use, req.size, __ATOMIC_RELAXED);
  r = vkBindBufferMemory(dev->device, out->buffer, out->memory, 0);
  if (r != VK_SUCCESS) {
    st_buffer_destroy(dev, out);
    return st_set_error(err, ST_ERROR_VULKAN, "vkBindBufferMemory failed: %s", st_vk_result_str(r));
  }
  out->size = size;
  out->kind = kind;
  if (kind != ST_MEM_DEVICE) {
    r = vkMapMemory(dev->device, out->memory, 0, VK_WHOLE_SIZE, 0, &out->mapped);
    if (r != VK_SUCCESS) {
      out->mapped = NULL;
      st_buffer_destroy(dev, out);
      return st_set_error(err, ST_ERROR_VULKAN, "vkMapMemory failed: %s", st_vk_result_str(r));
    }
  }
  return true;
}

void st_buffer_destroy(StDevice *dev, StBuffer *buf) {
  if (!dev || !buf)
    return;
  if (buf->mapped)
    vkUnmapMemory(dev->device, buf->memory);
  if (buf->buffer)
    vkDestroyBuffer(dev->device, buf->buffer, NULL);
  if (buf->memory) {
    vkFreeMemory(dev->device, buf->memory, NULL);
    __atomic_sub_fetch(&dev->memory_in_use, buf->allocated, __ATOMIC_RELAXED);
  }
  memset(buf, 0, sizeof *buf);
}

void st_buffer_invalidate(StDevice *dev, StBuffer *buf) {
  if (!buf || !buf->memory || !buf->mapped)
    return;
  /* Find whether the memory is coherent: cheap to invalidate anyway (whole range is always
   * allowed for a whole-mapped allocation). */
  VkMappedMemoryRange range = {
      .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
      .memory = buf->memory,
      .offset = 0,
      .size = VK_WHOLE_SIZE,
  };
  vkInvalidateMappedMemoryRanges(dev->device, 1, &range);
}
