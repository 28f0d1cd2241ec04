/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Preloaded into the tests of a sanitizer build (meson.build next to this file): dlclose()
 * becomes a no-op, so that the Vulkan driver and layers the loader unloads at
 * vkDestroyInstance stay mapped until the process exits. LeakSanitizer runs at exit; with the
 * driver unmapped it cannot tell whose blocks are still referenced from the driver's globals and
 * reports them as leaks of an "<unknown module>", which would hide ours. With this shim every
 * leak it reports has a symbolized stack. */
#include <stddef.h>

int dlclose(void *handle);

int dlclose(void *handle) {
  (void)handle;
  return 0;
}
