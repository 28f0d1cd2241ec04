/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Compute pipelines: one per (shader, specialization constants), cached on the device and in the
 * on-disk VkPipelineCache.
 */
#include "internal.h"
#include "st_shaders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void kernel_destroy(StDevice *dev, StKernel *k) {
  if (k->pipeline)
    vkDestroyPipeline(dev->device, k->pipeline, NULL);
  if (k->layout)
    vkDestroyPipelineLayout(dev->device, k->layout, NULL);
  if (k->set_layout)
    vkDestroyDescriptorSetLayout(dev->device, k->set_layout, NULL);
  if (k->module)
    vkDestroyShaderModule(dev->device, k->module, NULL);
  free(k);
}

void st_kernels_destroy(StDevice *dev) {
  StKernel *k = dev->kernels;
  while (k) {
    StKernel *next = k->next;
    kernel_destroy(dev, k);
    k = next;
  }
  dev->kernels = NULL;
}

static StKernel *lookup(StDevice *dev, const char *name, const int32_t *spec, int nspec,
                        int nbindings, int push_size) {
  for (StKernel *k = dev->kernels; k; k = k->next) {
    if (k->nspec == nspec && k->nbindings == nbindings && k->push_size == push_size &&
        strcmp(k->shader, name) == 0 &&
        (nspec == 0 || memcmp(k->spec, spec, sizeof(int32_t) * (size_t)nspec) == 0))
      return k;
  }
  return NULL;
}

StKernel *st_kernel_get_spirv(StDevice *dev, const char *name, const uint32_t *code,
                              size_t code_size, const int32_t *spec, int nspec, int nbindings,
                              int push_size, StError *err) {
  if (nspec < 0 || nspec > ST_KERNEL_MAX_SPEC || nbindings < 0 || nbindings > 16 || push_size < 0 ||
      push_size > 128 || (push_size & 3) || strlen(name) >= sizeof(((StKernel *)0)->shader)) {
    st_set_error(err, ST_ERROR_ARGUMENT,
                 "kernel %s: bad parameters (nspec %d, nbindings %d, push_size %d)", name, nspec,
                 nbindings, push_size);
    return NULL;
  }
  if ((uint32_t)push_size > dev->props.limits.maxPushConstantsSize) {
    st_set_error(err, ST_ERROR_VULKAN, "kernel %s: %d bytes of push constants exceed the limit %u",
                 name, push_size, dev->props.limits.maxPushConstantsSize);
    return NULL;
  }
  StKernel *k = lookup(dev, name, spec, nspec, nbindings, push_size);
  if (k)
    return k;
  if (!code || code_size < 20 || (code_size & 3) || code[0] != 0x07230203u) {
    st_set_error(err, ST_ERROR_ARGUMENT, "kernel %s: invalid SPIR-V", name);
    return NULL;
  }
  k = calloc(1, sizeof *k);
  if (!k) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  strcpy(k->shader, name);
  if (nspec)
    memcpy(k->spec, spec, sizeof(int32_t) * (size_t)nspec);
  k->nspec = nspec;
  k->nbindings = nbindings;
  k->push_size = push_size;

  VkShaderModuleCreateInfo smci = {
      .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
      .codeSize = code_size,
      .pCode = code,
  };
  VkResult r = vkCreateShaderModule(dev->device, &smci, NULL, &k->module);
  if (r != VK_SUCCESS) {
    k->module = VK_NULL_HANDLE;
    goto fail;
  }
  VkDescriptorSetLayoutBinding b[16];
  for (int i = 0; i < nbindings; i++) {
    b[i] = (VkDescriptorSetLayoutBinding){
        .binding = (uint32_t)i,
        .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .descriptorCount = 1,
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  }
  VkDescriptorSetLayoutCreateInfo dslci = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
      .bindingCount = (uint32_t)nbindings,
      .pBindings = nbindings ? b : NULL,
  };
  r = vkCreateDescriptorSetLayout(dev->device, &dslci, NULL, &k->set_layout);
  if (r != VK_SUCCESS) {
    k->set_layout = VK_NULL_HANDLE;
    goto fail;
  }
  VkPushConstantRange pcr = {
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
      .offset = 0,
      .size = (uint32_t)push_size,
  };
  VkPipelineLayoutCreateInfo plci = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
      .setLayoutCount = 1,
      .pSetLayouts = &k->set_layout,
      .pushConstantRangeCount = push_size ? 1 : 0,
      .pPushConstantRanges = push_size ? &pcr : NULL,
  };
  r = vkCreatePipelineLayout(dev->device, &plci, NULL, &k->layout);
  if (r != VK_SUCCESS) {
    k->layout = VK_NULL_HANDLE;
    goto fail;
  }
  VkSpecializationMapEntry entries[ST_KERNEL_MAX_SPEC];
  for (int i = 0; i < nspec; i++)
    entries[i] = (VkSpecializationMapEntry){
        .constantID = (uint32_t)i, .offset = (uint32_t)(4 * i), .size = 4};
  VkSpecializationInfo si = {
      .mapEntryCount = (uint32_t)nspec,
      .pMapEntries = entries,
      .dataSize = sizeof(int32_t) * (size_t)nspec,
      .pData = k->spec,
  };
  VkComputePipelineCreateInfo cpci = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage =
          {
              .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
              .stage = VK_SHADER_STAGE_COMPUTE_BIT,
              .module = k->module,
              .pName = "main",
              .pSpecializationInfo = nspec ? &si : NULL,
          },
      .layout = k->layout,
  };
  r = vkCreateComputePipelines(dev->device, dev->pipeline_cache, 1, &cpci, NULL, &k->pipeline);
  if (r != VK_SUCCESS) {
    k->pipeline = VK_NULL_HANDLE;
    goto fail;
  }
  k->next = dev->kernels;
  dev->kernels = k;
  return k;

fail:
  st_set_error(err, ST_ERROR_VULKAN, "creating the compute pipeline for shader %s failed: %s", name,
               st_vk_result_str(r));
  kernel_destroy(dev, k);
  return NULL;
}

StKernel *st_kernel_get(StDevice *dev, const char *shader, const int32_t *spec, int nspec,
                        int nbindings, int push_size, StError *err) {
  StKernel *k = lookup(dev, shader, spec, nspec, nbindings, push_size);
  if (k)
    return k;
  size_t size = 0;
  const uint32_t *code = st_shader_find(shader, &size);
  if (!code) {
    st_set_error(err, ST_ERROR_ARGUMENT, "unknown shader '%s'", shader);
    return NULL;
  }
  return st_kernel_get_spirv(dev, shader, code, size, spec, nspec, nbindings, push_size, err);
}

StKernel *st_kernel_get_id(StDevice *dev, StShaderId id, bool f16, const int32_t *spec, int nspec,
                           int nbindings, int push_size, StError *err) {
  const char *base = st_shader_name(id);
  if (!base) {
    st_set_error(err, ST_ERROR_ARGUMENT, "unknown shader id %d", (int)id);
    return NULL;
  }
  char name[64];
  snprintf(name, sizeof name, f16 ? "%s_f16" : "%s", base);
  StKernel *k = lookup(dev, name, spec, nspec, nbindings, push_size);
  if (k)
    return k;
  size_t size = 0;
  const uint32_t *code = st_shader_code(id, f16, &size);
  return st_kernel_get_spirv(dev, name, code, size, spec, nspec, nbindings, push_size, err);
}
