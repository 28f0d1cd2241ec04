/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Shared failure counter and CHECK macro of the engine tests (tests/compute). */
#ifndef ST_TEST_CHECK_H
#define ST_TEST_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                              \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

#endif /* ST_TEST_CHECK_H */
