/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Vulkan instance / device creation, validation messenger, pipeline cache, error helper.
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"
#include "ops.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ST_VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

static StLogFunc log_func;
static void *log_user_data;

void st_set_log_func(StLogFunc func, void *user_data) {
  log_func = func;
  log_user_data = user_data;
}

void st_log(StLogLevel level, const char *fmt, ...) {
  StLogFunc func = log_func;
  if (!func)
    return;
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  func(level, message, log_user_data);
}

bool st_set_error(StError *err, StStatus code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return false;
}

const char *st_vk_result_str(VkResult r) {
  switch (r) {
  case VK_SUCCESS:
    return "VK_SUCCESS";
  case VK_NOT_READY:
    return "VK_NOT_READY";
  case VK_TIMEOUT:
    return "VK_TIMEOUT";
  case VK_INCOMPLETE:
    return "VK_INCOMPLETE";
  case VK_ERROR_OUT_OF_HOST_MEMORY:
    return "VK_ERROR_OUT_OF_HOST_MEMORY";
  case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
  case VK_ERROR_INITIALIZATION_FAILED:
    return "VK_ERROR_INITIALIZATION_FAILED";
  case VK_ERROR_DEVICE_LOST:
    return "VK_ERROR_DEVICE_LOST";
  case VK_ERROR_MEMORY_MAP_FAILED:
    return "VK_ERROR_MEMORY_MAP_FAILED";
  case VK_ERROR_LAYER_NOT_PRESENT:
    return "VK_ERROR_LAYER_NOT_PRESENT";
  case VK_ERROR_EXTENSION_NOT_PRESENT:
    return "VK_ERROR_EXTENSION_NOT_PRESENT";
  case VK_ERROR_FEATURE_NOT_PRESENT:
    return "VK_ERROR_FEATURE_NOT_PRESENT";
  case VK_ERROR_INCOMPATIBLE_DRIVER:
    return "VK_ERROR_INCOMPATIBLE_DRIVER";
  case VK_ERROR_TOO_MANY_OBJECTS:
    return "VK_ERROR_TOO_MANY_OBJECTS";
  case VK_ERROR_OUT_OF_POOL_MEMORY:
    return "VK_ERROR_OUT_OF_POOL_MEMORY";
  default:
    return "VkResult error";
  }
}

static bool env_is_1(const char *name) {
  const char *v = getenv(name);
  return v && strcmp(v, "1") == 0;
}

/* The environment variables that st_device_new reads, as one text ("NAME=value;..."): a device
 * opened under other values is not reused for new work (st_device_reusable). */
static const char *const device_env_names[] = {
    "ST_VALIDATION",          "ST_VALIDATION_FATAL",
    "ST_GPU_TIMEOUT_MS",      "ST_DEVICE_MEMORY_LIMIT_MB",
    "ST_FORCE_DEVICE_COPIES", "ST_DISABLE_FP16",
    "XDG_CACHE_HOME",
};

static void device_env_settings(char *out, size_t len) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < sizeof device_env_names / sizeof device_env_names[0]; i++) {
    const char *v = getenv(device_env_names[i]);
    int n = snprintf(out + used, len - used, "%s=%s;", device_env_names[i], v ? v : "");
    if (n < 0 || (size_t)n >= len - used)
      break; /* truncated: still a fingerprint of the settings */
    used += (size_t)n;
  }
}

void st_device_options_init(StDeviceOptions *opts) {
  memset(opts, 0, sizeof *opts);
  opts->index = -1;
  opts->enable_validation = env_is_1("ST_VALIDATION");
  opts->require_validation_clean = opts->enable_validation;
  opts->pipeline_cache_path = NULL;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                               VkDebugUtilsMessageTypeFlagsEXT types,
                                               const VkDebugUtilsMessengerCallbackDataEXT *data,
                                               void *user) {
  (void)types;
  StDevice *dev = user;
  if (!(severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                    VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)))
    return VK_FALSE;
  bool error = severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  const char *text = data && data->pMessage ? data->pMessage : "(no message)";
  st_log(error ? ST_LOG_ERROR : ST_LOG_WARNING, "Vulkan validation %s: %s",
         error ? "error" : "warning", text);
  if (dev) {
    dev->validation_messages++;
    if (dev->validation_fatal && !dev->validation_failure[0])
      snprintf(dev->validation_failure, sizeof dev->validation_failure, "%s", text);
  }
  return VK_FALSE;
}

static bool layer_available(const char *name) {
  uint32_t n = 0;
  if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
    return false;
  VkLayerProperties *props = calloc(n, sizeof *props);
  if (!props)
    return false;
  bool found = false;
  if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS) {
    for (uint32_t i = 0; i < n; i++)
      if (strcmp(props[i].layerName, name) == 0)
        found = true;
  }
  free(props);
  return found;
}

static bool instance_ext_available(const char *layer, const char *ext) {
  uint32_t n = 0;
  if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || n == 0)
    return false;
  VkExtensionProperties *props = calloc(n, sizeof *props);
  if (!props)
    return false;
  bool found = false;
  if (vkEnumerateInstanceExtensionProperties(layer, &n, props) == VK_SUCCESS) {
    for (uint32_t i = 0; i < n; i++)
      if (strcmp(props[i].extensionName, ext) == 0)
        found = true;
  }
  free(props);
  return found;
}

static bool create_instance(StDevice *dev, bool validation, VkInstance *out, StError *err) {
  uint32_t api = VK_API_VERSION_1_0;
  if (vkEnumerateInstanceVersion(&api) != VK_SUCCESS)
    api = VK_API_VERSION_1_0;
  if (api < VK_API_VERSION_1_1)
    return st_set_error(err, ST_ERROR_NO_DEVICE,
                        "the Vulkan loader supports only Vulkan %u.%u; 1.1 is required",
                        VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api));

  VkApplicationInfo app = {
      .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
      .pApplicationName = "styletransfer",
      .applicationVersion = 1,
      .pEngineName = "styletransfer-compute",
      .engineVersion = 1,
      .apiVersion = VK_API_VERSION_1_1,
  };
  const char *layers[1];
  const char *exts[2];
  uint32_t nlayers = 0, nexts = 0;
  VkDebugUtilsMessengerCreateInfoEXT dbg = {
      .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
      .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
      .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
      .pfnUserCallback = debug_cb,
      .pUserData = dev,
  };
  bool use_dbg = false;
  if (validation && dev) {
    if (layer_available(ST_VALIDATION_LAYER)) {
      layers[nlayers++] = ST_VALIDATION_LAYER;
      if (instance_ext_available(NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
          instance_ext_available(ST_VALIDATION_LAYER, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
        exts[nexts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        use_dbg = true;
      } else {
        st_log(ST_LOG_WARNING, "%s missing; validation messages not captured",
               VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
      }
    } else {
      st_log(ST_LOG_WARNING, "validation requested but %s is not installed", ST_VALIDATION_LAYER);
    }
  }
  VkInstanceCreateInfo ci = {
      .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
      .pNext = use_dbg ? &dbg : NULL,
      .pApplicationInfo = &app,
      .enabledLayerCount = nlayers,
      .ppEnabledLayerNames = nlayers ? layers : NULL,
      .enabledExtensionCount = nexts,
      .ppEnabledExtensionNames = nexts ? exts : NULL,
  };
  VkResult r = vkCreateInstance(&ci, NULL, out);
  if (r != VK_SUCCESS)
    return st_set_error(err, ST_ERROR_NO_DEVICE, "vkCreateInstance failed: %s",
                        st_vk_result_str(r));
  if (use_dbg) {
    PFN_vkCreateDebugUtilsMessengerEXT create =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(*out,
                                                                  "vkCreateDebugUtilsMessengerEXT");
    dev->destroy_messenger = (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
        *out, "vkDestroyDebugUtilsMessengerEXT");
    if (create && dev->destroy_messenger &&
        create(*out, &dbg, NULL, &dev->messenger) == VK_SUCCESS) {
      dev->validation = true;
    } else {
      dev->messenger = VK_NULL_HANDLE;
      st_log(ST_LOG_WARNING, "could not create the debug-utils messenger");
    }
  }
  return true;
}

static bool device_ext_available(VkPhysicalDevice phys, const char *ext) {
  uint32_t n = 0;
  if (vkEnumerateDeviceExtensionProperties(phys, NULL, &n, NULL) != VK_SUCCESS || n == 0)
    return false;
  VkExtensionProperties *props = calloc(n, sizeof *props);
  if (!props)
    return false;
  bool found = false;
  if (vkEnumerateDeviceExtensionProperties(phys, NULL, &n, props) == VK_SUCCESS) {
    for (uint32_t i = 0; i < n; i++)
      if (strcmp(props[i].extensionName, ext) == 0)
        found = true;
  }
  free(props);
  return found;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case */
static void format_uuid(const uint8_t uuid[VK_UUID_SIZE], char out[ST_DEVICE_UUID_LEN]) {
  char *p = out;
  for (unsigned i = 0; i < VK_UUID_SIZE; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *p++ = '-';
    p += sprintf(p, "%02x", uuid[i]);
  }
}

static void pci_to_text(uint32_t domain, uint32_t bus, uint32_t device, uint32_t function,
                        char out[ST_DEVICE_PCI_LEN]) {
  snprintf(out, ST_DEVICE_PCI_LEN, "%04x:%02x:%02x.%x", domain, bus & 0xff, device & 0x1f,
           function & 7);
}

/* The UUID and PCI bus id of `phys` as text ("" when not reported). */
static void device_ids(VkPhysicalDevice phys, char uuid[ST_DEVICE_UUID_LEN],
                       char pci[ST_DEVICE_PCI_LEN]) {
  VkPhysicalDevicePCIBusInfoPropertiesEXT bus = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT};
  bool has_bus = device_ext_available(phys, VK_EXT_PCI_BUS_INFO_EXTENSION_NAME);
  VkPhysicalDeviceIDProperties idp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES,
                                      .pNext = has_bus ? &bus : NULL};
  VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                    .pNext = &idp};
  vkGetPhysicalDeviceProperties2(phys, &p2);
  /* all zeros: the driver has no UUID for the device */
  static const uint8_t zero[VK_UUID_SIZE];
  uuid[0] = 0;
  if (memcmp(idp.deviceUUID, zero, VK_UUID_SIZE) != 0)
    format_uuid(idp.deviceUUID, uuid);
  pci[0] = 0;
  if (has_bus)
    pci_to_text(bus.pciDomain, bus.pciBus, bus.pciDevice, bus.pciFunction, pci);
}

static bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool has_prefix(const char *s, const char *prefix) {
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Reads a hex field of at most `max` ending at `stop` and steps over the stop character. */
static bool hex_field(const char **p, char stop, unsigned long max, unsigned long *v) {
  char *end;
  if (!is_hex(**p))
    return false;
  *v = strtoul(*p, &end, 16);
  if (end - *p > 8 || *end != stop || *v > max)
    return false;
  *p = end + 1;
  return true;
}

/* Writes the id `text` in the form device_ids() gives, into `uuid` or `pci` (the other one is
 * ""); false when it is malformed. A text with a colon is a PCI bus id, any other a UUID. */
static bool parse_device_id(const char *text, char uuid[ST_DEVICE_UUID_LEN],
                            char pci[ST_DEVICE_PCI_LEN]) {
  uuid[0] = pci[0] = 0;
  const char *s = has_prefix(text, "pci:") ? text + 4 : text;
  if (strchr(s, ':')) {
    /* [DOMAIN:]BUS:DEVICE.FUNCTION */
    unsigned long domain = 0, bus, dev, fn;
    bool with_domain = strchr(strchr(s, ':') + 1, ':') != NULL;
    if ((with_domain && !hex_field(&s, ':', 0xffffffffUL, &domain)) ||
        !hex_field(&s, ':', 0xff, &bus) || !hex_field(&s, '.', 0x1f, &dev) ||
        !hex_field(&s, 0, 7, &fn))
      return false;
    pci_to_text((uint32_t)domain, (uint32_t)bus, (uint32_t)dev, (uint32_t)fn, pci);
    return true;
  }
  s = has_prefix(text, "GPU-") ? text + 4 : text;
  uint8_t raw[VK_UUID_SIZE];
  unsigned digits = 0;
  for (; *s; s++) {
    if (*s == '-')
      continue;
    if (!is_hex(*s) || digits == 2 * VK_UUID_SIZE)
      return false;
    unsigned v = (unsigned)(*s <= '9' ? *s - '0' : (*s | 0x20) - 'a' + 10);
    raw[digits / 2] = (uint8_t)(digits % 2 ? (unsigned)raw[digits / 2] << 4 | v : v);
    digits++;
  }
  if (digits != 2 * VK_UUID_SIZE)
    return false;
  format_uuid(raw, uuid);
  return true;
}

/* The index of the device `id` among phys[0..n-1], or -1 with the error. */
static int find_device_by_id(VkPhysicalDevice *phys, uint32_t n, const char *id, StError *err) {
  char want_uuid[ST_DEVICE_UUID_LEN], want_pci[ST_DEVICE_PCI_LEN];
  if (!parse_device_id(id, want_uuid, want_pci)) {
    st_set_error(err, ST_ERROR_ARGUMENT,
                 "\"%s\" is neither a device UUID (32 hex digits, dashes allowed) nor a PCI bus "
                 "id (pci:DOMAIN:BUS:DEVICE.FUNCTION, e.g. pci:0000:3b:00.0)",
                 id);
    return -1;
  }
  char list[768] = "";
  size_t len = 0;
  for (uint32_t i = 0; i < n; i++) {
    char uuid[ST_DEVICE_UUID_LEN], pci[ST_DEVICE_PCI_LEN];
    device_ids(phys[i], uuid, pci);
    if ((want_uuid[0] && strcmp(uuid, want_uuid) == 0) ||
        (want_pci[0] && strcmp(pci, want_pci) == 0))
      return (int)i;
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(phys[i], &p);
    if (len < sizeof list)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%u: %s, uuid %s, pci %s",
                              i ? "; " : "", i, p.deviceName, uuid[0] ? uuid : "unknown",
                              pci[0] ? pci : "unknown");
  }
  st_set_error(err, ST_ERROR_NO_DEVICE, "no Vulkan device has the %s %s; the devices: %s",
               want_uuid[0] ? "UUID" : "PCI bus id", want_uuid[0] ? want_uuid : want_pci, list);
  return -1;
}

int st_list_device_info(StDeviceInfo *out, int max, StError *err) {
  VkInstance inst;
  if (!create_instance(NULL, false, &inst, err))
    return -1;
  uint32_t n = 0;
  VkResult r = vkEnumeratePhysicalDevices(inst, &n, NULL);
  if (r != VK_SUCCESS) {
    vkDestroyInstance(inst, NULL);
    st_set_error(err, ST_ERROR_NO_DEVICE, "vkEnumeratePhysicalDevices failed: %s",
                 st_vk_result_str(r));
    return -1;
  }
  VkPhysicalDevice *phys = calloc(n ? n : 1, sizeof *phys);
  if (!phys) {
    vkDestroyInstance(inst, NULL);
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return -1;
  }
  vkEnumeratePhysicalDevices(inst, &n, phys);
  for (uint32_t i = 0; i < n && (int)i < max; i++) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(phys[i], &p);
    snprintf(out[i].name, sizeof out[i].name, "%s", p.deviceName);
    device_ids(phys[i], out[i].uuid, out[i].pci_bus_id);
  }
  free(phys);
  vkDestroyInstance(inst, NULL);
  return (int)n;
}

int st_list_devices(char names[][256], int max, StError *err) {
  StDeviceInfo *info = calloc(max > 0 ? (size_t)max : 1, sizeof *info);
  if (!info) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return -1;
  }
  int n = st_list_device_info(info, max, err);
  for (int i = 0; i < n && i < max; i++)
    memcpy(names[i], info[i].name, 256);
  free(info);
  return n;
}

static int type_rank(VkPhysicalDeviceType t) {
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
    return 0;
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
    return 1;
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
    return 2;
  case VK_PHYSICAL_DEVICE_TYPE_CPU:
    return 3;
  default:
    return 4;
  }
}

static bool find_compute_queue(VkPhysicalDevice phys, uint32_t *family, uint32_t *ts_bits) {
  uint32_t n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(phys, &n, NULL);
  if (n == 0)
    return false;
  VkQueueFamilyProperties *q = calloc(n, sizeof *q);
  if (!q)
    return false;
  vkGetPhysicalDeviceQueueFamilyProperties(phys, &n, q);
  int best = -1, best_score = -1;
  for (uint32_t i = 0; i < n; i++) {
    if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || q[i].queueCount == 0)
      continue;
    /* Prefer a queue with timestamps, then the general (graphics+compute) queue, which is the
     * fastest path on most drivers for a single stream of work. */
    int score =
        (q[i].timestampValidBits ? 2 : 0) + ((q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) ? 1 : 0);
    if (score > best_score) {
      best_score = score;
      best = (int)i;
    }
  }
  if (best >= 0) {
    *family = (uint32_t)best;
    *ts_bits = q[best].timestampValidBits;
  }
  free(q);
  return best >= 0;
}

static const char *cache_dir(char *buf, size_t len) {
  const char *xdg = getenv("XDG_CACHE_HOME");
  if (xdg && xdg[0] == '/') {
    snprintf(buf, len, "%s/styletransfer", xdg);
    return buf;
  }
  const char *home = getenv("HOME");
  if (home && home[0]) {
    snprintf(buf, len, "%s/.cache/styletransfer", home);
    return buf;
  }
  return NULL;
}

static void mkdir_p(const char *path) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      mkdir(tmp, 0755);
      *p = '/';
    }
  }
  mkdir(tmp, 0755);
}

static void *read_whole_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  void *data = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n > 0 && fseek(f, 0, SEEK_SET) == 0) {
      data = malloc((size_t)n);
      if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
      }
      if (data)
        *size = (size_t)n;
    }
  }
  fclose(f);
  return data;
}

/* Validates the VkPipelineCache header against this device (drivers must also do it, but a
 * stale file from another driver should never reach them). */
static bool cache_header_ok(const StDevice *dev, const uint8_t *d, size_t n) {
  if (n < 16 + VK_UUID_SIZE)
    return false;
  uint32_t hlen, version, vendor, device;
  memcpy(&hlen, d, 4);
  memcpy(&version, d + 4, 4);
  memcpy(&vendor, d + 8, 4);
  memcpy(&device, d + 12, 4);
  return hlen >= 16 + VK_UUID_SIZE && hlen <= n &&
         version == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && vendor == dev->props.vendorID &&
         device == dev->props.deviceID &&
         memcmp(d + 16, dev->props.pipelineCacheUUID, VK_UUID_SIZE) == 0;
}

static void setup_pipeline_cache(StDevice *dev, const char *explicit_path) {
  char dir[4096], path[4352];
  if (explicit_path) {
    snprintf(path, sizeof path, "%s", explicit_path);
  } else if (cache_dir(dir, sizeof dir)) {
    char hex[2 * VK_UUID_SIZE + 1];
    for (unsigned i = 0; i < VK_UUID_SIZE; i++)
      snprintf(hex + 2 * i, 3, "%02x", dev->uuid[i]);
    snprintf(path, sizeof path, "%s/pipelines-%s.bin", dir, hex);
  } else {
    path[0] = 0;
  }
  size_t n = 0;
  void *data = path[0] ? read_whole_file(path, &n) : NULL;
  if (data && !cache_header_ok(dev, data, n)) {
    free(data);
    data = NULL;
    n = 0;
  }
  VkPipelineCacheCreateInfo ci = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
      .initialDataSize = data ? n : 0,
      .pInitialData = data,
  };
  if (vkCreatePipelineCache(dev->device, &ci, NULL, &dev->pipeline_cache) != VK_SUCCESS) {
    /* A corrupt file: start empty. */
    ci.initialDataSize = 0;
    ci.pInitialData = NULL;
    if (vkCreatePipelineCache(dev->device, &ci, NULL, &dev->pipeline_cache) != VK_SUCCESS)
      dev->pipeline_cache = VK_NULL_HANDLE;
  }
  free(data);
  dev->pipeline_cache_loaded_size = data ? n : 0;
  if (path[0])
    dev->pipeline_cache_path = strdup(path);
}

static void save_pipeline_cache(StDevice *dev) {
  if (!dev->pipeline_cache || !dev->pipeline_cache_path)
    return;
  size_t n = 0;
  if (vkGetPipelineCacheData(dev->device, dev->pipeline_cache, &n, NULL) != VK_SUCCESS || n == 0)
    return;
  void *data = malloc(n);
  if (!data)
    return;
  if (vkGetPipelineCacheData(dev->device, dev->pipeline_cache, &n, data) == VK_SUCCESS &&
      n != dev->pipeline_cache_loaded_size) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", dev->pipeline_cache_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
      *slash = 0;
      mkdir_p(dir);
    }
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", dev->pipeline_cache_path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f) {
      bool ok = fwrite(data, 1, n, f) == n;
      ok = (fclose(f) == 0) && ok;
      if (!ok || rename(tmp, dev->pipeline_cache_path) != 0)
        unlink(tmp);
    }
  }
  free(data);
}

StDevice *st_device_new(const StDeviceOptions *opts_in, StError *err) {
  StDeviceOptions defaults;
  if (!opts_in) {
    st_device_options_init(&defaults);
    opts_in = &defaults;
  }
  StDevice *dev = calloc(1, sizeof *dev);
  if (!dev) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    return NULL;
  }
  device_env_settings(dev->env_settings, sizeof dev->env_settings);
  st_ops_read_env(dev);
  dev->validation_fatal = env_is_1("ST_VALIDATION_FATAL");
  dev->timeout_ns = 120ull * 1000000000ull;
  const char *to = getenv("ST_GPU_TIMEOUT_MS");
  if (to && atol(to) > 0)
    dev->timeout_ns = (uint64_t)atol(to) * 1000000ull;
  const char *ml = getenv("ST_DEVICE_MEMORY_LIMIT_MB");
  if (ml && atol(ml) > 0)
    dev->memory_limit = (VkDeviceSize)atol(ml) * 1048576u;

  if (!create_instance(dev, opts_in->enable_validation, &dev->instance, err)) {
    free(dev);
    return NULL;
  }

  uint32_t n = 0;
  VkResult r = vkEnumeratePhysicalDevices(dev->instance, &n, NULL);
  if (r != VK_SUCCESS || n == 0) {
    st_set_error(err, ST_ERROR_NO_DEVICE, "no Vulkan device found%s%s", r != VK_SUCCESS ? ": " : "",
                 r != VK_SUCCESS ? st_vk_result_str(r) : "");
    st_device_free(dev);
    return NULL;
  }
  VkPhysicalDevice *phys = calloc(n, sizeof *phys);
  if (!phys) {
    st_set_error(err, ST_ERROR_MEMORY, "out of memory");
    st_device_free(dev);
    return NULL;
  }
  vkEnumeratePhysicalDevices(dev->instance, &n, phys);

  int chosen = -1;
  if (opts_in->id && opts_in->id[0]) {
    chosen = find_device_by_id(phys, n, opts_in->id, err);
    if (chosen < 0) {
      free(phys);
      st_device_free(dev);
      return NULL;
    }
  } else if (opts_in->index >= 0) {
    if ((uint32_t)opts_in->index >= n) {
      st_set_error(err, ST_ERROR_NO_DEVICE,
                   "Vulkan device index %d out of range (%u device%s available)", opts_in->index, n,
                   n == 1 ? "" : "s");
      free(phys);
      st_device_free(dev);
      return NULL;
    }
    chosen = opts_in->index;
  }
  if (chosen >= 0) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(phys[chosen], &p);
    uint32_t fam, bits;
    if (p.apiVersion < VK_API_VERSION_1_1 || !find_compute_queue(phys[chosen], &fam, &bits)) {
      st_set_error(err, ST_ERROR_NO_DEVICE,
                   "Vulkan device %d (%s) lacks Vulkan 1.1 or a compute queue", chosen,
                   p.deviceName);
      free(phys);
      st_device_free(dev);
      return NULL;
    }
  } else {
    int best_rank = 99;
    for (uint32_t i = 0; i < n; i++) {
      VkPhysicalDeviceProperties p;
      vkGetPhysicalDeviceProperties(phys[i], &p);
      uint32_t fam, bits;
      if (p.apiVersion < VK_API_VERSION_1_1 || !find_compute_queue(phys[i], &fam, &bits))
        continue;
      int rank = type_rank(p.deviceType);
      if (rank < best_rank) {
        best_rank = rank;
        chosen = (int)i;
      }
    }
    if (chosen < 0) {
      st_set_error(err, ST_ERROR_NO_DEVICE,
                   "none of the %u Vulkan devices supports Vulkan 1.1 with a compute queue", n);
      free(phys);
      st_device_free(dev);
      return NULL;
    }
  }
  dev->phys = phys[chosen];
  free(phys);

  vkGetPhysicalDeviceProperties(dev->phys, &dev->props);
  vkGetPhysicalDeviceMemoryProperties(dev->phys, &dev->mem_props);
  find_compute_queue(dev->phys, &dev->queue_family, &dev->timestamp_valid_bits);
  dev->is_cpu = dev->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ||
                strstr(dev->props.deviceName, "llvmpipe") ||
                strstr(dev->props.deviceName, "lavapipe") ||
                strstr(dev->props.deviceName, "SwiftShader");

  /* Frames go through device-local copies except on CPU devices, where host-visible memory is
   * the same memory; ST_FORCE_DEVICE_COPIES=1 forces the copies (tests). */
  dev->device_copies = !dev->is_cpu || env_is_1("ST_FORCE_DEVICE_COPIES");

  VkPhysicalDeviceSubgroupProperties sub = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceIDProperties idp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES,
                                      .pNext = &sub};
  VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                    .pNext = &idp};
  vkGetPhysicalDeviceProperties2(dev->phys, &p2);
  dev->subgroup_size = sub.subgroupSize ? sub.subgroupSize : 1;
  dev->subgroup_ops =
      (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ? sub.supportedOperations : 0;
  memcpy(dev->uuid, idp.deviceUUID, VK_UUID_SIZE);
  device_ids(dev->phys, dev->uuid_text, dev->pci_bus_id);

  VkPhysicalDevice16BitStorageFeatures f16 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
  VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                  .pNext = &f16};
  vkGetPhysicalDeviceFeatures2(dev->phys, &f2);
  dev->fp16_storage = f16.storageBuffer16BitAccess == VK_TRUE;
  if (getenv("ST_DISABLE_FP16") && env_is_1("ST_DISABLE_FP16"))
    dev->fp16_storage = false;

  VkPhysicalDevice16BitStorageFeatures f16_on = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
      .storageBuffer16BitAccess = dev->fp16_storage ? VK_TRUE : VK_FALSE,
  };
  VkPhysicalDeviceFeatures2 f2_on = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                     .pNext = &f16_on};
  float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
      .queueFamilyIndex = dev->queue_family,
      .queueCount = 1,
      .pQueuePriorities = &prio,
  };
  VkDeviceCreateInfo dci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
      .pNext = &f2_on,
      .queueCreateInfoCount = 1,
      .pQueueCreateInfos = &qci,
  };
  r = vkCreateDevice(dev->phys, &dci, NULL, &dev->device);
  if (r != VK_SUCCESS) {
    st_set_error(err, ST_ERROR_VULKAN, "vkCreateDevice failed on %s: %s", dev->props.deviceName,
                 st_vk_result_str(r));
    dev->device = VK_NULL_HANDLE;
    st_device_free(dev);
    return NULL;
  }
  vkGetDeviceQueue(dev->device, dev->queue_family, 0, &dev->queue);

  VkCommandPoolCreateInfo pci = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
      .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
      .queueFamilyIndex = dev->queue_family,
  };
  r = vkCreateCommandPool(dev->device, &pci, NULL, &dev->cmd_pool);
  if (r != VK_SUCCESS) {
    st_set_error(err, ST_ERROR_VULKAN, "vkCreateCommandPool failed: %s", st_vk_result_str(r));
    dev->cmd_pool = VK_NULL_HANDLE;
    st_device_free(dev);
    return NULL;
  }
  setup_pipeline_cache(dev, opts_in->pipeline_cache_path);
  return dev;
}

double st_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void st_device_settle(StDevice *dev) {
  if (dev == NULL || !dev->unfinished)
    return;
  /* No timeout here: destroying what running work uses is undefined behaviour (lavapipe crashes
   * in its queue thread). A GPU that hangs is reset by its kernel driver, after which the wait
   * returns VK_ERROR_DEVICE_LOST. */
  st_log(ST_LOG_WARNING, "waiting for the work that timed out to finish before freeing it");
  VkResult r = vkDeviceWaitIdle(dev->device);
  if (r == VK_ERROR_DEVICE_LOST)
    dev->lost = true;
  dev->unfinished = false;
}

void st_device_free(StDevice *dev) {
  if (!dev)
    return;
  if (dev->device) {
    vkDeviceWaitIdle(dev->device);
    st_kernels_destroy(dev);
    save_pipeline_cache(dev);
    if (dev->pipeline_cache)
      vkDestroyPipelineCache(dev->device, dev->pipeline_cache, NULL);
    if (dev->cmd_pool)
      vkDestroyCommandPool(dev->device, dev->cmd_pool, NULL);
    vkDestroyDevice(dev->device, NULL);
  }
  free(dev->pipeline_cache_path);
  if (dev->instance) {
    if (dev->messenger && dev->destroy_messenger)
      dev->destroy_messenger(dev->instance, dev->messenger, NULL);
    vkDestroyInstance(dev->instance, NULL);
  }
  free(dev);
}

const char *st_device_name(const StDevice *dev) { return dev->props.deviceName; }
const char *st_device_uuid(const StDevice *dev) { return dev->uuid_text; }
const char *st_device_pci_bus_id(const StDevice *dev) { return dev->pci_bus_id; }
bool st_device_is_cpu(const StDevice *dev) { return dev->is_cpu; }
uint64_t st_device_memory_in_use(const StDevice *dev) {
  return __atomic_load_n(&dev->memory_in_use, __ATOMIC_RELAXED);
}
bool st_device_has_fp16_storage(const StDevice *dev) { return dev->fp16_storage; }

bool st_device_reusable(const StDevice *dev) {
  if (dev->lost || dev->timed_out || dev->unfinished ||
      (dev->validation_fatal && dev->validation_messages > 0) ||
      __atomic_load_n(&dev->memory_in_use, __ATOMIC_RELAXED) != 0)
    return false;
  char now[sizeof dev->env_settings];
  device_env_settings(now, sizeof now);
  return strcmp(now, dev->env_settings) == 0;
}
unsigned st_device_validation_messages(const StDevice *dev) { return dev->validation_messages; }

bool st_device_check_validation(const StDevice *dev, StError *err) {
  if (!dev->validation_failure[0])
    return true;
  return st_set_error(err, ST_ERROR_VULKAN, "Vulkan validation (ST_VALIDATION_FATAL=1): %s",
                      dev->validation_failure);
}
VkDevice st_device_vk(const StDevice *dev) { return dev->device; }
const VkPhysicalDeviceLimits *st_device_limits(const StDevice *dev) { return &dev->props.limits; }
uint32_t st_device_subgroup_size(const StDevice *dev) { return dev->subgroup_size; }
uint32_t st_device_subgroup_ops(const StDevice *dev) { return dev->subgroup_ops; }
