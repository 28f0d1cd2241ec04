/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Runtime test: device creation, buffers, copies, a dispatch with push + spec constants, fill,
 * timestamps, error paths, pipeline cache file, validation silence.
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t scale_spv[] =
#include "scale.spv.inc"
    ;

#include "../st_test_log.h"
#include "check.h"

int main(void) {
  st_test_log_init();
  StError err = {0};
  StDeviceOptions opts;
  st_device_options_init(&opts);

  /* Device-free error path: an index that cannot exist. */
  opts.index = 1000;
  StDevice *bad = st_device_new(&opts, &err);
  CHECK(bad == NULL && err.code == ST_ERROR_NO_DEVICE, "index 1000 gave code %d (%s)", err.code,
        err.message);
  printf("out-of-range index: %s\n", err.message);

  char names[8][256];
  int nd = st_list_devices(names, 8, &err);
  CHECK(nd >= 1, "st_list_devices returned %d", nd);
  for (int i = 0; i < nd && i < 8; i++)
    printf("device %d: %s\n", i, names[i]);

  opts.index = -1;
  StDevice *dev = st_device_new(&opts, &err);
  if (!dev) {
    fprintf(stderr, "FAIL: st_device_new: %s\n", err.message);
    return 1;
  }
  printf("device: %s (cpu %d, fp16 storage %d, subgroup %u, validation %d)\n", st_device_name(dev),
         st_device_is_cpu(dev), st_device_has_fp16_storage(dev), st_device_subgroup_size(dev),
         dev->validation);
  if (getenv("ST_VALIDATION") && strcmp(getenv("ST_VALIDATION"), "1") == 0)
    CHECK(dev->validation, "validation requested but not active");

  const uint32_t n = 100003; /* not a multiple of the workgroup size */
  StBuffer up, a, b, down;
  CHECK(st_buffer_create(dev, n * 4, ST_MEM_UPLOAD, &up, &err), "%s", err.message);
  CHECK(st_buffer_create(dev, n * 4, ST_MEM_DEVICE, &a, &err), "%s", err.message);
  CHECK(st_buffer_create(dev, n * 4 + 64, ST_MEM_DEVICE, &b, &err), "%s", err.message);
  CHECK(st_buffer_create(dev, n * 4 + 64, ST_MEM_DOWNLOAD, &down, &err), "%s", err.message);
  CHECK(up.mapped && down.mapped && !a.mapped, "mapping");
  StBuffer empty;
  CHECK(!st_buffer_create(dev, 0, ST_MEM_DEVICE, &empty, &err) && err.code == ST_ERROR_ARGUMENT,
        "empty buffer accepted");
  if (failures)
    return 1;
  float *src = up.mapped;
  for (uint32_t i = 0; i < n; i++)
    src[i] = (float)i * 0.5f - 7.0f;

  int32_t spec[1] = {64};
  StKernel *k =
      st_kernel_get_spirv(dev, "test_scale", scale_spv, sizeof scale_spv, spec, 1, 2, 12, &err);
  CHECK(k != NULL, "%s", err.message);
  StKernel *k2 =
      st_kernel_get_spirv(dev, "test_scale", scale_spv, sizeof scale_spv, spec, 1, 2, 12, &err);
  CHECK(k2 == k, "kernel cache miss for identical key");
  int32_t spec2[1] = {32};
  StKernel *k3 =
      st_kernel_get_spirv(dev, "test_scale", scale_spv, sizeof scale_spv, spec2, 1, 2, 12, &err);
  CHECK(k3 && k3 != k, "different spec constants must give a different kernel");
  CHECK(st_kernel_get(dev, "no_such_shader_xyz", NULL, 0, 1, 0, &err) == NULL &&
            strstr(err.message, "no_such_shader_xyz"),
        "unknown shader accepted: %s", err.message);

  StCmd *cmd = st_cmd_begin(dev, &err);
  CHECK(cmd, "%s", err.message);
  if (!cmd || !k || !k3)
    return 1;
  st_cmd_copy(cmd, &up, 0, &a, 0, n * 4);
  st_cmd_mark(cmd, "upload");
  StTensor ta = {.buf = &a, .offset = 0, .dtype = ST_F32, .rank = 1, .shape = {(int)n}};
  StTensor tb = {.buf = &b, .offset = 16, .dtype = ST_F32, .rank = 1, .shape = {(int)n}};
  const StTensor *binds[2] = {&ta, &tb};
  struct {
    float a, b;
    uint32_t n;
  } push = {2.0f, 1.0f, n};
  st_cmd_fill_zero(cmd, &b, 0, b.size);
  st_cmd_dispatch(cmd, k, binds, 2, &push, sizeof push, (n + 63) / 64, 1, 1);
  st_cmd_mark(cmd, "scale");
  /* In place on b (second kernel variant, 32-wide workgroups). */
  const StTensor *binds2[2] = {&tb, &tb};
  push.a = 0.5f;
  push.b = -0.25f;
  st_cmd_dispatch(cmd, k3, binds2, 2, &push, sizeof push, (n + 31) / 32, 1, 1);
  st_cmd_mark(cmd, "scale2");
  st_cmd_copy(cmd, &b, 0, &down, 0, b.size);
  st_cmd_mark(cmd, "download");
  CHECK(st_cmd_submit_wait(cmd, &err), "%s", err.message);
  st_buffer_invalidate(dev, &down);
  const float *res = (const float *)((const char *)down.mapped + 16);
  int bad_values = 0;
  for (uint32_t i = 0; i < n; i++) {
    float x = (float)i * 0.5f - 7.0f;
    float want = 0.5f * (2.0f * x + 1.0f) - 0.25f;
    if (res[i] != want && bad_values++ < 5)
      fprintf(stderr, "value %u: %g != %g\n", i, res[i], want);
  }
  CHECK(bad_values == 0, "%d wrong values", bad_values);
  const float *head = down.mapped;
  CHECK(head[0] == 0 && head[3] == 0, "fill_zero before the offset");
  StTiming tm[8];
  int nt = st_cmd_timings(cmd, tm, 8);
  CHECK(nt == 4, "%d timings", nt);
  for (int i = 0; i < nt; i++) {
    printf("timing %s: %.3f ms\n", tm[i].name, tm[i].ms);
    CHECK(tm[i].ms >= 0 && tm[i].ms < 10000, "timing %s = %g", tm[i].name, tm[i].ms);
  }
  CHECK(nt == 4 && strcmp(tm[0].name, "upload") == 0 && strcmp(tm[3].name, "download") == 0,
        "timing labels");
  /* Re-submitting the same recording gives the same result. */
  memset(down.mapped, 0xff, down.size);
  CHECK(st_cmd_submit_wait(cmd, &err), "resubmit: %s", err.message);
  st_buffer_invalidate(dev, &down);
  CHECK(res[12345] == 0.5f * (2.0f * (12345 * 0.5f - 7.0f) + 1.0f) - 0.25f, "resubmit value");
  st_cmd_free(cmd);

  /* Recording errors are reported by submit, never sent to the driver. */
  cmd = st_cmd_begin(dev, &err);
  if (st_device_limits(dev)->minStorageBufferOffsetAlignment > 2) {
    StTensor misaligned = {.buf = &b, .offset = 2, .dtype = ST_F32, .rank = 1, .shape = {16}};
    const StTensor *binds3[2] = {&ta, &misaligned};
    st_cmd_dispatch(cmd, k, binds3, 2, &push, sizeof push, 1, 1, 1);
    CHECK(!st_cmd_submit_wait(cmd, &err) && err.code == ST_ERROR_ARGUMENT, "misaligned accepted");
    printf("misaligned binding: %s\n", err.message);
  }
  st_cmd_free(cmd);
  cmd = st_cmd_begin(dev, &err);
  StTensor outside = {.buf = &a, .offset = 0, .dtype = ST_F32, .rank = 1, .shape = {(int)n + 100}};
  st_cmd_copy(cmd, &a, 0, &b, 0, n * 4 + 1000);
  CHECK(!st_cmd_submit_wait(cmd, &err) && err.code == ST_ERROR_ARGUMENT, "oversized copy accepted");
  st_cmd_free(cmd);
  cmd = st_cmd_begin(dev, &err);
  const StTensor *binds4[1] = {&outside};
  st_cmd_dispatch(cmd, k, binds4, 1, &push, sizeof push, 1, 1, 1);
  CHECK(!st_cmd_submit_wait(cmd, &err) && err.code == ST_ERROR_ARGUMENT,
        "binding count mismatch accepted");
  printf("binding count mismatch: %s\n", err.message);
  st_cmd_free(cmd);

  /* Many dispatches in one command buffer: descriptor pools grow on demand. */
  cmd = st_cmd_begin(dev, &err);
  push.a = 1.0f;
  push.b = 1.0f;
  for (int i = 0; i < 700; i++) {
    st_cmd_dispatch(cmd, k, binds2, 2, &push, sizeof push, (n + 63) / 64, 1, 1);
    if (i % 2)
      st_cmd_mark(cmd, "op");
  }
  st_cmd_copy(cmd, &b, 0, &down, 0, b.size);
  CHECK(st_cmd_submit_wait(cmd, &err), "%s", err.message);
  st_buffer_invalidate(dev, &down);
  CHECK(res[7] == 0.5f * (2.0f * (7 * 0.5f - 7.0f) + 1.0f) - 0.25f + 700.0f, "700 adds: %g",
        res[7]);
  nt = st_cmd_timings(cmd, tm, 8);
  CHECK(nt == 8, "timings truncated to max: %d", nt);
  /* Reset and record something else into the same StCmd (its command buffer, fence, 3 descriptor
   * pools and query pools are reused): 2 more adds over the 700, 2 timings. */
  CHECK(st_cmd_reset(cmd, &err), "reset: %s", err.message);
  for (int i = 0; i < 2; i++) {
    st_cmd_dispatch(cmd, k, binds2, 2, &push, sizeof push, (n + 63) / 64, 1, 1);
    st_cmd_mark(cmd, i ? "second" : "first");
  }
  st_cmd_copy(cmd, &b, 0, &down, 0, b.size);
  CHECK(st_cmd_submit_wait(cmd, &err), "after reset: %s", err.message);
  st_buffer_invalidate(dev, &down);
  CHECK(res[7] == 0.5f * (2.0f * (7 * 0.5f - 7.0f) + 1.0f) - 0.25f + 702.0f,
        "after reset, 702 adds: %g", res[7]);
  nt = st_cmd_timings(cmd, tm, 8);
  CHECK(nt == 2 && strcmp(tm[0].name, "first") == 0 && strcmp(tm[1].name, "second") == 0,
        "timings after reset: %d", nt);
  /* a recording that failed is discarded by a reset */
  CHECK(st_cmd_reset(cmd, &err), "reset: %s", err.message);
  st_cmd_copy(cmd, &a, 0, &b, 0, n * 4 + 1000);
  CHECK(!st_cmd_submit_wait(cmd, &err) && err.code == ST_ERROR_ARGUMENT, "oversized copy accepted");
  CHECK(st_cmd_reset(cmd, &err), "reset after a failed recording: %s", err.message);
  st_cmd_copy(cmd, &b, 0, &down, 0, b.size);
  CHECK(st_cmd_submit_wait(cmd, &err), "after a failed recording: %s", err.message);
  st_cmd_free(cmd);

  st_buffer_destroy(dev, &up);
  st_buffer_destroy(dev, &a);
  st_buffer_destroy(dev, &b);
  st_buffer_destroy(dev, &down);
  st_buffer_destroy(dev, &empty); /* zeroed: safe */
  unsigned msgs = st_device_validation_messages(dev);
  CHECK(msgs == 0, "%u validation messages", msgs);
  st_device_free(dev);

  /* The pipeline cache was written (XDG_CACHE_HOME set by the test environment). */
  const char *xdg = getenv("XDG_CACHE_HOME");
  if (xdg) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/styletransfer", xdg);
    DIR *d = opendir(dir);
    int found = 0;
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)))
        if (strncmp(e->d_name, "pipelines-", 10) == 0)
          found++;
      closedir(d);
    }
    CHECK(found == 1, "pipeline cache files in %s: %d", dir, found);
  }
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
