/* SPDX-License-Identifier: LGPL-2.1-or-later
 * The engine's diagnostics (st_set_log_func) for the engine tests and tools: printed on stderr,
 * where the test logs show them. With ST_VALIDATION_FATAL=1 a validation message aborts the test
 * at once, with the message, as the engine itself only fails the next submission. Call
 * st_test_log_init() before creating a device. */
#ifndef ST_TEST_LOG_H
#define ST_TEST_LOG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

static void st_test_log(StLogLevel level, const char *message, void *user_data) {
  (void)user_data;
  static const char *names[] = {"error", "warning", "info"};
  fprintf(stderr, "styletransfer %s: %s\n", names[level], message);
  fflush(stderr);
  const char *fatal = getenv("ST_VALIDATION_FATAL");
  if (fatal && strcmp(fatal, "1") == 0 && strncmp(message, "Vulkan validation", 17) == 0)
    abort();
}

static inline void st_test_log_init(void) { st_set_log_func(st_test_log, NULL); }

#endif /* ST_TEST_LOG_H */
