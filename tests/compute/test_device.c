/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Device selection by id (StDeviceOptions.id): the UUID and PCI bus id reported by
 * st_list_device_info and st_device_uuid / st_device_pci_bus_id select the same device in every
 * spelling users get from other tools (nvidia-smi's "GPU-" prefix and 8-digit PCI domain, upper
 * case, no dashes), an id overrides the index, and unknown or malformed ids fail with messages that
 * name the id (and, for an unknown one, every device's ids).
 */
#define _POSIX_C_SOURCE 200809L
#include "st.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

/* Opens the device `id` (with `index`) and checks that it is the one with `uuid` and `name`. */
static void check_opens(const char *id, int index, const char *uuid, const char *name) {
  StDeviceOptions opts;
  st_device_options_init(&opts);
  opts.id = id;
  opts.index = index;
  StError err = {0};
  StDevice *dev = st_device_new(&opts, &err);
  CHECK(dev != NULL, "id \"%s\" (index %d): %s", id, index, err.message);
  if (!dev)
    return;
  CHECK(strcmp(st_device_uuid(dev), uuid) == 0 && strcmp(st_device_name(dev), name) == 0,
        "id \"%s\" opened %s (uuid %s), expected %s (uuid %s)", id, st_device_name(dev),
        st_device_uuid(dev), name, uuid);
  printf("id \"%s\" (index %d): %s\n", id, index, st_device_name(dev));
  st_device_free(dev);
}

/* Expects st_device_new to fail on `id` with `code` and a message containing `a` and `b`. */
static void check_fails(const char *id, StStatus code, const char *a, const char *b) {
  StDeviceOptions opts;
  st_device_options_init(&opts);
  opts.id = id;
  StError err = {0};
  StDevice *dev = st_device_new(&opts, &err);
  CHECK(dev == NULL && err.code == code, "id \"%s\": got a device or code %d (%s)", id, err.code,
        err.message);
  CHECK(strstr(err.message, a) && (!b || strstr(err.message, b)),
        "id \"%s\": message \"%s\" lacks \"%s\"%s%s", id, err.message, a, b ? " or " : "",
        b ? b : "");
  printf("id \"%s\": %s\n", id, err.message);
  st_device_free(dev);
}

int main(void) {
  StError err = {0};
  StDeviceInfo info[16];
  int n = st_list_device_info(info, 16, &err);
  CHECK(n >= 1, "st_list_device_info returned %d: %s", n, err.message);
  for (int i = 0; i < n && i < 16; i++)
    printf("device %d: %s, uuid \"%s\", pci \"%s\"\n", i, info[i].name, info[i].uuid,
           info[i].pci_bus_id);
  char names[16][256];
  CHECK(st_list_devices(names, 16, &err) == n && (n < 1 || strcmp(names[0], info[0].name) == 0),
        "st_list_devices disagrees with st_list_device_info");

  StDeviceOptions opts;
  st_device_options_init(&opts);
  StDevice *dev = st_device_new(&opts, &err);
  if (!dev) {
    fprintf(stderr, "FAIL: st_device_new: %s\n", err.message);
    return 1;
  }
  char uuid[ST_DEVICE_UUID_LEN], pci[ST_DEVICE_PCI_LEN], name[256];
  snprintf(uuid, sizeof uuid, "%s", st_device_uuid(dev));
  snprintf(pci, sizeof pci, "%s", st_device_pci_bus_id(dev));
  snprintf(name, sizeof name, "%s", st_device_name(dev));
  st_device_free(dev);
  printf("automatic choice: %s, uuid \"%s\", pci \"%s\"\n", name, uuid, pci);
  /* Vulkan 1.1 drivers report a device UUID (lavapipe does) */
  CHECK(strlen(uuid) == 36 && uuid[8] == '-' && uuid[13] == '-' && uuid[18] == '-' &&
            uuid[23] == '-',
        "uuid \"%s\" is not 8-4-4-4-12 hex digits", uuid);
  int listed = 0;
  for (int i = 0; i < n && i < 16; i++)
    listed += strcmp(info[i].uuid, uuid) == 0 && strcmp(info[i].pci_bus_id, pci) == 0;
  CHECK(listed == 1, "the device's ids appear %d times in the list", listed);
  if (failures)
    return 1;

  /* the UUID as reported, as nvidia-smi prints it, upper case without dashes; over an index */
  char spelled[64];
  check_opens(uuid, -1, uuid, name);
  snprintf(spelled, sizeof spelled, "GPU-%s", uuid);
  check_opens(spelled, -1, uuid, name);
  size_t k = 0;
  for (const char *c = uuid; *c; c++)
    if (*c != '-')
      spelled[k++] = (char)toupper((unsigned char)*c);
  spelled[k] = 0;
  check_opens(spelled, -1, uuid, name);
  check_opens(uuid, 63, uuid, name);

  if (pci[0]) {
    unsigned domain, bus, device, function;
    CHECK(sscanf(pci, "%x:%x:%x.%x", &domain, &bus, &device, &function) == 4, "pci \"%s\"", pci);
    snprintf(spelled, sizeof spelled, "pci:%s", pci);
    check_opens(spelled, -1, uuid, name);
    check_opens(pci, -1, uuid, name);
    snprintf(spelled, sizeof spelled, "%08X:%02X:%02X.%X", domain, bus, device, function);
    check_opens(spelled, -1, uuid, name); /* nvidia-smi's pci.bus_id */
    if (domain == 0) {
      snprintf(spelled, sizeof spelled, "pci:%02x:%02x.%x", bus, device, function);
      check_opens(spelled, -1, uuid, name);
    }
  } else {
    printf("%s reports no PCI bus id (no VK_EXT_pci_bus_info): selection by PCI bus id is only "
           "checked for its errors\n",
           name);
  }

  /* unknown ids: the message names the id and lists this device's ids */
  check_fails("00000000-0000-0000-0000-0000000000AB", ST_ERROR_NO_DEVICE,
              "UUID 00000000-0000-0000-0000-0000000000ab", uuid);
  check_fails("pci:0000:ff:1f.7", ST_ERROR_NO_DEVICE, "PCI bus id 0000:ff:1f.7", name);

  /* malformed ids */
  const char *bad[] = {"xyz",
                       "1234",
                       "GPU-",
                       "MIG-4b5ac1f6-0a3d-5d32-8c5e-3b6e1a3c2f01",
                       "0123456789abcdef0123456789abcdef0",
                       "0123456789abcdef0123456789abcdeg",
                       "pci:",
                       "pci:00:00",
                       "pci:0000:100:00.0",
                       "pci:0:0:20.0",
                       "00:00.8",
                       "0:0:0:0.0",
                       "pci:00:00.0 "};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    check_fails(bad[i], ST_ERROR_ARGUMENT, bad[i], "neither a device UUID");

  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("PASS\n");
  return 0;
}
